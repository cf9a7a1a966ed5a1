//! The fault suite: bad input and faults a user meets, each its own test, through the
//! `policy-lab` binary as a user runs it. Every case checks three things:
//!
//! * the exit status (2 for a command line clap refuses, 1 for a refused run, 130 for
//!   Ctrl-C);
//! * that the message names the file, key or value at fault and what is allowed;
//! * that every file that existed before is byte-identical after (nothing already saved is
//!   lost).
//!
//! `cargo test --test faults -- --list` counts them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder for one case.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("policy-lab-fault-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary under test: this build's, or another one's through `POLICY_LAB_BIN` (to check
/// that a case fails on an older commit, e.g. the c4cb50f the issue was filed against).
fn bin(dir: &Path) -> Command {
    let exe = std::env::var_os("POLICY_LAB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_policy-lab")));
    let mut c = Command::new(exe);
    c.current_dir(dir);
    c
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p, bytes);
            }
        }
    }
    out
}

/// Runs `args` in `dir`; asserts the exit status, that stderr holds every `needle`, and
/// that every file under `dir` that existed before is unchanged. Returns stderr.
fn refused(dir: &Path, args: &[&str], status: i32, needles: &[&str]) -> String {
    let before = snapshot(dir);
    let out = bin(dir).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(status), "{args:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} is not in:\n{err}");
    }
    let after = snapshot(dir);
    for (path, bytes) in &before {
        assert!(
            after.get(path) == Some(bytes),
            "{args:?} changed {}",
            path.display()
        );
    }
    err
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    let out = bin(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small finished toy run in `dir/run` (REINFORCE on a bandit, 4 iterations).
fn toy_run(dir: &Path) -> PathBuf {
    ok(
        dir,
        &[
            "train",
            "--algo",
            "reinforce",
            "--env",
            "BernoulliBandit-v0",
            "--total-timesteps",
            "1024",
            "--out",
            "run",
        ],
    );
    dir.join("run")
}

/// A config file in `dir` with `text`; returns its name.
fn config(dir: &Path, text: &str) -> &'static str {
    std::fs::write(dir.join("c.toml"), text).unwrap();
    "c.toml"
}

/// A tiny language-model SFT run in `dir/sft` (a few steps of a small model).
fn lm_run(dir: &Path) -> PathBuf {
    config(dir, TINY_LM);
    ok(dir, &["lm", "sft", "--config", "c.toml", "--out", "sft"]);
    dir.join("sft")
}

/// The task of every tiny LM run (an RL run's file has it, and not the SFT model's tables).
const TINY_TASK: &str = "checkpoint_every = 2\n[task]\nop = \"add\"\ndigits = 1\ntest_size = 10\n";

const TINY_LM: &str = "checkpoint_every = 2\n[task]\nop = \"add\"\ndigits = 1\ntest_size = 10\n\
    [model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nd_ff = 32\nmax_seq_len = 12\n\
    [sft]\nsteps = 4\nbatch_size = 4\neval_every = 2\nstop_at_accuracy = 2.0\n";

/// A copy of a Hugging Face fixture in `dir/hf`, its config.json edited by `edit`.
fn hf_copy(dir: &Path, edit: impl Fn(&mut serde_json::Value)) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny-llama");
    let dst = dir.join("hf");
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let mut c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dst.join("config.json")).unwrap()).unwrap();
    edit(&mut c);
    std::fs::write(
        dst.join("config.json"),
        serde_json::to_vec_pretty(&c).unwrap(),
    )
    .unwrap();
    dst
}

fn edit_file(path: &Path, f: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// Sets `table.key` in the TOML file at `path` to `value`, as a user's edit would.
fn edit_toml(path: &Path, table: &str, key: &str, value: toml::Value) {
    let mut t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let place = match table {
        "" => &mut t,
        name => t.get_mut(name).unwrap().as_table_mut().unwrap(),
    };
    assert!(
        place.contains_key(key),
        "{table}.{key} is in {}",
        path.display()
    );
    place.insert(key.into(), value);
    std::fs::write(path, toml::to_string(&t).unwrap()).unwrap();
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

// ---- the command line ----

#[test]
fn cli_unknown_algorithm() {
    let d = scratch("algo");
    refused(
        &d,
        &["train", "--algo", "a2c"],
        2,
        &["invalid value 'a2c'", "reinforce, trpo, ppo, grpo"],
    );
}

#[test]
fn cli_eval_of_zero_episodes() {
    let d = scratch("eval0");
    refused(
        &d,
        &["eval", "run", "--episodes", "0"],
        2,
        &["--episodes", "0", "1.."],
    );
}

#[test]
fn cli_play_of_zero_episodes() {
    let d = scratch("play0");
    refused(
        &d,
        &["play", "--episodes", "0"],
        2,
        &["--episodes", "0", "1.."],
    );
}

#[test]
fn cli_resume_of_a_missing_folder() {
    let d = scratch("resume-missing");
    refused(
        &d,
        &["train", "--resume", "nowhere"],
        1,
        &["nowhere is not a run folder (no config.toml)"],
    );
}

#[test]
fn cli_eval_of_a_folder_that_is_not_a_run() {
    let d = scratch("eval-notrun");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    refused(
        &d,
        &["eval", "empty"],
        1,
        &["empty is not a run folder (no config.toml)"],
    );
}

#[test]
fn cli_plot_out_under_a_file() {
    let d = scratch("plot-out");
    let run = toy_run(&d);
    std::fs::write(d.join("afile"), "x").unwrap();
    let _ = run;
    refused(
        &d,
        &["plot", "run", "--out", "afile/x"],
        1,
        &["afile is a file, not a folder"],
    );
}

#[test]
fn cli_plot_of_a_folder_without_metrics() {
    let d = scratch("plot-nometrics");
    toy_run(&d);
    std::fs::remove_file(d.join("run/metrics.jsonl")).unwrap();
    refused(
        &d,
        &["plot", "run", "--out", "curves"],
        1,
        &["run/metrics.jsonl"],
    );
}

#[test]
fn cli_lm_sft_refuses_init() {
    let d = scratch("sft-init");
    refused(
        &d,
        &["lm", "sft", "--init", "somewhere"],
        1,
        &["--init, --devices, --nodes, --chat-template, --reward-funcs and --dataset are for `lm grpo` and `lm ppo`"],
    );
}

#[test]
fn cli_lm_sft_refuses_devices() {
    let d = scratch("sft-devices");
    refused(
        &d,
        &["lm", "sft", "--devices", "2"],
        1,
        &["lm sft trains a fresh model on one device", "--devices"],
    );
}

#[test]
fn cli_lm_reward_refuses_rl_flags() {
    let d = scratch("reward-flags");
    for flag in [&["--chat-template"][..], &["--reward-funcs", "task"][..]] {
        let mut args = vec!["lm", "reward"];
        args.extend_from_slice(flag);
        refused(
            &d,
            &args,
            1,
            &["lm reward trains a fresh model on one device", flag[0]],
        );
    }
}

#[test]
fn cli_lm_eval_of_a_toy_run() {
    let d = scratch("lmeval-toy");
    toy_run(&d);
    refused(
        &d,
        &["lm", "eval", "run"],
        1,
        &["a run on a toy environment", "policy-lab eval"],
    );
}

#[test]
fn cli_a_backend_this_build_lacks() {
    if cfg!(feature = "cuda") {
        return;
    }
    let d = scratch("cuda");
    refused(
        &d,
        &["train", "--device", "cuda", "--out", "r"],
        1,
        &["rebuild with `--features cuda`"],
    );
}

#[test]
fn cli_unknown_task() {
    let d = scratch("task");
    refused(
        &d,
        &["lm", "sft", "--task", "sub:2"],
        1,
        &["unknown task \"sub\"", "add, mul"],
    );
}

#[test]
fn cli_device_name_unknown() {
    let d = scratch("device");
    refused(&d, &["train", "--device", "tpu", "--out", "r"], 1, &["tpu"]);
}

// ---- configs ----

#[test]
fn config_malformed_toml_names_file_and_line() {
    let d = scratch("toml");
    let c = config(&d, "algo = \"ppo\"\n[ppo\nlearning_rate = 1\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["c.toml", "line 2"],
    );
}

#[test]
fn config_unknown_key_names_key_and_line() {
    let d = scratch("unknown-key");
    let c = config(&d, "algo = \"ppo\"\n[ppo]\nlerning_rate = 0.1\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["c.toml", "line 3", "lerning_rate", "expected one of"],
    );
}

#[test]
fn config_another_rungs_table_is_refused_at_its_line() {
    // On e107af7 `--algo trpo` trained with a file's `[ppo]` table unread, without a word,
    // and an LM RL run accepted the SFT model's `[model]` table and ignored it.
    let d = scratch("foreign-table");
    let c = config(&d, "seed = 3\n[ppo]\nlearning_rate = 0.001\n");
    refused(
        &d,
        &["train", "--algo", "trpo", "--config", c, "--out", "r"],
        1,
        &["c.toml", "line 2: table [ppo]", "`algo = \"trpo\"`"],
    );
    config(&d, &format!("{TINY_TASK}[model]\nd_model = 16\n"));
    refused(
        &d,
        &[
            "lm", "grpo", "--config", c, "--init", "nowhere", "--out", "r",
        ],
        1,
        &[
            "c.toml",
            "line 6: table [model] does nothing in an `lm grpo` run",
        ],
    );
}

#[test]
fn config_value_of_the_wrong_type_names_the_key() {
    let d = scratch("fast");
    let c = config(
        &d,
        "algo = \"ppo\"\n[ppo]\nnum_envs = 2\nlearning_rate = \"fast\"\n",
    );
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["c.toml", "line 4", "ppo.learning_rate", "f64"],
    );
}

#[test]
fn config_gamma_out_of_range() {
    let d = scratch("gamma");
    let c = config(&d, "algo = \"reinforce\"\n[reinforce]\ngamma = 1.5\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["gamma must be in [0, 1]"],
    );
}

#[test]
fn config_infinite_target_kl() {
    let d = scratch("kl");
    let c = config(&d, "[ppo]\ntarget_kl = inf\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["target_kl must be > 0 and finite"],
    );
}

#[test]
fn config_infinite_temperature() {
    let d = scratch("temp");
    let c = config(&d, "algo = \"grpo\"\n[grpo]\ntemperature = inf\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["temperature must be > 0 and finite"],
    );
}

#[test]
fn config_infinite_learning_rate() {
    let d = scratch("lr-inf");
    let c = config(
        &d,
        "algo = \"reinforce\"\n[reinforce]\nlearning_rate = inf\n",
    );
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["learning rates must be positive and finite"],
    );
}

#[test]
fn config_network_too_large_for_memory() {
    let d = scratch("huge");
    let c = config(&d, "[ppo]\nhidden = [100000, 100000]\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["ppo.hidden", "parameters need about", "use smaller layers"],
    );
}

#[test]
fn config_zero_timesteps() {
    let d = scratch("zero-steps");
    refused(
        &d,
        &["train", "--total-timesteps", "0", "--out", "r"],
        1,
        &["total_timesteps", "at least 1"],
    );
}

#[test]
fn config_zero_checkpoint_every() {
    let d = scratch("zero-ckpt");
    let c = config(&d, "checkpoint_every = 0\n");
    refused(
        &d,
        &["train", "--config", c, "--out", "r"],
        1,
        &["checkpoint_every", "at least 1"],
    );
}

#[test]
fn config_file_missing() {
    let d = scratch("no-config");
    refused(
        &d,
        &["train", "--config", "missing.toml", "--out", "r"],
        1,
        &["reading missing.toml"],
    );
}

#[test]
fn config_lm_unknown_key() {
    let d = scratch("lm-key");
    let c = config(&d, "[model]\nwidth = 3\n");
    refused(
        &d,
        &["lm", "sft", "--config", c, "--out", "r"],
        1,
        &["c.toml", "line 2", "model.width"],
    );
}

#[test]
fn config_lm_heads_that_do_not_divide_the_width() {
    let d = scratch("lm-heads");
    let c = config(&d, "[model]\nn_heads = 3\n");
    refused(
        &d,
        &["lm", "sft", "--config", c, "--out", "r"],
        1,
        &["d_model (128) must be a positive multiple of n_heads (3)"],
    );
}

#[test]
fn config_lm_zero_checkpoint_every() {
    let d = scratch("lm-ckpt");
    let c = config(&d, "checkpoint_every = 0\n");
    refused(
        &d,
        &["lm", "sft", "--config", c, "--out", "r"],
        1,
        &["checkpoint_every must be at least 1"],
    );
}

// ---- environment ids ----

#[test]
fn env_unknown_id() {
    let d = scratch("pong");
    refused(
        &d,
        &["train", "--env", "Pong-v5", "--out", "r"],
        1,
        &["unknown environment id 'Pong-v5'", "CartPole-v1"],
    );
}

#[test]
fn env_option_of_the_wrong_type() {
    let d = scratch("size-x");
    refused(
        &d,
        &["train", "--env", "Maze-v0:size=x", "--out", "r"],
        1,
        &["size=x", "Maze-v0"],
    );
}

#[test]
fn env_option_given_twice() {
    let d = scratch("size-twice");
    refused(
        &d,
        &["train", "--env", "Maze-v0:size=10,size=12", "--out", "r"],
        1,
        &["option 'size' of Maze-v0 is given twice"],
    );
}

#[test]
fn env_maze_without_a_likely_path() {
    let d = scratch("obstacles");
    refused(
        &d,
        &[
            "train",
            "--env",
            "Maze-v0:size=30,obstacle_prob=0.6",
            "--out",
            "r",
        ],
        1,
        &["obstacle_prob=0.6", "try obstacle_prob <="],
    );
}

#[test]
fn env_unknown_option() {
    let d = scratch("colour");
    refused(
        &d,
        &["train", "--env", "Maze-v0:colour=red", "--out", "r"],
        1,
        &["Maze-v0 has no option 'colour'"],
    );
}

#[test]
fn env_unknown_frozen_lake_map() {
    let d = scratch("map");
    refused(
        &d,
        &["train", "--env", "FrozenLake-v1:map_name=5x5", "--out", "r"],
        1,
        &["map_name", "5x5", "4x4"],
    );
}

#[test]
fn env_bandit_without_arms() {
    let d = scratch("arms");
    refused(
        &d,
        &["train", "--env", "BernoulliBandit-v0:arms=0", "--out", "r"],
        1,
        &["arms=0", "at least one arm"],
    );
}

// ---- run folders and checkpoints ----

#[test]
fn run_training_again_into_an_existing_run() {
    let d = scratch("again");
    toy_run(&d);
    refused(
        &d,
        &[
            "train",
            "--algo",
            "trpo",
            "--env",
            "BernoulliBandit-v0",
            "--out",
            "run",
        ],
        1,
        &["run already holds a run", "--resume run", "--overwrite"],
    );
}

#[test]
fn run_overwrite_of_a_folder_that_is_not_a_run() {
    let d = scratch("strangers");
    std::fs::create_dir_all(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/thesis.tex"), "years of work").unwrap();
    refused(
        &d,
        &["train", "--out", "mine", "--overwrite"],
        1,
        &["holds thesis.tex", "not a run folder"],
    );
}

#[test]
fn run_out_is_a_file() {
    let d = scratch("out-file");
    std::fs::write(d.join("afile"), "x").unwrap();
    refused(
        &d,
        &["train", "--out", "afile"],
        1,
        &["afile is a file, not a folder"],
    );
}

#[test]
fn run_out_under_a_file() {
    let d = scratch("out-under-file");
    std::fs::write(d.join("afile"), "x").unwrap();
    refused(
        &d,
        &["train", "--out", "afile/run"],
        1,
        &["cannot create the run folder afile/run"],
    );
}

#[test]
fn run_locked_by_another_process() {
    let d = scratch("locked");
    toy_run(&d);
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(d.join("run/.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(d.join("run/.lock"), "4242").unwrap();
    refused(
        &d,
        &["train", "--resume", "run"],
        1,
        &["run is being written by another policy-lab process (pid 4242)"],
    );
}

#[test]
fn run_resume_without_a_checkpoint() {
    let d = scratch("no-ckpt");
    toy_run(&d);
    std::fs::remove_dir_all(d.join("run/resume")).unwrap();
    refused(
        &d,
        &["train", "--resume", "run"],
        1,
        &["has no checkpoint to resume from"],
    );
}

#[test]
fn run_resume_after_editing_the_hidden_layers() {
    let d = scratch("edit-hidden");
    toy_run(&d);
    edit_toml(
        &d.join("run/config.toml"),
        "reinforce",
        "hidden",
        toml::Value::Array(vec![32.into()]),
    );
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["`reinforce.hidden` was [64, 64], is now [32]"],
    );
}

#[test]
fn run_resume_after_editing_the_environment() {
    let d = scratch("edit-env");
    toy_run(&d);
    edit_toml(
        &d.join("run/config.toml"),
        "",
        "env",
        "FrozenLake-v1".into(),
    );
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["`env` was \"BernoulliBandit-v0\", is now \"FrozenLake-v1\""],
    );
}

#[test]
fn run_resume_after_editing_the_algorithm() {
    let d = scratch("edit-algo");
    toy_run(&d);
    edit_toml(&d.join("run/config.toml"), "", "algo", "trpo".into());
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["`algo` was \"reinforce\", is now \"trpo\""],
    );
}

#[test]
fn run_resume_after_editing_num_envs() {
    let d = scratch("edit-envs");
    toy_run(&d);
    edit_toml(
        &d.join("run/config.toml"),
        "reinforce",
        "num_envs",
        16.into(),
    );
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["`reinforce.num_envs` was 8, is now 16"],
    );
}

#[test]
fn run_truncated_policy() {
    let d = scratch("policy-cut");
    toy_run(&d);
    truncate(&d.join("run/policy.mpk"));
    refused(
        &d,
        &["eval", "run"],
        1,
        &["run/policy.mpk is damaged or not a policy-lab checkpoint"],
    );
}

#[test]
fn run_truncated_networks() {
    let d = scratch("networks-cut");
    toy_run(&d);
    truncate(&d.join("run/resume/networks.mpk"));
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["networks.mpk is damaged"],
    );
}

#[test]
fn run_garbage_state() {
    let d = scratch("state");
    toy_run(&d);
    std::fs::write(d.join("run/resume/state.json"), "{not json").unwrap();
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["resume/state.json is not valid"],
    );
}

#[test]
fn run_bad_metrics_line() {
    let d = scratch("metrics-line");
    toy_run(&d);
    edit_file(&d.join("run/metrics.jsonl"), |t| {
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines[1] = "{broken".into();
        lines.join("\n") + "\n"
    });
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["metrics.jsonl line 2", "not a row of metrics"],
    );
}

#[test]
fn run_bad_metrics_line_in_plot() {
    let d = scratch("plot-line");
    toy_run(&d);
    edit_file(&d.join("run/metrics.jsonl"), |t| {
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines[1] = "{broken".into();
        lines.join("\n") + "\n"
    });
    refused(
        &d,
        &["plot", "run", "--out", "c"],
        1,
        &["metrics.jsonl line 2", "not a row of metrics"],
    );
}

#[test]
fn run_cut_metrics() {
    let d = scratch("metrics-cut");
    toy_run(&d);
    std::fs::write(d.join("run/metrics.jsonl"), "").unwrap();
    refused(
        &d,
        &["train", "--resume", "run", "--total-timesteps", "2048"],
        1,
        &["the log was cut"],
    );
}

#[test]
fn run_policy_of_another_shape() {
    let d = scratch("shape");
    toy_run(&d);
    edit_toml(
        &d.join("run/config.toml"),
        "reinforce",
        "hidden",
        toml::Value::Array(vec![32.into()]),
    );
    refused(&d, &["eval", "run"], 1, &["saved by another architecture"]);
}

// ---- language-model files ----

#[test]
fn lm_model_json_missing_a_field() {
    let d = scratch("lm-field");
    lm_run(&d);
    edit_file(&d.join("sft/model/model.json"), |t| {
        t.replacen("\"d_ff\"", "\"d_fff\"", 1)
    });
    refused(
        &d,
        &["lm", "eval", "sft"],
        1,
        &["sft/model/model.json is not a model description", "d_ff"],
    );
}

#[test]
fn lm_model_json_edited_heads() {
    let d = scratch("lm-edit-heads");
    lm_run(&d);
    edit_file(&d.join("sft/model/model.json"), |t| {
        t.replacen("\"n_heads\": 2", "\"n_heads\": 4", 1)
    });
    refused(
        &d,
        &["lm", "eval", "sft"],
        1,
        &["model.json was edited after the weights were saved"],
    );
}

#[test]
fn lm_model_json_edited_width() {
    let d = scratch("lm-edit-width");
    lm_run(&d);
    edit_file(&d.join("sft/model/model.json"), |t| {
        t.replacen("\"d_ff\": 32", "\"d_ff\": 64", 1)
    });
    refused(
        &d,
        &["lm", "eval", "sft"],
        1,
        &[
            "model.mpk: weight tensor",
            "the weights were saved for another shape",
        ],
    );
}

#[test]
fn lm_truncated_weights() {
    let d = scratch("lm-cut");
    lm_run(&d);
    truncate(&d.join("sft/model/model.mpk"));
    refused(
        &d,
        &["lm", "eval", "sft"],
        1,
        &["sft/model/model.mpk is damaged"],
    );
}

#[test]
fn lm_garbage_tokenizer() {
    let d = scratch("lm-tok");
    lm_run(&d);
    std::fs::write(d.join("sft/model/tokenizer.json"), "[]").unwrap();
    refused(&d, &["lm", "eval", "sft"], 1, &["sft/model/tokenizer.json"]);
}

#[test]
fn lm_training_again_into_an_existing_run() {
    let d = scratch("lm-again");
    lm_run(&d);
    refused(
        &d,
        &["lm", "sft", "--config", "c.toml", "--out", "sft"],
        1,
        &["already holds a run", "--overwrite"],
    );
}

#[test]
fn lm_resume_after_an_edit() {
    let d = scratch("lm-resume-edit");
    lm_run(&d);
    edit_toml(&d.join("sft/config.toml"), "model", "d_model", 32.into());
    refused(
        &d,
        &["lm", "sft", "--resume", "sft"],
        1,
        &["`model.d_model` was 16, is now 32"],
    );
}

#[test]
fn hf_zero_attention_heads() {
    let d = scratch("hf-heads");
    hf_copy(&d, |c| c["num_attention_heads"] = 0.into());
    refused(
        &d,
        &["lm", "eval", "hf"],
        1,
        &["num_attention_heads in config.json is 0"],
    );
}

#[test]
fn hf_zero_key_value_heads() {
    let d = scratch("hf-kv0");
    hf_copy(&d, |c| c["num_key_value_heads"] = 0.into());
    refused(
        &d,
        &["lm", "eval", "hf"],
        1,
        &["n_kv_heads (0) must be at least 1 and divide n_heads"],
    );
}

#[test]
fn hf_key_value_heads_not_a_divisor() {
    let d = scratch("hf-kv3");
    hf_copy(&d, |c| c["num_key_value_heads"] = 3.into());
    refused(
        &d,
        &["lm", "eval", "hf"],
        1,
        &["n_kv_heads (3) must be at least 1 and divide n_heads"],
    );
}

#[test]
fn hf_negative_rope_theta() {
    let d = scratch("hf-rope");
    hf_copy(&d, |c| c["rope_parameters"]["rope_theta"] = (-1.0).into());
    refused(
        &d,
        &["lm", "eval", "hf"],
        1,
        &["rope_theta is -1; it must be positive and finite"],
    );
}

#[test]
fn hf_eos_outside_the_vocabulary() {
    let d = scratch("hf-eos");
    hf_copy(&d, |c| c["eos_token_id"] = 99999.into());
    refused(
        &d,
        &["lm", "eval", "hf"],
        1,
        &["eos_token_id 99999 in config.json is not a token"],
    );
}

#[test]
fn hf_truncated_safetensors() {
    let d = scratch("hf-cut");
    let hf = hf_copy(&d, |_| {});
    truncate(&hf.join("model.safetensors"));
    refused(&d, &["lm", "eval", "hf"], 1, &["model.safetensors"]);
}

#[test]
fn hf_garbage_tokenizer() {
    let d = scratch("hf-tok");
    let hf = hf_copy(&d, |_| {});
    std::fs::write(hf.join("tokenizer.json"), "{").unwrap();
    refused(&d, &["lm", "eval", "hf"], 1, &["tokenizer.json"]);
}

#[test]
fn hf_malformed_config() {
    let d = scratch("hf-config");
    let hf = hf_copy(&d, |_| {});
    std::fs::write(hf.join("config.json"), "{\"model_type\": ").unwrap();
    refused(&d, &["lm", "eval", "hf"], 1, &["config.json"]);
}

// ---- the file system ----

#[test]
fn fs_full_disk_while_checkpointing() {
    // A 96 KiB tmpfs: the run folder fits, its first checkpoint does not. Needs root (as CI
    // and the developers' machines are); elsewhere the mount is refused and the case says so.
    let d = scratch("full");
    let small = d.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96k", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "this case needs `mount -t tmpfs` (root)");
    let out = bin(&d)
        .args([
            "train",
            "--algo",
            "ppo",
            "--env",
            "CartPole-v1",
            "--total-timesteps",
            "4096",
            "--out",
            "small/run",
        ])
        .output()
        .unwrap();
    let _ = Command::new("umount").arg(&small).status();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("small/run/"),
        "{err}"
    );
}

#[test]
fn fs_closed_pipe_ends_quietly() {
    let d = scratch("pipe");
    let mut child = bin(&d)
        .args([
            "play",
            "--env",
            "Maze-v0",
            "--render",
            "ansi",
            "--episodes",
            "50",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then close the pipe, as `| head -c 1` does.
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    stdout.read_exact(&mut one).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("Broken pipe"), "{err}");
    assert!(out.status.code() != Some(1), "{err}");
}

// ---- kill -9 and Ctrl-C: a run stopped anywhere goes on exactly ----

/// The rows of `metrics.jsonl` without the clock (`time`, `SPS`).
fn rows(run: &Path) -> Vec<BTreeMap<String, serde_json::Value>> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut row: BTreeMap<String, serde_json::Value> = serde_json::from_str(l).unwrap();
            row.remove("time");
            row.remove("SPS");
            row
        })
        .collect()
}

/// Starts `args` in `dir`, waits until `run/metrics.jsonl` has `at` rows (or the process
/// ends), then sends `signal`; returns the process's output.
fn stop_at(dir: &Path, args: &[&str], run: &Path, at: usize, signal: i32) -> Output {
    let mut child = bin(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        let n = std::fs::read_to_string(run.join("metrics.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= at || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    child.wait_with_output().unwrap()
}

/// Runs `args` whole into `dir/whole`, and again into `dir/broken` killed with -9 once it
/// has logged `at` rows, then resumes it with `resume`: the resumed log equals the whole one
/// (or, killed before the first checkpoint, the resume says there is none).
fn killed_and_resumed(dir: &Path, args: &[&str], resume: &[&str], at: usize) {
    let with_out = |out: &str| -> Vec<String> {
        args.iter()
            .map(|a| a.to_string())
            .chain(["--out".into(), out.into()])
            .collect()
    };
    let whole: Vec<String> = with_out("whole");
    ok(dir, &whole.iter().map(String::as_str).collect::<Vec<_>>());
    let broken: Vec<String> = with_out("broken");
    let broken: Vec<&str> = broken.iter().map(String::as_str).collect();
    let killed = stop_at(dir, &broken, &dir.join("broken"), at, libc::SIGKILL);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        killed.status.signal(),
        Some(libc::SIGKILL),
        "killed mid-run at row {at}"
    );
    let resumed = bin(dir).args(resume).arg("broken").output().unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    if !dir.join("broken/resume").exists() && !dir.join("broken/resume.old").exists() {
        assert!(err.contains("has no checkpoint to resume from"), "{err}");
        return;
    }
    assert!(resumed.status.success(), "{err}");
    assert_eq!(
        rows(&dir.join("broken")),
        rows(&dir.join("whole")),
        "killed at row {at}"
    );
}

/// A seeded choice of where to kill, different for each case of a property.
fn random_row(case: u64, most: usize) -> usize {
    use policy_lab::rand::{RngExt, SeedableRng};
    let mut rng = policy_lab::rand::rngs::StdRng::seed_from_u64(case);
    rng.random_range(1..=most)
}

const TOY: &[&str] = &[
    "train",
    "--algo",
    "ppo",
    "--env",
    "CartPole-v1",
    "--total-timesteps",
    "2048",
    "--config",
    "k.toml",
];

fn toy_kill_config(dir: &Path) {
    std::fs::write(
        dir.join("k.toml"),
        "checkpoint_every = 3\n[ppo]\nnum_steps = 32\n",
    )
    .unwrap();
}

#[test]
fn kill_9_at_a_random_iteration_then_resume_is_exact_toy() {
    // The property over three random kill points (16 iterations, checkpoints every 3).
    for case in 0..3 {
        let d = scratch(&format!("kill-toy-{case}"));
        toy_kill_config(&d);
        killed_and_resumed(&d, TOY, &["train", "--resume"], random_row(case, 15));
    }
}

#[test]
fn kill_9_at_a_random_step_then_resume_is_exact_lm_sft() {
    for case in 0..2 {
        let d = scratch(&format!("kill-sft-{case}"));
        config(&d, &TINY_LM.replace("steps = 4", "steps = 8"));
        let sft = ["lm", "sft", "--config", "c.toml"];
        killed_and_resumed(
            &d,
            &sft,
            &["lm", "sft", "--resume"],
            random_row(10 + case, 7),
        );
    }
}

#[test]
fn kill_9_at_a_random_step_then_resume_is_exact_lm_reward() {
    let d = scratch("kill-reward");
    let tiny = "checkpoint_every = 2\n[task]\nop = \"add\"\ndigits = 1\ntest_size = 10\n\
        [model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nd_ff = 32\nmax_seq_len = 12\n\
        [reward]\nsteps = 8\nbatch_size = 4\neval_every = 2\nheld_out_pairs = 16\n";
    config(&d, tiny);
    let reward = ["lm", "reward", "--config", "c.toml"];
    killed_and_resumed(
        &d,
        &reward,
        &["lm", "reward", "--resume"],
        random_row(40, 7),
    );
}

#[test]
fn kill_9_at_a_random_iteration_then_resume_is_exact_lm_grpo_and_ppo() {
    let d = scratch("kill-rl");
    lm_run(&d);
    for (i, algo) in ["grpo", "ppo"].into_iter().enumerate() {
        let dir = d.join(algo);
        std::fs::create_dir_all(&dir).unwrap();
        let own = match algo {
            "grpo" => "[grpo]\nnum_groups = 2\nnum_generations = 4\n",
            _ => "[ppo]\nnum_prompts = 8\n",
        };
        let rl_config = format!("{TINY_TASK}[rl]\niterations = 6\neval_every = 3\n{own}");
        config(&dir, &rl_config);
        let init = d.join("sft").display().to_string();
        let args = ["lm", algo, "--config", "c.toml", "--init", &init];
        let resume = ["lm", algo, "--resume"];
        // Rows: the start, then one per iteration.
        killed_and_resumed(&dir, &args, &resume, random_row(20 + i as u64, 6));
    }
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_130_toy() {
    let d = scratch("ctrl-c-toy");
    toy_kill_config(&d);
    let whole: Vec<&str> = TOY.iter().copied().chain(["--out", "whole"]).collect();
    ok(&d, &whole);
    let args: Vec<&str> = TOY.iter().copied().chain(["--out", "run"]).collect();
    // Stopped after row 2, between checkpoints (every 3).
    let out = stop_at(&d, &args, &d.join("run"), 2, libc::SIGINT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("a checkpoint was written. Resume with `policy-lab train --resume run`"),
        "{err}"
    );
    let done = rows(&d.join("run")).len();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("run/resume/run.json")).unwrap()).unwrap();
    assert_eq!(
        state["iterations"].as_u64(),
        Some(done as u64),
        "the checkpoint is the last row"
    );
    ok(&d, &["train", "--resume", "run"]);
    assert_eq!(rows(&d.join("run")), rows(&d.join("whole")));
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_130_lm() {
    let d = scratch("ctrl-c-lm");
    config(
        &d,
        &TINY_LM
            .replace("steps = 4", "steps = 12")
            .replace("checkpoint_every = 2", "checkpoint_every = 5"),
    );
    ok(&d, &["lm", "sft", "--config", "c.toml", "--out", "whole"]);
    let out = stop_at(
        &d,
        &["lm", "sft", "--config", "c.toml", "--out", "run"],
        &d.join("run"),
        2,
        libc::SIGINT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("Resume with `policy-lab lm sft --resume run`"),
        "{err}"
    );
    ok(&d, &["lm", "sft", "--resume", "run"]);
    assert_eq!(rows(&d.join("run")), rows(&d.join("whole")));
}

#[test]
fn a_second_ctrl_c_aborts_at_once() {
    let d = scratch("ctrl-c-twice");
    let args = [
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--total-timesteps",
        "10000000",
        "--out",
        "run",
    ];
    let mut child = bin(&d)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while rows_so_far(&d.join("run")) < 1 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
}

fn rows_so_far(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn kill_9_at_a_random_iteration_then_resume_is_exact_lm_data_parallel() {
    // Two CPU peers: each saves its own prompt stream and generator at a checkpoint.
    let d = scratch("kill-dp");
    lm_run(&d);
    let dir = d.join("dp");
    std::fs::create_dir_all(&dir).unwrap();
    let rl_config = format!(
        "{TINY_TASK}[rl]\niterations = 6\neval_every = 3\n[grpo]\nnum_groups = 2\nnum_generations = 4\n"
    );
    config(&dir, &rl_config);
    let init = d.join("sft").display().to_string();
    let args = [
        "lm",
        "grpo",
        "--config",
        "c.toml",
        "--init",
        &init,
        "--devices",
        "2",
    ];
    killed_and_resumed(&dir, &args, &["lm", "grpo", "--resume"], random_row(30, 6));
}

#[test]
fn cli_lm_nodes_refuses_a_bad_place() {
    let d = scratch("nodes");
    let node = |rank: &str, orchestrator: &str| {
        [
            "lm",
            "grpo",
            "--init",
            "somewhere",
            "--nodes",
            "2",
            "--node-rank",
            rank,
            "--orchestrator",
            orchestrator,
            "--node-address",
            "ws://127.0.0.1:3001",
        ]
        .map(String::from)
    };
    let refuse = |args: [String; 12], needle: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&d, &args, 1, &[needle]);
    };
    refuse(
        node("2", "ws://127.0.0.1:3000"),
        "rl.nodes: rank (2) must be below count (2)",
    );
    refuse(
        node("0", "127.0.0.1:3000"),
        "rl.nodes.orchestrator = \"127.0.0.1:3000\": expected ws://HOST:PORT",
    );
    let mut ppo = node("0", "ws://127.0.0.1:3000");
    ppo[1] = "ppo".into();
    refuse(ppo, "implemented for GRPO only");
    // --nodes needs the node's place: clap refuses before anything runs.
    refused(&d, &["lm", "grpo", "--nodes", "2"], 2, &["--node-rank"]);
}
