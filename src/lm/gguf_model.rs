//! A Llama-architecture model from a GGUF file (SmolLM2, Llama, and the many fine-tunes kept
//! as GGUF): its shape from the metadata, its weights under Hugging Face's names, its
//! tokenizer and chat template from the metadata. The result is the same [`HfModel`] that a
//! Hugging Face folder gives ([`super::hf`]), so everything that takes `--init DIR` takes
//! `--init FILE.gguf`.
//!
//! Three things differ from a Hugging Face folder:
//!
//! * **Names.** `blk.3.attn_q.weight` is `model.layers.3.self_attn.q_proj.weight`, and so on
//!   ([`hf_name`]).
//! * **The query and key rows.** llama.cpp's converter reorders each head's rows of the
//!   query and key projections for its own RoPE layout (it rotates neighbouring pairs;
//!   Hugging Face rotates the two halves of a head). Read as they are, the model loads and
//!   its logits are wrong. [`unpermute`] puts the rows back, as transformers' GGUF loader does.
//! * **The tokenizer** is lists in the metadata (`tokenizer.ggml.tokens`, `merges`,
//!   `token_type`) and the name of a pre-tokenizer (`tokenizer.ggml.pre`): [`tokenizer_json`]
//!   writes them as the `tokenizer.json` that Hugging Face would ship, with the
//!   pre-tokenizer's splitting rules spelled out.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use serde_json::json;

use super::chat::ChatTemplate;
use super::gguf::Gguf;
use super::hf::{HfConfig, HfModel, HfTokenizer, Weights};

/// Loads the GGUF file at `path` (see the module docs).
pub fn load_gguf<B: Backend>(path: &Path, device: &B::Device) -> Result<HfModel<B>> {
    let file = Gguf::read(path)?;
    let in_file = || format!("{}", path.display());
    let hf = config(&file).with_context(in_file)?;
    let config = hf.transformer().with_context(in_file)?;
    let tokenizer = tokenizer(&file).with_context(in_file)?;
    let weights = weights(&file, &hf).with_context(in_file)?;
    weights.into_model(config, tokenizer, path, device)
}

/// Where `scripts/get_smollm2.sh` puts SmolLM2-135M-Instruct's GGUF file: under
/// `$POLICY_LAB_CACHE`, else `~/.cache/policy-lab` (whether or not it is there yet).
pub fn smollm2_path() -> std::path::PathBuf {
    let cache = std::env::var_os("POLICY_LAB_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            std::path::PathBuf::from(home).join(".cache/policy-lab")
        });
    cache.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The architectures (`general.architecture`) this reader loads.
pub const ARCHITECTURES: [&str; 1] = ["llama"];

/// The model's shape from the metadata, as the `config.json` Hugging Face would write.
fn config(file: &Gguf) -> Result<HfConfig> {
    let arch = file.str("general.architecture")?;
    if !ARCHITECTURES.contains(&arch) {
        bail!(
            "unsupported architecture {arch:?} (general.architecture): this reader loads {}",
            ARCHITECTURES.join(", ")
        );
    }
    let key = |k: &str| format!("{arch}.{k}");
    let optional = |k: &str| file.metadata.contains_key(&key(k));
    if optional("rope.scaling.type") {
        let t = file.str(&key("rope.scaling.type"))?;
        if t != "none" {
            bail!(
                "unsupported {} {t:?}: only \"none\"",
                key("rope.scaling.type")
            );
        }
    }
    if file.info("rope_freqs.weight").is_some() {
        bail!(
            "the tensor rope_freqs.weight (Llama 3.1's RoPE scaling) is not applied by this reader"
        );
    }
    let heads = file.usize(&key("attention.head_count"))?;
    let width = file.usize(&key("embedding_length"))?;
    let head_dim = match optional("attention.key_length") {
        true => Some(file.usize(&key("attention.key_length"))?),
        false => None,
    };
    let vocab = match optional("vocab_size") {
        true => file.usize(&key("vocab_size"))?,
        false => file.array("tokenizer.ggml.tokens")?.len(),
    };
    let id = |k: &str| -> Result<Option<u32>> {
        match file.metadata.contains_key(k) {
            true => Ok(Some(file.usize(k)? as u32)),
            false => Ok(None),
        }
    };
    Ok(HfConfig {
        model_type: "llama".into(),
        vocab_size: vocab,
        hidden_size: width,
        intermediate_size: file.usize(&key("feed_forward_length"))?,
        num_hidden_layers: file.usize(&key("block_count"))?,
        num_attention_heads: heads,
        num_key_value_heads: match optional("attention.head_count_kv") {
            true => Some(file.usize(&key("attention.head_count_kv"))?),
            false => None,
        },
        head_dim: head_dim.filter(|d| d * heads != width),
        max_position_embeddings: file.usize(&key("context_length"))?,
        rms_norm_eps: file.f64(&key("attention.layer_norm_rms_epsilon"))?,
        hidden_act: "silu".into(),
        rope_theta: match optional("rope.freq_base") {
            true => Some(file.f64(&key("rope.freq_base"))?),
            false => None,
        },
        rope_scaling: None,
        rope_parameters: None,
        tie_word_embeddings: Some(file.info("output.weight").is_none()),
        attention_bias: Some(file.info("blk.0.attn_q.bias").is_some()),
        mlp_bias: None,
        use_sliding_window: None,
        layer_types: None,
        partial_rotary_factor: None,
        eos_token_id: id("tokenizer.ggml.eos_token_id")?.map(|e| json!(e)),
        pad_token_id: id("tokenizer.ggml.padding_token_id")?,
    })
}

/// The Hugging Face name of the GGUF tensor `name` of a Llama model, or `None` if a Llama
/// model has no such tensor.
pub fn hf_name(name: &str) -> Option<String> {
    let top = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(top) = top {
        return Some(top.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, kind) = part.rsplit_once('.')?;
    let hf = match part {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's reordering of a query or key projection's rows (`[heads * d, cols]`,
/// or a bias with `cols` 1). Its converter viewed each head's `d` rows as `[2, d / 2]` (the
/// two halves that Hugging Face's RoPE rotates together) and wrote them as `[d / 2, 2]`:
/// row `2 i + h` of a head in the file is row `h d / 2 + i` of Hugging Face's.
// ANCHOR: gpus_gguf_unpermute
pub fn unpermute(w: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let d = w.len() / cols / heads;
    let half = d / 2;
    let mut out = vec![0.0; w.len()];
    for head in 0..heads {
        for i in 0..half {
            for h in 0..2 {
                let (from, to) = (head * d + 2 * i + h, head * d + h * half + i);
                out[to * cols..(to + 1) * cols].copy_from_slice(&w[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}
// ANCHOR_END: gpus_gguf_unpermute

/// Every tensor of the file as `f32`, under its Hugging Face name and shape, the query and
/// key rows put back in Hugging Face's order.
fn weights(file: &Gguf, hf: &HfConfig) -> Result<Weights> {
    let heads = hf.num_attention_heads;
    let kv_heads = hf.num_key_value_heads.unwrap_or(heads);
    let mut out = HashMap::new();
    for info in &file.tensors {
        let name = hf_name(&info.name).with_context(|| {
            format!(
                "the tensor {} is not one this reader knows in a Llama model",
                info.name
            )
        })?;
        let (shape, mut values) = file.tensor(&info.name)?;
        let cols = if shape.len() == 2 { shape[1] } else { 1 };
        if name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias") {
            values = unpermute(&values, heads, cols);
        } else if name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias") {
            values = unpermute(&values, kv_heads, cols);
        }
        out.insert(name, (shape, values));
    }
    Ok(Weights { tensors: out })
}

/// The pre-tokenizers (`tokenizer.ggml.pre`) this reader knows, as Hugging Face's
/// `tokenizer.json` writes them: the text is first split by these rules, then each piece is
/// encoded with the merges. The regular expressions are llama.cpp's for each name.
fn pre_tokenizer(name: &str) -> Result<serde_json::Value> {
    // GPT-2's split: contractions, letters, numbers, other symbols, spaces.
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |regex: &str| json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false});
    let sequence =
        |parts: Vec<serde_json::Value>| json!({"type": "Sequence", "pretokenizers": parts});
    Ok(match name {
        // SmolLM: every digit alone, then GPT-2's split.
        "smollm" => sequence(vec![
            json!({"type": "Digits", "individual_digits": true}),
            byte_level(true),
        ]),
        // GPT-2's split as it is.
        "gpt-2" | "gpt2" => byte_level(true),
        // Llama 3: numbers in runs of up to three digits, case-insensitive contractions.
        "llama-bpe" | "llama3" => sequence(vec![
            split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            byte_level(false),
        ]),
        // Qwen2: as Llama 3, but every digit alone.
        "qwen2" => sequence(vec![
            split(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            byte_level(false),
        ]),
        other => bail!(
            "unsupported tokenizer.ggml.pre {other:?}: this reader knows smollm, gpt-2, llama-bpe and qwen2"
        ),
    })
}

/// The tokenizer in the metadata, as Hugging Face's `tokenizer.json` would hold it: a
/// byte-level BPE over `tokenizer.ggml.tokens` and `merges`, the pre-tokenizer that
/// `tokenizer.ggml.pre` names, and the control and user-defined tokens (`token_type` 3 and 4)
/// as special tokens, matched whole in a text and left out when decoding.
pub fn tokenizer_json(file: &Gguf) -> Result<serde_json::Value> {
    let model = file.str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        bail!("unsupported tokenizer.ggml.model {model:?}: this reader builds \"gpt2\" (byte-level BPE) tokenizers");
    }
    let tokens = file.strings("tokenizer.ggml.tokens")?;
    let merges: Vec<[&str; 2]> = file
        .strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            let (a, b) = m
                .split_once(' ')
                .with_context(|| format!("the merge {m:?} is not two tokens"))?;
            Ok([a, b])
        })
        .collect::<Result<_>>()?;
    let types = match file.metadata.contains_key("tokenizer.ggml.token_type") {
        true => file.ints("tokenizer.ggml.token_type")?,
        false => vec![1; tokens.len()],
    };
    if types.len() != tokens.len() {
        bail!(
            "tokenizer.ggml.token_type has {} entries for {} tokens",
            types.len(),
            tokens.len()
        );
    }
    let pre = match file.metadata.contains_key("tokenizer.ggml.pre") {
        true => file.str("tokenizer.ggml.pre")?,
        false => "gpt-2",
    };
    let vocab: serde_json::Map<String, serde_json::Value> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.to_string(), json!(id)))
        .collect();
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, t))| **t == 3 || **t == 4)
        .map(|(id, (content, _))| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre)?,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges
        }
    }))
}

/// The tokenizer, its special ids and its chat template (`tokenizer.chat_template`).
fn tokenizer(file: &Gguf) -> Result<HfTokenizer> {
    let json = tokenizer_json(file)?;
    let inner: tokenizers::Tokenizer = serde_json::from_value(json)
        .map_err(|e| anyhow::anyhow!("the tokenizer in the metadata: {e}"))?;
    let tokens = file.strings("tokenizer.ggml.tokens")?;
    let id = |key: &str| -> Result<Option<u32>> {
        if !file.metadata.contains_key(key) {
            return Ok(None);
        }
        let id = file.usize(key)?;
        if id >= tokens.len() {
            bail!(
                "{key} is {id}, but the vocabulary has {} tokens",
                tokens.len()
            );
        }
        Ok(Some(id as u32))
    };
    let eos = id("tokenizer.ggml.eos_token_id")?
        .context("the GGUF metadata has no tokenizer.ggml.eos_token_id")?;
    let pad = id("tokenizer.ggml.padding_token_id")?.unwrap_or(eos);
    let add_bos = matches!(
        file.metadata.get("tokenizer.ggml.add_bos_token"),
        Some(super::gguf::Value::Bool(true))
    );
    let bos_id = id("tokenizer.ggml.bos_token_id")?;
    let bos = bos_id.filter(|_| add_bos);
    let chat_template = match file.metadata.contains_key("tokenizer.chat_template") {
        false => None,
        true => {
            let mut special = BTreeMap::new();
            for (key, id) in [
                ("bos_token", bos_id),
                ("eos_token", Some(eos)),
                ("pad_token", Some(pad)),
            ] {
                if let Some(id) = id {
                    special.insert(key.to_string(), tokens[id as usize].to_string());
                }
            }
            let source = file.str("tokenizer.chat_template")?.to_string();
            Some(ChatTemplate::new(source, special).context("tokenizer.chat_template")?)
        }
    };
    Ok(HfTokenizer::new(inner, bos, eos, pad, chat_template))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_hugging_faces() {
        assert_eq!(
            hf_name("blk.12.attn_k.weight").unwrap(),
            "model.layers.12.self_attn.k_proj.weight"
        );
        assert_eq!(
            hf_name("blk.0.ffn_down.weight").unwrap(),
            "model.layers.0.mlp.down_proj.weight"
        );
        assert_eq!(hf_name("output_norm.weight").unwrap(), "model.norm.weight");
        assert_eq!(hf_name("blk.0.attn_qkv.weight"), None);
        assert_eq!(hf_name("rope_freqs.weight"), None);
    }

    /// llama.cpp's `permute` (convert_hf_to_gguf.py) of Hugging Face's rows, then
    /// [`unpermute`], gives them back.
    #[test]
    fn unpermute_undoes_llama_cpps_permute() {
        let (heads, d, cols) = (3, 8, 2);
        let hf: Vec<f32> = (0..heads * d * cols).map(|v| v as f32).collect();
        // permute: view [heads, 2, d/2, cols], swap axes 1 and 2.
        let mut gguf = vec![0.0; hf.len()];
        for head in 0..heads {
            for h in 0..2 {
                for i in 0..d / 2 {
                    for c in 0..cols {
                        let from = ((head * d) + h * (d / 2) + i) * cols + c;
                        let to = ((head * d) + i * 2 + h) * cols + c;
                        gguf[to] = hf[from];
                    }
                }
            }
        }
        assert_ne!(gguf, hf);
        assert_eq!(unpermute(&gguf, heads, cols), hf);
    }

    #[test]
    fn an_unknown_pre_tokenizer_is_refused_by_name() {
        let e = pre_tokenizer("deepseek-coder").unwrap_err().to_string();
        assert!(e.contains("\"deepseek-coder\""), "{e}");
    }
}
