//! Data-parallel GRPO with burn's collective operations: one replica of the learner per
//! device, each on its own thread.
//!
//! ```text
//!            peer 0 (device 0)                      peer 1 (device 1)
//! collect    num_groups / 2 groups, seed s          num_groups / 2 groups, seed s + 1
//! loss       its groups' GRPO loss                  its groups' GRPO loss
//! backward   its gradients g0                       its gradients g1
//! all-reduce ─────────────── (g0 + g1) / 2 on both ───────────────
//! step       the same Adam step                     the same Adam step
//! ```
//!
//! Every replica starts from the same weights and applies the same averaged gradient, so the
//! replicas stay equal without ever sending weights. The averaged gradient is the gradient of
//! the whole batch's loss: `grpo` and `dr_grpo` average over sequences, which the mean over
//! equal shares preserves, and `bnpo`/`dapo` divide by the token count of the whole batch,
//! which the peers all-reduce first ([`crate::algos::grpo::WholeBatch`]).
//!
//! On one machine, the peers are threads and the devices are GPUs (`cuda` 0, 1, ...) or, to
//! test it, several CPU "devices" that share the same cores. Across machines ([`Nodes`]),
//! each machine (node) runs one process with its own devices, and burn's collective joins
//! them through a global orchestrator (`policy-lab orchestrator`): every all-reduce first
//! averages over a node's devices, then over the nodes. The peers are numbered across the
//! whole cluster (node `rank` holds peers `rank * devices ..`), which gives each its seed
//! and its checkpoint folder. The metrics and the decisions taken after an iteration (write
//! a checkpoint, stop) are all-reduced too, so every node logs the same numbers and a
//! Ctrl-C on any node stops all of them at the same iteration. burn 0.21.0's second global
//! all-reduce hung; policy-lab carries the fix as a patch of burn-collective
//! (`patches/burn-collective/PATCH.md`; `tests/collective_nodes.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};

use crate::lm::rollout::TextEnv;
use burn::collective::{finish_collective, register, CollectiveConfig, PeerId};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::algos::grpo_lm::{mean_over_peers, GrpoLm, GrpoLmConfig};
use crate::lm::model::Transformer;
use crate::lm::sft::LmError;
use crate::lm::tokenizer::Tokenizer;
use crate::{ConfigError, Metrics};

/// burn's collective server is one per backend and process: one data-parallel session at a
/// time (tests run in parallel threads).
static SESSION: Mutex<()> = Mutex::new(());

/// This process's place in a run over several machines (`[rl.nodes]`; the CLI's `--nodes`,
/// `--node-rank`, `--orchestrator`, `--node-address`). Every node starts the same run (same
/// config, seed and starting checkpoint) with the same number of devices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nodes {
    /// How many nodes (processes, usually one per machine) take part.
    pub count: u32,
    /// This node's number, `0..count`.
    pub rank: u32,
    /// The global orchestrator's address (`policy-lab orchestrator --port P` on one
    /// machine), e.g. `ws://10.0.0.1:3000`.
    pub orchestrator: String,
    /// Where the other nodes reach this one, e.g. `ws://10.0.0.2:3001`: this node serves
    /// its tensors on that port.
    pub address: String,
}

impl Nodes {
    /// How many peers a run of `devices` per node has over `nodes` (one node without).
    pub fn world(devices: usize, nodes: Option<&Nodes>) -> usize {
        devices * nodes.map_or(1, |n| n.count as usize)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.count == 0 || self.rank >= self.count {
            return Err(ConfigError(format!(
                "rl.nodes: rank ({}) must be below count ({})",
                self.rank, self.count
            )));
        }
        for (key, url) in [
            ("orchestrator", &self.orchestrator),
            ("address", &self.address),
        ] {
            if !url.starts_with("ws://") || port_of(url).is_none() {
                return Err(ConfigError(format!(
                    "rl.nodes.{key} = {url:?}: expected ws://HOST:PORT"
                )));
            }
        }
        Ok(())
    }
}

/// The port of `ws://host:port[/...]`.
fn port_of(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("ws://")?;
    let host_port = rest.split('/').next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

/// A data-parallel session's peers: call [`DataParallel::run`] with what each peer does.
pub struct DataParallel<B: AutodiffBackend> {
    devices: Vec<B::Device>,
    nodes: Option<Nodes>,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// One peer per device (at least one), on this machine alone.
    pub fn new(devices: Vec<B::Device>) -> Result<Self, ConfigError> {
        if devices.is_empty() {
            return Err(ConfigError("data parallel: at least one device".into()));
        }
        Ok(Self {
            devices,
            nodes: None,
        })
    }

    /// The same peers, as one node of several (`nodes`).
    pub fn across(mut self, nodes: Nodes) -> Result<Self, ConfigError> {
        nodes.validate()?;
        self.nodes = Some(nodes);
        Ok(self)
    }

    /// The peers in this process (one per device).
    pub fn peers(&self) -> usize {
        self.devices.len()
    }

    /// The peers of every node together.
    pub fn world(&self) -> usize {
        Nodes::world(self.peers(), self.nodes.as_ref())
    }

    /// The cluster-wide number of this process's peer `peer`.
    pub fn global(&self, peer: PeerId) -> usize {
        let rank = self.nodes.as_ref().map_or(0, |n| n.rank as usize);
        rank * self.peers() + peer.0 as usize
    }

    /// burn's collective settings: this node's devices and, across machines, the
    /// orchestrator and this node's address.
    fn collective_config(&self) -> CollectiveConfig {
        let config = CollectiveConfig::default().with_num_devices(self.peers());
        let Some(nodes) = &self.nodes else {
            return config;
        };
        config
            .with_num_nodes(nodes.count)
            .with_global_address(nodes.orchestrator.parse().expect("validated"))
            .with_node_address(nodes.address.parse().expect("validated"))
            .with_data_service_port(port_of(&nodes.address).expect("validated"))
    }

    /// Runs `work(peer, device)` on one thread per device, each peer registered with burn's
    /// collective (on the inner backend, where gradients live), and returns the peers'
    /// results in peer order.
    pub fn run<R: Send>(
        &self,
        work: impl Fn(PeerId, B::Device) -> Result<R, LmError> + Sync,
    ) -> Result<Vec<R>, LmError> {
        // ANCHOR: gpus_parallel_run
        let _session = SESSION.lock().unwrap_or_else(|e| e.into_inner());
        let config = self.collective_config();
        let collective = |e| LmError::Collective(format!("{e:?}"));
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .devices
                .iter()
                .enumerate()
                .map(|(k, device)| {
                    let (work, config) = (&work, config.clone());
                    scope.spawn(move || {
                        let peer = PeerId::from(k as u32);
                        register::<B::InnerBackend>(peer, device.clone(), config)
                            .map_err(collective)?;
                        let result = work(peer, device.clone());
                        finish_collective::<B::InnerBackend>(peer).map_err(collective)?;
                        result
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a data-parallel peer panicked"))
                .collect()
        })
        // ANCHOR_END: gpus_parallel_run
    }
}

/// `iterations` of data-parallel GRPO from `model`: each of the `devices.len()` peers
/// collects `num_groups / peers` groups with its own seed (`seed + peer`), and the
/// gradients are averaged before every step. `on_iteration(iteration, metrics, model)` runs
/// on peer 0 after each iteration, with the metrics averaged over the peers (counts summed)
/// and peer 0's model. Returns peer 0's final model. (The run layer's `lm grpo --devices N`
/// uses [`grpo_data_parallel_run`], which also checkpoints, resumes and spans machines.)
#[allow(clippy::too_many_arguments)]
pub fn grpo_data_parallel<B, E, T>(
    config: GrpoLmConfig,
    max_completion_length: usize,
    model: Transformer<B>,
    env: E,
    tokenizer: T,
    seed: u64,
    devices: Vec<B::Device>,
    iterations: usize,
    mut on_iteration: impl FnMut(usize, Metrics, &Transformer<B>) -> Result<(), LmError> + Send,
) -> Result<Transformer<B>, LmError>
where
    B: AutodiffBackend,
    E: TextEnv + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
    T: Tokenizer + Clone + Send + Sync,
{
    let peers = Peers {
        config,
        max_completion_length,
        model,
        env,
        tokenizer,
        seed,
        devices,
        nodes: None,
    };
    let run = grpo_data_parallel_run(
        peers,
        None,
        0,
        iterations,
        |it, m, model| {
            on_iteration(it, m, model).map_err(anyhow::Error::from)?;
            Ok(AfterIteration::default())
        },
        |_| unreachable!("no checkpoint is asked for"),
        |_, _, _| Ok(()),
    );
    run.map_err(|e| match e.downcast::<LmError>() {
        Ok(lm) => lm,
        Err(other) => LmError::Stopped(format!("{other:#}")),
    })
}

/// What every peer starts from.
pub struct Peers<B: AutodiffBackend, E, T> {
    pub config: GrpoLmConfig,
    pub max_completion_length: usize,
    pub model: Transformer<B>,
    pub env: E,
    pub tokenizer: T,
    pub seed: u64,
    /// This process's devices, one peer each.
    pub devices: Vec<B::Device>,
    /// With several machines: this process's place among them.
    pub nodes: Option<Nodes>,
}

/// What a node's peer 0 asks for after an iteration. The requests of every node are
/// combined (any node asking is enough), so all nodes do the same.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AfterIteration {
    /// Write a checkpoint: every peer saves its whole state (model, Adam moments, prompt
    /// stream, generator) into `peer{k}/` of the folder `begin_checkpoint` gives.
    pub checkpoint: bool,
    /// Stop after this iteration (and its checkpoint).
    pub stop: bool,
}

/// Data-parallel GRPO from iteration `start` to `iterations`, going on from the checkpoint
/// `resume` (each peer from its `peer{k}/`) if given. After each iteration, on each node's
/// peer 0: `on_iteration(iteration, metrics averaged over every peer, model)` says whether
/// to checkpoint or stop; if any node asked for a checkpoint, `begin_checkpoint(iteration)`
/// gives the folder, every peer saves into it, and `finish_checkpoint(iteration, model,
/// stopping)` completes it. An error in a hook stops every peer of every node after that
/// iteration (none is left waiting) and is returned where it happened.
pub fn grpo_data_parallel_run<B, E, T>(
    peers: Peers<B, E, T>,
    resume: Option<&Path>,
    start: usize,
    iterations: usize,
    on_iteration: impl FnMut(usize, Metrics, &Transformer<B>) -> anyhow::Result<AfterIteration> + Send,
    begin_checkpoint: impl FnMut(usize) -> anyhow::Result<PathBuf> + Send,
    finish_checkpoint: impl FnMut(usize, &Transformer<B>, bool) -> anyhow::Result<()> + Send,
) -> anyhow::Result<Transformer<B>>
where
    B: AutodiffBackend,
    E: TextEnv + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
    T: Tokenizer + Clone + Send + Sync,
{
    use crate::core::learner::Learner;
    let mut parallel = DataParallel::<B>::new(peers.devices.clone())?;
    if let Some(nodes) = &peers.nodes {
        parallel = parallel.across(nodes.clone())?;
    }
    let (n, world) = (parallel.peers(), parallel.world());
    let num_groups = peers.config.update.num_groups;
    if !num_groups.is_multiple_of(world) {
        return Err(ConfigError(format!(
            "data parallel: num_groups ({num_groups}) must be a multiple of the number of \
             devices ({world})"
        ))
        .into());
    }
    // burn pairs the peers' gradients by parameter id, and a checkpoint imported from
    // Hugging Face gets random ids in each process: number them the same way everywhere.
    let model = number_parameters(peers.model.clone());
    // ANCHOR: gpus_parallel_share
    let mut share = peers.config.clone();
    share.update.num_groups = num_groups / world;
    let hooks = Mutex::new((on_iteration, begin_checkpoint, finish_checkpoint));
    // This node's checkpoint folder, and its first error, for its peers to see.
    let folder: Mutex<Option<PathBuf>> = Mutex::new(None);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let failed = || failure.lock().unwrap().is_some();
    let barrier = Barrier::new(n);
    let fail = |e: anyhow::Error| {
        let mut f = failure.lock().unwrap();
        if f.is_none() {
            *f = Some(e);
        }
    };
    let result = parallel.run(|peer, device| {
        let (k, g) = (peer.0 as usize, parallel.global(peer));
        let mut learner = GrpoLm::new(
            share.clone(),
            peers.max_completion_length,
            model.clone().fork(&device),
            peers.env.clone(),
            peers.tokenizer.clone(),
            peers.seed + g as u64,
        )?
        .with_peer(peer);
        if let Some(dir) = resume {
            if let Err(e) = learner.load(&dir.join(format!("peer{g}"))) {
                return Err(LmError::Stopped(format!("{e:#}")));
            }
        }
        // "Did any peer anywhere say yes?": the mean of 0/1 flags is positive.
        let anywhere = |flags: &[bool]| -> Result<Vec<bool>, LmError> {
            let flags: Vec<f32> = flags.iter().map(|&f| f32::from(u8::from(f))).collect();
            let mean = mean_over_peers::<B::InnerBackend>(peer, &flags, &device)?;
            Ok(mean.iter().map(|&m| m > 0.0).collect())
        };
        for it in start + 1..=iterations {
            let m = learner.iterate()?;
            let m = average_over_peers::<B::InnerBackend>(peer, &device, &m, world)?;
            let mut asked = AfterIteration::default();
            if k == 0 {
                let said = (hooks.lock().unwrap().0)(it, m, &learner.model);
                asked = said.unwrap_or_else(|e| {
                    fail(e);
                    AfterIteration {
                        checkpoint: false,
                        stop: true,
                    }
                });
            }
            let decided = anywhere(&[asked.checkpoint, asked.stop, k == 0 && failed()])?;
            let (checkpoint, mut stop, mut failed_anywhere) = (decided[0], decided[1], decided[2]);
            if checkpoint {
                if k == 0 {
                    match (hooks.lock().unwrap().1)(it) {
                        Ok(dir) => *folder.lock().unwrap() = Some(dir),
                        Err(e) => fail(e),
                    }
                }
                barrier.wait();
                let dir = folder.lock().unwrap().clone();
                if let Some(dir) = dir.filter(|_| !failed()) {
                    let mine = dir.join(format!("peer{g}"));
                    let saved = std::fs::create_dir_all(&mine)
                        .map_err(anyhow::Error::from)
                        .and_then(|()| learner.save(&mine));
                    if let Err(e) = saved {
                        fail(e);
                    }
                }
                barrier.wait();
                if k == 0 && !failed() {
                    if let Err(e) = (hooks.lock().unwrap().2)(it, &learner.model, stop) {
                        fail(e);
                    }
                }
                barrier.wait();
                // A node that could not save stops the others too.
                failed_anywhere |= anywhere(&[k == 0 && failed()])?[0];
            }
            if failed_anywhere && k == 0 && !failed() {
                // Another node failed this iteration: stop here too, and say so.
                fail(anyhow::anyhow!(
                    "stopped after iteration {it}: another node failed (its output says why)"
                ));
            }
            stop |= failed_anywhere;
            if stop || failed() {
                break;
            }
        }
        Ok(learner.model)
    });
    // ANCHOR_END: gpus_parallel_share
    if let Some(e) = failure.into_inner().unwrap() {
        return Err(e);
    }
    Ok(result?.swap_remove(0))
}

/// `metrics` averaged over every peer of every node (`completions_seen` summed). Every peer
/// logs the same keys, so the all-reduced vectors line up.
fn average_over_peers<B: Backend>(
    peer: PeerId,
    device: &B::Device,
    metrics: &Metrics,
    world: usize,
) -> Result<Metrics, LmError> {
    let values: Vec<f32> = metrics.values().map(|&v| v as f32).collect();
    let mean = mean_over_peers::<B>(peer, &values, device)?;
    Ok(metrics
        .keys()
        .zip(mean)
        .map(|(&key, mean)| {
            let mean = f64::from(mean);
            (
                key,
                if key == "completions_seen" {
                    mean * world as f64
                } else {
                    mean
                },
            )
        })
        .collect())
}

/// `module` with its parameters numbered 0, 1, 2, ... in the order burn visits them, the
/// same order in every process.
// ANCHOR: gpus_number_parameters
pub fn number_parameters<B: Backend, M: Module<B>>(module: M) -> M {
    struct Numbering(u64);
    impl<B: Backend> ModuleMapper<B> for Numbering {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (_, tensor, mapper) = param.consume();
            self.0 += 1;
            Param::from_mapped_value(ParamId::from(self.0 - 1), tensor, mapper)
        }
    }
    module.map(&mut Numbering(0))
}
// ANCHOR_END: gpus_number_parameters
