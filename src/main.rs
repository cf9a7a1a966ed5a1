//! The `policy-lab` command line.
//!
//! ```text
//! policy-lab                      the main job: the ladder on a maze, with plots and a table
//! policy-lab train --algo A ...   train one algorithm (reinforce, trpo, ppo, grpo)
//! policy-lab train --resume RUN   continue a run from its latest checkpoint
//! policy-lab eval RUN             evaluate a trained run greedily
//! policy-lab plot RUN...          learning curves
//! policy-lab play --env ID ...    play one environment with a random or heuristic agent
//! policy-lab envs                 list the environments and their options
//! policy-lab device --device D    check that a backend (cpu, wgpu, cuda) works
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use policy_lab::backend::{check_device, Device};
use policy_lab::envs::ENV_IDS;
use policy_lab::evaluate::{draw_grid_policy, evaluate};
use policy_lab::ladder::run_ladder;
use policy_lab::play::{play, AgentKind, PlayConfig, RenderMode};
use policy_lab::plot::{average, draw, read_run, XAxis};
use policy_lab::train::{load_policy, train, Algo, RunConfig, RunSummary};

#[derive(Parser)]
#[command(
    name = "policy-lab",
    version,
    about = "Policy optimization from gridworlds to language models",
    after_help = "With no command, runs the main job: REINFORCE, TRPO, PPO and GRPO on a maze, compared in runs/ladder/."
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
    /// Train one algorithm on one environment; metrics, config and checkpoints go to --out.
    Train {
        #[arg(long, value_enum)]
        algo: Option<Algo>,
        /// Environment id with options, e.g. `Maze-v0:size=10` (see `envs`).
        #[arg(long)]
        env: Option<String>,
        /// A TOML file with any of the run's settings; the flags above override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// cpu, wgpu or cuda (the last two need the cargo feature of the same name).
        #[arg(long)]
        device: Option<String>,
        /// The seed of the environments, the network's initialization and the sampling.
        #[arg(long)]
        seed: Option<u64>,
        /// Environment steps to train for.
        #[arg(long)]
        total_timesteps: Option<usize>,
        /// The run's folder (default runs/ALGO-ENV-SEED).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the run in this folder from its latest checkpoint, with its saved
        /// config (only --total-timesteps and --device may change); on the CPU it gives the
        /// same numbers as a run that never stopped.
        #[arg(long, conflicts_with_all = ["algo", "env", "config", "seed", "out"])]
        resume: Option<PathBuf>,
    },
    /// Evaluate a trained run's policy greedily.
    Eval {
        /// The run's folder.
        run: PathBuf,
        #[arg(long, default_value_t = 100)]
        episodes: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Draw learning curves of one or more runs (seeds of one algorithm are averaged).
    Plot {
        /// Run folders.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = XAxis::Steps)]
        x: XAxis,
        /// The output files, without extension (PNG and SVG are written).
        #[arg(long, default_value = "runs/curves")]
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
            // The main job: the whole ladder on a maze, compared.
            let out = PathBuf::from("runs/ladder");
            let (_, files) = run_ladder(&out, 1, &mut std::io::stderr())?;
            println!("{}", std::fs::read_to_string(out.join("table.md"))?);
            for f in files {
                println!("wrote {}", f.display());
            }
            println!("Next: `policy-lab train --help`, `policy-lab play`, `policy-lab envs`, and `cargo test --workspace`.");
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
        Some(Command::Train {
            algo,
            env,
            config,
            device,
            seed,
            total_timesteps,
            out,
            resume,
        }) => {
            let mut run = match (&resume, config) {
                (Some(dir), _) => RunConfig::from_toml(
                    &std::fs::read_to_string(dir.join("config.toml")).with_context(|| {
                        format!("{} is not a run folder (no config.toml)", dir.display())
                    })?,
                )?,
                (None, Some(path)) => RunConfig::from_toml(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                )?,
                (None, None) => RunConfig::default(),
            };
            if let Some(a) = algo {
                run.algo = a;
            }
            if let Some(e) = env {
                run.env = e;
            }
            if let Some(d) = device {
                run.device = d.parse()?;
            }
            if let Some(s) = seed {
                run.seed = s;
            }
            if let Some(t) = total_timesteps {
                run.total_timesteps = t;
            }
            let out = resume.clone().or(out).unwrap_or_else(|| {
                let env = run.env.split(':').next().unwrap_or("env").to_lowercase();
                PathBuf::from(format!("runs/{}-{env}-{}", run.algo.name(), run.seed))
            });
            let summary = train_on_device(&run, &out, resume.is_some())?;
            println!(
                "{} on {}: {} steps in {:.1}s; greedy evaluation over {} episodes: mean return {:.3}, success rate {:.2}",
                run.algo.name(),
                run.env,
                summary.global_step,
                summary.seconds,
                summary.evaluation.returns.len(),
                summary.evaluation.mean_return(),
                summary.evaluation.success_rate()
            );
            println!(
                "wrote {}/{{config.toml, metrics.jsonl, metrics.csv, policy.mpk, resume/, eval.json}}",
                out.display()
            );
        }
        Some(Command::Eval {
            run,
            episodes,
            seed,
        }) => {
            let device = Default::default();
            let (config, policy) = load_policy::<policy_lab::backend::Cpu>(&run, &device)?;
            let (mut env, _) = policy_lab::envs::make(&config.env)?;
            let eval = evaluate(&policy, &mut env, episodes, seed, &device)?;
            println!(
                "{} ({} on {}): mean return {:.3} over {episodes} episodes, success rate {:.2}",
                run.display(),
                config.algo.name(),
                config.env,
                eval.mean_return(),
                eval.success_rate()
            );
            if env.grid().is_some() {
                for f in draw_grid_policy(&policy, &mut env, &run.join("policy"), &device)? {
                    println!("wrote {}", f.display());
                }
            }
        }
        Some(Command::Plot { runs, x, out }) => {
            let curves = runs
                .iter()
                .map(|r| read_run(r, x))
                .collect::<Result<Vec<_>>>()?;
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            for f in draw(&average(&curves), x, "Learning curves", &out)? {
                println!("wrote {}", f.display());
            }
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

/// Runs `train` on the backend the config names.
fn train_on_device(run: &RunConfig, out: &std::path::Path, resume: bool) -> Result<RunSummary> {
    let p = &mut std::io::stderr();
    match run.device {
        Device::Cpu => train::<policy_lab::backend::Cpu>(run, Default::default(), out, resume, p),
        #[cfg(feature = "wgpu")]
        Device::Wgpu => train::<policy_lab::backend::Wgpu>(run, Default::default(), out, resume, p),
        #[cfg(feature = "cuda")]
        Device::Cuda => train::<policy_lab::backend::Cuda>(run, Default::default(), out, resume, p),
        #[allow(unreachable_patterns)]
        other => {
            anyhow::bail!("this build has no {other} backend; rebuild with `--features {other}`")
        }
    }
}
