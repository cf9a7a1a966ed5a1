//! The one error type of the language-model code: tokenizing, running the model, a bad
//! setting, or a stop asked for by the caller.

use super::model::ModelError;
use super::tokenizer::TokenizerError;

/// Why a batch could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LmError {
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// The caller's step after an iteration failed (logging, evaluation), and the run stops.
    #[error("{0}")]
    Stopped(String),
    /// A reward function failed (a command that exits with an error, hangs or writes no
    /// number), and the batch cannot be scored.
    #[error("a reward function failed: {0}")]
    Reward(String),
    /// A data-parallel collective operation failed (a peer missing or out of step).
    #[error("data-parallel all-reduce failed: {0}")]
    Collective(String),
}
