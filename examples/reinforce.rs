//! Tutorial for the book's chapter "The policy gradient and REINFORCE": REINFORCE with a
//! learned baseline on a 10-armed Bernoulli bandit, watching the policy move its probability
//! to the best arm.
//!
//! ```text
//! cargo run --release --example reinforce
//! ```

use burn::module::AutodiffModule;
use policy_lab::algos::reinforce::{Reinforce, ReinforceConfig};
use policy_lab::backend::Cpu;
use policy_lab::core::nn::Mlp;
use policy_lab::core::rollout::{actor_log_probs, make_vec_env};
use policy_lab::envs::{make, EnvKind};

type Inner = <Cpu as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// The probability the policy puts on each arm (the bandit's observation is always `[1.0]`).
fn arm_probs(actor: &Mlp<Inner>) -> Vec<f32> {
    let log_probs = actor_log_probs(actor, &[1.0], 1);
    log_probs.iter().map(|l| l.exp()).collect()
}

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let id = "BernoulliBandit-v0";
    let EnvKind::Bandit(bandit) = make(id)?.0.kind else {
        unreachable!("a bandit")
    };
    println!("the best arm is {}", bandit.best_arm(0));
    let config = ReinforceConfig {
        num_envs: 8,   // 8 bandits side by side
        num_steps: 16, // 16 pulls each per iteration: 128 pulls per update
        learning_rate: 3e-2,
        ..ReinforceConfig::default()
    };
    let mut learner = Reinforce::<Cpu>::new(config, make_vec_env(id, 8)?, 0, Default::default())?;
    for it in 0..40 {
        let metrics = learner.iterate()?;
        if it % 10 == 0 || it == 39 {
            let p = arm_probs(&learner.model.actor.valid());
            let shown: Vec<String> = p.iter().map(|x| format!("{x:.2}")).collect();
            println!(
                "pulls {:>5}  mean reward {:.3}  arm probabilities [{}]",
                learner.global_step(),
                metrics.get("episodic_return").copied().unwrap_or(f64::NAN),
                shown.join(" ")
            );
        }
    }
    // ANCHOR_END: run
    Ok(())
}
