//! Tutorial for the book's chapter "Environments and bandits": make environments by id, play
//! them with a random agent, and see Gymnasium's `terminated` / `truncated` apart.
//!
//! ```text
//! cargo run --release --example environments
//! ```

use policy_lab::envs::{make, Env};
use rand::{RngExt, SeedableRng};

fn main() -> anyhow::Result<()> {
    // ANCHOR: run
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for id in [
        "BernoulliBandit-v0",
        "FrozenLake-v1",
        "Maze-v0",
        "CartPole-v1",
    ] {
        let (mut env, spec) = make(id)?;
        let (_obs, _info) = env.reset(Some(0));
        let (mut ret, mut steps) = (0.0, 0);
        // One episode with uniformly random actions.
        let end = loop {
            let action = rng.random_range(0..env.num_actions());
            let step = env.step(action)?;
            ret += step.reward;
            steps += 1;
            if step.terminated {
                break "terminated (a terminal state of the MDP)";
            }
            if step.truncated {
                break "truncated (the time limit: bootstrap from the last state)";
            }
        };
        let limit = spec
            .max_episode_steps
            .map_or("none".into(), |n| n.to_string());
        println!("{id:<20} time limit {limit:>4}: a random episode returned {ret:.2} in {steps} steps, {end}");
    }
    // A maze drawn as text, the way `policy-lab play --render ansi` shows it.
    let (mut maze, _) = make("Maze-v0")?;
    maze.reset(Some(0));
    println!("{}", maze.render_ansi().unwrap_or_default());
    // ANCHOR_END: run
    Ok(())
}
