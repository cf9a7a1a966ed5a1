//! The algorithms of the ladder, one file each, each reading
//! config → collect → advantages → update → metrics. The toy rungs' settings implement
//! [`crate::core::learner::Rung`], the language-model RL stages' [`RlStage`]: what the run
//! layer needs to make their learners.

pub mod grpo;
pub mod grpo_lm;
pub mod grpo_parallel;
pub mod ppo;
pub mod ppo_lm;
pub mod reinforce;
pub mod trpo;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use crate::core::learner::Learner;
use crate::lm::checkpoint::LmTokenizer;
use crate::lm::model::Transformer;
use crate::lm::reward::RewardFuncs;
use crate::lm::rollout::LmTask;
use crate::ConfigError;

/// What an RL stage starts from: the checkpoint's model, the task's training prompts, the
/// tokenizer (with its chat template when the run uses one), the reward functions, and the
/// devices (more than one, or `nodes`: data-parallel, [`grpo_parallel`]).
pub struct FromInit<B: AutodiffBackend> {
    pub model: Transformer<B>,
    pub env: LmTask,
    pub tokenizer: LmTokenizer,
    /// The longest completion to sample, in tokens.
    pub max_completion_length: usize,
    pub seed: u64,
    pub rewards: RewardFuncs<B::InnerBackend>,
    pub devices: Vec<B::Device>,
    /// This process's place among several machines, for a run over them.
    pub nodes: Option<grpo_parallel::Nodes>,
}

impl<B: AutodiffBackend> FromInit<B> {
    /// A learner on one device, made by `new(config, max_completion_length, model, env,
    /// tokenizer, seed)` (a learner's constructor), and the reward functions to give it.
    pub fn one<C, L>(
        self,
        config: C,
        new: impl FnOnce(C, usize, Transformer<B>, LmTask, LmTokenizer, u64) -> Result<L, ConfigError>,
    ) -> Result<(L, RewardFuncs<B::InnerBackend>)> {
        let Self {
            model,
            env,
            tokenizer,
            max_completion_length: max,
            seed,
            ..
        } = self;
        Ok((new(config, max, model, env, tokenizer, seed)?, self.rewards))
    }
}

/// A learner of a language model, as the run layer drives it.
pub type LmLearner<B> = Box<dyn Learner<Policy = Transformer<B>>>;

/// Reinforcement learning on a language model from a checkpoint (GRPO, PPO), its settings
/// checked by their own `validate`:
/// `run::lm::run_rl` runs every such stage the same way, and one line of the registry in
/// `src/run/lm/mod.rs` makes `policy-lab lm NAME` run it.
pub trait RlStage: crate::lm::stage::Stage {
    /// The learner from `start`.
    fn learner<B: AutodiffBackend>(&self, start: FromInit<B>) -> Result<LmLearner<B>>;
}

/// The [`Learner`] of a language-model RL learner (`GrpoLm`, `PpoLm`: generic over the
/// backend, the text environment and the tokenizer, counting its `completions`), written
/// once: its policy is the model at `policy`, its weights (checked finite) those at `weights`,
/// and its checkpoint what its own `save_state` and `load_state` write and read.
macro_rules! lm_learner {
    ($learner:ident, policy: $($policy:ident).+, weights: $weights:ident) => {
        impl<B, E, T> crate::core::learner::Learner for $learner<B, E, T>
        where
            B: AutodiffBackend,
            E: TextEnv + serde::Serialize + serde::de::DeserializeOwned,
            T: Tokenizer,
        {
            type Policy = Transformer<B>;
            fn iterate(&mut self) -> anyhow::Result<Metrics> {
                Ok($learner::iterate(self)?)
            }
            fn global_step(&self) -> usize {
                self.completions
            }
            fn policy(&self) -> &Transformer<B> {
                &self.$($policy).+
            }
            fn save(&self, dir: &std::path::Path) -> anyhow::Result<()> {
                self.save_state(dir)
            }
            fn load(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
                self.load_state(dir)
            }
            fn is_finite(&self) -> bool {
                crate::core::checkpoint::all_finite(&self.$weights)
            }
        }
    };
}
use lm_learner;
