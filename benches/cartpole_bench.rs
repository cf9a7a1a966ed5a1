//! PPO or TRPO on CartPole-v1 with their default hyperparameters (CleanRL's for PPO,
//! sb3-contrib's for TRPO), timed: the policy-lab side of `scripts/bench_vs_sb3.sh`.
//!
//! cargo bench --bench cartpole_bench -- [ppo|trpo] [total_steps] [seed]
//! BENCH_BACKEND=flex cargo bench --features flex --bench cartpole_bench -- ...   (burn's Flex)
//! BENCH_FUSED=0 cargo bench --bench cartpole_bench -- ...   (without `kernels`'s kernels)
//!
//! Prints `steps_per_second`, and the wall time and steps at which the mean return of the
//! last 20 training episodes first reached 475 (`reached_475_s`, `reached_475_steps`).

use std::time::Instant;

use policy_lab::algos::{ppo::Ppo, trpo::Trpo};
use policy_lab::backend::Cpu;
use policy_lab::core::rollout::{make_vec_env, Collector};
use policy_lab::run::train::{Algo, RunConfig};

fn main() {
    policy_lab::backend::keep_freed_memory();
    // `BENCH_FUSED=0`: the definitions instead of `kernels`'s kernels, to measure them.
    if std::env::var("BENCH_FUSED").is_ok_and(|v| v == "0") {
        policy_lab::kernels::set_enabled(false);
    }
    // `cargo bench` adds `--bench` to the arguments; it is not one of ours.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let algo = match args.next().as_deref() {
        Some("trpo") => Algo::Trpo,
        Some("ppo") | None => Algo::Ppo,
        Some(other) => panic!("cartpole_bench runs ppo or trpo, not {other}"),
    };
    let total: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500_000);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let config = RunConfig {
        algo,
        env: "CartPole-v1".into(),
        seed,
        total_timesteps: total,
        ..RunConfig::default()
    };
    if std::env::var("BENCH_BACKEND").is_ok_and(|b| b == "flex") {
        #[cfg(feature = "flex")]
        return run::<policy_lab::backend::Flex>(config);
        #[cfg(not(feature = "flex"))]
        panic!("BENCH_BACKEND=flex needs `--features flex`");
    }
    run::<Cpu>(config)
}

/// Trains as `config` says on backend `A`, timed.
fn run<A: burn::tensor::backend::AutodiffBackend>(config: RunConfig) {
    let (algo, seed, total) = (config.algo, config.seed, config.total_timesteps);
    // The concrete learner, for its collector's episode returns.
    let venv = |n| make_vec_env(&config.env, n).expect("CartPole");
    let (mut ppo, mut trpo) = (None, None);
    match algo {
        Algo::Ppo => {
            let c = config.ppo.clone();
            let l = Ppo::<A>::new(c.clone(), venv(c.num_envs), seed, total, Default::default());
            ppo = Some(l.expect("valid config"));
        }
        _ => {
            let c = config.trpo.clone();
            let l = Trpo::<A>::new(c.clone(), venv(c.num_envs), seed, Default::default());
            trpo = Some(l.expect("valid config"));
        }
    }
    // One iteration; the steps so far and the returns of the last 20 training episodes.
    let mut step = || -> (usize, Vec<f64>) {
        let last20 = |c: &Collector| c.recent_returns.iter().rev().take(20).copied().collect();
        match (&mut ppo, &mut trpo) {
            (Some(l), _) => {
                l.iterate().expect("valid actions");
                (l.global_step(), last20(&l.collector))
            }
            (_, Some(l)) => {
                l.iterate().expect("valid actions");
                (l.global_step(), last20(&l.collector))
            }
            _ => unreachable!("one learner is made above"),
        }
    };
    let start = Instant::now();
    let mut reached: Option<(f64, usize)> = None;
    let mut global_step = 0;
    while global_step < total {
        let (steps, r) = step();
        global_step = steps;
        if reached.is_none()
            && r.len() >= 20
            && r.iter().rev().take(20).sum::<f64>() / 20.0 >= 475.0
        {
            reached = Some((start.elapsed().as_secs_f64(), global_step));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("steps_per_second {:.0}", global_step as f64 / secs);
    println!("total_s {secs:.2}");
    match reached {
        Some((s, steps)) => println!("reached_475_s {s:.2}\nreached_475_steps {steps}"),
        None => println!("reached_475_s never\nreached_475_steps never"),
    }
}
