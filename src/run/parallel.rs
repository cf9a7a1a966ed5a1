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
//! machines (a global orchestrator); this module does not: tried with burn 0.21.0, the
//! second global all-reduce never finished (README, "A real checkpoint, a GPU, several GPUs" says why).

use std::sync::mpsc;
use std::sync::Mutex;

use burn::collective::{finish_collective, register, CollectiveConfig, PeerId};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use policy_lab_envs::{Env, Space};

use crate::algos::grpo::GrpoConfig;
use crate::algos::grpo_lm::GrpoLm;
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
/// collects `config.num_groups / peers` groups with its own seed (`seed + peer`), and the
/// gradients are averaged before every step. `on_iteration(iteration, metrics, model)` runs
/// on peer 0 after each iteration, with the metrics averaged over the peers (counts summed)
/// and peer 0's model. Returns peer 0's final model.
#[allow(clippy::too_many_arguments)]
pub fn grpo_data_parallel<B, E, T>(
    config: GrpoConfig,
    max_completion_length: usize,
    model: Transformer<B>,
    env: E,
    tokenizer: T,
    seed: u64,
    devices: Vec<B::Device>,
    iterations: usize,
    on_iteration: impl FnMut(usize, Metrics, &Transformer<B>) -> Result<(), LmError> + Send,
) -> Result<Transformer<B>, LmError>
where
    B: AutodiffBackend,
    E: Env + Clone + Send + Sync,
    E::ObsSpace: Space<Item = String>,
    E::ActSpace: Space<Item = String>,
    T: Tokenizer + Clone + Send + Sync,
{
    let parallel = DataParallel::<B>::new(devices)?;
    let peers = parallel.peers();
    if !config.num_groups.is_multiple_of(peers) {
        return Err(ConfigError(format!(
            "data parallel: num_groups ({}) must be a multiple of the number of devices ({peers})",
            config.num_groups
        ))
        .into());
    }
    // ANCHOR: gpus_parallel_share
    let share = GrpoConfig {
        num_groups: config.num_groups / peers,
        ..config
    };
    let (send, receive) = mpsc::channel::<Metrics>();
    let send = Mutex::new(send);
    let receive = Mutex::new(receive);
    let on_iteration = Mutex::new(on_iteration);
    let mut models = parallel.run(|peer, device| {
        let k = peer.0 as u64;
        let mut learner = GrpoLm::new(
            share.clone(),
            max_completion_length,
            model.clone().fork(&device),
            env.clone(),
            tokenizer.clone(),
            seed + k,
        )?
        .with_peer(peer);
        let sender = send.lock().unwrap().clone();
        for it in 1..=iterations {
            let m = learner.iterate()?;
            if k > 0 {
                sender.send(m).expect("peer 0 is listening");
                continue;
            }
            // Peer 0: the metrics of every peer, averaged (completion counts summed).
            let mut all = vec![m];
            let receive = receive.lock().unwrap();
            all.extend((1..peers).map(|_| receive.recv().expect("a peer's metrics")));
            (on_iteration.lock().unwrap())(it, average(&all), &learner.model)?;
        }
        Ok(learner.model)
    })?;
    // ANCHOR_END: gpus_parallel_share
    Ok(models.swap_remove(0))
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
