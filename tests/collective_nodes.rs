//! burn's collective operations across processes: a global orchestrator and two node
//! processes on loopback, each node one CPU device, doing several all-reduces in a row.
//!
//! burn 0.21.0 finished the first global all-reduce and hung on the second (its
//! `SyncService::sync` cleared a copy of its peer list); policy-lab carries the fix as a
//! `[patch]` of burn-collective (`patches/burn-collective/PATCH.md`). This is its regression
//! test: without the patch, the second all-reduce never returns and the nodes time out.
//!
//! The test re-runs its own binary as the orchestrator and as each node (the environment
//! variable `POLICY_LAB_COLLECTIVE_ROLE` says which), so that each is a real process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::backend::NdArray;
use burn::collective::{
    all_reduce, finish_collective, register, CollectiveConfig, PeerId, ReduceOperation,
};
use burn::tensor::{Tensor, TensorPrimitive};

type B = NdArray;

mod common;
use common::free_port;

const ROLE: &str = "POLICY_LAB_COLLECTIVE_ROLE";
const ROUNDS: usize = 5;

/// What a node process does: register as node `rank` of `nodes`, all-reduce (mean) the tensor
/// `[rank + round, 10 (rank + 1)]` `ROUNDS` times, and print each result.
fn node(rank: u32, nodes: u32, orchestrator: u16, data: u16) {
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(nodes)
        .with_global_address(format!("ws://127.0.0.1:{orchestrator}").parse().unwrap())
        .with_node_address(format!("ws://127.0.0.1:{data}").parse().unwrap())
        .with_data_service_port(data);
    let device = Default::default();
    let id = PeerId::from(0);
    register::<B>(id, device, config).unwrap();
    for round in 0..ROUNDS {
        let x = Tensor::<B, 1>::from_floats(
            [(rank as usize + round) as f32, 10.0 * (rank + 1) as f32],
            &device,
        );
        let mean = all_reduce::<B>(id, x.into_primitive().tensor(), ReduceOperation::Mean).unwrap();
        let mean: Vec<f32> = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(mean))
            .into_data()
            .to_vec()
            .unwrap();
        println!("round {round}: {mean:?}");
    }
    finish_collective::<B>(id).unwrap();
}

/// The role this process was started for, if any (the child processes).
#[test]
fn collective_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // the parent test run: nothing to do here
    };
    let args: Vec<u32> = role
        .split(',')
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    match role.split(',').next().unwrap() {
        "orchestrator" => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(burn_collective::start_global_orchestrator(args[0] as u16)),
        "node" => node(args[0], args[1], args[2] as u16, args[3] as u16),
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: String) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "collective_role",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` at most until `deadline`; kills it past that.
fn wait(mut child: Child, deadline: Instant) -> Option<String> {
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Some(String::from_utf8_lossy(&out.stdout).to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    println!(
        "timed out; it had printed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    None
}

#[test]
fn two_processes_all_reduce_five_times_in_a_row() {
    let orchestrator_port = free_port();
    let mut orchestrator = spawn(format!("orchestrator,{orchestrator_port}"));
    std::thread::sleep(Duration::from_millis(500));
    let nodes: Vec<Child> = (0..2u32)
        .map(|rank| spawn(format!("node,{rank},2,{orchestrator_port},{}", free_port())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let outputs: Vec<Option<String>> = nodes.into_iter().map(|n| wait(n, deadline)).collect();
    let _ = orchestrator.kill();
    let _ = orchestrator.wait();
    for (rank, out) in outputs.iter().enumerate() {
        let out = out.as_ref().unwrap_or_else(|| {
            panic!("node {rank} did not finish {ROUNDS} all-reduces within 60 s (the hang of burn-collective 0.21.0 without the patch)")
        });
        for round in 0..ROUNDS {
            // The mean of [round, 10] and [1 + round, 20].
            let want = format!("round {round}: [{:?}, 15.0]", round as f32 + 0.5);
            assert!(out.contains(&want), "node {rank}: no {want:?} in\n{out}");
        }
    }
}
