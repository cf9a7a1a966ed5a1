//! Hugging Face checkpoints of the Llama family (Llama 2 and 3.x, Qwen2, Qwen3) from a local
//! folder:
//!
//! ```text
//! config.json                          the shape (architecture, widths, heads, RoPE base, ...)
//! model.safetensors                    the weights (float32, float16 or bfloat16), or shards
//!   (or model.safetensors.index.json   listed by an index)
//! tokenizer.json                       the tokenizer, read by the `tokenizers` crate
//! tokenizer_config.json                (optional) whether a BOS token starts every text
//! ```
//!
//! The weights go into the same [`Transformer`] the small models use, with
//! [`Architecture::Llama`]; nothing is downloaded. Hugging Face stores a linear layer's
//! weight as `[out, in]`, burn as `[in, out]`, so every matrix is transposed on the way in,
//! and the query, key and value projections (and the MLP's gate and up projections) are put
//! side by side into the one matrix each that the model multiplies by.
//!
//! What differs between them is read from `config.json`: Llama 3's rotary scaling
//! (`rope_type = "llama3"`), a head width apart from `hidden_size / num_attention_heads`
//! (`head_dim`), Qwen3's RMSNorm on each head's queries and keys, biases, tied embeddings.
//! Anything this code cannot reproduce exactly (another architecture, another RoPE scaling,
//! sliding windows, another activation, integer weights) is refused with an error that names
//! the key and its value.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::chat::{ChatPrompt, ChatTemplate};
use super::model::{Architecture, Norm, RopeScaling, Transformer, TransformerConfig};
use super::tokenizer::{Tokenizer, TokenizerError};

/// The architectures (`model_type` in `config.json`) this loader reads.
pub const SUPPORTED: [&str; 3] = ["llama", "qwen2", "qwen3"];

/// The keys of `config.json` this loader reads (others are ignored; those that would change
/// the computation are checked in [`HfConfig::transformer`]).
#[derive(Debug, Deserialize)]
pub struct HfConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Older files: `rope_theta` and `rope_scaling`; transformers 5: `rope_parameters`.
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<serde_json::Value>,
    pub rope_parameters: Option<RopeParameters>,
    pub tie_word_embeddings: Option<bool>,
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
    pub use_sliding_window: Option<bool>,
    /// Per layer, `"full_attention"` or `"sliding_attention"` (transformers 4.54 and later).
    pub layer_types: Option<Vec<String>>,
    /// The share of each head's dimensions that RoPE rotates (some architectures: < 1).
    pub partial_rotary_factor: Option<f64>,
    /// An id or a list of ids (Llama 3); the first one ends generation.
    pub eos_token_id: Option<serde_json::Value>,
    pub pad_token_id: Option<u32>,
}

fn default_hidden_act() -> String {
    "silu".into()
}

/// `rope_parameters` (transformers 5) or `rope_scaling` (older files): the base and the
/// scaling, if any.
#[derive(Debug, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: Option<f64>,
    /// `"default"`, `"llama3"`; older files spell it `type`.
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    pub factor: Option<f64>,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<usize>,
}

impl RopeParameters {
    /// The scaling these parameters ask for: none, Llama 3's, or an error naming the type.
    fn scaling(&self, key: &str) -> Result<Option<RopeScaling>> {
        match self.rope_type.as_deref() {
            None | Some("default") => Ok(None),
            Some("llama3") => {
                let need = |v: Option<f64>, name: &str| {
                    v.with_context(|| format!("{key} has rope_type \"llama3\" but no {name}"))
                };
                Ok(Some(RopeScaling {
                    factor: need(self.factor, "factor")?,
                    low_freq_factor: need(self.low_freq_factor, "low_freq_factor")?,
                    high_freq_factor: need(self.high_freq_factor, "high_freq_factor")?,
                    original_max_position_embeddings: self
                        .original_max_position_embeddings
                        .with_context(|| {
                            format!(
                                "{key} has rope_type \"llama3\" but no original_max_position_embeddings"
                            )
                        })?,
                }))
            }
            Some(other) => bail!(
                "unsupported {key}.rope_type {other:?}: this loader reads \"default\" and \"llama3\""
            ),
        }
    }
}

impl HfConfig {
    /// The [`TransformerConfig`] of this checkpoint, or what makes it unsupported.
    pub fn transformer(&self) -> Result<TransformerConfig> {
        let arch = self.model_type.as_str();
        if !SUPPORTED.contains(&arch) {
            bail!(
                "unsupported architecture {arch:?} (model_type in config.json): this loader reads {}",
                SUPPORTED.join(", ")
            );
        }
        if self.hidden_act != "silu" {
            bail!(
                "unsupported hidden_act {:?}: only \"silu\"",
                self.hidden_act
            );
        }
        if self.num_attention_heads == 0 {
            bail!("num_attention_heads in config.json is 0; it must be at least 1");
        }
        let head_dim = match self.head_dim {
            Some(0) => bail!("head_dim in config.json is 0; it must be at least 1"),
            Some(h) if h * self.num_attention_heads != self.hidden_size => Some(h),
            _ if !self.hidden_size.is_multiple_of(self.num_attention_heads) => bail!(
                "hidden_size {} is not a multiple of num_attention_heads {} and config.json has no head_dim",
                self.hidden_size,
                self.num_attention_heads
            ),
            _ => None,
        };
        if let Some(f) = self.partial_rotary_factor.filter(|f| *f != 1.0) {
            bail!("unsupported partial_rotary_factor {f}: only 1 (RoPE on every dimension)");
        }
        // The base and the scaling: `rope_parameters` (transformers 5), or `rope_theta` and
        // `rope_scaling` (older files).
        let (rope_theta, rope_scaling) = match (&self.rope_parameters, &self.rope_scaling) {
            (Some(p), _) => (
                p.rope_theta.or(self.rope_theta).unwrap_or(10_000.0),
                p.scaling("rope_parameters")?,
            ),
            (None, Some(v)) if !v.is_null() => {
                let p: RopeParameters = serde_json::from_value(v.clone())
                    .with_context(|| format!("reading rope_scaling {v}"))?;
                (
                    self.rope_theta.unwrap_or(10_000.0),
                    p.scaling("rope_scaling")?,
                )
            }
            _ => (self.rope_theta.unwrap_or(10_000.0), None),
        };
        if self.use_sliding_window == Some(true) {
            bail!("unsupported use_sliding_window true: only full attention");
        }
        if let Some(t) = self
            .layer_types
            .iter()
            .flatten()
            .find(|t| *t != "full_attention")
        {
            bail!("unsupported layer_types entry {t:?}: only \"full_attention\"");
        }
        // ANCHOR: gpus_hf_config
        // Qwen2 always has biases on q, k and v (not on o); Llama and Qwen3 on all four or
        // none, as `attention_bias` says. Qwen3 normalizes each head's queries and keys.
        let qkv_bias = arch == "qwen2" || self.attention_bias == Some(true);
        let attn_out_bias = arch != "qwen2" && self.attention_bias == Some(true);
        Ok(TransformerConfig::new(self.vocab_size)
            .with_architecture(Architecture::Llama)
            .with_max_seq_len(self.max_position_embeddings)
            .with_d_model(self.hidden_size)
            .with_n_layers(self.num_hidden_layers)
            .with_n_heads(self.num_attention_heads)
            .with_n_kv_heads(self.num_key_value_heads)
            .with_d_ff(self.intermediate_size)
            .with_qkv_bias(qkv_bias)
            .with_attn_out_bias(attn_out_bias)
            .with_mlp_bias(self.mlp_bias == Some(true))
            // Qwen2 and Llama both default to untied in transformers.
            .with_tie_embeddings(self.tie_word_embeddings.unwrap_or(false))
            .with_norm_eps(self.rms_norm_eps)
            .with_rope_theta(rope_theta)
            .with_head_dim(head_dim)
            .with_qk_norm(arch == "qwen3")
            .with_rope_scaling(rope_scaling))
        // ANCHOR_END: gpus_hf_config
        .and_then(|c| {
            c.validate()
                .map_err(|e| anyhow::anyhow!("config.json: {}", e.0))?;
            Ok(c)
        })
    }

    fn eos_id(&self) -> Option<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n as u32),
            Some(serde_json::Value::Array(ids)) => ids.first()?.as_u64().map(|n| n as u32),
            _ => None,
        }
    }
}

/// A Hugging Face `tokenizer.json`, through the [`Tokenizer`] interface. (It serializes
/// whole, so a checkpoint trained from a Hugging Face model carries its tokenizer.)
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: u32,
    pad: u32,
    /// The checkpoint's chat template, if it has one.
    #[serde(default)]
    pub chat_template: Option<ChatTemplate>,
    /// Set by [`HfTokenizer::use_chat_template`]: prompts are written with the template.
    #[serde(default)]
    chat: Option<ChatPrompt>,
}

impl HfTokenizer {
    /// Reads `dir/tokenizer.json`; the special tokens come from `config.json` and
    /// `tokenizer_config.json` (BOS only where `add_bos_token` is true; padding is EOS when
    /// the checkpoint names no pad token).
    pub fn from_dir(dir: &Path, config: &HfConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            bail!("{} has no tokenizer.json", dir.display());
        }
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let special: serde_json::Value =
            match std::fs::read_to_string(dir.join("tokenizer_config.json")) {
                Ok(text) => serde_json::from_str(&text).context("reading tokenizer_config.json")?,
                Err(_) => serde_json::Value::Null,
            };
        let token_id = |key: &str| {
            let token = special.get(key)?;
            let text = token.as_str().or_else(|| token.get("content")?.as_str())?;
            inner.token_to_id(text)
        };
        let bos = if special.get("add_bos_token").and_then(|v| v.as_bool()) == Some(true) {
            token_id("bos_token")
        } else {
            None
        };
        let eos = config
            .eos_id()
            .or_else(|| token_id("eos_token"))
            .context("the checkpoint names no EOS token (eos_token_id in config.json)")?;
        let pad = config
            .pad_token_id
            .or_else(|| token_id("pad_token"))
            .unwrap_or(eos);
        for (name, id) in [("eos_token_id", eos), ("pad_token_id", pad)] {
            if id as usize >= config.vocab_size {
                bail!(
                    "{name} {id} in config.json is not a token: the vocabulary has {} ids \
                     (0 to {})",
                    config.vocab_size,
                    config.vocab_size.saturating_sub(1)
                );
            }
        }
        Ok(Self {
            inner,
            bos,
            eos,
            pad,
            chat_template: ChatTemplate::from_dir(dir, &special)?,
            chat: None,
        })
    }

    /// A tokenizer made elsewhere (a GGUF file's metadata, [`super::gguf_model`]): the
    /// Hugging Face tokenizer, its BOS (if every text starts with one), EOS and padding ids,
    /// and its chat template.
    pub(super) fn new(
        inner: tokenizers::Tokenizer,
        bos: Option<u32>,
        eos: u32,
        pad: u32,
        chat_template: Option<ChatTemplate>,
    ) -> Self {
        Self {
            inner,
            bos,
            eos,
            pad,
            chat_template,
            chat: None,
        }
    }

    /// From now on, prompts are written as a conversation with the checkpoint's chat template:
    /// `system` (if any), then the prompt as the user's message, then the start of the
    /// assistant's turn. An error if the checkpoint has no template.
    pub fn use_chat_template(&mut self, system: Option<String>) -> Result<()> {
        let template = self.chat_template.clone().context(
            "the model has no chat template (chat_template in tokenizer_config.json or chat_template.jinja; tokenizer.chat_template in a GGUF file)",
        )?;
        self.chat = Some(ChatPrompt { template, system });
        Ok(())
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Other(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }
    fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
    fn pad_id(&self) -> u32 {
        self.pad
    }
    fn bos_id(&self) -> Option<u32> {
        self.bos
    }
    fn eos_id(&self) -> u32 {
        self.eos
    }
    fn fingerprint(&self) -> String {
        format!("hf:{} tokens", self.vocab_size())
    }
    fn chat(&self) -> Option<&ChatPrompt> {
        self.chat.as_ref()
    }
}

/// A Hugging Face checkpoint, loaded.
pub struct HfModel<B: Backend> {
    pub model: Transformer<B>,
    pub config: TransformerConfig,
    pub tokenizer: HfTokenizer,
}

/// Loads the checkpoint in the folder `dir` (see the module docs).
pub fn load_hf<B: Backend>(dir: &Path, device: &B::Device) -> Result<HfModel<B>> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).with_context(|| {
        format!(
            "{} is not a Hugging Face checkpoint (no config.json)",
            dir.display()
        )
    })?;
    let hf: HfConfig = serde_json::from_str(&text)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = hf
        .transformer()
        .with_context(|| format!("{}", config_path.display()))?;
    let tokenizer = HfTokenizer::from_dir(dir, &hf)?;
    Weights::read(dir)?.into_model(config, tokenizer, dir, device)
}

/// The tensors of a checkpoint, by Hugging Face's names, as `f32` and their shapes (a linear
/// layer's weight `[out, in]`): read from safetensors files here, or from a GGUF file by
/// [`super::gguf_model`].
pub(super) struct Weights {
    pub(super) tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    fn read(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<_> = if single.exists() {
            vec![single]
        } else if index.exists() {
            let index: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index)?)
                .context("reading model.safetensors.index.json")?;
            let shards: BTreeSet<String> = index["weight_map"]
                .as_object()
                .context("model.safetensors.index.json has no weight_map")?
                .values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            shards.into_iter().map(|s| dir.join(s)).collect()
        } else {
            bail!(
                "{} has no model.safetensors (nor model.safetensors.index.json)",
                dir.display()
            );
        };
        let mut tensors = HashMap::new();
        for file in files {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let st = SafeTensors::deserialize(&bytes)
                .with_context(|| format!("reading {}", file.display()))?;
            for (name, view) in st.tensors() {
                let values = to_f32(view.dtype(), view.data())
                    .with_context(|| format!("{}: tensor {name}", file.display()))?;
                tensors.insert(name, (view.shape().to_vec(), values));
            }
        }
        Ok(Self { tensors })
    }

    /// One linear layer made of the checkpoint's projections `names` (each `NAME.weight` of
    /// `[out, d_in]`, and `NAME.bias` if `bias`), side by side: its `[d_in, Σ out]` weight
    /// ([`Self::linear_weight`]) and its bias, the biases one after another.
    fn projection(
        &mut self,
        names: &[String],
        outs: &[usize],
        d_in: usize,
        bias: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let weights: Vec<String> = names.iter().map(|n| format!("{n}.weight")).collect();
        let weights: Vec<&str> = weights.iter().map(String::as_str).collect();
        let w = self.linear_weight(&weights, outs, d_in)?;
        if !bias {
            return Ok((w, None));
        }
        let mut b = Vec::with_capacity(outs.iter().sum());
        for (name, &out) in names.iter().zip(outs) {
            b.extend(self.take(&format!("{name}.bias"), &[out])?);
        }
        Ok((w, Some(b)))
    }

    /// Takes the tensor `name`, which must have the shape `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (found, values) = self
            .tensors
            .remove(name)
            .with_context(|| format!("the weight {name} is missing"))?;
        if found != shape {
            bail!("the weight {name} has the shape {found:?}, the config implies {shape:?}");
        }
        Ok(values)
    }

    /// The `[in, Σ out]` matrix of the Hugging Face `[out, in]` matrices `names`, side by side.
    // ANCHOR: gpus_hf_linear_weight
    fn linear_weight(&mut self, names: &[&str], outs: &[usize], d_in: usize) -> Result<Vec<f32>> {
        let total: usize = outs.iter().sum();
        let mut w = vec![0.0; d_in * total];
        let mut col = 0;
        for (name, &out) in names.iter().zip(outs) {
            let m = self.take(name, &[out, d_in])?;
            for o in 0..out {
                for i in 0..d_in {
                    w[i * total + col + o] = m[o * d_in + i];
                }
            }
            col += out;
        }
        Ok(w)
    }
    // ANCHOR_END: gpus_hf_linear_weight

    /// The loaded model: [`Self::build`] with `config`, and `tokenizer` beside it (`source`
    /// names the checkpoint in an error).
    pub(super) fn into_model<B: Backend>(
        mut self,
        config: TransformerConfig,
        tokenizer: HfTokenizer,
        source: &Path,
        device: &B::Device,
    ) -> Result<HfModel<B>> {
        let model = self
            .build(&config, device)
            .with_context(|| format!("loading the weights of {}", source.display()))?;
        Ok(HfModel {
            model,
            config,
            tokenizer,
        })
    }

    /// The model of `config` with these weights; an error names a weight that is missing,
    /// has another shape, or is left over.
    fn build<B: Backend>(
        &mut self,
        config: &TransformerConfig,
        device: &B::Device,
    ) -> Result<Transformer<B>> {
        let (d, ff, vocab) = (config.d_model, config.d_ff, config.vocab_size);
        let d_head = config.d_head();
        let q = config.n_heads * d_head;
        let kv = config.n_kv_heads.unwrap_or(config.n_heads) * d_head;
        let tensor1 = |v: Vec<f32>| {
            let n = v.len();
            Tensor::<B, 1>::from_data(TensorData::new(v, [n]), device)
        };
        let tensor2 = |v: Vec<f32>, shape: [usize; 2]| {
            Tensor::<B, 2>::from_data(TensorData::new(v, shape), device)
        };
        let set_linear =
            |layer: &mut Linear<B>, w: Vec<f32>, shape: [usize; 2], bias: Option<Vec<f32>>| {
                layer.weight = Param::from_tensor(tensor2(w, shape));
                layer.bias = bias.map(|b| Param::from_tensor(tensor1(b)));
            };
        let set_norm = |norm: &mut Norm<B>, w: Vec<f32>| {
            if let Norm::Rms(norm) = norm {
                norm.gamma = Param::from_tensor(tensor1(w));
            }
        };

        // Parameters are initialized lazily in burn, so the random ones are never drawn.
        let mut model = config.init::<B>(device);
        let set_embedding = |e: &mut Embedding<B>, w: Vec<f32>| {
            e.weight = Param::from_tensor(tensor2(w, [vocab, d]));
        };
        set_embedding(
            &mut model.wte,
            self.take("model.embed_tokens.weight", &[vocab, d])?,
        );
        for (l, block) in model.blocks.iter_mut().enumerate() {
            let p = format!("model.layers.{l}");
            let attn = |n: &str| format!("{p}.self_attn.{n}");
            let qkv = [attn("q_proj"), attn("k_proj"), attn("v_proj")];
            let (w, bias) = self.projection(&qkv, &[q, kv, kv], d, config.qkv_bias)?;
            set_linear(&mut block.qkv, w, [d, q + 2 * kv], bias);
            let (w, bias) = self.projection(&[attn("o_proj")], &[d], q, config.attn_out_bias)?;
            set_linear(&mut block.proj, w, [q, d], bias);
            for (norm, name) in [(&mut block.q_norm, "q_norm"), (&mut block.k_norm, "k_norm")] {
                if let Some(norm) = norm {
                    let w = self.take(&attn(&format!("{name}.weight")), &[d_head])?;
                    norm.gamma = Param::from_tensor(tensor1(w));
                }
            }

            let mlp = |n: &str| format!("{p}.mlp.{n}");
            let gate_up = [mlp("gate_proj"), mlp("up_proj")];
            let (w, bias) = self.projection(&gate_up, &[ff, ff], d, config.mlp_bias)?;
            set_linear(&mut block.fc, w, [d, 2 * ff], bias);
            let (w, bias) = self.projection(&[mlp("down_proj")], &[d], ff, config.mlp_bias)?;
            set_linear(&mut block.fc_out, w, [ff, d], bias);

            set_norm(
                &mut block.ln1,
                self.take(&format!("{p}.input_layernorm.weight"), &[d])?,
            );
            set_norm(
                &mut block.ln2,
                self.take(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
            );
        }
        set_norm(&mut model.ln_f, self.take("model.norm.weight", &[d])?);
        if let Some(head) = &mut model.lm_head {
            let w = self.linear_weight(&["lm_head.weight"], &[vocab], d)?;
            set_linear(head, w, [d, vocab], None);
        }
        // A tied checkpoint may still carry a copy of the embedding as lm_head.
        self.tensors.remove("lm_head.weight");
        // Rotary tables some exporters store: recomputed here.
        self.tensors
            .retain(|name, _| !name.ends_with("rotary_emb.inv_freq"));
        if let Some(name) = self.tensors.keys().next() {
            bail!(
                "the weight {name} is not used by a {} model with this config (and {} more)",
                "Llama-family",
                self.tensors.len() - 1
            );
        }
        Ok(model)
    }
}

/// The values of a tensor stored as float32, float16 or bfloat16 (little-endian), as `f32`.
// ANCHOR: gpus_hf_to_f32
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    let pairs = || {
        bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => pairs().map(|b| half::f16::from_bits(b).to_f32()).collect(),
        Dtype::BF16 => pairs().map(|b| half::bf16::from_bits(b).to_f32()).collect(),
        other => bail!("unsupported dtype {other:?}: only float32, float16 and bfloat16"),
    })
}
// ANCHOR_END: gpus_hf_to_f32
