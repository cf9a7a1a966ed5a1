//! Tokenizers: text to token ids and back.
//!
//! [`Tokenizer`] is the interface every model uses; [`CharTokenizer`] fills it with one token
//! per character for the small arithmetic tasks; [`crate::lm::hf::HfTokenizer`] fills it with
//! a Hugging Face `tokenizer.json` for real checkpoints.

use serde::{Deserialize, Serialize};

/// A text the tokenizer cannot encode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizerError {
    #[error("the character {ch:?} is not in the tokenizer's vocabulary ({vocab})")]
    UnknownChar { ch: char, vocab: String },
    #[error("the tokenizer failed: {0}")]
    Other(String),
}

// ANCHOR: lm_tokenizer_trait
/// Text to token ids and back, with the special tokens generation needs.
pub trait Tokenizer {
    /// The ids of `text` (no special tokens added).
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// The text of `ids`, skipping special tokens.
    fn decode(&self, ids: &[u32]) -> String;
    fn vocab_size(&self) -> usize;
    /// Padding (never attended to).
    fn pad_id(&self) -> u32;
    /// Begin-of-sequence, put before every prompt, if the model was trained with one (Qwen2
    /// models are not).
    fn bos_id(&self) -> Option<u32>;
    /// End-of-sequence: generation stops after it.
    fn eos_id(&self) -> u32;
    /// A short description that identifies the vocabulary, saved with a checkpoint so that a
    /// model is never paired with a tokenizer it was not trained with.
    fn fingerprint(&self) -> String;
    /// The chat template prompts are written with, when a run asked for one (only a Hugging
    /// Face checkpoint has one; see [`crate::lm::chat`]).
    fn chat(&self) -> Option<&crate::lm::chat::ChatPrompt> {
        None
    }
}
// ANCHOR_END: lm_tokenizer_trait

/// One token per character of a fixed character set, after three special tokens:
/// `0` = pad, `1` = bos, `2` = eos.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CharTokenizer {
    chars: Vec<char>,
}

const SPECIAL: u32 = 3;

impl CharTokenizer {
    /// A tokenizer for the characters of `charset` (duplicates are dropped).
    pub fn new(charset: &str) -> Self {
        let mut chars: Vec<char> = Vec::new();
        for c in charset.chars() {
            if !chars.contains(&c) {
                chars.push(c);
            }
        }
        Self { chars }
    }
    /// The characters, in id order.
    pub fn charset(&self) -> String {
        self.chars.iter().collect()
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        text.chars()
            .map(|ch| {
                self.chars
                    .iter()
                    .position(|&c| c == ch)
                    .map(|i| i as u32 + SPECIAL)
                    .ok_or_else(|| TokenizerError::UnknownChar {
                        ch,
                        vocab: self.charset(),
                    })
            })
            .collect()
    }
    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter(|&&id| id >= SPECIAL)
            .filter_map(|&id| self.chars.get((id - SPECIAL) as usize))
            .collect()
    }
    fn vocab_size(&self) -> usize {
        self.chars.len() + SPECIAL as usize
    }
    fn pad_id(&self) -> u32 {
        0
    }
    fn bos_id(&self) -> Option<u32> {
        Some(1)
    }
    fn eos_id(&self) -> u32 {
        2
    }
    fn fingerprint(&self) -> String {
        format!("char:{}", self.charset())
    }
}

/// The token ids of one prompt, BOS in front (if the tokenizer has one): how every prompt
/// enters the model. With a chat template ([`Tokenizer::chat`]), the prompt is the user's
/// message of a conversation rendered by the template, tokenized without adding special
/// tokens (the template writes its own), as TRL does.
pub fn encode_prompt(tokenizer: &impl Tokenizer, prompt: &str) -> Result<Vec<u32>, TokenizerError> {
    if let Some(chat) = tokenizer.chat() {
        let text = chat
            .render(prompt)
            .map_err(|e| TokenizerError::Other(format!("{e:#}")))?;
        return tokenizer.encode(&text);
    }
    let mut ids: Vec<u32> = tokenizer.bos_id().into_iter().collect();
    ids.extend(tokenizer.encode(prompt)?);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_characters() {
        let t = CharTokenizer::new("0123456789+=");
        let ids = t.encode("12+30=").unwrap();
        assert_eq!(ids, vec![4, 5, 13, 6, 3, 14]);
        assert_eq!(t.decode(&ids), "12+30=");
        // Special tokens vanish in decoding.
        assert_eq!(t.decode(&[1, 4, t.eos_id(), t.pad_id()]), "1");
        assert_eq!(t.vocab_size(), 15);
        assert_eq!(
            t.encode("1x").unwrap_err().to_string(),
            "the character 'x' is not in the tokenizer's vocabulary (0123456789+=)"
        );
    }
}
