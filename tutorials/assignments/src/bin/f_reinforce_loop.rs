//! Grades assignment (f), the REINFORCE loop: `cargo run -p policy-lab-assignments --bin f_reinforce_loop`.
//!
//! The student writes policy-lab's own `algos::reinforce::Reinforce::{iterate, policy_step}`
//! (the handout has a `todo!()` in each): the loop of one iteration (collect, advantages,
//! update) and the policy-gradient step inside the update (the loss of eq. RF-2 with its
//! entropy bonus, and one optimizer step). The checks take one step by hand, one iteration,
//! then train on a bandit and on the ladder's maze, bounded by steps.

use burn::tensor::{Int, Tensor, TensorData};
use policy_lab::algos::reinforce::{Reinforce, ReinforceConfig};
use policy_lab::backend::Cpu;
use policy_lab::core::nn::categorical;
use policy_lab::core::rollout::make_vec_env;
use policy_lab::run::train::{Algo, RunConfig};
use policy_lab_assignments::cases::reinforce::{ReinforceCases, FILE};
use policy_lab_assignments::grade::{
    self, close, grade_with_cases, ladder_run, read_cases, CaseCheck, Check, LADDER_TARGET,
};

/// The bandit: 10 Bernoulli arms, the best paying 0.864 on average and the next 0.772.
const BANDIT: &str = "BernoulliBandit-v0";

fn learner(config: ReinforceConfig) -> Result<Reinforce<Cpu>, String> {
    let venv = make_vec_env(BANDIT, config.num_envs).map_err(|e| e.to_string())?;
    Reinforce::new(config, venv, 3, Default::default()).map_err(|e| e.to_string())
}

/// The policy's log-probabilities of every arm in the first state of `obs`.
fn arm_log_probs(l: &Reinforce<Cpu>, obs: &Tensor<Cpu, 2>) -> Vec<f32> {
    let log_probs = categorical::log_probs(l.model.actor.forward(obs.clone().narrow(0, 0, 1)));
    log_probs.into_data().to_vec().expect("f32")
}

fn one_step_by_hand() -> Result<(), String> {
    let config = ReinforceConfig {
        learning_rate: 1e-2,
        ent_coef: 0.0,
        ..ReinforceConfig::default()
    };
    let mut l = learner(config)?;
    let device = Default::default();
    let dim = l.collector.obs_dim();
    // Two samples of the same state (any state: the check is about the step, not the bandit).
    let obs = Tensor::<Cpu, 2>::zeros([2, dim], &device) + 1.0;
    let actions = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![2i64, 5], [2]), &device);
    let before = arm_log_probs(&l, &obs);
    let (loss, entropy) = l.policy_step(obs.clone(), actions, vec![1.0, -1.0]);
    let after = arm_log_probs(&l, &obs);
    // The loss before the step: -mean(log pi(a) * A) = -(logp[2] - logp[5]) / 2.
    let want_loss = -(before[2] - before[5]) / 2.0;
    let want_entropy: f32 = -before.iter().map(|lp| lp.exp() * lp).sum::<f32>();
    close(
        "the policy loss returned",
        &[loss as f32],
        &[want_loss],
        1e-5,
    )?;
    close(
        "the entropy returned",
        &[entropy as f32],
        &[want_entropy],
        1e-5,
    )?;
    if !(after[2] > before[2] && after[5] < before[5]) {
        return Err(format!(
            "after one step, log pi(arm 2) went {:.5} -> {:.5} (advantage +1: it must rise) and log pi(arm 5) {:.5} -> {:.5} (advantage -1: it must fall)",
            before[2], after[2], before[5], after[5]
        ));
    }
    Ok(())
}

fn entropy_bonus() -> Result<(), String> {
    // First, without the bonus, push the policy toward arm 0; then, with no advantage at all,
    // the entropy bonus alone must make it more uniform again.
    let config = ReinforceConfig {
        learning_rate: 1e-2,
        ent_coef: 0.0,
        ..ReinforceConfig::default()
    };
    let mut l = learner(config)?;
    let obs = Tensor::<Cpu, 2>::zeros([2, l.collector.obs_dim()], &Default::default()) + 1.0;
    let actions =
        Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![0i64, 0], [2]), &Default::default());
    for _ in 0..3 {
        l.policy_step(obs.clone(), actions.clone(), vec![1.0, 1.0]);
    }
    l.config.ent_coef = 1.0;
    let (_, h0) = l.policy_step(obs.clone(), actions.clone(), vec![0.0, 0.0]);
    let mut h1 = h0;
    for _ in 0..20 {
        (_, h1) = l.policy_step(obs.clone(), actions.clone(), vec![0.0, 0.0]);
    }
    if h1 > h0 + 1e-3 {
        Ok(())
    } else {
        Err(format!(
            "20 steps with ent_coef 1 and zero advantages took the entropy from {h0:.6} to {h1:.6}: the bonus must raise it"
        ))
    }
}

fn one_iteration() -> Result<(), String> {
    let config = ReinforceConfig {
        num_envs: 4,
        num_steps: 16,
        ..ReinforceConfig::default()
    };
    let mut l = learner(config)?;
    let obs = Tensor::<Cpu, 2>::zeros([1, l.collector.obs_dim()], &Default::default()) + 1.0;
    let before = arm_log_probs(&l, &obs);
    let m = l.iterate().map_err(|e| e.to_string())?;
    if l.global_step() != 64 {
        return Err(format!(
            "one iteration of 4 copies x 16 steps took {} environment steps; it should take 64",
            l.global_step()
        ));
    }
    for key in ["policy_loss", "entropy", "value_loss"] {
        if !m.contains_key(key) {
            return Err(format!(
                "the iteration's metrics lack {key:?}: was the update made?"
            ));
        }
    }
    if arm_log_probs(&l, &obs) == before {
        return Err("one iteration left the policy unchanged".into());
    }
    Ok(())
}

fn learns_the_bandit() -> Result<(), String> {
    // 20,000 pulls; 1,000 greedy pulls at the end must average 0.82 (the best arm pays 0.864,
    // the next 0.772: only the best arm reaches 0.82).
    let config = RunConfig {
        algo: Algo::Reinforce,
        env: BANDIT.into(),
        seed: 1,
        total_timesteps: 20_000,
        eval_episodes: 1000,
        ..RunConfig::default()
    };
    grade::learns(config, 0.82)
}

fn step_cases(dir: &std::path::Path) -> Result<(), String> {
    let cases: ReinforceCases = read_cases(dir, FILE)?;
    for (i, c) in cases.steps.iter().enumerate() {
        let at = |e: String| {
            format!(
                "case {i} ({} samples, learning rate {}, ent_coef {}): {e}",
                c.actions.len(),
                c.learning_rate,
                c.ent_coef
            )
        };
        let (loss, entropy, after) = c.step().map_err(at)?;
        close("the policy loss", &[loss], &[c.loss], 1e-5).map_err(at)?;
        close("the entropy", &[entropy], &[c.entropy], 1e-5).map_err(at)?;
        close("log pi(a|s) after the step", &after, &c.logp_after, 1e-4).map_err(at)?;
    }
    Ok(())
}

fn main() {
    grade_with_cases(
        "assignment (f): the REINFORCE loop",
        &[
            Check {
                name: "one policy step by hand: its loss, its entropy, and the right arm rises",
                points: 3,
                test: one_step_by_hand,
            },
            Check {
                name: "the entropy bonus makes the policy more uniform",
                points: 1,
                test: entropy_bonus,
            },
            Check {
                name: "one iteration collects, updates and reports",
                points: 2,
                test: one_iteration,
            },
            Check {
                name: "REINFORCE with your loop finds the best arm of BernoulliBandit-v0 in 20,000 pulls",
                points: 2,
                test: learns_the_bandit,
            },
            Check {
                name: "REINFORCE with your loop (and your returns, (a)) solves Maze-v0 in 40,000 steps",
                points: 2,
                test: || grade::learns(ladder_run(Algo::Reinforce), LADDER_TARGET),
            },
        ],
        &[CaseCheck {
            name: "one policy step of a seeded learner: loss, entropy, log-probabilities after",
            points: 3,
            test: step_cases,
        }],
    )
}
