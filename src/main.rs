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
//! policy-lab lm sft|grpo|ppo|eval  language models on arithmetic: warm start, RL, accuracy
//! policy-lab device --device D    check that a backend (cpu, wgpu, cuda) works
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
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
    /// Language models on arithmetic: an SFT warm start, then GRPO or PPO, and evaluation.
    Lm {
        #[command(subcommand)]
        command: LmCommand,
    },
    /// Run a small computation on a backend to check that it works.
    Device {
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

// ANCHOR: gpus_lm_on_device
/// Runs `$body` with `B` the autodiff backend `$device` names and `device` its default device.
macro_rules! lm_on_device {
    ($device:expr, |$b:ident, $dev:ident| $body:expr) => {
        match $device {
            Device::Cpu => {
                type $b = policy_lab::backend::Cpu;
                let $dev: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            Device::Wgpu => {
                type $b = policy_lab::backend::Wgpu;
                let $dev: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            Device::Cuda => {
                type $b = policy_lab::backend::Cuda;
                let $dev: burn::tensor::Device<$b> = Default::default();
                $body
            }
            #[allow(unreachable_patterns)]
            other => anyhow::bail!(
                "this build has no {other} backend; rebuild with `--features {other}`"
            ),
        }
    };
}
// ANCHOR_END: gpus_lm_on_device

#[derive(Subcommand)]
enum LmCommand {
    /// Train a fresh model on demonstrations until it reaches a partial held-out accuracy
    /// (`sft.stop_at_accuracy`), and save it: the warm start for RL.
    Sft(LmArgs),
    /// GRPO from a checkpoint.
    Grpo(LmArgs),
    /// PPO with a value head from a checkpoint (the comparison for GRPO).
    Ppo(LmArgs),
    /// Greedy accuracy of a checkpoint on a task's held-out test problems.
    Eval {
        /// A run folder, its `model/` folder, or a Hugging Face checkpoint folder.
        model: PathBuf,
        /// The task (default: the one the run was trained on).
        #[arg(long)]
        task: Option<String>,
    },
    /// List the tasks `--task` accepts.
    Tasks,
}

#[derive(Args)]
struct LmArgs {
    /// The task: `add` or `mul`, with optional digits, e.g. `add:3` (see `lm tasks`).
    #[arg(long)]
    task: Option<String>,
    /// A TOML file with any of the run's settings; the flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The checkpoint RL starts from: an SFT run's folder or its `model/` (default
    /// runs/lm-sft-TASK), or a Hugging Face Llama/Qwen2 folder (config.json,
    /// model.safetensors, tokenizer.json), e.g. Qwen2.5-0.5B-Instruct with `--device cuda`.
    #[arg(long)]
    init: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    /// cpu, wgpu or cuda (the last two need the cargo feature of the same name).
    #[arg(long)]
    device: Option<String>,
    /// RL iterations (or, for `sft`, the most optimizer steps).
    #[arg(long)]
    iterations: Option<usize>,
    /// Data-parallel GRPO over this many devices (cuda: GPUs 0..N; cpu: peers sharing the
    /// cores). The groups (`grpo.num_groups`) are shared out; gradients are averaged.
    #[arg(long)]
    devices: Option<usize>,
    /// The run's folder (default runs/lm-ALGO-TASK).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    policy_lab::backend::keep_freed_memory();
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
                for f in draw_grid_policy(&policy, None, &mut env, &run.join("policy"), &device)? {
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
        Some(Command::Lm { command }) => lm_command(command)?,
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

/// `policy-lab lm ...`.
/// The model folder a path names: itself if it holds a model (ours: `model.json`; Hugging
/// Face: `config.json`), else a run folder's `model/`.
fn model_folder(path: &std::path::Path) -> PathBuf {
    if path.join("model.json").exists() || path.join("config.json").exists() {
        path.to_path_buf()
    } else {
        path.join("model")
    }
}

fn lm_command(command: LmCommand) -> Result<()> {
    use policy_lab::lm::run::{run_eval, run_rl, run_sft, LmAlgo, LmRunConfig};
    use policy_lab::lm::task::{parse_task, TASKS};
    let (algo, args) = match command {
        LmCommand::Tasks => {
            for (name, about) in TASKS {
                println!("{name:<6}{about}");
            }
            return Ok(());
        }
        LmCommand::Eval { model, task } => {
            let model_dir = model_folder(&model);
            let run_dir = if model_dir == model {
                model.parent().map(PathBuf::from).unwrap_or_default()
            } else {
                model.clone()
            };
            let saved = std::fs::read_to_string(run_dir.join("config.toml"))
                .ok()
                .map(|t| LmRunConfig::from_toml(&t))
                .transpose()?
                .unwrap_or_default();
            let task = match task {
                Some(t) => parse_task(&t, &saved.task)?,
                None => saved.task,
            };
            let acc = run_eval::<burn::backend::NdArray>(&model_dir, &task, &Default::default())?;
            println!(
                "{}: {}:{} held-out accuracy {:.3} over {} problems (well-formed {:.3}, mean reward {:.3})",
                model_dir.display(),
                task.op,
                task.digits,
                acc.accuracy,
                acc.problems,
                acc.format,
                acc.mean_reward
            );
            return Ok(());
        }
        LmCommand::Sft(a) => (LmAlgo::Sft, a),
        LmCommand::Grpo(a) => (LmAlgo::Grpo, a),
        LmCommand::Ppo(a) => (LmAlgo::Ppo, a),
    };
    let mut config = match &args.config {
        Some(path) => LmRunConfig::from_toml(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?,
        None => LmRunConfig::default(),
    };
    config.algo = algo;
    if let Some(t) = &args.task {
        config.task = parse_task(t, &config.task)?;
    }
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(d) = &args.device {
        config.device = d.parse()?;
    }
    if let Some(n) = args.iterations {
        match algo {
            LmAlgo::Sft => config.sft.steps = n,
            _ => config.rl.iterations = n,
        }
    }
    if let Some(n) = args.devices {
        config.rl.devices = n;
    }
    config.validate()?;
    let task_name = format!("{}{}", config.task.op, config.task.digits);
    let name = algo.name();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/lm-{name}-{task_name}")));
    let p = &mut std::io::stderr();
    let summary = match algo {
        LmAlgo::Sft => lm_on_device!(config.device, |B, device| run_sft::<B>(
            &config, &device, &out, p
        )),
        _ => {
            let init = args
                .init
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("runs/lm-sft-{task_name}")));
            let init = model_folder(&init);
            lm_on_device!(config.device, |B, _device| run_rl::<B>(
                &config,
                &init,
                &policy_lab::backend::devices::<B>(config.rl.devices),
                &out,
                p
            ))
        }
    }?;
    if let Some(start) = &summary.start {
        println!("start: held-out accuracy {:.3}", start.accuracy);
    }
    println!(
        "{name} on {}:{}: held-out accuracy {:.3} over {} problems after {} {} in {:.1}s",
        config.task.op,
        config.task.digits,
        summary.end.accuracy,
        summary.end.problems,
        summary.iterations,
        if algo == LmAlgo::Sft {
            "steps"
        } else {
            "iterations"
        },
        summary.seconds
    );
    println!(
        "wrote {}/{{config.toml, metrics.jsonl, summary.json, model/}}",
        out.display()
    );
    Ok(())
}
