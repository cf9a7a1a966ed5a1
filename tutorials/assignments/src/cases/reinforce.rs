//! Assignment (f)'s cases: one policy-gradient step (eq. RF-2) of a seeded REINFORCE learner
//! on a batch drawn from a seed: the loss and entropy it reports and the log-probabilities of
//! the batch's actions after the step.

use burn::tensor::{Int, Tensor, TensorData};
use policy_lab::algos::reinforce::{Reinforce, ReinforceConfig};
use policy_lab::backend::Cpu;
use policy_lab::core::nn::categorical;
use policy_lab::core::rollout::make_vec_env;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// The file that holds assignment (f)'s cases in a case folder.
pub const FILE: &str = "f_reinforce_loop.json";

/// The environment whose shapes the learner takes (10 arms, its observation size).
pub const ENV: &str = "BernoulliBandit-v0";

/// A learner made with `learner_seed`, `learning_rate` and `ent_coef`, and one batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepCase {
    pub learner_seed: u64,
    pub learning_rate: f64,
    pub ent_coef: f32,
    /// `[n, obs_dim]`, row-major.
    pub obs: Vec<f32>,
    pub actions: Vec<i64>,
    pub advantages: Vec<f32>,
    /// What `policy_step` returns: the policy loss and the mean entropy, before the step.
    pub loss: f32,
    pub entropy: f32,
    /// `log pi(a_i | s_i)` after the step.
    pub logp_after: Vec<f32>,
}

impl StepCase {
    /// policy-lab's `Reinforce::policy_step` on this case (the student's, in a handout):
    /// `(loss, entropy, log-probabilities after)`.
    pub fn step(&self) -> Result<(f32, f32, Vec<f32>), String> {
        let config = ReinforceConfig {
            learning_rate: self.learning_rate,
            ent_coef: self.ent_coef,
            ..ReinforceConfig::default()
        };
        let venv = make_vec_env(ENV, config.num_envs).map_err(|e| e.to_string())?;
        let mut learner =
            Reinforce::<Cpu>::new(config, venv, self.learner_seed, Default::default())
                .map_err(|e| e.to_string())?;
        let (device, n) = (Default::default(), self.actions.len());
        let obs = Tensor::<Cpu, 2>::from_data(
            TensorData::new(self.obs.clone(), [n, self.obs.len() / n]),
            &device,
        );
        let actions =
            Tensor::<Cpu, 1, Int>::from_data(TensorData::new(self.actions.clone(), [n]), &device);
        let (loss, entropy) =
            learner.policy_step(obs.clone(), actions.clone(), self.advantages.clone());
        let log_probs = categorical::log_probs(learner.model.actor.forward(obs));
        let after = categorical::log_prob_of(log_probs, actions)
            .into_data()
            .to_vec()
            .expect("f32");
        Ok((loss as f32, entropy as f32, after))
    }
}

/// Assignment (f)'s cases for `seed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReinforceCases {
    pub seed: u64,
    pub steps: Vec<StepCase>,
}

/// 6 steps of batches of 2 to 16 samples, random states, advantages and actions; half with
/// an entropy bonus.
pub fn cases(seed: u64) -> ReinforceCases {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf);
    let venv = make_vec_env(ENV, 1).expect("a registered env");
    let obs_dim = policy_lab::core::rollout::Collector::new(venv, 0).obs_dim();
    let steps = (0..6)
        .map(|i| {
            let n = rng.random_range(2..=16usize);
            let mut case = StepCase {
                learner_seed: rng.random_range(0..1000),
                learning_rate: [3e-3, 1e-2][rng.random_range(0..2)],
                ent_coef: if i % 2 == 0 { 0.0 } else { 0.05 },
                obs: (0..n * obs_dim)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect(),
                actions: (0..n).map(|_| rng.random_range(0..10)).collect(),
                advantages: (0..n).map(|_| rng.random_range(-2.0..2.0)).collect(),
                loss: 0.0,
                entropy: 0.0,
                logp_after: vec![],
            };
            (case.loss, case.entropy, case.logp_after) =
                case.step().expect("the library's own step");
            case
        })
        .collect();
    ReinforceCases { seed, steps }
}
