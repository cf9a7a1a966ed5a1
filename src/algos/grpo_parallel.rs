//! Data-parallel GRPO with burn's collective operations: one replica of the learner per
//! device, each on its own thread, and all of them one [`Learner`] to the run layer
//! ([`GrpoPeers`]), which `lm grpo --devices N` (or `--nodes`) drives like every other run.
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

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

use burn::collective::{finish_collective, register, CollectiveConfig, PeerId};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::grpo_lm::{mean_over_peers, GrpoLm, GrpoLmConfig};
use super::{FromInit, LmLearner};
use crate::core::learner::Learner;
use crate::lm::checkpoint::LmTokenizer;
use crate::lm::model::Transformer;
use crate::lm::rollout::LmTask;
use crate::lm::rollout::TextEnv;
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

/// `iterations` of data-parallel GRPO from `peers.model`: each of the `devices.len()` peers
/// collects `num_groups / peers` groups with its own seed (`seed + peer`), and the
/// gradients are averaged before every step. `on_iteration(iteration, metrics, model)` runs
/// after each iteration, with the metrics averaged over the peers (counts summed) and peer
/// 0's model. Returns peer 0's final model. (`lm grpo --devices N` drives [`GrpoPeers`]
/// through the run layer instead, which also checkpoints, resumes and spans machines.)
pub fn grpo_data_parallel<B, E, T>(
    peers: Peers<B, E, T>,
    iterations: usize,
    mut on_iteration: impl FnMut(usize, Metrics, &Transformer<B>) -> Result<(), LmError>,
) -> Result<Transformer<B>, LmError>
where
    B: AutodiffBackend,
    E: TextEnv + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    T: Tokenizer + Clone + Send + Sync + 'static,
{
    let stopped = |e: anyhow::Error| match e.downcast::<LmError>() {
        Ok(lm) => lm,
        Err(other) => LmError::Stopped(format!("{other:#}")),
    };
    let mut learner = GrpoPeers::start(peers).map_err(stopped)?;
    for it in 1..=iterations {
        let m = learner.iterate().map_err(stopped)?;
        on_iteration(it, m, learner.policy())?;
    }
    Ok(learner.policy().clone())
}

/// What every peer starts from (the arguments of [`GrpoLm::new`], and the devices).
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

impl<B: AutodiffBackend> Peers<B, LmTask, LmTokenizer> {
    /// The peers of an RL stage's start (`lm grpo --devices N`, `--nodes`).
    pub fn of(config: GrpoLmConfig, start: FromInit<B>) -> Self {
        Self {
            config,
            max_completion_length: start.max_completion_length,
            model: start.model,
            env: start.env,
            tokenizer: start.tokenizer,
            seed: start.seed,
            devices: start.devices,
            nodes: start.nodes,
        }
    }
}

/// What [`GrpoPeers`] asks of its peers, each on its own thread.
enum Ask {
    /// One iteration, the metrics averaged over every peer of every node.
    Iterate,
    /// Combine `[stop, failed]` with every node's (any node saying yes is enough).
    Agree([bool; 2]),
    /// Save each peer's whole state into `peer{k}/` of the folder, then agree on failure.
    Save(PathBuf),
    /// Restore each peer's state from `peer{k}/` of the folder.
    Load(PathBuf),
}

/// A peer's answer; peer 0's carries the averaged metrics and its model.
enum Answer<B: AutodiffBackend> {
    Iterated(Option<(Metrics, Transformer<B>)>),
    Agreed([bool; 2]),
    /// Whether some peer of some node could not save.
    Saved(bool),
    Loaded(Option<Transformer<B>>),
}

/// Data-parallel GRPO's peers as one [`Learner`] to the run layer: each of this process's
/// devices runs a [`GrpoLm`] on its own thread (`num_groups / world` groups, seed `seed +
/// peer`), the gradients averaged over every peer of every node before each step, so every
/// replica stays equal to peer 0, whose model is the policy. `lm grpo --devices N` (and
/// `--nodes`) is then driven like every other run ([`crate::run::drive`]): logged,
/// checkpointed (each peer saves its own prompt stream and generator into `peer{k}/` of the
/// checkpoint), resumed and stopped the same way.
///
/// Across machines every node runs the same loop, so their all-reduces pair up. Two more
/// decisions are combined over the nodes so that none is left waiting: whether to stop (a
/// Ctrl-C on any node stops every node after the same iteration,
/// [`Learner::agree_to_stop`]), and whether some node failed: a node whose run stops on an
/// error says so as its learner is dropped, and the others stop with "another node failed"
/// at their next agreement (before each iteration, after it, and after each checkpoint).
pub struct GrpoPeers<B: AutodiffBackend> {
    /// The way to the peers (behind a `RefCell`: `Learner::save` takes `&self`).
    link: RefCell<Link<B>>,
    /// The thread that runs the peers ([`DataParallel::run`]).
    session: Option<std::thread::JoinHandle<Result<Vec<()>, LmError>>>,
    /// Peer 0's model after the last iteration (or load).
    model: Transformer<B>,
    completions: usize,
}

/// The peers' inboxes, their answers, and where the session stands.
struct Link<B: AutodiffBackend> {
    asks: Vec<Sender<Ask>>,
    answers: Receiver<Result<Answer<B>, LmError>>,
    iterations: usize,
    /// Set once a failure was agreed on (here or on another node): no agreement is left to
    /// make, and dropping the learner asks nothing more of the peers.
    settled: bool,
}

impl<B: AutodiffBackend> GrpoPeers<B> {
    /// Starts one peer per device of `peers`, each on its own thread, from the same weights.
    pub fn start<E, T>(peers: Peers<B, E, T>) -> anyhow::Result<Self>
    where
        E: TextEnv + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
        T: Tokenizer + Clone + Send + Sync + 'static,
    {
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
        // Each peer's share of the groups.
        let mut share = peers.config.clone();
        share.update.num_groups = num_groups / world;
        let (answer, answers) = channel::<Result<Answer<B>, LmError>>();
        let (asks, inboxes): (Vec<_>, Vec<_>) = (0..n).map(|_| channel::<Ask>()).unzip();
        let inboxes = Mutex::new(inboxes.into_iter().map(Some).collect::<Vec<_>>());
        let start = model.clone();
        let session = std::thread::spawn(move || {
            parallel.run(|peer, device| {
                let (k, g) = (peer.0 as usize, parallel.global(peer));
                let inbox = inboxes.lock().unwrap()[k].take().expect("one inbox a peer");
                let learner = GrpoLm::new(
                    share.clone(),
                    peers.max_completion_length,
                    start.clone().fork(&device),
                    peers.env.clone(),
                    peers.tokenizer.clone(),
                    peers.seed + g as u64,
                )
                .map(|l| l.with_peer(peer));
                let mut learner = match learner {
                    Ok(l) => l,
                    Err(e) => {
                        let e = LmError::from(e);
                        let _ = answer.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                let answer = answer.clone();
                for ask in inbox {
                    let done = serve(&mut learner, ask, (peer, k, g, world), &device);
                    if answer.send(done).is_err() {
                        break;
                    }
                }
                Ok(())
            })
        });
        Ok(Self {
            link: RefCell::new(Link {
                asks,
                answers,
                iterations: 0,
                settled: false,
            }),
            session: Some(session),
            model,
            completions: 0,
        })
    }
}

impl<B: AutodiffBackend> Link<B> {
    /// Sends `ask` to every peer and returns their answers, in the order they came.
    fn ask(&mut self, ask: impl Fn() -> Ask) -> anyhow::Result<Vec<Answer<B>>> {
        for to in &self.asks {
            to.send(ask())
                .map_err(|_| anyhow::anyhow!("a data-parallel peer has stopped"))?;
        }
        let mut answers = Vec::with_capacity(self.asks.len());
        for _ in 0..self.asks.len() {
            match self.answers.recv() {
                Ok(Ok(a)) => answers.push(a),
                Ok(Err(e)) => {
                    self.settled = true;
                    return Err(e.into());
                }
                Err(_) => {
                    self.settled = true;
                    anyhow::bail!("a data-parallel peer has stopped");
                }
            }
        }
        Ok(answers)
    }

    /// Combines `[stop, failed]` with every node's; a failure anywhere is an error here.
    fn agree(&mut self, stop: bool, failed: bool) -> anyhow::Result<bool> {
        let answers = self.ask(|| Ask::Agree([stop, failed]))?;
        let [stop, failed] = match answers.first() {
            Some(Answer::Agreed(flags)) => *flags,
            _ => unreachable!("peers answer what they are asked"),
        };
        if failed {
            self.settled = true;
            anyhow::bail!(
                "stopped after iteration {}: another node failed (its output says why)",
                self.iterations
            );
        }
        Ok(stop)
    }
}

// ANCHOR: gpus_parallel_share
/// One peer's answer to `ask`; `(peer, k, g, world)` are its id, its number in this process
/// and in the cluster, and how many peers there are in all.
fn serve<B: AutodiffBackend, E, T>(
    learner: &mut GrpoLm<B, E, T>,
    ask: Ask,
    (peer, k, g, world): (PeerId, usize, usize, usize),
    device: &B::Device,
) -> Result<Answer<B>, LmError>
where
    E: TextEnv + serde::Serialize + serde::de::DeserializeOwned,
    T: Tokenizer,
{
    // "Did any peer anywhere say yes?": the mean of 0/1 flags is positive.
    let anywhere = |flags: &[bool]| -> Result<Vec<bool>, LmError> {
        let flags: Vec<f32> = flags.iter().map(|&f| f32::from(u8::from(f))).collect();
        let mean = mean_over_peers::<B::InnerBackend>(peer, &flags, device)?;
        Ok(mean.iter().map(|&m| m > 0.0).collect())
    };
    let stopped = |e: anyhow::Error| LmError::Stopped(format!("{e:#}"));
    Ok(match ask {
        Ask::Iterate => {
            let m = learner.iterate()?;
            let m = average_over_peers::<B::InnerBackend>(peer, device, &m, world)?;
            Answer::Iterated((k == 0).then(|| (m, learner.model.clone())))
        }
        Ask::Agree(flags) => {
            let agreed = anywhere(&flags)?;
            Answer::Agreed([agreed[0], agreed[1]])
        }
        Ask::Save(dir) => {
            let mine = dir.join(format!("peer{g}"));
            let saved = std::fs::create_dir_all(&mine)
                .map_err(anyhow::Error::from)
                .and_then(|()| learner.save(&mine));
            let failed_anywhere = anywhere(&[saved.is_err()])?[0];
            saved.map_err(stopped)?;
            Answer::Saved(failed_anywhere)
        }
        Ask::Load(dir) => {
            learner
                .load(&dir.join(format!("peer{g}")))
                .map_err(stopped)?;
            Answer::Loaded((k == 0).then(|| learner.model.clone()))
        }
    })
}
// ANCHOR_END: gpus_parallel_share

impl<B: AutodiffBackend> Learner for GrpoPeers<B> {
    type Policy = Transformer<B>;

    fn iterate(&mut self) -> anyhow::Result<Metrics> {
        let link = self.link.get_mut();
        // A node that failed since the last agreement says so here.
        link.agree(false, false)?;
        let mut metrics = None;
        for answer in link.ask(|| Ask::Iterate)? {
            if let Answer::Iterated(Some((m, model))) = answer {
                (metrics, self.model) = (Some(m), model);
            }
        }
        let m = metrics.expect("peer 0 answers with the metrics");
        self.completions = m.get("completions_seen").copied().unwrap_or(0.0) as usize;
        link.iterations += 1;
        Ok(m)
    }
    fn global_step(&self) -> usize {
        self.completions
    }
    fn policy(&self) -> &Transformer<B> {
        &self.model
    }
    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let mut link = self.link.borrow_mut();
        let dir = dir.to_path_buf();
        let answers = link.ask(|| Ask::Save(dir.clone()))?;
        if answers.iter().any(|a| matches!(a, Answer::Saved(true))) {
            link.settled = true;
            anyhow::bail!(
                "stopped after iteration {}: another node failed (its output says why)",
                link.iterations
            );
        }
        Ok(())
    }
    fn load(&mut self, dir: &Path) -> anyhow::Result<()> {
        let dir = dir.to_path_buf();
        for answer in self.link.get_mut().ask(|| Ask::Load(dir.clone()))? {
            if let Answer::Loaded(Some(model)) = answer {
                self.model = model;
            }
        }
        Ok(())
    }
    fn is_finite(&self) -> bool {
        crate::core::checkpoint::all_finite(&self.model)
    }
    fn agree_to_stop(&mut self, stop: bool) -> anyhow::Result<bool> {
        self.link.get_mut().agree(stop, false)
    }
}

impl<B: AutodiffBackend> Drop for GrpoPeers<B> {
    /// The last agreement: a node leaving says "failed", so that the others, if still
    /// running (this one stopped on an error), stop at their next agreement instead of
    /// waiting for it; when every node ends together they all say it at once. Then the peers'
    /// threads end.
    fn drop(&mut self) {
        let link = self.link.get_mut();
        if !link.settled {
            let _ = link.agree(false, true);
        }
        link.asks.clear();
        if let Some(session) = self.session.take() {
            let _ = session.join();
        }
    }
}

// How `policy-lab lm grpo` reads the settings and makes the learner (registered in
// `src/run/lm/mod.rs`): a `GrpoLm`, or on several devices or machines its peers. (Here rather
// than in `grpo_lm.rs`, which the peers build on.)
impl crate::lm::stage::Stage for GrpoLmConfig {
    const ABOUT: &'static str = "GRPO from a checkpoint.";
}

impl super::RlStage for GrpoLmConfig {
    fn learner<B: AutodiffBackend>(&self, start: FromInit<B>) -> anyhow::Result<LmLearner<B>> {
        // Several devices or machines: the peers, as one learner (reward models are refused
        // there by `rl`'s validation).
        if start.devices.len() > 1 || start.nodes.is_some() {
            return Ok(Box::new(GrpoPeers::start(Peers::of(self.clone(), start))?));
        }
        let (grpo, rewards) = start.one(self.clone(), GrpoLm::new)?;
        Ok(Box::new(grpo.with_rewards(rewards)))
    }
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
