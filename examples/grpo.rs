//! Tutorial for the book's chapter "GRPO on toy environments": GRPO (no critic, groups of
//! rollouts from the same start) on a generated maze, then the learned policy drawn as
//! arrows over the maze.
//!
//! ```text
//! cargo run --release --example grpo
//! ```

use burn::module::AutodiffModule;
use policy_lab::algos::grpo::Grpo;
use policy_lab::backend::Cpu;
use policy_lab::envs::make;
use policy_lab::run::evaluate::{draw_grid_policy, evaluate, evaluate_sampled};
use policy_lab::run::ladder::ladder_config;
use policy_lab::run::train::Algo;

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let id = "Maze-v0";
    // The main job's settings on this maze (configs/maze_grpo.toml; the chapter says why).
    let config = ladder_config(Algo::Grpo, 1).grpo;
    println!(
        "groups of {} episodes from the same start, {} groups per update, clip {} (high {:?}), beta {}",
        config.update.num_generations, config.update.num_groups, config.update.epsilon, config.update.epsilon_high, config.update.beta
    );
    let (env, spec) = make(id)?;
    let mut learner = Grpo::<Cpu>::new(config, env, spec.max_episode_steps, 1, Default::default())?;
    let mut it = 0;
    while learner.global_step() < 30_000 {
        let m = learner.iterate()?;
        it += 1;
        let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        if it % 25 == 0 {
            println!(
                "step {:>6}  mean reward {:.3}  groups with all-equal rewards {:.2}  clipped {:.3}",
                learner.global_step(),
                get("reward"),
                get("frac_reward_zero_std"),
                get("clip_ratio/region_mean"),
            );
        }
    }
    let actor = learner.actor.valid();
    let (mut env, _) = make(id)?;
    let eval = evaluate(&actor, &mut env, 10, 0)?;
    let sampled = evaluate_sampled(&actor, &mut env, 100, 0)?;
    println!(
        "greedy return {:.3}; 100 sampled episodes: return {:.3}, success {:.2}, entropy {:.3} nats",
        eval.mean_return(),
        sampled.mean_return(),
        sampled.success_rate().unwrap_or(0.0),
        sampled.entropy
    );
    let out = std::path::Path::new("runs/tutorial-grpo");
    std::fs::create_dir_all(out)?;
    // No critic (GRPO has none), so no values: arrows and the greedy path only.
    let stem = out.join("policy");
    for file in draw_grid_policy(&actor, None, &mut env, &stem)? {
        println!("wrote {}", file.display());
    }
    // ANCHOR_END: run
    Ok(())
}
