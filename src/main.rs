//! The `policy-lab` command line.
//!
//! ```text
//! policy-lab                      play the default demo (a maze, FrozenLake, CartPole, a bandit)
//! policy-lab play --env ID ...    play one environment with a random or heuristic agent
//! policy-lab envs                 list the environments and their options
//! policy-lab device --device D    check that a backend (cpu, wgpu, cuda) works
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use policy_lab::backend::{check_device, Device};
use policy_lab::envs::ENV_IDS;
use policy_lab::play::{play, AgentKind, PlayConfig, RenderMode};

#[derive(Parser)]
#[command(
    name = "policy-lab",
    version,
    about = "Policy optimization from gridworlds to language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play an environment with a random or heuristic agent and render the episodes.
    Play {
        /// Environment id with optional options, e.g. `Maze-v0:size=10,seed=3` (see `envs`).
        #[arg(long, default_value = "FrozenLake-v1")]
        env: String,
        #[arg(long, value_enum, default_value_t = AgentKind::Heuristic)]
        agent: AgentKind,
        #[arg(long, default_value_t = 3)]
        episodes: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = RenderMode::Image)]
        render: RenderMode,
        /// Folder for pictures.
        #[arg(long, default_value = "runs/play")]
        out: PathBuf,
    },
    /// List the environments `--env` accepts.
    Envs,
    /// Run a small computation on a backend to check that it works.
    Device {
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

fn main() -> Result<()> {
    let stdout = &mut std::io::stdout();
    match Cli::parse().command {
        None => {
            // The default demo: each environment family with its heuristic agent.
            for (env, episodes) in [
                ("Maze-v0", 1),
                ("FrozenLake-v1", 3),
                ("CartPole-v1", 2),
                ("BernoulliBandit-v0", 200),
            ] {
                let out = PathBuf::from("runs/play").join(env.to_lowercase());
                let render = if env.contains("Bandit") {
                    RenderMode::None
                } else {
                    RenderMode::Image
                };
                let config = PlayConfig {
                    env: env.into(),
                    agent: AgentKind::Heuristic,
                    episodes,
                    seed: 0,
                    render,
                    out,
                };
                play(&config, stdout)?;
                println!();
            }
            println!(
                "Next: `policy-lab play --help`, `policy-lab envs`, and `cargo test --workspace`."
            );
        }
        Some(Command::Play {
            env,
            agent,
            episodes,
            seed,
            render,
            out,
        }) => {
            play(
                &PlayConfig {
                    env,
                    agent,
                    episodes,
                    seed,
                    render,
                    out,
                },
                stdout,
            )?;
        }
        Some(Command::Envs) => {
            for (id, about) in ENV_IDS {
                println!("{id:<22}{about}");
            }
        }
        Some(Command::Device { device }) => {
            let device: Device = device.parse()?;
            println!(
                "{device}: sum(A A^T) = {} (built backends: {:?})",
                check_device(device),
                Device::available()
            );
        }
    }
    Ok(())
}
