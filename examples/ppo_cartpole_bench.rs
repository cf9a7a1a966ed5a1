//! PPO on CartPole-v1 with CleanRL's hyperparameters, timed: the policy-lab side of
//! `scripts/bench_ppo_vs_sb3.sh`.
//!
//! cargo run --release --example ppo_cartpole_bench -- [total_steps] [seed]
//!
//! Prints `steps_per_second`, and the wall time and steps at which the mean return of the
//! last 20 training episodes first reached 475 (`reached_475_s`, `reached_475_steps`).

use std::time::Instant;

use policy_lab::algos::ppo::{Ppo, PpoConfig};
use policy_lab::backend::Cpu;
use policy_lab::rollout::make_vec_env;

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500_000);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let config = PpoConfig::default();
    let venv = make_vec_env("CartPole-v1", config.num_envs).expect("CartPole-v1 exists");
    let mut ppo =
        Ppo::<Cpu>::new(config, venv, seed, total, Default::default()).expect("valid config");
    let start = Instant::now();
    let mut reached: Option<(f64, usize)> = None;
    while ppo.global_step() < total {
        ppo.iterate().expect("valid actions");
        let r = &ppo.collector.recent_returns;
        if reached.is_none()
            && r.len() >= 20
            && r.iter().rev().take(20).sum::<f64>() / 20.0 >= 475.0
        {
            reached = Some((start.elapsed().as_secs_f64(), ppo.global_step()));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("steps_per_second {:.0}", ppo.global_step() as f64 / secs);
    println!("total_s {secs:.2}");
    match reached {
        Some((s, steps)) => println!("reached_475_s {s:.2}\nreached_475_steps {steps}"),
        None => println!("reached_475_s never\nreached_475_steps never"),
    }
}
