//! The algorithms of the ladder, one file each, each reading
//! config → collect → advantages → update → metrics.

pub mod grpo;
pub mod grpo_lm;
pub mod ppo;
pub mod ppo_lm;
pub mod reinforce;
pub mod trpo;
