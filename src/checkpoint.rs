//! Resumable checkpoints: everything a run needs to go on exactly as if it had never stopped,
//! so that `policy-lab train --resume runs/NAME` gives, on the CPU, the same numbers as an
//! uninterrupted run.
//!
//! A learner's state has three parts, all in `runs/NAME/resume/`:
//!
//! ```text
//! networks.mpk   the networks at full precision (policy.mpk, beside it, is for `eval`)
//! optim*.mpk     each optimizer's moments and step count
//! state.json     the rest: the environments mid-episode, the random-number generator,
//!                the counters
//! run.json       where the training loop stood: iterations done, seconds spent
//! ```
//!
//! A checkpoint is written into `resume.tmp/` and only then moved to `resume/`, so that a
//! crash while saving leaves the previous checkpoint whole.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::{AutodiffModule, Module};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rollout::Collector;
use crate::train::Learner;
use policy_lab_envs::EnvRng;

/// Full precision: a resumed run must continue from the very same numbers.
type Exact = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Where the training loop stood when the checkpoint was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Iterations done (and lines in `metrics.jsonl` that belong to them).
    pub iterations: usize,
    /// Wall-clock seconds spent training so far.
    pub seconds: f64,
}

/// What REINFORCE, TRPO and PPO keep besides networks and optimizers.
#[derive(Serialize, Deserialize)]
struct OnPolicyState {
    collector: Collector,
    iteration: usize,
}

/// What GRPO keeps besides networks and optimizers.
#[derive(Serialize, Deserialize)]
struct GrpoState {
    rng: EnvRng,
    steps: usize,
    iteration: usize,
}

/// The folder of the latest checkpoint of the run in `run_dir`.
pub fn resume_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("resume")
}

/// Saves everything `learner` needs to continue, and `run`, into `run_dir/resume/`.
pub fn save<B: AutodiffBackend>(learner: &Learner<B>, run: RunState, run_dir: &Path) -> Result<()> {
    let tmp = run_dir.join("resume.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    match learner {
        Learner::Reinforce(l) => {
            save_module(&l.model, &tmp.join("networks"))?;
            save_optim(&l.actor_optim, &tmp.join("optim_actor"))?;
            save_optim(&l.critic_optim, &tmp.join("optim_critic"))?;
            save_json(
                &on_policy(&l.collector, l.iteration),
                &tmp.join("state.json"),
            )?;
        }
        Learner::Trpo(l) => {
            save_module(&l.model, &tmp.join("networks"))?;
            save_optim(&l.critic_optim, &tmp.join("optim_critic"))?;
            save_json(
                &on_policy(&l.collector, l.iteration),
                &tmp.join("state.json"),
            )?;
        }
        Learner::Ppo(l) => {
            save_module(&l.model, &tmp.join("networks"))?;
            save_optim(&l.optim, &tmp.join("optim"))?;
            save_json(
                &on_policy(&l.collector, l.iteration),
                &tmp.join("state.json"),
            )?;
        }
        Learner::Grpo(l) => {
            save_module(&l.actor, &tmp.join("networks"))?;
            save_module(&l.reference, &tmp.join("reference"))?;
            save_optim(&l.optim, &tmp.join("optim"))?;
            let state = GrpoState {
                rng: l.rng.clone(),
                steps: l.steps,
                iteration: l.iteration,
            };
            save_json(&state, &tmp.join("state.json"))?;
        }
    }
    save_json(&run, &tmp.join("run.json"))?;
    // Swap the new checkpoint in: the old one is removed only once the new one is whole.
    let dir = resume_dir(run_dir);
    let old = run_dir.join("resume.old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if dir.exists() {
        std::fs::rename(&dir, &old)?;
    }
    std::fs::rename(&tmp, &dir)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Restores into `learner` (freshly made from the run's config) the state saved in
/// `run_dir/resume/`, and returns where the training loop stood.
pub fn load<B: AutodiffBackend>(
    learner: &mut Learner<B>,
    run_dir: &Path,
    device: &B::Device,
) -> Result<RunState> {
    let mut dir = resume_dir(run_dir);
    if !dir.exists() {
        // A crash between the two renames of `save` leaves the previous checkpoint here.
        dir = run_dir.join("resume.old");
    }
    if !dir.exists() {
        bail!(
            "{} has no checkpoint to resume from (no resume/ folder): the run stopped before its first checkpoint",
            run_dir.display()
        );
    }
    match learner {
        Learner::Reinforce(l) => {
            l.model = load_module(l.model.clone(), &dir.join("networks"), device)?;
            l.actor_optim = load_optim(l.actor_optim.clone(), &dir.join("optim_actor"), device)?;
            l.critic_optim = load_optim(l.critic_optim.clone(), &dir.join("optim_critic"), device)?;
            let s: OnPolicyState = load_json(&dir.join("state.json"))?;
            (l.collector, l.iteration) = (s.collector, s.iteration);
        }
        Learner::Trpo(l) => {
            l.model = load_module(l.model.clone(), &dir.join("networks"), device)?;
            l.critic_optim = load_optim(l.critic_optim.clone(), &dir.join("optim_critic"), device)?;
            let s: OnPolicyState = load_json(&dir.join("state.json"))?;
            (l.collector, l.iteration) = (s.collector, s.iteration);
        }
        Learner::Ppo(l) => {
            l.model = load_module(l.model.clone(), &dir.join("networks"), device)?;
            l.optim = load_optim(l.optim.clone(), &dir.join("optim"), device)?;
            let s: OnPolicyState = load_json(&dir.join("state.json"))?;
            (l.collector, l.iteration) = (s.collector, s.iteration);
        }
        Learner::Grpo(l) => {
            l.actor = load_module(l.actor.clone(), &dir.join("networks"), device)?;
            l.reference = load_module(l.reference.clone(), &dir.join("reference"), device)?;
            l.optim = load_optim(l.optim.clone(), &dir.join("optim"), device)?;
            let s: GrpoState = load_json(&dir.join("state.json"))?;
            (l.rng, l.steps, l.iteration) = (s.rng, s.steps, s.iteration);
        }
    }
    load_json(&dir.join("run.json"))
}

fn on_policy(collector: &Collector, iteration: usize) -> OnPolicyState {
    OnPolicyState {
        collector: collector.clone(),
        iteration,
    }
}

fn save_module<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<()> {
    module
        .clone()
        .save_file(path, &Exact::new())
        .with_context(|| format!("saving {}", path.display()))
}

/// Loads the record at `path` into `module`; a record of another shape is an error.
fn load_module<B: Backend, M: Module<B>>(module: M, path: &Path, device: &B::Device) -> Result<M> {
    let record: M::Record = Exact::new()
        .load(path.into(), device)
        .with_context(|| format!("reading {}.mpk", path.display()))?;
    Ok(module.load_record(record))
}

fn save_optim<B: AutodiffBackend, M: AutodiffModule<B>>(
    optim: &OptimizerAdaptor<Adam, M, B>,
    path: &Path,
) -> Result<()> {
    Recorder::<B>::record(&Exact::new(), optim.to_record(), path.into())
        .with_context(|| format!("saving {}", path.display()))?;
    Ok(())
}

fn load_optim<B: AutodiffBackend, M: AutodiffModule<B>>(
    optim: OptimizerAdaptor<Adam, M, B>,
    path: &Path,
    device: &B::Device,
) -> Result<OptimizerAdaptor<Adam, M, B>> {
    let record = Exact::new()
        .load(path.into(), device)
        .with_context(|| format!("reading {}.mpk", path.display()))?;
    Ok(optim.load_record(record))
}

fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    std::fs::write(path, serde_json::to_vec(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("a bad checkpoint file {}", path.display()))
}
