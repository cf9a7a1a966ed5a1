//! A language-model checkpoint: one folder with everything needed to use the model again.
//!
//! ```text
//! model.mpk        the weights (full precision)
//! model.json       the shape (TransformerConfig)
//! tokenizer.json   the tokenizer, with its fingerprint
//! ```
//!
//! The folder is written as `NAME.tmp/` and then renamed, so a crash never leaves half a
//! checkpoint. Loading checks the tokenizer: a model is never paired with a vocabulary it
//! was not trained with.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::model::{Transformer, TransformerConfig};
use super::tokenizer::{CharTokenizer, Tokenizer};

type Exact = NamedMpkFileRecorder<FullPrecisionSettings>;

/// `tokenizer.json`: the tokenizer and the fingerprint it had when the model was saved.
#[derive(Serialize, Deserialize)]
struct SavedTokenizer {
    fingerprint: String,
    tokenizer: CharTokenizer,
}

/// A model loaded from a checkpoint, with its shape and its tokenizer.
pub struct LoadedLm<B: Backend> {
    pub model: Transformer<B>,
    pub config: TransformerConfig,
    pub tokenizer: CharTokenizer,
}

/// Saves `model` (shaped by `config`) and `tokenizer` into the folder `dir`, replacing what
/// was there only once the new checkpoint is whole.
pub fn save_lm<B: Backend>(
    dir: &Path,
    model: &Transformer<B>,
    config: &TransformerConfig,
    tokenizer: &CharTokenizer,
) -> Result<()> {
    let tmp = sibling(dir, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    Exact::new()
        .record(model.clone().into_record(), tmp.join("model"))
        .context("saving the model's weights")?;
    std::fs::write(
        tmp.join("model.json"),
        serde_json::to_string_pretty(config)?,
    )?;
    let saved = SavedTokenizer {
        fingerprint: tokenizer.fingerprint(),
        tokenizer: tokenizer.clone(),
    };
    std::fs::write(
        tmp.join("tokenizer.json"),
        serde_json::to_string_pretty(&saved)?,
    )?;
    let old = sibling(dir, "old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old)?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("moving {} into place", dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Loads the checkpoint in `dir`. With `expected`, refuses a checkpoint whose tokenizer is
/// not that one (a task whose text the model was not trained on).
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
    let config: TransformerConfig =
        serde_json::from_str(&read("model.json")?).with_context(|| {
            format!(
                "reading {}/model.json (a checkpoint saved before policy-lab had the Llama \
                 architecture, 2026-11-23, cannot be read by this version: train it again)",
                dir.display()
            )
        })?;
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
    if let Some(expected) = expected {
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
    if config.vocab_size != saved.tokenizer.vocab_size() {
        bail!(
            "the checkpoint {} has a vocabulary of {} tokens but its tokenizer has {}",
            dir.display(),
            config.vocab_size,
            saved.tokenizer.vocab_size()
        );
    }
    let record = Exact::new()
        .load(dir.join("model.mpk"), device)
        .with_context(|| format!("reading {}/model.mpk", dir.display()))?;
    let model = config.init::<B>(device).load_record(record);
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
