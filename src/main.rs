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
//! policy-lab device --device D    check that a backend (cpu, flex, wgpu, cuda) works
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use policy_lab::backend::Inference;
use policy_lab::backend::{check_device, Device};
use policy_lab::envs::ENV_IDS;
use policy_lab::run::evaluate::{draw_grid_policy, play as play_policy, Play};
use policy_lab::run::folder;
use policy_lab::run::ladder::{run_ladder, LADDER_SEEDS};
use policy_lab::run::lm::{run_eval, run_lm, LmAlgo, LmRunConfig};
use policy_lab::run::play::{play, AgentKind, PlayConfig, RenderMode};
use policy_lab::run::plot::{average, draw, read_run, XAxis};
use policy_lab::run::train::{load_policy, train_on, Algo, RunConfig};
use policy_lab::run::{Progress, Start};
use policy_lab::Metrics;

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
    /// The fast CPU paths (`kernels`: fused operations, the fused Adam, the language model's
    /// host decoder): `off` runs the definitions instead, with the same numbers (also
    /// `POLICY_LAB_KERNELS=off`).
    #[arg(long, global = true, value_enum)]
    kernels: Option<Switch>,
}

/// On or off.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
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
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
        episodes: u64,
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
        /// cpu, flex, wgpu or cuda (the last three need the cargo feature of the same name).
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
        #[arg(long, conflicts_with_all = ["algo", "env", "config", "seed", "out", "overwrite"])]
        resume: Option<PathBuf>,
        /// Replace the run already in the folder (without it, training into a folder that
        /// holds a run is refused).
        #[arg(long)]
        overwrite: bool,
    },
    /// Evaluate a trained run's policy greedily.
    Eval {
        /// The run's folder.
        run: PathBuf,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        episodes: u64,
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
    /// Serve burn's global orchestrator for `lm grpo --nodes N` over several machines: start
    /// it on one machine first; it runs until stopped (Ctrl-C).
    Orchestrator {
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

/// `policy-lab lm ...`: one subcommand for each stage of the registry in `src/run/lm/mod.rs`
/// (`sft`, `reward`, `grpo`, `ppo`: each with [`LmArgs`]), then `eval` and `tasks`. Written out
/// by hand below ([`LmCommand::augment_subcommands`]) so that a stage added to the registry is
/// a subcommand with no line here.
enum LmCommand {
    /// A stage of the registry, with its flags.
    Stage(LmAlgo, Box<LmArgs>),
    /// Greedy accuracy of a checkpoint on a task's held-out test problems.
    Eval(LmEvalArgs),
    /// A model's answers to prompts.
    Generate(LmGenerateArgs),
    /// Write a task's problems as a dataset (JSON Lines).
    Dataset(LmDatasetArgs),
    /// List the tasks `--task` accepts.
    Tasks,
}

#[derive(Args)]
struct LmGenerateArgs {
    /// The model: a GGUF file (e.g. SmolLM2's, `bash scripts/get_smollm2.sh`), a Hugging Face
    /// folder, or a run folder or its `model/`.
    #[arg(long)]
    init: PathBuf,
    /// A prompt (repeat for several; they are generated as one batch).
    #[arg(long)]
    prompt: Vec<String>,
    /// A file of prompts, one a line (blank lines skipped).
    #[arg(long)]
    prompts: Option<PathBuf>,
    /// The prompts as they are, without the model's chat template.
    #[arg(long)]
    raw: bool,
    /// A system message before each prompt (with the chat template).
    #[arg(long)]
    system_prompt: Option<String>,
    /// Greedy decoding (the default unless --temperature, --top-k or --top-p is given).
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p"])]
    greedy: bool,
    /// Sample with this temperature (1 unless given, once --top-k or --top-p asks to sample).
    #[arg(long)]
    temperature: Option<f32>,
    /// Sample among the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to p.
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// The sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct LmDatasetArgs {
    /// The task, as `--task` takes it (`add:2`; `policy-lab lm tasks` lists them), or
    /// `countdown:N` (TinyZero's Countdown with N numbers, 3 by default; its test split is
    /// drawn with another seed, not held out).
    task: String,
    /// The JSON Lines file to write.
    #[arg(long)]
    out: PathBuf,
    /// How many rows (from `--split test`, at most the task's held-out problems).
    #[arg(long, default_value_t = 1000)]
    rows: usize,
    /// `train` (problems drawn with --seed, never a held-out one) or `test` (the held-out ones).
    #[arg(long, default_value = "train")]
    split: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Conversational rows asked in words ("What is 12 + 34?"), for a chat model; otherwise
    /// standard rows in the task's notation ("12+34=").
    #[arg(long)]
    chat: bool,
    /// With --chat: a system message before each question, e.g. the answer's format.
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// With --chat: a worked example (a question and the reply wanted) before each question,
    /// as a user message and the assistant's answer; repeat it for a few-shot prompt.
    #[arg(long, requires = "chat", num_args = 2, value_names = ["QUESTION", "REPLY"])]
    example: Vec<String>,
}

#[derive(Args)]
struct LmEvalArgs {
    /// A run folder, its `model/` folder, a Hugging Face checkpoint folder or a GGUF file.
    model: PathBuf,
    /// The task (default: the one the run was trained on).
    #[arg(long, conflicts_with = "dataset")]
    task: Option<String>,
    /// Prompts from a JSON Lines file in TRL's formats (`lm dataset` writes one), each
    /// completion scored by --reward-funcs: their means, the completions' mean length,
    /// pass@k and mean@k with --k, and with --completions every completion.
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// With --dataset: the reward functions, comma-separated: accuracy, format, length,
    /// equation (Countdown's; the rows' `nums` and `target`), command:PROGRAM [ARGS] (reads
    /// one JSON line per completion, writes one number per line).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "accuracy",
        requires = "dataset"
    )]
    reward_funcs: Vec<String>,
    /// With --dataset: where the answer is in a completion: last-number, answer-tag
    /// (`<answer>...</answer>`), boxed (`\boxed{...}`) or hashes (after `####`).
    #[arg(long, default_value = "last-number", requires = "dataset")]
    extract: String,
    /// With --dataset: the column holding the right answer.
    #[arg(long, default_value = "answer", requires = "dataset")]
    answer_column: String,
    /// With --dataset: compare answers as text, not as numbers.
    #[arg(long, requires = "dataset")]
    exact: bool,
    /// With --dataset: the format reward's regular expression, which the whole completion
    /// must match (default: `<think>` then `<answer>`); scores `format` even if
    /// --reward-funcs leaves it out.
    #[arg(long, requires = "dataset")]
    format: Option<String>,
    /// With --dataset: the length reward's target, in characters.
    #[arg(long, default_value_t = 200, requires = "dataset")]
    length_target: usize,
    /// With --dataset: seconds a command reward may take over one batch.
    #[arg(long, default_value_t = 60, requires = "dataset")]
    command_timeout: u64,
    /// With --dataset: sample this many completions of each prompt (at --temperature) and
    /// report pass@k and mean@k; 1 is one greedy completion.
    #[arg(long, default_value_t = 1, requires = "dataset")]
    k: usize,
    /// With --dataset and --k above 1: the sampling temperature.
    #[arg(long, default_value_t = 1.0, requires = "dataset")]
    temperature: f32,
    /// With --dataset: the sampling seed (with --k above 1).
    #[arg(long, default_value_t = 0, requires = "dataset")]
    seed: u64,
    /// With --dataset: the most tokens of each completion.
    #[arg(long, default_value_t = 64, requires = "dataset")]
    max_new_tokens: usize,
    /// With --dataset: write each prompt, completion and its rewards to this JSON Lines file.
    #[arg(long, requires = "dataset")]
    completions: Option<PathBuf>,
    /// Write each prompt with the model's chat template (a run trained with
    /// --chat-template is evaluated with it anyway).
    #[arg(long)]
    chat_template: bool,
    /// With --chat-template, a system message before each prompt.
    #[arg(long, requires = "chat_template")]
    system_prompt: Option<String>,
}

impl clap::Subcommand for LmCommand {
    fn augment_subcommands(mut cmd: clap::Command) -> clap::Command {
        for algo in LmAlgo::ALL {
            let stage = clap::Command::new(algo.name()).about(algo.about());
            cmd = cmd.subcommand(LmArgs::augment_args(stage));
        }
        let eval = clap::Command::new("eval")
            .about("Greedy accuracy of a checkpoint on a task's held-out test problems.");
        let generate = clap::Command::new("generate").about("A model's answers to prompts.");
        let dataset = clap::Command::new("dataset")
            .about("Write a task's problems as a dataset (JSON Lines, TRL's prompt formats).");
        cmd.subcommand(LmEvalArgs::augment_args(eval))
            .subcommand(LmGenerateArgs::augment_args(generate))
            .subcommand(LmDatasetArgs::augment_args(dataset))
            .subcommand(clap::Command::new("tasks").about("List the tasks `--task` accepts."))
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_subcommands(cmd)
    }
    fn has_subcommand(name: &str) -> bool {
        matches!(name, "eval" | "generate" | "dataset" | "tasks") || stage_named(name).is_some()
    }
}

impl clap::FromArgMatches for LmCommand {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        match matches.subcommand() {
            Some(("eval", m)) => Ok(LmCommand::Eval(LmEvalArgs::from_arg_matches(m)?)),
            Some(("generate", m)) => Ok(LmCommand::Generate(LmGenerateArgs::from_arg_matches(m)?)),
            Some(("dataset", m)) => Ok(LmCommand::Dataset(LmDatasetArgs::from_arg_matches(m)?)),
            Some(("tasks", _)) => Ok(LmCommand::Tasks),
            Some((name, m)) => match stage_named(name) {
                Some(algo) => Ok(LmCommand::Stage(
                    algo,
                    Box::new(LmArgs::from_arg_matches(m)?),
                )),
                None => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
            },
            None => Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand)),
        }
    }
    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The registry's stage called `name`.
fn stage_named(name: &str) -> Option<LmAlgo> {
    LmAlgo::ALL.iter().copied().find(|a| a.name() == name)
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
    /// runs/lm-sft-TASK), or a Hugging Face Llama/Qwen2/Qwen3 folder (config.json,
    /// model.safetensors, tokenizer.json), e.g. Qwen2.5-0.5B-Instruct with `--device cuda`.
    #[arg(long)]
    init: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    /// cpu, flex, wgpu or cuda (the last three need the cargo feature of the same name).
    #[arg(long)]
    device: Option<String>,
    /// The forward passes' number type: f32, or bf16 / f16 with f32 master weights (mixed
    /// precision; bf16 and f16 need `--device cuda`).
    #[arg(long)]
    precision: Option<String>,
    /// RL iterations (or, for `sft`, the most optimizer steps).
    #[arg(long)]
    iterations: Option<usize>,
    /// Data-parallel GRPO over this many devices (cuda: GPUs 0..N; cpu: peers sharing the
    /// cores). The groups (`grpo.num_groups`) are shared out; gradients are averaged.
    #[arg(long)]
    devices: Option<usize>,
    /// Data-parallel GRPO over this many machines (nodes), each running this same command
    /// with its own --node-rank and --node-address, all with the same --devices; start
    /// `policy-lab orchestrator` first (`rl.nodes`).
    #[arg(long, requires_all = ["node_rank", "orchestrator", "node_address"])]
    nodes: Option<u32>,
    /// This node's number, 0..N.
    #[arg(long, requires = "nodes")]
    node_rank: Option<u32>,
    /// The orchestrator's address, e.g. ws://10.0.0.1:3000.
    #[arg(long, requires = "nodes")]
    orchestrator: Option<String>,
    /// Where the other nodes reach this one, e.g. ws://10.0.0.2:3001 (a free port).
    #[arg(long, requires = "nodes")]
    node_address: Option<String>,
    /// Write each prompt as a conversation with the `--init` checkpoint's chat template (the
    /// user's message, then the start of the assistant's turn), as TRL does for an instruct
    /// model (`rl.chat_template`).
    #[arg(long)]
    chat_template: bool,
    /// With --chat-template, a system message before each prompt (`rl.system_prompt`).
    #[arg(long, requires = "chat_template")]
    system_prompt: Option<String>,
    /// What scores a completion (TRL's reward_funcs), comma-separated: `task` (the task's
    /// reward) and/or reward models' folders (`lm reward`), e.g. `runs/lm-reward-add1`
    /// (`rl.reward_funcs`).
    #[arg(long, value_delimiter = ',')]
    reward_funcs: Option<Vec<String>>,
    /// One weight per reward function, comma-separated (`rl.reward_weights`; default 1 each).
    #[arg(long, value_delimiter = ',')]
    reward_weights: Option<Vec<f32>>,
    /// Prompts from a JSON Lines file in TRL's formats instead of --task's problems
    /// (`rl.dataset`; `lm dataset` writes one): its other columns go to the reward
    /// functions, `accuracy` unless --reward-funcs names others (accuracy, format, length,
    /// equation, command:PROGRAM; `[rl.rewards]` in --config sets them up).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// With --dataset: held-out prompts, on which the accuracy is measured greedily every
    /// `rl.eval_every` iterations (`rl.eval_dataset`).
    #[arg(long, requires = "dataset")]
    eval_dataset: Option<PathBuf>,
    /// The most tokens of a completion (`rl.max_completion_length`; default: the task's
    /// answer limit, or 64 with --dataset).
    #[arg(long)]
    max_completion_length: Option<usize>,
    /// The run's folder (default runs/lm-ALGO-TASK).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint, with its saved config
    /// (only --iterations and --device may change); on the CPU it gives the same numbers
    /// as a run that never stopped.
    #[arg(long, conflicts_with_all = ["task", "config", "seed", "out", "overwrite", "devices", "nodes", "init", "chat_template", "system_prompt", "reward_funcs", "reward_weights", "precision", "dataset", "eval_dataset", "max_completion_length"])]
    resume: Option<PathBuf>,
    /// Replace the run already in the folder (without it, a folder that holds a run is
    /// refused).
    #[arg(long)]
    overwrite: bool,
}

fn main() -> std::process::ExitCode {
    policy_lab::backend::keep_freed_memory();
    restore_sigpipe();
    policy_lab::run::progress::bars_on_terminal();
    let cli = Cli::parse();
    if let Some(switch) = cli.kernels {
        policy_lab::kernels::set_enabled(switch == Switch::On);
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`policy-lab play | head`) is the reader's choice, not an error.
            if let Some(io) = e.root_cause().downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return std::process::ExitCode::SUCCESS;
                }
            }
            eprintln!("Error: {e:#}");
            match e.downcast_ref::<policy_lab::run::Interrupted>() {
                Some(_) => {
                    std::process::ExitCode::from(policy_lab::run::interrupt::EXIT_STATUS as u8)
                }
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

/// Lets a closed pipe end the program quietly, as it does any Unix tool (Rust ignores
/// SIGPIPE and turns it into write errors instead).
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resets one signal's disposition to the default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> Result<()> {
    let stdout = &mut std::io::stdout();
    match cli.command {
        None => {
            // The main job: the whole ladder on a maze, compared.
            let out = PathBuf::from("runs/ladder");
            let (_, files) = run_ladder(&out, &LADDER_SEEDS, &mut std::io::stderr())?;
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
                    episodes: episodes as usize,
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
            overwrite,
        }) => {
            let mut run = match (&resume, config) {
                (Some(dir), _) => {
                    let path = dir.join("config.toml");
                    if !path.exists() {
                        anyhow::bail!("{} is not a run folder (no config.toml)", dir.display());
                    }
                    RunConfig::from_file(&path).map_err(|e| folder::edited_or(dir, e))?
                }
                (None, Some(path)) => RunConfig::from_file_as(&path, algo)?,
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
            let start = Start::from_flags(resume.is_some(), overwrite);
            let summary = train_on(&run, &out, start, &mut std::io::stderr())?;
            println!(
                "{} on {}: {} steps in {:.1}s; greedy evaluation over {} episodes: mean return {:.3}{}",
                run.algo.name(),
                run.env,
                summary.global_step,
                summary.seconds,
                summary.evaluation.returns.len(),
                summary.evaluation.mean_return(),
                success(&summary.evaluation)
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
            // No autodiff: evaluation needs no gradient, and a graph would only grow.
            let device = Default::default();
            let (config, policy) = load_policy::<Inference>(&run, &device)?;
            let (mut env, _) = policy_lab::envs::make(&config.env)?;
            let episodes = episodes as usize;
            let mut sink = std::io::stderr();
            let mut bar = Progress::new("eval", episodes, "episodes", 10, episodes, &mut sink);
            let mut returns = Metrics::new();
            let eval = play_policy(
                &policy,
                &mut env,
                episodes,
                seed,
                Play::Greedy,
                &mut |n, r| {
                    returns.insert("episodic_return", r);
                    let _ = bar.update(n, &returns);
                },
            )?;
            bar.finish();
            println!(
                "{} ({} on {}): mean return {:.3} over {episodes} episodes{}",
                run.display(),
                config.algo.name(),
                config.env,
                eval.mean_return(),
                success(&eval)
            );
            if env.grid().is_some() {
                for f in draw_grid_policy(&policy, None, &mut env, &run.join("policy"))? {
                    println!("wrote {}", f.display());
                }
            }
        }
        Some(Command::Plot { runs, x, out }) => {
            let curves = runs
                .iter()
                .map(|r| read_run(r, x))
                .collect::<Result<Vec<_>>>()?;
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                if parent.exists() && !parent.is_dir() {
                    anyhow::bail!(
                        "--out {}: {} is a file, not a folder",
                        out.display(),
                        parent.display()
                    );
                }
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating the folder {}", parent.display()))?;
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
                "{device}: sum(A A^T) = {} (built backends: {:?}; CPU kernels {})",
                check_device(device)?,
                Device::available(),
                if policy_lab::kernels::enabled() {
                    "on"
                } else {
                    "off"
                }
            );
        }
        Some(Command::Orchestrator { port }) => {
            eprintln!("burn's global orchestrator on port {port} (Ctrl-C stops it)");
            tokio::runtime::Runtime::new()?
                .block_on(burn_collective::start_global_orchestrator(port));
        }
    }
    Ok(())
}

/// ", success rate S" for an environment with a goal; nothing for one without (CartPole).
fn success(eval: &policy_lab::run::evaluate::Evaluation) -> String {
    eval.success_rate()
        .map(|s| format!(", success rate {s:.2}"))
        .unwrap_or_default()
}

/// `policy-lab lm ...`.
/// The model a path names: itself if it is a file (GGUF) or holds a model (ours:
/// `model.json`; Hugging Face: `config.json`), else a run folder's `model/`.
fn model_folder(path: &std::path::Path) -> PathBuf {
    if path.is_file() || path.join("model.json").exists() || path.join("config.json").exists() {
        path.to_path_buf()
    } else {
        path.join("model")
    }
}

/// `policy-lab lm generate`.
fn lm_generate(args: LmGenerateArgs) -> Result<()> {
    use policy_lab::lm::generate::SamplingConfig;
    use policy_lab::run::generate::{run_generate, GenerateOptions};
    let mut prompts = args.prompt;
    if let Some(file) = &args.prompts {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        prompts.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    let sample = args.temperature.is_some() || args.top_k.is_some() || args.top_p.is_some();
    let sampling = match sample {
        false => SamplingConfig::greedy(args.max_new_tokens),
        true => SamplingConfig {
            temperature: args.temperature.unwrap_or(1.0),
            top_k: args.top_k,
            top_p: args.top_p,
            max_new_tokens: args.max_new_tokens,
        },
    };
    let options = GenerateOptions {
        raw: args.raw,
        system: args.system_prompt,
        sampling,
        seed: args.seed,
    };
    let model = model_folder(&args.init);
    let mut out = std::io::stdout();
    run_generate::<burn::backend::NdArray>(
        &model,
        &prompts,
        &options,
        &mut out,
        &Default::default(),
    )?;
    Ok(())
}

/// `policy-lab lm dataset`.
fn lm_dataset(args: LmDatasetArgs) -> Result<()> {
    use policy_lab::lm::dataset::{arithmetic, Question};
    use policy_lab::lm::task::parse_task;
    let split = match args.split.as_str() {
        "train" => policy_lab_envs::Split::Train,
        "test" => policy_lab_envs::Split::Test,
        other => anyhow::bail!("--split {other:?}: the splits are train and test"),
    };
    let question = if args.chat {
        Question::Chat
    } else {
        Question::Terse
    };
    let dataset = match args.task.strip_prefix("countdown") {
        Some(rest) => {
            let numbers = match rest.strip_prefix(':') {
                Some(n) => n
                    .parse()
                    .ok()
                    .filter(|n| (2..=6).contains(n))
                    .ok_or_else(|| anyhow::anyhow!("countdown:{n}: 2 to 6 numbers"))?,
                None if rest.is_empty() => 3,
                None => anyhow::bail!("unknown task {:?}", args.task),
            };
            // The test split: another stream of the same generator.
            let seed = match split {
                policy_lab_envs::Split::Train => args.seed,
                policy_lab_envs::Split::Test => args.seed ^ 0x7e57_0000_0000,
            };
            policy_lab::lm::dataset::countdown(args.rows, numbers, seed, question)
        }
        None => {
            let task = parse_task(&args.task, &Default::default())?;
            arithmetic(&task, split, args.rows, args.seed, question)?
        }
    };
    let dataset = match &args.system {
        Some(text) => dataset.with_system(text)?,
        None => dataset,
    };
    let examples: Vec<(String, String)> = args
        .example
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let dataset = dataset.with_examples(&examples)?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, dataset.to_jsonl())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", args.out.display()))?;
    println!(
        "wrote {} rows of {} ({} split) to {}",
        dataset.rows.len(),
        args.task,
        args.split,
        args.out.display()
    );
    Ok(())
}

/// `policy-lab lm eval --dataset`.
fn lm_eval_dataset(args: LmEvalArgs) -> Result<()> {
    use policy_lab::lm::rewards::RewardSettings;
    let file = args.dataset.expect("called with --dataset");
    if args.system_prompt.is_some() {
        anyhow::bail!(
            "--system-prompt is not read with --dataset: put the system message in the rows"
        );
    }
    let extract = serde_json::from_value(serde_json::json!(args.extract)).map_err(|_| {
        anyhow::anyhow!(
            "--extract {:?}: the extractors are last-number, answer-tag, boxed and hashes",
            args.extract
        )
    })?;
    let mut settings = RewardSettings {
        answer_column: args.answer_column.clone(),
        extract,
        exact: args.exact,
        length_target: args.length_target,
        command_timeout_s: args.command_timeout,
        ..RewardSettings::default()
    };
    let mut names = args.reward_funcs.clone();
    if let Some(pattern) = &args.format {
        settings.format = pattern.clone();
        if !names.iter().any(|n| n == "format") {
            names.push("format".into());
        }
    }
    if args.k == 0 {
        anyhow::bail!("--k must be at least 1");
    }
    let model = model_folder(&args.model);
    let eval = policy_lab::run::lm::run_eval_dataset::<burn::backend::NdArray>(
        &model,
        &file,
        (&names, &settings),
        args.chat_template,
        policy_lab::run::lm::Sampling {
            k: args.k,
            temperature: args.temperature,
            max_new_tokens: args.max_new_tokens,
            seed: args.seed,
        },
        &Default::default(),
    )?;
    let prompts = eval.completions.len() / eval.k;
    let each = match eval.k {
        1 => String::new(),
        k => format!(", {k} completions each"),
    };
    for (name, mean) in &eval.means {
        println!("{name}: {mean:.3} over {prompts} prompts{each}");
    }
    if eval.k > 1 {
        println!(
            "pass@{k}: {:.3}, mean@{k}: {:.3}",
            eval.pass_at_k,
            eval.mean_at_k,
            k = eval.k
        );
    }
    println!("mean completion length: {:.1} tokens", eval.mean_tokens);
    if let Some(path) = &args.completions {
        let mut text = String::new();
        for ((prompt, completion), r) in eval.completions.iter().zip(&eval.rewards) {
            let mut line = serde_json::json!({"prompt": prompt, "completion": completion});
            for ((name, _), x) in eval.means.iter().zip(r) {
                line[name] = serde_json::json!(x);
            }
            text.push_str(&line.to_string());
            text.push('\n');
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        println!("completions written to {}", path.display());
    }
    Ok(())
}

fn lm_command(command: LmCommand) -> Result<()> {
    use policy_lab::lm::task::{parse_task, TASKS};
    let (algo, args) = match command {
        LmCommand::Tasks => {
            for (name, about) in TASKS {
                println!("{name:<6}{about}");
            }
            return Ok(());
        }
        LmCommand::Generate(args) => return lm_generate(args),
        LmCommand::Dataset(args) => return lm_dataset(args),
        LmCommand::Eval(args) if args.dataset.is_some() => return lm_eval_dataset(args),
        LmCommand::Eval(LmEvalArgs {
            model,
            task,
            chat_template,
            system_prompt,
            ..
        }) => {
            let model_dir = model_folder(&model);
            let run_dir = if model_dir == model {
                model.parent().map(PathBuf::from).unwrap_or_default()
            } else {
                model.clone()
            };
            if run_dir.join("policy.mpk").exists() {
                anyhow::bail!(
                    "{} is a run on a toy environment (`policy-lab train`), not a language \
                     model: evaluate it with `policy-lab eval {}`",
                    run_dir.display(),
                    run_dir.display()
                );
            }
            let config_path = run_dir.join("config.toml");
            let saved = match config_path.exists() {
                true => LmRunConfig::from_file(&config_path)?,
                false => LmRunConfig::default(),
            };
            // Another task than the run's is that task's own test set (its own size), not
            // the run's test set cut to the run's size.
            let task = match task {
                Some(t) => {
                    let asked = parse_task(&t, &Default::default())?;
                    let same = (asked.op, asked.digits) == (saved.task.op, saved.task.digits);
                    if same {
                        saved.task
                    } else {
                        asked
                    }
                }
                None => saved.task,
            };
            let chat = match (chat_template, saved.rl.chat_template) {
                (true, _) => Some(system_prompt),
                (false, true) => Some(saved.rl.system_prompt.clone()),
                (false, false) => None,
            };
            let acc =
                run_eval::<burn::backend::NdArray>(&model_dir, &task, chat, &Default::default())?;
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
        LmCommand::Stage(algo, args) => (algo, args),
    };
    let fresh = algo.fresh();
    if fresh
        && (args.init.is_some()
            || args.devices.is_some()
            || args.nodes.is_some()
            || args.chat_template
            || args.reward_funcs.is_some()
            || args.dataset.is_some())
    {
        anyhow::bail!(
            "lm {} trains a fresh model on one device: --init, --devices, --nodes, \
                 --chat-template, --reward-funcs and --dataset are for `lm grpo` and `lm ppo`",
            algo.name()
        );
    }
    let mut config = match (&args.resume, &args.config) {
        (Some(dir), _) => {
            let path = dir.join("config.toml");
            if !path.exists() {
                anyhow::bail!("{} is not a run folder (no config.toml)", dir.display());
            }
            let saved = LmRunConfig::from_file(&path).map_err(|e| folder::edited_or(dir, e))?;
            if saved.algo != algo {
                anyhow::bail!(
                    "{} is an `lm {}` run; resume it with `policy-lab lm {} --resume {}`",
                    dir.display(),
                    saved.algo.name(),
                    saved.algo.name(),
                    dir.display()
                );
            }
            saved
        }
        (None, Some(path)) => LmRunConfig::from_file_as(path, Some(algo))?,
        (None, None) => LmRunConfig::default(),
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
    if let Some(p) = &args.precision {
        config.precision = p.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(n) = args.iterations {
        config.set_budget(n);
    }
    if let (Some(count), Some(rank), Some(orchestrator), Some(address)) = (
        args.nodes,
        args.node_rank,
        args.orchestrator.clone(),
        args.node_address.clone(),
    ) {
        config.rl.nodes = Some(policy_lab::algos::grpo_parallel::Nodes {
            count,
            rank,
            orchestrator,
            address,
        });
    }
    if let Some(n) = args.devices {
        config.rl.devices = n;
    }
    if args.chat_template {
        config.rl.chat_template = true;
    }
    if let Some(system) = &args.system_prompt {
        config.rl.system_prompt = Some(system.clone());
    }
    if let Some(funcs) = &args.reward_funcs {
        config.rl.reward_funcs = funcs.clone();
    }
    if let Some(weights) = &args.reward_weights {
        config.rl.reward_weights = Some(weights.clone());
    }
    if let Some(path) = &args.dataset {
        config.rl.dataset = Some(path.clone());
        // A dataset's completions are scored by the reward functions: accuracy by default.
        if args.reward_funcs.is_none() && config.rl.reward_funcs == ["task"] {
            config.rl.reward_funcs = vec!["accuracy".into()];
        }
    }
    if let Some(path) = &args.eval_dataset {
        config.rl.eval_dataset = Some(path.clone());
    }
    if let Some(n) = args.max_completion_length {
        config.rl.max_completion_length = Some(n);
    }
    // A run's default folder is named after its task, or its dataset's file.
    let task_name = match &config.rl.dataset {
        Some(path) => path
            .file_stem()
            .map_or("dataset".into(), |s| s.to_string_lossy().into_owned()),
        None => format!("{}{}", config.task.op, config.task.digits),
    };
    if !fresh && args.resume.is_none() {
        let init = args
            .init
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/lm-sft-{task_name}")));
        config.init = Some(model_folder(&init));
    }
    config.validate()?;
    let name = algo.name();
    let out = args
        .resume
        .clone()
        .or(args.out.clone())
        .unwrap_or_else(|| PathBuf::from(format!("runs/lm-{name}-{task_name}")));
    let start = Start::from_flags(args.resume.is_some(), args.overwrite);
    let summary = run_lm(&config, &out, start, &mut std::io::stderr())?;
    let over = match summary.end.problems {
        0 => String::new(),
        n => format!(" over {n} problems"),
    };
    let measured = match (&summary.start, summary.end.problems) {
        (Some(start), n) if n > 0 => format!(
            "{} {:.3} -> {:.3}{over}",
            algo.measure(),
            start.accuracy,
            summary.end.accuracy
        ),
        (None, n) if n > 0 => format!("{} {:.3}{over}", algo.measure(), summary.end.accuracy),
        _ => "no held-out prompts,".to_string(),
    };
    let task_label = match &config.rl.dataset {
        Some(path) => path.display().to_string(),
        None => format!("{}:{}", config.task.op, config.task.digits),
    };
    println!(
        "{name} on {task_label}: {measured} after {} {} in {:.1}s",
        summary.iterations,
        if fresh { "steps" } else { "iterations" },
        summary.seconds
    );
    println!(
        "wrote {}/{{config.toml, metrics.jsonl, summary.json, model/}}",
        out.display()
    );
    Ok(())
}
