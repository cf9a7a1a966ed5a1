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
//! test it, several CPU "devices" that share the same cores. burn's collective also spans
//! machines (a global orchestrator); this module does not yet. burn 0.21.0's second global
//! all-reduce hung; policy-lab carries the fix as a patch of burn-collective
//! (`patches/burn-collective/PATCH.md`), and `tests/collective_nodes.rs` all-reduces five
//! times in a row between two processes on loopback.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Barrier, Mutex};

use burn::collective::{finish_collective, register, CollectiveConfig, PeerId};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Env, Space};

use crate::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use crate::lm::model::Transformer;
use crate::lm::sft::LmError;
use crate::lm::tokenizer::Tokenizer;
use crate::{ConfigError, Metrics};

/// burn's collective server is one per backend and process: one data-parallel session at a
/// time (tests run in parallel threads).
static SESSION: Mutex<()> = Mutex::new(());

/// A data-parallel session's peers: call [`DataParallel::run`] with what each peer does.
pub struct DataParallel<B: AutodiffBackend> {
    devices: Vec<B::Device>,
}

impl<B: AutodiffBackend> DataParallel<B> {
    /// One peer per device (at least one).
    pub fn new(devices: Vec<B::Device>) -> Result<Self, ConfigError> {
        if devices.is_empty() {
            return Err(ConfigError("data parallel: at least one device".into()));
        }
        Ok(Self { devices })
    }

    pub fn peers(&self) -> usize {
        self.devices.len()
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
        let config = CollectiveConfig::default().with_num_devices(self.peers());
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
/// uses [`grpo_data_parallel_run`], which also checkpoints and resumes.)
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
    E: Env + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
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
        |_, _| Ok(()),
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
    pub devices: Vec<B::Device>,
}

/// What peer 0 decides after an iteration, for every peer.
#[derive(Clone, Debug, Default)]
pub struct AfterIteration {
    /// Write a checkpoint: every peer saves its whole state (model, Adam moments, prompt
    /// stream, generator) into `dir/peer{k}/`, then `on_checkpoint` runs on peer 0.
    pub checkpoint: Option<PathBuf>,
    /// Stop after this iteration (and its checkpoint).
    pub stop: bool,
}

/// Data-parallel GRPO from iteration `start` to `iterations`, going on from the checkpoint
/// `resume` (each peer from its `peer{k}/`) if given. After each iteration, on peer 0:
/// `on_iteration(iteration, averaged metrics, model)` says whether to checkpoint or stop;
/// once every peer has saved, `on_checkpoint(iteration, model)` finishes the checkpoint.
/// An error in either stops every peer (none is left waiting) and is returned as it was.
pub fn grpo_data_parallel_run<B, E, T>(
    peers: Peers<B, E, T>,
    resume: Option<&Path>,
    start: usize,
    iterations: usize,
    on_iteration: impl FnMut(usize, Metrics, &Transformer<B>) -> anyhow::Result<AfterIteration> + Send,
    on_checkpoint: impl FnMut(usize, &Transformer<B>) -> anyhow::Result<()> + Send,
) -> anyhow::Result<Transformer<B>>
where
    B: AutodiffBackend,
    E: Env + Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
    T: Tokenizer + Clone + Send + Sync,
{
    use crate::core::learner::Learner;
    let parallel = DataParallel::<B>::new(peers.devices.clone())?;
    let n = parallel.peers();
    let num_groups = peers.config.update.num_groups;
    if !num_groups.is_multiple_of(n) {
        return Err(ConfigError(format!(
            "data parallel: num_groups ({num_groups}) must be a multiple of the number of \
             devices ({n})"
        ))
        .into());
    }
    // ANCHOR: gpus_parallel_share
    let mut share = peers.config.clone();
    share.update.num_groups = num_groups / n;
    let (send, receive) = mpsc::channel::<Metrics>();
    let send = Mutex::new(send);
    let receive = Mutex::new(receive);
    let hooks = Mutex::new((on_iteration, on_checkpoint));
    // Peer 0's decision after each iteration, and the first error, for every peer to see.
    let decision = Mutex::new(AfterIteration::default());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let barrier = Barrier::new(n);
    let fail = |e: anyhow::Error| {
        let mut f = failure.lock().unwrap();
        if f.is_none() {
            *f = Some(e);
        }
    };
    let result = parallel.run(|peer, device| {
        let k = peer.0 as usize;
        let mut learner = GrpoLm::new(
            share.clone(),
            peers.max_completion_length,
            peers.model.clone().fork(&device),
            peers.env.clone(),
            peers.tokenizer.clone(),
            peers.seed + k as u64,
        )?
        .with_peer(peer);
        if let Some(dir) = resume {
            if let Err(e) = learner.load(&dir.join(format!("peer{k}"))) {
                return Err(LmError::Stopped(format!("{e:#}")));
            }
        }
        let sender = send.lock().unwrap().clone();
        for it in start + 1..=iterations {
            let m = learner.iterate()?;
            if k > 0 {
                sender.send(m).expect("peer 0 is listening");
            } else {
                // Peer 0: the metrics of every peer, averaged (completion counts summed).
                let mut all = vec![m];
                let receive = receive.lock().unwrap();
                all.extend((1..n).map(|_| receive.recv().expect("a peer's metrics")));
                let said = (hooks.lock().unwrap().0)(it, average(&all), &learner.model);
                *decision.lock().unwrap() = said.unwrap_or_else(|e| {
                    fail(e);
                    AfterIteration {
                        checkpoint: None,
                        stop: true,
                    }
                });
            }
            barrier.wait();
            let now = decision.lock().unwrap().clone();
            if let Some(dir) = &now.checkpoint {
                let mine = dir.join(format!("peer{k}"));
                let saved = std::fs::create_dir_all(&mine)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| learner.save(&mine));
                if let Err(e) = saved {
                    fail(e);
                }
                barrier.wait();
                if k == 0 && failure.lock().unwrap().is_none() {
                    if let Err(e) = (hooks.lock().unwrap().1)(it, &learner.model) {
                        fail(e);
                    }
                }
                barrier.wait();
            }
            if now.stop || failure.lock().unwrap().is_some() {
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

/// The peers' metrics, averaged; `completions_seen` summed.
fn average(all: &[Metrics]) -> Metrics {
    let mut out = Metrics::new();
    for (&key, _) in all[0].iter() {
        let values = all.iter().filter_map(|m| m.get(key));
        let sum: f64 = values.clone().sum();
        let mean = sum / values.count() as f64;
        out.insert(key, if key == "completions_seen" { sum } else { mean });
    }
    out
}
