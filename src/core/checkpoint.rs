//! The pieces every learner's checkpoint is made of: modules and optimizers at full precision
//! (a resumed run must go on from the very same numbers), JSON for the rest, and a check that
//! a module's weights are finite. Each algorithm's [`crate::core::learner::Learner::save`] and
//! `load` put these together in its own file; the run layer (`run::folder`) swaps the
//! folder in whole.

use std::path::Path;

use anyhow::{Context, Result};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Optimizer, SimpleOptimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::core::files::write_atomic;

/// Full precision: a resumed run must continue from the very same numbers.
pub type Exact = NamedMpkFileRecorder<FullPrecisionSettings>;

/// The same format, encoded in memory and then written by [`write_atomic`] (a file is never
/// left half-written, and an error says why: "No space left on device").
type Bytes = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Saves `module` as `path.mpk`, atomically; an error names the file and the cause (a full
/// disk says so).
pub fn save_module<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<()> {
    let bytes = Bytes::new()
        .record(module.clone().into_record(), ())
        .with_context(|| format!("encoding {}.mpk", path.display()))?;
    write_atomic(&path.with_extension("mpk"), &bytes)
}

/// Loads the record at `path.mpk` into `module`; a damaged file or a record of another
/// shape is an error that names the file.
pub fn load_module<B: Backend, M: Module<B>>(
    module: M,
    path: &Path,
    device: &B::Device,
) -> Result<M> {
    let record: M::Record = Exact::new()
        .load(path.into(), device)
        .map_err(|e| damaged(path, e))?;
    load_checked(module, record, &path.with_extension("mpk"))
}

/// `module` with `record`'s weights, if every weight has the shape `module` expects; else an
/// error that names the file and the first weight that differs (burn itself would load it
/// and fail later, deep in a matrix product).
pub fn load_checked<B: Backend, M: Module<B>>(
    module: M,
    record: M::Record,
    file: &Path,
) -> Result<M> {
    let expected = shapes(&module);
    let loaded = module.load_record(record);
    let found = shapes(&loaded);
    if expected.len() != found.len() {
        anyhow::bail!(
            "{} holds {} weight tensors, the model described beside it has {}: it was saved \
             for another architecture",
            file.display(),
            found.len(),
            expected.len()
        );
    }
    if let Some((i, (e, f))) = expected
        .iter()
        .zip(&found)
        .enumerate()
        .find(|(_, (e, f))| e != f)
    {
        anyhow::bail!(
            "{}: weight tensor {i} has shape {f:?}, the model described beside it expects \
             {e:?}: the weights were saved for another shape (was its description edited?)",
            file.display()
        );
    }
    Ok(loaded)
}

/// The shapes of a module's weights, in the order it visits them.
pub fn shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.lazy_shape().to_vec());
        }
    }
    let mut out = Shapes(Vec::new());
    module.visit(&mut out);
    out.0
}

/// Saves an optimizer's state (moments, step counts) as `path.mpk`, atomically.
pub fn save_optim<B, M, O>(optim: &OptimizerAdaptor<O, M, B>, path: &Path) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: SimpleOptimizer<B::InnerBackend>,
{
    let bytes = Recorder::<B>::record(&Bytes::new(), optim.to_record(), ())
        .with_context(|| format!("encoding {}.mpk", path.display()))?;
    write_atomic(&path.with_extension("mpk"), &bytes)
}

/// Loads an optimizer's state saved by [`save_optim`].
pub fn load_optim<B, M, O>(
    optim: OptimizerAdaptor<O, M, B>,
    path: &Path,
    device: &B::Device,
) -> Result<OptimizerAdaptor<O, M, B>>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: SimpleOptimizer<B::InnerBackend>,
{
    let record = Exact::new()
        .load(path.into(), device)
        .map_err(|e| damaged(path, e))?;
    Ok(optim.load_record(record))
}

/// Saves what a learner with one network and one optimizer needs to go on (`model.mpk`,
/// `optim.mpk` and its other state as `state.json`) into the folder `dir`.
pub fn save_model_optim_state<B, M, O, S>(
    dir: &Path,
    model: &M,
    optim: &OptimizerAdaptor<O, M, B>,
    state: &S,
) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: SimpleOptimizer<B::InnerBackend>,
    S: Serialize,
{
    save_module(model, &dir.join("model"))?;
    save_optim(optim, &dir.join("optim"))?;
    save_json(state, &dir.join("state.json"))
}

/// Loads what [`save_model_optim_state`] saved, into a freshly made `model` and `optim`.
#[allow(clippy::type_complexity)]
pub fn load_model_optim_state<B, M, O, S>(
    dir: &Path,
    model: M,
    optim: OptimizerAdaptor<O, M, B>,
) -> Result<(M, OptimizerAdaptor<O, M, B>, S)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: SimpleOptimizer<B::InnerBackend>,
    S: DeserializeOwned,
{
    let device = model.devices()[0].clone();
    let model = load_module(model, &dir.join("model"), &device)?;
    let optim = load_optim(optim, &dir.join("optim"), &device)?;
    Ok((model, optim, load_json(&dir.join("state.json"))?))
}

/// burn's error for a file it cannot read, said for a student: which file, and that it is
/// damaged or not a checkpoint (burn itself speaks of "record-backward-compat").
pub fn damaged(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    let file = path.with_extension("mpk");
    if !file.exists() {
        return anyhow::anyhow!("{} is missing", file.display());
    }
    anyhow::anyhow!(
        "{} is damaged or not a policy-lab checkpoint (cut short, or written by something \
         else); it cannot be read ({})",
        file.display(),
        e.to_string().lines().next().unwrap_or_default()
    )
}

/// Saves `value` as JSON at `path`, atomically.
pub fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    crate::core::files::write_json(value, path)
}

/// Reads the JSON at `path`; an error names the file.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    crate::core::files::read_json(path)
}

/// Whether every weight of `module` is finite.
pub fn all_finite<B: Backend, M: Module<B>>(module: &M) -> bool {
    struct Finite(bool);
    impl<B: Backend> ModuleVisitor<B> for Finite {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if self.0 {
                self.0 = param
                    .val()
                    .is_finite()
                    .all()
                    .into_data()
                    .iter::<bool>()
                    .all(|finite| finite);
            }
        }
    }
    let mut check = Finite(true);
    module.visit(&mut check);
    check.0
}

/// What REINFORCE, TRPO and PPO keep besides networks and optimizers: the environments
/// mid-episode with their random-number generator and episode statistics, and the
/// iteration count (`state.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct OnPolicyState {
    collector: crate::core::rollout::Collector,
    iteration: usize,
}

/// Saves what REINFORCE, TRPO and PPO share into `dir`: the actor and the critic
/// (`networks.mpk`), the environments mid-episode and the iteration count (`state.json`).
/// Each adds its own optimizers.
pub fn save_actor_critic<B: Backend>(
    model: &crate::core::actor_critic::ActorCritic<B>,
    collector: &crate::core::rollout::Collector,
    iteration: usize,
    dir: &Path,
) -> Result<()> {
    save_module(model, &dir.join("networks"))?;
    let state = OnPolicyState {
        collector: collector.clone(),
        iteration,
    };
    save_json(&state, &dir.join("state.json"))
}

/// Restores what [`save_actor_critic`] saved: the networks (into `model`, which gives the
/// shapes), the environments and the iteration count.
pub fn load_actor_critic<B: Backend>(
    model: crate::core::actor_critic::ActorCritic<B>,
    dir: &Path,
    device: &B::Device,
) -> Result<(
    crate::core::actor_critic::ActorCritic<B>,
    crate::core::rollout::Collector,
    usize,
)> {
    let model = load_module(model, &dir.join("networks"), device)?;
    let state: OnPolicyState = load_json(&dir.join("state.json"))?;
    Ok((model, state.collector, state.iteration))
}
