//! A small decoder-only transformer, GPT-2 style: token and learned position embeddings,
//! pre-norm blocks of causal self-attention and a GELU MLP (GPT-2's tanh form), a final LayerNorm, and an output
//! layer tied to the token embedding. Read it next to the book's language-model chapter.
//!
//! ```text
//! tokens [batch, seq] → wte + wpe → n_layers × (x + attn(ln1(x)); x + mlp(ln2(x))) → ln_f → · wteᵀ → logits
//! ```
//!
//! The same code is also the **Llama family** (Llama, Qwen2: [`Architecture::Llama`]), the
//! architecture of the real checkpoints that [`crate::lm::hf`] loads. Four things change, each
//! in one place below: RMSNorm instead of LayerNorm ([`Norm`]); rotary position embeddings
//! on the queries and keys instead of a learned position table ([`rope`]); a gated SiLU MLP
//! (`silu(x W_gate) * (x W_up)`, "SwiGLU"); and fewer key/value heads than query heads
//! (grouped-query attention). Biases and weight tying are settings of either.
//!
//! Two things make it a policy that can be sampled from quickly and trained on batches:
//!
//! * a **padding mask**: prompts of different lengths are padded on the left, and every row
//!   says which of its positions are real ([`Batch::valid`]); positions count real tokens only,
//!   as Hugging Face does with `position_ids = cumsum(attention_mask) - 1`;
//! * a **KV cache** ([`KvCache`]): during generation each new token attends to the keys and
//!   values of all earlier positions without recomputing them.
//!
//! From about 1M parameters (`d_model = 128, n_layers = 4`, a CPU) to 100M+ (`d_model = 768,
//! n_layers = 12`, a GPU), with no change to the code.
//!
//! **Mixed precision** ([`Precision`], `precision = "bf16"` in a run's config): the weights
//! stay in f32 (the *master* weights, which the optimizer updates), and each forward pass
//! runs the matrix products, the activations and the KV cache in bf16 or f16, as PyTorch's
//! autocast does. The residual stream, the norms, the attention's softmax and the logits
//! stay in f32. The casts are autodiff operations, so gradients come back to the f32
//! weights in f32.

use crate::kernels::{self, Activation};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, FloatDType, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

// ANCHOR: lm_precision
/// The number type of a forward pass's matrix products and activations. The weights, the
/// gradients and the optimizer's state are f32 whatever this is (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in f32.
    #[default]
    F32,
    /// bfloat16: f32's range with 8 bits of mantissa (GPUs from NVIDIA's Ampere on).
    Bf16,
    /// IEEE half precision: 11 bits of mantissa, largest value 65,504.
    F16,
}

impl Precision {
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
    /// `x` in the compute type (a matrix product's input, a weight).
    pub fn lower<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Precision::F32 => x,
            _ => x.cast(self.dtype()),
        }
    }
    /// `x` back in f32 (a block's output before the residual sum, scores before the softmax).
    pub fn upper<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Precision::F32 => x,
            _ => x.cast(FloatDType::F32),
        }
    }
    /// Whether backend `B` stores and computes in this type on `device` (burn's NdArray
    /// stores only f32 and f64; Flex, CUDA and some wgpu adapters store bf16 or f16).
    pub fn supported<B: Backend>(self, device: &B::Device) -> bool {
        B::supports_dtype(device, self.dtype().into())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            _ => Err(format!("unknown precision '{s}'; use f32, bf16 or f16")),
        }
    }
}
// ANCHOR_END: lm_precision

/// The model family: what the norms, the positions and the MLP are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// LayerNorm, learned positions, GELU MLP (GPT-2).
    #[default]
    Gpt2,
    /// RMSNorm, rotary positions, gated SiLU MLP (Llama, Qwen2).
    Llama,
}

/// The shape of a [`Transformer`].
#[derive(Config, Debug, PartialEq)]
pub struct TransformerConfig {
    pub vocab_size: usize,
    /// The longest sequence (prompt and completion) the model can see.
    #[config(default = 64)]
    pub max_seq_len: usize,
    #[config(default = 128)]
    pub d_model: usize,
    #[config(default = 4)]
    pub n_layers: usize,
    #[config(default = 4)]
    pub n_heads: usize,
    /// The MLP's hidden width (GPT-2: 4 × d_model).
    #[config(default = 512)]
    pub d_ff: usize,
    #[config(default = "Architecture::Gpt2")]
    pub architecture: Architecture,
    /// Key/value heads (grouped-query attention); `None` is one per query head.
    pub n_kv_heads: Option<usize>,
    /// Biases on the query/key/value projection, on the attention's output projection and
    /// on the MLP's layers (GPT-2: all; Qwen2: the first only; Llama: none).
    #[config(default = true)]
    pub qkv_bias: bool,
    #[config(default = true)]
    pub attn_out_bias: bool,
    #[config(default = true)]
    pub mlp_bias: bool,
    /// Whether the output layer is the token embedding, transposed.
    #[config(default = true)]
    pub tie_embeddings: bool,
    /// The norms' epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// The rotary embedding's base (Llama only).
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    /// Each head's width; `None` is `d_model / n_heads`. Qwen3 sets it apart from the width
    /// (Qwen3-0.6B: 16 heads of 128 on a width of 1024).
    pub head_dim: Option<usize>,
    /// RMSNorm on each head's queries and keys before the rotary embedding (Qwen3).
    #[config(default = false)]
    pub qk_norm: bool,
    /// Llama 3's rescaled rotary frequencies for contexts longer than the pre-training one.
    pub rope_scaling: Option<RopeScaling>,
}

/// Llama 3's rotary scaling (`rope_type = "llama3"` in Hugging Face's `config.json`): the
/// frequencies whose wavelength exceeds `original_max_position_embeddings / low_freq_factor`
/// are divided by `factor`, those shorter than `... / high_freq_factor` are kept, and those in
/// between are blended linearly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

impl RopeScaling {
    /// The rescaled inverse frequencies (transformers' `_compute_llama3_parameters`, in f32).
    pub fn apply(&self, inv_freq: &mut [f32]) {
        let (factor, low, high) = (
            self.factor as f32,
            self.low_freq_factor as f32,
            self.high_freq_factor as f32,
        );
        let old_context = self.original_max_position_embeddings as f32;
        let (low_wavelen, high_wavelen) = (old_context / low, old_context / high);
        for f in inv_freq.iter_mut() {
            let wavelen = 2.0 * std::f32::consts::PI / *f;
            if wavelen > low_wavelen {
                *f /= factor;
            } else if wavelen >= high_wavelen {
                let smooth = (old_context / wavelen - low) / (high - low);
                *f = (1.0 - smooth) * *f / factor + smooth * *f;
            }
        }
    }
}

impl TransformerConfig {
    /// Checks that the shape makes a model: every size at least 1, heads that divide the
    /// width and key-value heads that divide the heads, a positive finite rotary base and
    /// normalization epsilon. A message names the field, its value and what is allowed.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let bad = |m: String| Err(crate::ConfigError(m));
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("max_seq_len", self.max_seq_len),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
        ];
        if let Some((name, v)) = sizes.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} is {v}; it must be at least 1"));
        }
        if self.head_dim == Some(0) {
            return bad("head_dim is 0; it must be at least 1".into());
        }
        if self.head_dim.is_none() && !self.d_model.is_multiple_of(self.n_heads) {
            return bad(format!(
                "d_model ({}) must be a multiple of n_heads ({})",
                self.d_model, self.n_heads
            ));
        }
        let kv = self.n_kv_heads.unwrap_or(self.n_heads);
        if kv == 0 || !self.n_heads.is_multiple_of(kv) {
            return bad(format!(
                "n_kv_heads ({kv}) must be at least 1 and divide n_heads ({})",
                self.n_heads
            ));
        }
        if !(self.rope_theta > 0.0 && self.rope_theta.is_finite()) {
            return bad(format!(
                "rope_theta is {}; it must be positive and finite",
                self.rope_theta
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return bad(format!(
                "norm_eps is {}; it must be positive and finite",
                self.norm_eps
            ));
        }
        Ok(())
    }

    /// A model with GPT-2's initialization (normal, std 0.02).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Transformer<B> {
        assert!(
            self.head_dim.is_some() || self.d_model.is_multiple_of(self.n_heads),
            "d_model must be a multiple of n_heads (or head_dim set)"
        );
        let init = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let n_kv_heads = self.n_kv_heads.unwrap_or(self.n_heads);
        assert!(
            n_kv_heads > 0 && self.n_heads.is_multiple_of(n_kv_heads),
            "n_heads must be a multiple of n_kv_heads"
        );
        let d_head = self.d_head();
        let linear = |i, o, bias| {
            LinearConfig::new(i, o)
                .with_bias(bias)
                .with_initializer(init.clone())
                .init(device)
        };
        let llama = self.architecture == Architecture::Llama;
        let norm = || match self.architecture {
            Architecture::Gpt2 => Norm::Layer(
                LayerNormConfig::new(self.d_model)
                    .with_epsilon(self.norm_eps)
                    .init(device),
            ),
            Architecture::Llama => Norm::Rms(
                RmsNormConfig::new(self.d_model)
                    .with_epsilon(self.norm_eps)
                    .init(device),
            ),
        };
        // The gated MLP's gate and up projections are one matrix `[d_model, 2 d_ff]`.
        let d_fc = if llama { 2 * self.d_ff } else { self.d_ff };
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                ln1: norm(),
                qkv: linear(
                    self.d_model,
                    (self.n_heads + 2 * n_kv_heads) * d_head,
                    self.qkv_bias,
                ),
                proj: linear(self.n_heads * d_head, self.d_model, self.attn_out_bias),
                q_norm: self.qk_norm.then(|| {
                    RmsNormConfig::new(d_head)
                        .with_epsilon(self.norm_eps)
                        .init(device)
                }),
                k_norm: self.qk_norm.then(|| {
                    RmsNormConfig::new(d_head)
                        .with_epsilon(self.norm_eps)
                        .init(device)
                }),
                d_head,
                ln2: norm(),
                fc: linear(self.d_model, d_fc, self.mlp_bias),
                fc_out: linear(self.d_ff, self.d_model, self.mlp_bias),
                n_heads: self.n_heads,
                n_kv_heads,
                gated_mlp: llama,
            })
            .collect();
        Transformer {
            wte: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(init.clone())
                .init(device),
            wpe: (!llama).then(|| {
                EmbeddingConfig::new(self.max_seq_len, self.d_model)
                    .with_initializer(init.clone())
                    .init(device)
            }),
            blocks,
            ln_f: norm(),
            lm_head: (!self.tie_embeddings).then(|| linear(self.d_model, self.vocab_size, false)),
            max_seq_len: self.max_seq_len,
            rope_theta: self.rope_theta,
            rope_scaling: self.rope_scaling.clone(),
            precision: Precision::F32,
            norm_eps: self.norm_eps,
        }
    }

    /// Each attention head's width.
    pub fn d_head(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads)
    }
}

/// LayerNorm (GPT-2) or RMSNorm (Llama): `x / rms(x) * γ`, without LayerNorm's centering
/// and bias.
#[derive(Module, Debug)]
pub enum Norm<B: Backend> {
    Layer(LayerNorm<B>),
    Rms(RmsNorm<B>),
}

impl<B: Backend> Norm<B> {
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Norm::Layer(norm) => norm.forward(x),
            Norm::Rms(norm) => norm.forward(x),
        }
    }
}

/// One pre-norm transformer block. (Fields are public so that a checkpoint loader such as
/// [`crate::lm::hf`] can put weights in.)
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub ln1: Norm<B>,
    /// Queries, keys and values in one matrix: `[d_model, (n_heads + 2 n_kv_heads) d_head]`,
    /// the queries' columns first, then the keys', then the values'.
    pub qkv: Linear<B>,
    /// The heads' outputs back to the width: `[n_heads d_head, d_model]`.
    pub proj: Linear<B>,
    /// Qwen3's RMSNorm over each head's queries and keys (`[d_head]` each), before RoPE.
    pub q_norm: Option<RmsNorm<B>>,
    pub k_norm: Option<RmsNorm<B>>,
    pub d_head: usize,
    pub ln2: Norm<B>,
    /// GPT-2: `[d_model, d_ff]`; gated (Llama): `[d_model, 2 d_ff]`, the gate's columns first.
    pub fc: Linear<B>,
    pub fc_out: Linear<B>,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub gated_mlp: bool,
}

/// The decoder-only transformer; see the module docs.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    pub wte: Embedding<B>,
    /// Learned positions (GPT-2); `None` for rotary positions (Llama).
    pub wpe: Option<Embedding<B>>,
    pub blocks: Vec<Block<B>>,
    pub ln_f: Norm<B>,
    /// The output layer when it is not tied to `wte`.
    pub lm_head: Option<Linear<B>>,
    pub max_seq_len: usize,
    pub rope_theta: f64,
    #[module(skip)]
    pub rope_scaling: Option<RopeScaling>,
    /// The forward pass's number type ([`Transformer::with_precision`]); f32 from `init`.
    #[module(skip)]
    pub precision: Precision,
    /// The norms' epsilon (the config's `norm_eps`), for [`crate::lm::infer`].
    #[module(skip)]
    pub norm_eps: f64,
}

/// A batch of token rows, left-padded to one length.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[rows][len]` token ids (pads included).
    pub tokens: Vec<Vec<u32>>,
    /// `[rows][len]`: whether each position holds a real token.
    pub valid: Vec<Vec<bool>>,
}

impl Batch {
    /// Left-pads `rows` with `pad` to the longest row.
    pub fn left_padded(rows: &[Vec<u32>], pad: u32) -> Self {
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut tokens = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        for row in rows {
            let n = len - row.len();
            tokens.push(
                std::iter::repeat_n(pad, n)
                    .chain(row.iter().copied())
                    .collect(),
            );
            valid.push(
                std::iter::repeat_n(false, n)
                    .chain(std::iter::repeat_n(true, row.len()))
                    .collect(),
            );
        }
        Self { tokens, valid }
    }
    pub fn rows(&self) -> usize {
        self.tokens.len()
    }
    pub fn len(&self) -> usize {
        self.tokens.first().map_or(0, Vec::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Positions `start..end` of every row.
    pub fn columns(&self, start: usize, end: usize) -> Self {
        Self {
            tokens: self.tokens.iter().map(|t| t[start..end].to_vec()).collect(),
            valid: self.valid.iter().map(|v| v[start..end].to_vec()).collect(),
        }
    }
}

/// The keys and values of every layer for the positions seen so far, and which of those
/// positions are real tokens: what generation reuses at each new token.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    /// Per layer, `[batch, heads, positions, d_head]` keys and values.
    layers: Vec<LayerKv<B>>,
    seen: Seen,
}

impl<B: Backend> KvCache<B> {
    pub fn new(n_layers: usize, rows: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            seen: Seen::new(rows),
        }
    }
    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.seen.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A cache whose row `i` is row `rows[i]` of this one (a row may come several times):
    /// one prompt's keys and values for each of its completions. Under autodiff the
    /// gradients of the copies add up in the row they came from.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = self.layers.iter().flatten().next().map(|(k, _)| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows.len()]), &k.device())
        });
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let (k, v) = layer.as_ref()?;
                let index = index.clone()?;
                Some((
                    k.clone().select(0, index.clone()),
                    v.clone().select(0, index),
                ))
            })
            .collect();
        let seen = Seen {
            valid: rows.iter().map(|&r| self.seen.valid[r].clone()).collect(),
            next_position: rows.iter().map(|&r| self.seen.next_position[r]).collect(),
        };
        Self { layers, seen }
    }
}

/// What a cache knows of the positions seen so far, whatever holds the keys and values
/// ([`KvCache`]'s tensors, or [`crate::lm::infer::HostDecoder`]'s arrays).
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// `[rows][positions]`: whether each cached position is a real token.
    pub valid: Vec<Vec<bool>>,
    /// `[rows]`: the position id the next real token of each row gets.
    pub next_position: Vec<usize>,
}

impl Seen {
    pub fn new(rows: usize) -> Self {
        Self {
            valid: vec![Vec::new(); rows],
            next_position: vec![0; rows],
        }
    }
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Takes in `batch`'s new positions for a model with a context of `max_seq_len` and a
    /// vocabulary of `vocab` (an error if they do not fit): pushes their position ids to
    /// `positions` (`[rows * len]`; real tokens count on from each row's `next_position`,
    /// pads get 0, they are masked anyway) and records which are real. Returns how many
    /// positions are seen now.
    pub fn advance(
        &mut self,
        batch: &Batch,
        max_seq_len: usize,
        vocab: usize,
        positions: &mut Vec<i64>,
    ) -> Result<usize, ModelError> {
        let total = self.len() + batch.len();
        if total > max_seq_len {
            return Err(ModelError::TooLong {
                len: total,
                max: max_seq_len,
            });
        }
        if let Some(&id) = batch
            .tokens
            .iter()
            .flatten()
            .find(|&&t| t as usize >= vocab)
        {
            return Err(ModelError::UnknownToken { id, vocab });
        }
        // ANCHOR: lm_positions
        for r in 0..batch.rows() {
            for p in 0..batch.len() {
                if batch.valid[r][p] {
                    positions.push(self.next_position[r] as i64);
                    self.next_position[r] += 1;
                } else {
                    positions.push(0);
                }
            }
            self.valid[r].extend_from_slice(&batch.valid[r]);
        }
        // ANCHOR_END: lm_positions
        Ok(total)
    }
}

/// What goes wrong when a batch does not fit the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error(
        "a sequence of {len} tokens is longer than the model's context of {max} (max_seq_len)"
    )]
    TooLong { len: usize, max: usize },
    #[error("token id {id} is outside the model's vocabulary of {vocab}")]
    UnknownToken { id: u32, vocab: usize },
}

impl<B: Backend> Transformer<B> {
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }
    pub fn vocab_size(&self) -> usize {
        self.wte.weight.dims()[0]
    }
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
    pub fn d_model(&self) -> usize {
        self.wte.weight.dims()[1]
    }

    /// The same weights, run in `precision` (mixed precision; see the module docs). Its
    /// copies ([`Module::valid`], a clone for the reference model) keep it.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Logits `[rows, len, vocab]` for every position of `batch`, without a cache (training
    /// and scoring).
    pub fn forward(&self, batch: &Batch) -> Result<Tensor<B, 3>, ModelError> {
        let mut cache = KvCache::new(self.n_layers(), batch.rows());
        self.forward_cached(batch, &mut cache)
    }

    /// Logits for the new positions in `batch`, appended after the positions already in
    /// `cache` (which this call extends).
    pub fn forward_cached(
        &self,
        batch: &Batch,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let hidden = self.hidden_cached(batch, cache)?;
        Ok(self.logits(hidden))
    }

    /// The last hidden states `[rows, len, d_model]` (after the final layer norm) of every
    /// position of `batch`: what the output layer reads, and what a value head reads.
    pub fn hidden(&self, batch: &Batch) -> Result<Tensor<B, 3>, ModelError> {
        let mut cache = KvCache::new(self.n_layers(), batch.rows());
        self.hidden_cached(batch, &mut cache)
    }

    /// The output layer: the token embedding, transposed (weight tying, as GPT-2), or a
    /// layer of its own.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let p = self.precision;
        let hidden = p.lower(hidden);
        if let Some(head) = &self.lm_head {
            return p.upper(rowwise(head, hidden, p, Activation::Identity));
        }
        let [rows, len, d] = hidden.dims();
        let (hidden, wte) = (
            hidden.reshape([rows * len, d]),
            p.lower(self.wte.weight.val()),
        );
        let logits = match p {
            // One fused product on every core (`kernels::matmul_transposed`), else burn's.
            Precision::F32 => kernels::matmul_transposed(&hidden, &wte),
            _ => None,
        }
        .unwrap_or_else(|| hidden.matmul(wte.transpose()));
        p.upper(logits.reshape([rows, len, self.vocab_size()]))
    }

    /// [`Transformer::hidden`] for the new positions, extending `cache`.
    pub fn hidden_cached(
        &self,
        batch: &Batch,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let (rows, len) = (batch.rows(), batch.len());
        let device = self.wte.weight.device();

        // ANCHOR: lm_positions_mask
        let mut positions = Vec::with_capacity(rows * len);
        let total =
            cache
                .seen
                .advance(batch, self.max_seq_len, self.vocab_size(), &mut positions)?;
        // The attention mask `[rows, 1, len, total]`: true where a query may NOT look: a
        // later position (causality) or a pad.
        let mut masked = Vec::with_capacity(rows * len * total);
        for r in 0..rows {
            for q in 0..len {
                let q_abs = total - len + q;
                for k in 0..total {
                    masked.push(k > q_abs || !cache.seen.valid[r][k]);
                }
            }
        }
        let mask = Tensor::<B, 4, Bool>::from_data(
            TensorData::new(masked, [rows, 1, len, total]),
            &device,
        );
        // ANCHOR_END: lm_positions_mask
        let ids: Vec<i64> = batch.tokens.iter().flatten().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, len]), &device);
        let mut x = self.wte.forward(ids);
        let mut rotary = None;
        match &self.wpe {
            Some(wpe) => {
                let positions = TensorData::new(positions, [rows, len]);
                x = x + wpe.forward(Tensor::<B, 2, Int>::from_data(positions, &device));
            }
            None => {
                rotary = Some(rope(
                    &positions,
                    [rows, len],
                    self.blocks[0].d_head,
                    self.rope_theta,
                    self.rope_scaling.as_ref(),
                    &device,
                ));
            }
        }
        let pass = Pass {
            mask: &mask,
            rotary: rotary.as_ref(),
            p: self.precision,
        };
        for (block, layer_cache) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            x = block.forward(x, &pass, layer_cache);
        }
        Ok(self.ln_f.forward(x))
    }
}

/// What every block of one forward pass shares: the attention mask, the rotary angles
/// (Llama; `None` with learned positions) and the compute type.
struct Pass<'a, B: Backend> {
    mask: &'a Tensor<B, 4, Bool>,
    rotary: Option<&'a Rotary<B>>,
    p: Precision,
}

/// One layer's cached keys and values, `[rows, kv_heads, positions, d_head]` each.
type LayerKv<B> = Option<(Tensor<B, 4>, Tensor<B, 4>)>;

impl<B: Backend> Block<B> {
    fn forward(&self, x: Tensor<B, 3>, pass: &Pass<B>, cache: &mut LayerKv<B>) -> Tensor<B, 3> {
        let p = pass.p;
        // ANCHOR: lm_block_forward
        // (`p.lower`/`p.upper`: into the compute type and back to f32; nothing in f32.)
        let attended = self.attention(p.lower(self.ln1.forward(x.clone())), pass, cache);
        let x = x + p.upper(attended);
        let normed = p.lower(self.ln2.forward(x.clone()));
        let h = if self.gated_mlp {
            // SwiGLU: silu(x W_gate) * (x W_up).
            let h = rowwise(&self.fc, normed, p, Activation::Identity);
            let d_ff = h.dims()[2] / 2;
            silu(h.clone().narrow(2, 0, d_ff)) * h.narrow(2, d_ff, d_ff)
        } else {
            rowwise(&self.fc, normed, p, Activation::GeluTanh)
        };
        x + p.upper(rowwise(&self.fc_out, h, p, Activation::Identity))
        // ANCHOR_END: lm_block_forward
    }

    /// Causal multi-head self-attention: `softmax(q kᵀ / sqrt(d_head) + mask) v` per head.
    fn attention(&self, x: Tensor<B, 3>, pass: &Pass<B>, cache: &mut LayerKv<B>) -> Tensor<B, 3> {
        let (mask, rotary, p) = (pass.mask, pass.rotary, pass.p);
        // ANCHOR: lm_attention
        let [rows, len, _] = x.dims();
        let (heads, kv_heads, d_head) = (self.n_heads, self.n_kv_heads, self.d_head);
        // [rows, len, (heads + 2 kv_heads) d_head] → [rows, heads or kv_heads, len, d_head].
        let qkv = rowwise(&self.qkv, x, p, Activation::Identity);
        let part = |start: usize, n: usize| {
            qkv.clone()
                .narrow(2, start * d_head, n * d_head)
                .reshape([rows, len, n, d_head])
                .swap_dims(1, 2)
        };
        let (mut q, mut k, mut v) = (
            part(0, heads),
            part(heads, kv_heads),
            part(heads + kv_heads, kv_heads),
        );
        if let (Some(q_norm), Some(k_norm)) = (&self.q_norm, &self.k_norm) {
            q = p.lower(q_norm.forward(p.upper(q)));
            k = p.lower(k_norm.forward(p.upper(k)));
        }
        if let Some(rotary) = rotary {
            q = rotary.apply(q);
            k = rotary.apply(k);
        }
        if let Some((k_old, v_old)) = cache.take() {
            k = Tensor::cat(vec![k_old, k], 2);
            v = Tensor::cat(vec![v_old, v], 2);
        }
        *cache = Some((k.clone(), v.clone()));
        // Grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
        let (k, v) = (
            repeat_kv(k, heads / kv_heads),
            repeat_kv(v, heads / kv_heads),
        );
        let scores = p.upper(q.matmul(k.swap_dims(2, 3))) / (d_head as f64).sqrt();
        // A large negative number, not -inf: a row that sees only pads (a pad's own query)
        // must not become NaN, or NaN would leak into real rows through 0 * NaN.
        let scores = scores.mask_fill(mask.clone().repeat_dim(1, self.n_heads), -1e9);
        let out = p.lower(softmax(scores, 3)).matmul(v);
        let out = out.swap_dims(1, 2).reshape([rows, len, heads * d_head]);
        rowwise(&self.proj, out, p, Activation::Identity)
        // ANCHOR_END: lm_attention
    }
}

/// Each key/value head `n` times in a row: `[rows, kv_heads, len, d]` → `[rows, kv_heads n,
/// len, d]` (Hugging Face's `repeat_kv`).
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n: usize) -> Tensor<B, 4> {
    if n == 1 {
        return x;
    }
    let [rows, kv_heads, len, d] = x.dims();
    x.reshape([rows, kv_heads, 1, len, d])
        .repeat_dim(2, n)
        .reshape([rows, kv_heads * n, len, d])
}

/// The cosines and sines of rotary position embeddings for a batch's positions.
pub struct Rotary<B: Backend> {
    /// `[rows, 1, len, d_head]` each, broadcast over the heads.
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
}

/// Rotary position embeddings (RoPE, Su et al. 2021) as Llama computes them: dimension pair
/// `(i, i + d/2)` of a query or key at position `p` is rotated by the angle `p θ^(-2i/d)`.
/// Only the positions' *difference* survives in `q · k`, so attention sees relative
/// positions. `positions` are per row (`[rows * len]`, real tokens counted from 0).
pub fn rope<B: Backend>(
    positions: &[i64],
    [rows, len]: [usize; 2],
    d_head: usize,
    theta: f64,
    scaling: Option<&RopeScaling>,
    device: &B::Device,
) -> Rotary<B> {
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    rope_tables(positions, d_head, theta, scaling, (&mut cos, &mut sin));
    let tensor =
        |v: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(v, [rows, 1, len, d_head]), device);
    Rotary {
        cos: tensor(cos),
        sin: tensor(sin),
    }
}

/// RoPE's cosines and sines, `[positions.len(), d_head]` each (row-major), into `cos` and
/// `sin` (cleared first): what [`rope`] puts in tensors, and what [`crate::lm::infer`] reads.
pub(crate) fn rope_tables(
    positions: &[i64],
    d_head: usize,
    theta: f64,
    scaling: Option<&RopeScaling>,
    (cos, sin): (&mut Vec<f32>, &mut Vec<f32>),
) {
    let half = d_head / 2;
    // Computed in f32, as Hugging Face does: the angles then match to the last bit that matters.
    let mut inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / d_head as f32))
        .collect();
    if let Some(scaling) = scaling {
        scaling.apply(&mut inv_freq);
    }
    cos.clear();
    sin.clear();
    for &p in positions {
        for _ in 0..2 {
            for f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
    }
}

impl<B: Backend> Rotary<B> {
    /// `x cos + rotate_half(x) sin`, where `rotate_half([a, b]) = [-b, a]` over the halves of
    /// the last dimension of `x: [rows, heads, len, d_head]`.
    // ANCHOR: lm_rope_apply
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let half = x.dims()[3] / 2;
        // The angles are f32; a bf16 or f16 query is rotated in its own type.
        let (cos, sin) = match x.dtype() {
            dtype if dtype == self.cos.dtype() => (self.cos.clone(), self.sin.clone()),
            dtype => (self.cos.clone().cast(dtype), self.sin.clone().cast(dtype)),
        };
        let rotated = Tensor::cat(
            vec![
                x.clone().narrow(3, half, half).neg(),
                x.clone().narrow(3, 0, half),
            ],
            3,
        );
        x * cos + rotated * sin
    }
    // ANCHOR_END: lm_rope_apply
}

/// GPT-2's GELU, the tanh approximation (Hugging Face's `gelu_new`):
///
/// ```text
/// gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
/// ```
///
/// Built from `exp` and arithmetic ([`crate::core::nn::tanh`]), which burn's CPU backend runs in
/// `f32`; its own `gelu` goes through `erf` in `f64` (and differentiates the tanh form).
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let inner = (x.clone() + x.clone() * x.clone() * x.clone() * 0.044715)
        * (2.0 / std::f64::consts::PI).sqrt();
    x * (crate::core::nn::tanh(inner) + 1.0) * 0.5
}

// ANCHOR: lm_rowwise
/// A linear layer and its activation applied to every position of `[rows, len, d_in]` as one
/// `[rows * len, d_in]` matrix product, its weights in `p`'s type. (Given the 3-d tensor,
/// burn's CPU backend runs one small product per row and repacks the weight matrix for each:
/// generation was 2.8x slower, measured.) In f32 on the CPU it is one fused operation
/// ([`kernels::linear`]: the product on every core, the bias and the activation in the same
/// pass, one autodiff node); elsewhere burn's layer, then the activation's definition.
fn rowwise<B: Backend>(
    layer: &Linear<B>,
    x: Tensor<B, 3>,
    p: Precision,
    activation: Activation,
) -> Tensor<B, 3> {
    let [rows, len, d_in] = x.dims();
    let x = x.reshape([rows * len, d_in]);
    let fused = match p {
        Precision::F32 => {
            let bias = layer.bias.as_ref().map(|b| b.val());
            kernels::linear(&x, &layer.weight.val(), bias.as_ref(), activation)
        }
        _ => None,
    };
    let y = fused.unwrap_or_else(|| {
        let y = match p {
            Precision::F32 => layer.forward(x),
            _ => burn::tensor::module::linear(
                x,
                p.lower(layer.weight.val()),
                layer.bias.as_ref().map(|b| p.lower(b.val())),
            ),
        };
        match activation {
            Activation::Identity => y,
            Activation::Tanh => crate::core::nn::tanh(y),
            Activation::GeluTanh => kernels::gelu_tanh(&y).unwrap_or_else(|| gelu_tanh(y)),
        }
    });
    let d_out = y.dims()[1];
    y.reshape([rows, len, d_out])
}
// ANCHOR_END: lm_rowwise
