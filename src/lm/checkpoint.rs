//! A language-model checkpoint: one folder with everything needed to use the model again.
//!
//! ```text
//! model.mpk        the weights (full precision)
//! model.json       the shape (TransformerConfig)
//! tokenizer.json   the tokenizer (characters, or a Hugging Face tokenizer whole), with its fingerprint
//! ```
//!
//! [`load_policy`] also reads a Hugging Face checkpoint folder ([`super::hf`]), so every
//! command that starts from a model (`lm grpo --init`, `lm ppo --init`, `lm eval`) takes
//! either.
//!
//! The folder is written as `NAME.tmp/` and then renamed, so a crash never leaves half a
//! checkpoint. Loading checks the tokenizer: a model is never paired with a vocabulary it
//! was not trained with.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::chat::ChatPrompt;
use super::hf::{load_hf, HfModel, HfTokenizer};
use super::model::{Transformer, TransformerConfig};
use super::tokenizer::{CharTokenizer, Tokenizer, TokenizerError};

/// Either tokenizer: what a checkpoint carries and a run uses.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LmTokenizer {
    /// The small tasks' characters.
    Char(CharTokenizer),
    /// A Hugging Face checkpoint's `tokenizer.json`.
    Hf(Box<HfTokenizer>),
}

impl LmTokenizer {
    /// The tokenizer inside.
    fn inner(&self) -> &dyn Tokenizer {
        match self {
            Self::Char(t) => t,
            Self::Hf(t) => t.as_ref(),
        }
    }
}

impl Tokenizer for LmTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner().encode(text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        self.inner().decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.inner().vocab_size()
    }
    fn pad_id(&self) -> u32 {
        self.inner().pad_id()
    }
    fn bos_id(&self) -> Option<u32> {
        self.inner().bos_id()
    }
    fn eos_id(&self) -> u32 {
        self.inner().eos_id()
    }
    fn fingerprint(&self) -> String {
        self.inner().fingerprint()
    }
    fn chat(&self) -> Option<&ChatPrompt> {
        self.inner().chat()
    }
}

/// `tokenizer.json`: the tokenizer and the fingerprint it had when the model was saved.
#[derive(Serialize, Deserialize)]
struct SavedTokenizer {
    fingerprint: String,
    tokenizer: LmTokenizer,
}

/// What the weights' shapes alone cannot tell (the same widths split into other heads), as
/// the model was trained: `shape.json`, written beside `model.json`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SavedShape {
    n_heads: usize,
    n_kv_heads: Option<usize>,
    architecture: String,
    rope_theta: f64,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default)]
    qk_norm: bool,
    #[serde(default)]
    rope_scaling: Option<super::model::RopeScaling>,
}

impl SavedShape {
    fn of(config: &TransformerConfig) -> Self {
        Self {
            n_heads: config.n_heads,
            n_kv_heads: config.n_kv_heads,
            architecture: format!("{:?}", config.architecture),
            rope_theta: config.rope_theta,
            head_dim: config.head_dim,
            qk_norm: config.qk_norm,
            rope_scaling: config.rope_scaling.clone(),
        }
    }
}

/// A model loaded from a checkpoint, with its shape and its tokenizer.
pub struct LoadedLm<B: Backend> {
    pub model: Transformer<B>,
    pub config: TransformerConfig,
    pub tokenizer: LmTokenizer,
}

/// Saves `model` (shaped by `config`) and `tokenizer` into the folder `dir`, replacing what
/// was there only once the new checkpoint is whole.
pub fn save_lm<B: Backend>(
    dir: &Path,
    model: &Transformer<B>,
    config: &TransformerConfig,
    tokenizer: &LmTokenizer,
) -> Result<()> {
    let tmp = sibling(dir, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    crate::core::checkpoint::save_module(model, &tmp.join("model"))?;
    std::fs::write(
        tmp.join("model.json"),
        serde_json::to_string_pretty(config)?,
    )?;
    std::fs::write(
        tmp.join("shape.json"),
        serde_json::to_string_pretty(&SavedShape::of(config))?,
    )?;
    let saved = SavedTokenizer {
        fingerprint: tokenizer.fingerprint(),
        tokenizer: tokenizer.clone(),
    };
    std::fs::write(
        tmp.join("tokenizer.json"),
        serde_json::to_string_pretty(&saved)?,
    )?;
    crate::core::files::swap_in(&tmp, dir)?;
    Ok(())
}

/// Loads the model in `dir`: a policy-lab checkpoint ([`load_lm`]), a Hugging Face
/// checkpoint folder (one with `config.json`, [`load_hf`]) or a GGUF file
/// ([`super::gguf_model::load_gguf`]).
pub fn load_policy<B: Backend>(
    dir: &Path,
    expected: Option<&CharTokenizer>,
    device: &B::Device,
) -> Result<LoadedLm<B>> {
    let pretrained = super::gguf::Gguf::is_gguf(dir)
        || (dir.join("config.json").exists() && !dir.join("model.json").exists());
    if pretrained {
        let hf = load_pretrained::<B>(dir, device)?;
        return Ok(LoadedLm {
            model: hf.model,
            config: hf.config,
            tokenizer: LmTokenizer::Hf(Box::new(hf.tokenizer)),
        });
    }
    load_lm(dir, expected, device)
}

/// Loads the checkpoint in `dir`. With `expected`, refuses a checkpoint with a character
/// tokenizer that is not that one (a task whose text the model was not trained on); a
/// Hugging Face tokenizer encodes any text.
pub fn load_lm<B: Backend>(
    dir: &Path,
    expected: Option<&CharTokenizer>,
    device: &B::Device,
) -> Result<LoadedLm<B>> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a language-model checkpoint (no {name})",
                dir.display()
            )
        })
    };
    let config: TransformerConfig = serde_json::from_str(&read("model.json")?).map_err(|e| {
        anyhow::anyhow!(
            "{}/model.json is not a model description: {e}",
            dir.display()
        )
    })?;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}/model.json: {}", dir.display(), e.0))?;
    let saved: SavedTokenizer = serde_json::from_str(&read("tokenizer.json")?)
        .with_context(|| format!("reading {}/tokenizer.json", dir.display()))?;
    if saved.tokenizer.fingerprint() != saved.fingerprint {
        bail!(
            "{}/tokenizer.json is inconsistent: its fingerprint says {:?}, its vocabulary is {:?}",
            dir.display(),
            saved.fingerprint,
            saved.tokenizer.fingerprint()
        );
    }
    let characters = matches!(saved.tokenizer, LmTokenizer::Char(_));
    if let (Some(expected), true) = (expected, characters) {
        if expected.fingerprint() != saved.fingerprint {
            bail!(
                "the tokenizer does not match the checkpoint {}: it was trained with {:?}, this \
                 task needs {:?}",
                dir.display(),
                saved.fingerprint,
                expected.fingerprint()
            );
        }
    }
    // A Hugging Face model's embedding may have spare rows beyond its tokenizer's ids.
    let fits = match characters {
        true => config.vocab_size == saved.tokenizer.vocab_size(),
        false => config.vocab_size >= saved.tokenizer.vocab_size(),
    };
    if !fits {
        bail!(
            "the checkpoint {} has a vocabulary of {} tokens but its tokenizer has {}",
            dir.display(),
            config.vocab_size,
            saved.tokenizer.vocab_size()
        );
    }
    let model =
        crate::core::checkpoint::load_module(config.init::<B>(device), &dir.join("model"), device)?;
    let saved_heads: Option<SavedShape> = std::fs::read_to_string(dir.join("shape.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if let Some(saved) = saved_heads {
        if saved != SavedShape::of(&config) {
            bail!(
                "{}/model.json was edited after the weights were saved: the weights were \
                 trained with {saved:?}, model.json now says {:?}",
                dir.display(),
                SavedShape::of(&config)
            );
        }
    }
    Ok(LoadedLm {
        model,
        config,
        tokenizer: saved.tokenizer,
    })
}

/// `dir` with `.suffix` added to its name.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// A pretrained model from outside the project: a GGUF file
/// ([`super::gguf_model::load_gguf`]) or a Hugging Face folder ([`load_hf`]).
pub fn load_pretrained<B: Backend>(path: &Path, device: &B::Device) -> Result<HfModel<B>> {
    if super::gguf::Gguf::is_gguf(path) {
        super::gguf_model::load_gguf::<B>(path, device)
    } else {
        load_hf::<B>(path, device)
    }
}

/// The logits `[len, vocab]` of each of `rows` (one forward pass per row, no padding) under
/// the pretrained model at `dir` ([`load_pretrained`]), on `device`: what the GPU check
/// compares across devices (`scripts/gpu_check.sh`).
pub fn checkpoint_logits(
    dir: &Path,
    device: crate::backend::Device,
    rows: &[Vec<u32>],
) -> Result<Vec<Vec<f32>>> {
    crate::backend::on_backend!(device, B => {
        let hf = load_pretrained::<B>(dir, &Default::default())?;
        rows.iter()
            .map(|row| {
                let batch = super::model::Batch::left_padded(std::slice::from_ref(row), 0);
                let logits = hf.model.forward(&batch)?;
                logits
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            })
            .collect::<Result<Vec<_>>>()
    })?
}
