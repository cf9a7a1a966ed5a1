//! Data-parallel GRPO across processes, as across machines: burn's global orchestrator
//! (`policy-lab orchestrator`) and two node processes on loopback, each one CPU device.
//!
//! 1. The gradient: two node processes, each with half of one batch's groups, get the
//!    gradient that one device gets from the whole batch (within 1e-6), for a sequence-mean
//!    (`grpo`) and a token-mean (`dapo`) loss, as `tests/lm_data_parallel.rs` checks for
//!    threads.
//! 2. The CLI: `policy-lab lm grpo --nodes 2 ...` on two processes, from a Hugging Face
//!    checkpoint (whose parameter ids are random in each process), logs the same rows on both
//!    nodes as `--devices 2` in one process, and ends with equal models.
//!
//! The node processes of part 1 are this test binary again (the environment variable
//! `POLICY_LAB_NODE_ROLE` says which node), so that each is a real process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::module::Module;
use policy_lab::algos::grpo::LossType;
use policy_lab::algos::grpo_lm::GrpoLm;
use policy_lab::algos::grpo_parallel::{DataParallel, Nodes};
use policy_lab::core::flat::flat_grads;
use policy_lab::lm::task::task_tokenizer;

mod common;
use common::{batch_and_gradient, config, free_port, largest_difference, setup, B};

const ROLE: &str = "POLICY_LAB_NODE_ROLE";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("policy-lab-nodes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `policy-lab orchestrator --port PORT`, given half a second to listen.
fn orchestrator(port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_policy-lab"))
        .args(["orchestrator", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    child
}

/// Waits for every child at most 120 s in all; kills the ones past that. Returns each one's
/// output, or why it failed.
fn wait_all(children: Vec<Child>) -> Vec<Result<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    children
        .into_iter()
        .map(|mut child| {
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let timed_out = child.try_wait().unwrap().is_none();
            if timed_out {
                let _ = child.kill();
            }
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            match (timed_out, out.status.success()) {
                (false, true) => Ok(text),
                (true, _) => Err(format!("timed out after 120 s:\n{text}")),
                (false, false) => Err(format!("failed ({}):\n{text}", out.status)),
            }
        })
        .collect()
}

/// Node `rank` of 2: its half of the batch (2 groups), its gradient averaged with the other
/// node's through the orchestrator, written to `out` as JSON, for each loss type.
fn node(rank: u32, orchestrator: u16, address: u16, out: &Path) {
    let s = setup();
    let nodes = Nodes {
        count: 2,
        rank,
        orchestrator: format!("ws://127.0.0.1:{orchestrator}"),
        address: format!("ws://127.0.0.1:{address}"),
    };
    let mut all = Vec::new();
    for loss_type in [LossType::Grpo, LossType::Dapo] {
        let (rollout, _) = batch_and_gradient(&s, loss_type);
        let peers = DataParallel::<B>::new(vec![Default::default()])
            .unwrap()
            .across(nodes.clone())
            .unwrap();
        let got = peers
            .run(|peer, device| {
                let k = peers.global(peer);
                let learner = GrpoLm::new(
                    config(loss_type, 2),
                    s.max_len,
                    // As the run layer does: the parameters numbered alike in every process.
                    policy_lab::algos::grpo_parallel::number_parameters(
                        s.model.clone().fork(&device),
                    ),
                    s.env.clone(),
                    task_tokenizer(),
                    1,
                )?
                .with_peer(peer);
                let (grads, _) = learner.gradients(&rollout.rows(k * 8..(k + 1) * 8))?;
                Ok(flat_grads(&learner.model, &grads))
            })
            .unwrap();
        all.push(got[0].clone());
    }
    std::fs::write(out, serde_json::to_string(&all).unwrap()).unwrap();
}

/// The role this process was started for, if any (the child processes).
#[test]
fn node_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // the parent test run: nothing to do here
    };
    let parts: Vec<&str> = role.split(',').collect();
    let (rank, orchestrator, address, out) = (
        parts[0].parse().unwrap(),
        parts[1].parse().unwrap(),
        parts[2].parse().unwrap(),
        Path::new(parts[3]),
    );
    match parts.get(4) {
        None => node(rank, orchestrator, address, out),
        Some(&"fail") => failing_node(rank, orchestrator, address, out),
        Some(other) => panic!("unknown role {other}"),
    }
}

/// Node `rank` of 2 in a 3-iteration run driven as every run is (`run::drive`), with a
/// checkpoint after each iteration, where node 1 cannot finish its first checkpoint (writing
/// the model users read fails): writes how the run ended (`ok` or the error) to `out`.
fn failing_node(rank: u32, orchestrator: u16, address: u16, out: &Path) {
    use policy_lab::algos::grpo_parallel::{GrpoPeers, Peers};
    use policy_lab::run::{drive, Budget, Drive, Progress, RunFolder, RunState, Start};
    let s = setup();
    let peers = Peers {
        config: config(LossType::Grpo, 2),
        max_completion_length: s.max_len,
        model: s.model,
        env: s.env,
        tokenizer: task_tokenizer(),
        seed: 1,
        devices: vec![Default::default()],
        nodes: Some(Nodes {
            count: 2,
            rank,
            orchestrator: format!("ws://127.0.0.1:{orchestrator}"),
            address: format!("ws://127.0.0.1:{address}"),
        }),
    };
    let ended = (|| -> anyhow::Result<()> {
        let mut learner = GrpoPeers::start(peers)?;
        let run = out.with_extension("run");
        let mut folder = RunFolder::open(&run, Start::New, "", "(no resume)".into())?;
        let mut sink = std::io::sink();
        let mut progress = Progress::new("grpo", 3, "iterations", 1, 3, &mut sink);
        drive(
            &mut learner,
            &mut folder,
            (RunState::default(), Vec::new()),
            Drive::new("", 1, Budget::Iterations(3)).save_policy(|_, _| match rank {
                1 => anyhow::bail!("no space left on the device (injected)"),
                _ => Ok(()),
            }),
            &mut progress,
        )?;
        Ok(())
    })();
    let text = match ended {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{e:#}"),
    };
    std::fs::write(out, text).unwrap();
}

/// This test binary again, as node `rank` (the role `node_role` reads), writing to `out`;
/// `mode` is "" (the gradient) or ",fail".
fn this_test_as_node(rank: u32, orchestrator: u16, out: &Path, mode: &str) -> Command {
    let mut node = Command::new(std::env::current_exe().unwrap());
    node.args(["node_role", "--exact", "--nocapture", "--test-threads", "1"])
        .env(
            ROLE,
            format!(
                "{rank},{orchestrator},{},{}{mode}",
                free_port(),
                out.display()
            ),
        );
    node
}

#[test]
fn a_node_that_fails_stops_the_other_with_an_error() {
    let dir = scratch("failing");
    let port = free_port();
    let node = |rank| this_test_as_node(rank, port, &dir.join(format!("node{rank}.txt")), ",fail");
    // Both end (no node is left waiting at an all-reduce), each with an error that says why.
    two_nodes(port, [node(0), node(1)]);
    let ended = |rank: u32| std::fs::read_to_string(dir.join(format!("node{rank}.txt"))).unwrap();
    assert!(
        ended(1).contains("no space left on the device (injected)"),
        "{}",
        ended(1)
    );
    assert!(
        ended(0).contains("stopped after iteration 1: another node failed"),
        "node 0 ended with: {}",
        ended(0)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_node_processes_take_the_single_device_gradient() {
    let dir = scratch("gradient");
    let port = free_port();
    let node = |rank| this_test_as_node(rank, port, &dir.join(format!("node{rank}.json")), "");
    two_nodes(port, [node(0), node(1)]);
    let s = setup();
    for (i, loss_type) in [LossType::Grpo, LossType::Dapo].into_iter().enumerate() {
        let (_, want) = batch_and_gradient(&s, loss_type);
        for rank in 0..2 {
            let text = std::fs::read_to_string(dir.join(format!("node{rank}.json"))).unwrap();
            let got: Vec<Vec<f32>> = serde_json::from_str(&text).unwrap();
            let (worst, size) = largest_difference(&got[i], &want);
            println!(
                "{loss_type:?} node {rank}: largest gradient difference {worst:e} (largest gradient {size:e})"
            );
            assert!(size > 1e-3, "the loss must have a gradient");
            assert!(worst <= 1e-6, "{loss_type:?} node {rank}: {worst}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `lm grpo` flags of part 2's runs.
fn grpo_args(out: &Path) -> Vec<String> {
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny-qwen2");
    [
        "lm",
        "grpo",
        "--task",
        "add:2",
        "--init",
        init.to_str().unwrap(),
        "--iterations",
        "2",
        "--config",
        out.parent().unwrap().join("small.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// metrics.jsonl's rows without the wall-clock columns.
fn rows(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut row: serde_json::Value = serde_json::from_str(l).unwrap();
            let row_mut = row.as_object_mut().unwrap();
            row_mut.remove("time");
            row_mut.remove("SPS");
            row
        })
        .collect()
}

#[test]
fn lm_grpo_on_two_nodes_logs_what_two_devices_log() {
    let dir = scratch("cli");
    std::fs::write(
        dir.join("small.toml"),
        "[task]\ntest_size = 8\n[grpo]\nnum_groups = 4\nnum_generations = 2\n\
         dynamic_sampling = false\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_policy-lab");

    // One process, two devices.
    let threads = dir.join("threads");
    let mut args = grpo_args(&threads);
    args.extend(["--devices".into(), "2".into()]);
    let out = Command::new(bin).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two processes, one device each, through the orchestrator.
    let port = free_port();
    let node_args = |rank: u32| {
        let mut args = grpo_args(&dir.join(format!("node{rank}")));
        args.extend([
            "--nodes".to_string(),
            "2".into(),
            "--node-rank".into(),
            rank.to_string(),
            "--orchestrator".into(),
            format!("ws://127.0.0.1:{port}"),
            "--node-address".into(),
            format!("ws://127.0.0.1:{}", free_port()),
        ]);
        args
    };
    let cli = |args: Vec<String>| {
        let mut node = Command::new(bin);
        node.args(args);
        node
    };
    two_nodes(port, [cli(node_args(0)), cli(node_args(1))]);
    let want = rows(&threads);
    // The start row and one per iteration; 4 groups of 2 completions each iteration.
    assert_eq!(want.len(), 3);
    assert_eq!(want[2]["completions_seen"], 16.0);
    for rank in 0..2 {
        let run = dir.join(format!("node{rank}"));
        assert_eq!(rows(&run), want, "node {rank}'s metrics");
        for peer in 0..2 {
            let saved = run.join(format!("resume/peer{peer}"));
            assert_eq!(saved.exists(), peer == rank, "{}", saved.display());
        }
    }
    let model = |run: &str| std::fs::read(dir.join(run).join("model/model.mpk")).unwrap();
    assert_eq!(model("node0"), model("node1"), "the replicas differ");

    // One more iteration, resumed on both nodes from their checkpoints (with their saved
    // [rl.nodes]), against the one-process run resumed the same way.
    let resume = |run: &Path| {
        [
            "lm",
            "grpo",
            "--resume",
            run.to_str().unwrap(),
            "--iterations",
            "3",
        ]
        .map(String::from)
        .to_vec()
    };
    let out = Command::new(bin).args(resume(&threads)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(dir.join("node0/config.toml")).unwrap();
    let port: u16 = saved
        .split("orchestrator = \"ws://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("[rl.nodes] in the saved config")
        .parse()
        .unwrap();
    two_nodes(
        port,
        [
            cli(resume(&dir.join("node0"))),
            cli(resume(&dir.join("node1"))),
        ],
    );
    let want = rows(&threads);
    assert_eq!(want.len(), 4);
    for rank in 0..2 {
        assert_eq!(
            rows(&dir.join(format!("node{rank}"))),
            want,
            "node {rank} resumed"
        );
    }
    assert_eq!(
        model("node0"),
        model("node1"),
        "the resumed replicas differ"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An orchestrator on `port`, then node 0 and node 1; panics with a node's output if it
/// fails or takes over 120 s.
fn two_nodes(port: u16, nodes: [Command; 2]) {
    let mut orch = orchestrator(port);
    let nodes: Vec<Child> = nodes
        .into_iter()
        .map(|mut node| {
            node.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outcomes = wait_all(nodes);
    let _ = orch.kill();
    let _ = orch.wait();
    for (rank, outcome) in outcomes.iter().enumerate() {
        if let Err(why) = outcome {
            panic!("node {rank}: {why}");
        }
    }
}
