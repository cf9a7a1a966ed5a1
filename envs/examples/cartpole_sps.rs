//! Steps per second of CartPole-v1 with random actions, measured exactly as
//! `scripts/gymnasium_cartpole_sps.py` measures Gymnasium: `steps` steps of
//! `action_space().sample()`, resetting when an episode ends, timed as a whole.
//!
//! cargo run --release -p policy-lab-envs --example cartpole_sps -- [steps]
//!
//! Prints one line: `steps_per_second <number>`.

use std::time::Instant;

use policy_lab_envs::{cartpole_v1, seeded_rng, Env, Space};

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000);
    let mut env = cartpole_v1();
    let mut rng = seeded_rng(Some(0));
    env.reset(Some(0));
    let mut episodes = 0usize;
    let start = Instant::now();
    for _ in 0..steps {
        let action = env.action_space().sample(&mut rng);
        let step = env.step(action).expect("a sampled action is valid");
        if step.terminated || step.truncated {
            env.reset(None);
            episodes += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("{steps} steps, {episodes} episodes, {secs:.3} s");
    println!("steps_per_second {:.0}", steps as f64 / secs);
}
