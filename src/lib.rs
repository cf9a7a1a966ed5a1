//! # policy-lab
//!
//! Learn, then use, policy optimization in Rust: REINFORCE, TRPO, PPO and GRPO on one shared
//! core, from bandits and mazes to language models.
//!
//! * [`envs`]: the gym-style environments (the `policy-lab-envs` crate, re-exported);
//! * [`agents`]: simple agents that play them (random, and a hand-made or planned heuristic
//!   for each environment), used by `policy-lab play` and as baselines;
//! * [`backend`]: the burn backends (`cpu`, and with cargo features `wgpu` and `cuda`) and
//!   the `--device` choice;
//! * [`learner`] and [`run`]: what every algorithm is to the run layer, and the run layer
//!   itself (the run folder, checkpoints, resume, Ctrl-C, progress), shared by the toy and
//!   language-model runs.

/// burn and rand, re-exported for notebooks (an evcxr cell can only name crates it `:dep`s):
/// `use policy_lab::burn::module::AutodiffModule;`.
pub use burn;
pub use policy_lab_envs as envs;
pub use rand;

pub mod agents;
pub mod algos;
pub mod backend;
pub mod core;
pub mod kernels;
pub mod lm;
pub mod run;

/// The metrics of one iteration, by name (`approx_kl`, `clipfrac`, `episodic_return`, ...).
pub type Metrics = std::collections::BTreeMap<&'static str, f64>;

/// The value of a one-element tensor, as `f64` (for metrics).
pub fn scalar<B: burn::tensor::backend::Backend>(t: &burn::tensor::Tensor<B, 1>) -> f64 {
    use burn::tensor::ElementConversion;
    t.clone().into_scalar().elem::<f64>()
}

/// A configuration value that is out of range, with a message that says which and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid config: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// `Ok` if `ok`, else the error "`table`: `msg`" (`ppo: clip_coef must be > 0`): what
    /// every settings' `validate` checks with.
    pub fn unless(ok: bool, table: &str, msg: &str) -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(ConfigError(format!("{table}: {msg}")))
        }
    }

    /// The network every toy rung learns: `hidden` lists positive layer sizes.
    pub fn check_hidden(table: &str, hidden: &[usize]) -> Result<(), ConfigError> {
        let ok = !hidden.is_empty() && hidden.iter().all(|h| *h > 0);
        Self::unless(ok, table, "hidden must list positive layer sizes")
    }

    /// The checks that every rung collecting `num_steps` steps of `num_envs` environment copies
    /// shares: at least one of each, and [`ConfigError::check_hidden`].
    pub fn check_rollout(
        table: &str,
        num_envs: usize,
        num_steps: usize,
        hidden: &[usize],
    ) -> Result<(), ConfigError> {
        let ok = num_envs >= 1 && num_steps >= 1;
        Self::unless(ok, table, "num_envs and num_steps must be at least 1")?;
        Self::check_hidden(table, hidden)
    }
}
