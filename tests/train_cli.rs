//! `policy-lab train`, `eval` and `plot`, and the clear errors for bad input.

use std::process::Command;

use policy_lab::run::train::{load_policy, train, Algo, RunConfig};
use policy_lab::run::Start;

type Cpu = policy_lab::backend::Cpu;

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("policy-lab-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn err(text: &str) -> String {
    format!("{:#}", RunConfig::from_toml(text).unwrap_err())
}

#[test]
fn bad_configs_are_refused_with_a_clear_message() {
    assert!(err("algo = \"ppo\"\nlerning_rate = 0.1").contains("unknown field `lerning_rate`"));
    assert!(err("[ppo]\nclip = 0.1").contains("unknown field `clip`"));
    assert!(err("algo = \"a2c\"").contains("unknown variant `a2c`"));
    assert!(err("[ppo]\nlearning_rate = -0.001").contains("ppo: learning_rate must be positive"));
    assert!(err("[ppo]\nclip_coef = 0.0").contains("ppo: clip_coef must be > 0"));
    assert!(err("algo = \"grpo\"\n[grpo]\nnum_generations = 1")
        .contains("num_generations (G) must be at least 2"));
    assert!(err("algo = \"trpo\"\n[trpo]\ntarget_kl = 0.0").contains("trpo: target_kl must be > 0"));
    assert!(
        err("algo = \"reinforce\"\n[reinforce]\ngamma = 1.5").contains("gamma must be in [0, 1]")
    );
    assert!(err("env = \"Pong-v5\"").contains("unknown environment id 'Pong-v5'"));
    assert!(
        err("env = \"Maze-v0:size=x\"").contains("option size=x of Maze-v0 is not a valid value")
    );
    assert!(err("device = \"tpu\"").contains("unknown variant `tpu`"));
    // A good file round-trips.
    let config = RunConfig {
        algo: Algo::Trpo,
        env: "FrozenLake-v1".into(),
        ..RunConfig::default()
    };
    assert_eq!(RunConfig::from_toml(&config.to_toml()).unwrap(), config);
}

#[test]
fn a_run_writes_its_folder_and_evaluates() {
    let out = tmp("run");
    let config = RunConfig {
        algo: Algo::Reinforce,
        env: "BernoulliBandit-v0".into(),
        total_timesteps: 2048,
        eval_episodes: 5,
        ..RunConfig::default()
    };
    let summary = train::<Cpu>(
        &config,
        Default::default(),
        &out,
        Start::New,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(summary.iterations, 4);
    for f in [
        "config.toml",
        "metrics.jsonl",
        "metrics.csv",
        "policy.mpk",
        "eval.json",
    ] {
        assert!(out.join(f).exists(), "{f} is missing");
    }
    assert!(
        !out.join("policy.tmp.mpk").exists(),
        "no temporary file is left behind"
    );
    let jsonl = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 4);
    assert!(jsonl
        .lines()
        .all(|l| l.contains("\"policy_loss\"") && l.contains("\"global_step\"")));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .split(',')
        .any(|c| c == "episodic_return"));
    let (loaded, policy) =
        load_policy::<policy_lab::backend::Cpu>(&out, &Default::default()).unwrap();
    assert_eq!(loaded, config);
    assert_eq!(
        policy_lab::core::flat::flat_params(&policy).len(),
        64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    );

    // Same seed, same machine: the same numbers, bit for bit.
    let again = train::<Cpu>(
        &config,
        Default::default(),
        &tmp("run-again"),
        Start::New,
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(
        again
            .history
            .iter()
            .map(|m| m["policy_loss"])
            .collect::<Vec<_>>(),
        summary
            .history
            .iter()
            .map(|m| m["policy_loss"])
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused() {
    let out = tmp("arch");
    let config = RunConfig {
        algo: Algo::Grpo,
        env: "BernoulliBandit-v0".into(),
        total_timesteps: 64,
        eval_episodes: 1,
        ..RunConfig::default()
    };
    train::<Cpu>(
        &config,
        Default::default(),
        &out,
        Start::New,
        &mut Vec::new(),
    )
    .unwrap();
    let mut other = config.clone();
    other.grpo.hidden = vec![32];
    std::fs::write(out.join("config.toml"), other.to_toml()).unwrap();
    let e = format!(
        "{:#}",
        load_policy::<policy_lab::backend::Cpu>(&out, &Default::default()).unwrap_err()
    );
    assert!(e.contains("saved by another architecture"), "{e}");
}

#[test]
fn a_run_that_diverges_at_its_first_update_says_no_checkpoint_exists() {
    let out = tmp("nan");
    // A critic learning rate of 1e30 blows the value loss up at the first update.
    let mut config = RunConfig {
        algo: Algo::Reinforce,
        env: "CartPole-v1".into(),
        total_timesteps: 100_000,
        checkpoint_every: 1,
        ..RunConfig::default()
    };
    config.reinforce.vf_learning_rate = 1e30;
    let result = train::<Cpu>(
        &config,
        Default::default(),
        &out,
        Start::New,
        &mut Vec::new(),
    );
    let e = match result {
        Ok(_) => panic!("the run must stop"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.starts_with("update 1 produced value_loss = "), "{e}");
    // On c4cb50f it named "the last good checkpoint" that was never written.
    assert!(e.contains("No checkpoint was written yet"), "{e}");
    assert!(!out.join("policy.mpk").exists() && !out.join("resume").exists());
}

#[test]
fn the_binary_trains_evaluates_and_plots() {
    let bin = env!("CARGO_BIN_EXE_policy-lab");
    let out = tmp("bin");
    let run = Command::new(bin)
        .args([
            "train",
            "--algo",
            "ppo",
            "--env",
            "Maze-v0:size=4",
            "--total-timesteps",
            "2048",
            "--seed",
            "3",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let progress = String::from_utf8_lossy(&run.stderr);
    assert!(progress.contains("100% 2048/2048 steps"), "{progress}");
    let eval = Command::new(bin)
        .arg("eval")
        .arg(&out)
        .args(["--episodes", "3"])
        .output()
        .unwrap();
    assert!(eval.status.success() && String::from_utf8_lossy(&eval.stdout).contains("mean return"));
    let plot = Command::new(bin)
        .arg("plot")
        .arg(&out)
        .arg("--out")
        .arg(out.join("curves"))
        .output()
        .unwrap();
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    assert_eq!(
        &std::fs::read(out.join("curves.png")).unwrap()[..4],
        b"\x89PNG"
    );

    let bad = Command::new(bin)
        .args(["train", "--algo", "a2c"])
        .output()
        .unwrap();
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("invalid value 'a2c'")
    );
    let bad = Command::new(bin)
        .args(["train", "--env", "Pong-v5", "--out"])
        .arg(tmp("pong"))
        .output()
        .unwrap();
    assert!(
        !bad.status.success()
            && String::from_utf8_lossy(&bad.stderr).contains("unknown environment id 'Pong-v5'")
    );
    let bad = Command::new(bin)
        .args(["train", "--device", "wgpu", "--out"])
        .arg(tmp("wgpu"))
        .output()
        .unwrap();
    if !cfg!(feature = "wgpu") {
        assert!(String::from_utf8_lossy(&bad.stderr).contains("rebuild with `--features wgpu`"));
    }
}

/// A progress writer that fails once `lines` lines are written: the run dies mid-way, as if
/// it were killed.
struct DiesAfter {
    lines: usize,
}

impl std::io::Write for DiesAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.lines == 0 {
            return Err(std::io::Error::other("killed"));
        }
        self.lines -= buf.iter().filter(|b| **b == b'\n').count();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The metrics of a run folder, without the wall-clock ones.
fn logged(run: &std::path::Path) -> Vec<std::collections::BTreeMap<String, f64>> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut m: std::collections::BTreeMap<String, f64> = serde_json::from_str(l).unwrap();
            m.remove("time");
            m.remove("SPS");
            m
        })
        .collect()
}

#[test]
fn a_resumed_run_gives_the_same_numbers_as_one_that_never_stopped() {
    let runs = [
        (Algo::Ppo, "CartPole-v1", 1024),
        (Algo::Trpo, "CartPole-v1", 1024),
        (Algo::Reinforce, "Maze-v0:size=5", 1024),
        (Algo::Grpo, "FrozenLake-v1", 1500),
    ];
    for (algo, env, total_timesteps) in runs {
        let mut config = RunConfig {
            algo,
            env: env.into(),
            seed: 5,
            total_timesteps,
            checkpoint_every: 2,
            eval_episodes: 3,
            ..RunConfig::default()
        };
        config.ppo.num_steps = 32;
        config.trpo.num_steps = 32;
        config.reinforce.num_steps = 16;
        config.grpo.update.num_groups = 2;
        let whole = tmp(&format!("whole-{}", algo.name()));
        let summary = train::<Cpu>(
            &config,
            Default::default(),
            &whole,
            Start::New,
            &mut Vec::new(),
        )
        .unwrap();
        assert!(
            summary.iterations >= 6,
            "{}: {}",
            algo.name(),
            summary.iterations
        );

        // Killed while printing iteration 6: metrics.jsonl has 6 lines, the checkpoint is at 4.
        let broken = tmp(&format!("broken-{}", algo.name()));
        let killed = train::<Cpu>(
            &config,
            Default::default(),
            &broken,
            Start::New,
            &mut DiesAfter { lines: 5 },
        );
        assert!(killed.is_err());
        assert_eq!(logged(&broken).len(), 6);
        let resumed = train::<Cpu>(
            &config,
            Default::default(),
            &broken,
            Start::Resume,
            &mut Vec::new(),
        )
        .unwrap();

        assert_eq!(logged(&broken), logged(&whole), "{}", algo.name());
        assert_eq!(resumed.iterations, summary.iterations);
        assert_eq!(resumed.evaluation.returns, summary.evaluation.returns);
        let params = |run: &std::path::Path| {
            let (_, policy) = load_policy::<Cpu>(run, &Default::default()).unwrap();
            policy_lab::core::flat::flat_params(&policy)
        };
        assert_eq!(params(&broken), params(&whole), "{}", algo.name());
    }
}

#[test]
fn the_binary_resumes_and_extends_a_run() {
    let bin = env!("CARGO_BIN_EXE_policy-lab");
    let out = tmp("resume-bin");
    let train = |extra: &[&str]| Command::new(bin).arg("train").args(extra).output().unwrap();
    let first = train(&[
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--total-timesteps",
        "1024",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(logged(&out).len(), 2);
    let more = train(&[
        "--resume",
        out.to_str().unwrap(),
        "--total-timesteps",
        "2048",
    ]);
    assert!(
        more.status.success(),
        "{}",
        String::from_utf8_lossy(&more.stderr)
    );
    let rows = logged(&out);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["global_step"], 2048.0);

    let conflict = train(&["--resume", out.to_str().unwrap(), "--algo", "trpo"]);
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("cannot be used with"));
    let nothing = tmp("resume-nothing");
    std::fs::create_dir_all(&nothing).unwrap();
    let missing = train(&["--resume", nothing.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("is not a run folder"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// Runs the binary with `args`; asserts success; returns (stdout, stderr).
fn cli(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_policy-lab"))
        .args(args)
        .output()
        .unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?}: {e}");
    (o, e)
}

#[test]
fn evaluation_builds_no_autodiff_graph() {
    // On c4cb50f `eval` ran the policy on the autodiff backend: each step added to a graph
    // nothing freed, and 100 CartPole episodes of a trained policy took many minutes. Bounded
    // by steps: 100 episodes of a policy that balances for a while (8192 steps of PPO).
    let out = tmp("eval-cartpole");
    let out_s = out.display().to_string();
    cli(&[
        "train",
        "--algo",
        "ppo",
        "--env",
        "CartPole-v1",
        "--total-timesteps",
        "8192",
        "--out",
        &out_s,
    ]);
    let (stdout, stderr) = cli(&["eval", &out_s, "--episodes", "100"]);
    assert!(stdout.contains("over 100 episodes"), "{stdout}");
    // Progress while it runs, and no success rate for an environment without a goal.
    assert!(stderr.contains("100/100 episodes"), "{stderr}");
    assert!(!stdout.contains("success rate"), "{stdout}");
    let (train_line, _) = cli(&["eval", &out_s, "--episodes", "1"]);
    assert!(!train_line.contains("success rate"));
}

#[test]
fn config_toml_holds_the_values_as_written() {
    // c4cb50f wrote `gamma = 0.9900000095367432`.
    let text = RunConfig::default().to_toml();
    assert!(text.contains("gamma = 0.99\n"), "{text}");
    assert!(text.contains("clip_coef = 0.2\n"), "{text}");
    assert!(!text.contains("0000000"), "{text}");
    assert_eq!(RunConfig::from_toml(&text).unwrap(), RunConfig::default());
}

#[test]
fn progress_never_passes_the_budget_and_comes_in_few_lines() {
    // c4cb50f printed a line per iteration (342 for the ladder) and GRPO's reached step
    // 111,446 of 100,000.
    let out = tmp("progress");
    let mut config = RunConfig {
        algo: Algo::Grpo,
        env: "Maze-v0:size=4".into(),
        total_timesteps: 3000,
        eval_episodes: 1,
        ..RunConfig::default()
    };
    config.grpo.update.num_groups = 2;
    let mut lines = Vec::new();
    let summary = train::<Cpu>(&config, Default::default(), &out, Start::New, &mut lines).unwrap();
    assert!(
        summary.global_step > 3000,
        "the last iteration overshoots the budget"
    );
    let text = String::from_utf8(lines).unwrap();
    assert!(text.lines().count() <= 25, "{text}");
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("100% 3000/3000 steps"),
        "{text}"
    );
}

/// The one switch of the fast CPU paths, from the command line and from the environment.
#[test]
fn kernels_off_on_the_command_line_or_in_the_environment_turns_them_off() {
    let kernels = |args: &[&str], env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_policy-lab"));
        command.args(args).env_remove("POLICY_LAB_KERNELS");
        if let Some(value) = env {
            command.env("POLICY_LAB_KERNELS", value);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split("CPU kernels ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let device = ["device", "--device", "cpu"];
    assert_eq!(kernels(&device, None), "on)");
    assert_eq!(
        kernels(&["--kernels", "off", "device", "--device", "cpu"], None),
        "off)"
    );
    assert_eq!(kernels(&device, Some("off")), "off)");
    assert_eq!(kernels(&device, Some("0")), "off)");
    // The command line wins over the environment.
    assert_eq!(
        kernels(
            &["--kernels", "on", "device", "--device", "cpu"],
            Some("off")
        ),
        "on)"
    );
}
