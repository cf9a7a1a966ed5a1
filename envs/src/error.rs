//! The one error type of the environments crate.
//!
//! Every misuse a student can make (an action outside the action space, a `step` after the
//! episode ended, a bad configuration) comes back as an [`EnvError`] with a message that says
//! what went wrong and what to do, never as a panic.

use thiserror::Error;

/// What went wrong when using an environment.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EnvError {
    /// The action is not an element of the environment's action space.
    #[error("action {action} is not in the action space {space}")]
    InvalidAction { action: String, space: String },

    /// `step` was called before the first `reset`, or after the episode had ended.
    #[error("step() called {when}; call reset() first")]
    NeedsReset { when: &'static str },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid environment config: {0}")]
    InvalidConfig(String),

    /// `make` was given an id it does not know.
    #[error("unknown environment id '{id}'; known ids are: {known}")]
    UnknownEnv { id: String, known: String },
}

impl EnvError {
    pub(crate) fn invalid_action(
        action: impl std::fmt::Debug,
        space: impl std::fmt::Display,
    ) -> Self {
        EnvError::InvalidAction {
            action: format!("{action:?}"),
            space: space.to_string(),
        }
    }
    pub(crate) fn config(msg: impl Into<String>) -> Self {
        EnvError::InvalidConfig(msg.into())
    }
    pub(crate) const BEFORE_RESET: Self = EnvError::NeedsReset {
        when: "before the first reset()",
    };
    pub(crate) const AFTER_DONE: Self = EnvError::NeedsReset {
        when: "after the episode ended (terminated or truncated)",
    };
}

/// `Result` with [`EnvError`].
pub type Result<T, E = EnvError> = std::result::Result<T, E>;
