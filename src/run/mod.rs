//! The run layer: every run, toy or language model, goes through here. It owns the run
//! folder ([`folder`]), drives a [`Learner`] (iterate, log, checkpoint, stop), answers
//! Ctrl-C ([`interrupt`]) and shows progress ([`progress`]). The runners built on it:
//! [`train`] (the toy environments), [`lm`] (language models: SFT, the reward model, GRPO
//! (data-parallel too), PPO), the main job ([`ladder`]), and what reads runs
//! ([`evaluate`], [`plot`], [`play`]).
//!
//! The loop of [`drive`], for any algorithm:
//!
//! ```text
//! until the budget is spent:
//!     metrics = learner.iterate()
//!     after(iteration, metrics)             e.g. the held-out accuracy of a language model
//!     folder.log(metrics)                   a non-finite metric stops the run, naming it
//!     stop = learner.agree_to_stop(Ctrl-C)  every process of a run over machines agrees
//!     every checkpoint_every iterations, at the end, and on Ctrl-C:
//!         refuse non-finite weights, save the learner, the policy and where the loop stood
//!     on Ctrl-C: stop with exit status 130 and "resume with ..."
//! ```

pub mod evaluate;
pub mod figure;
pub mod folder;
pub mod interrupt;
pub mod ladder;
pub mod lm;
pub mod play;
pub mod plot;
pub mod progress;
pub mod train;

use anyhow::{bail, Result};

pub use folder::{MetricsRow, RunFolder, RunState, Start};
pub use interrupt::Interrupted;
pub use progress::Progress;

use crate::core::learner::Learner;
use crate::Metrics;

/// How [`drive`] runs a learner.
pub struct Drive<'a, L: Learner + ?Sized> {
    /// The run's settings as written in `config.toml` (frozen into every checkpoint).
    pub config_toml: &'a str,
    /// Write a checkpoint every this many iterations (and at the end).
    pub checkpoint_every: usize,
    /// Whether the budget is spent (environment steps, or iterations).
    pub done: &'a dyn Fn(&L, usize) -> bool,
    /// Where the progress bar stands: `(done, total)` in the budget's unit.
    pub position: &'a dyn Fn(&L, usize) -> usize,
    /// Called after each iteration, before its row is logged (may add metrics).
    pub after: &'a mut dyn FnMut(usize, &mut Metrics, &L) -> Result<()>,
    /// Saves what users read besides the resume state (`policy.mpk`, a `model/` folder),
    /// into the run folder, at each checkpoint.
    pub save_policy: &'a dyn Fn(&L, &std::path::Path) -> Result<()>,
}

/// Where a run ended.
pub struct Driven {
    pub iterations: usize,
    pub seconds: f64,
    /// Every iteration's metrics, the resumed ones included.
    pub history: Vec<MetricsRow>,
}

/// Runs `learner` in `folder` from `state` (zero for a new run) until `how.done`, logging
/// every iteration and checkpointing as the module docs say.
pub fn drive<L: Learner + ?Sized>(
    learner: &mut L,
    folder: &mut RunFolder,
    state: RunState,
    mut history: Vec<MetricsRow>,
    how: Drive<'_, L>,
    progress: &mut Progress<'_>,
) -> Result<Driven> {
    interrupt::install();
    let started = std::time::Instant::now();
    let seconds = || state.seconds + started.elapsed().as_secs_f64();
    let mut it = state.iterations;
    // ANCHOR: run_drive
    while !(how.done)(learner, it) {
        let mut m = learner.iterate()?;
        it += 1;
        m.insert("iteration", it as f64);
        m.insert("time", seconds());
        m.insert("SPS", learner.global_step() as f64 / seconds().max(1e-9));
        (how.after)(it, &mut m, learner)?;
        folder.log(it, &m)?;
        progress.update((how.position)(learner, it), &m)?;
        history.push(m.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        let stop = learner.agree_to_stop(interrupt::requested())?;
        if it.is_multiple_of(how.checkpoint_every) || (how.done)(learner, it) || stop {
            checkpoint(learner, folder, it, seconds(), &how)?;
        }
        if stop {
            progress.finish();
            return Err(Interrupted {
                iteration: it,
                resume: folder.resume_command().to_string(),
            }
            .into());
        }
    }
    // ANCHOR_END: run_drive
    Ok(Driven {
        iterations: it,
        seconds: seconds(),
        history,
    })
}

/// For [`Start::Resume`], restores `learner` from the folder's newest checkpoint (after
/// checking that `config_toml` differs from its settings only in the `allowed` keys) and
/// returns where the loop stood and the rows kept; for a new run, a fresh start.
pub fn resume_from<L: Learner + ?Sized>(
    folder: &mut RunFolder,
    learner: &mut L,
    config_toml: &str,
    allowed: &[&str],
    start: Start,
) -> Result<(RunState, Vec<MetricsRow>)> {
    if start != Start::Resume {
        return Ok((RunState::default(), Vec::new()));
    }
    let (ckpt, state, rows) = folder.resume_at(config_toml, allowed)?;
    learner.load(&ckpt)?;
    Ok((state, rows))
}

/// Saves the learner and its policy, unless a weight is not finite.
fn checkpoint<L: Learner + ?Sized>(
    learner: &L,
    folder: &mut RunFolder,
    iterations: usize,
    seconds: f64,
    how: &Drive<'_, L>,
) -> Result<()> {
    if !learner.is_finite() {
        bail!(
            "after update {iterations} the network's weights are not finite (the run \
             diverged: try a smaller learning rate); nothing was saved. {}",
            folder.newest_checkpoint()
        );
    }
    let state = RunState {
        iterations,
        seconds,
        rows: None,
    };
    folder.checkpoint(state, how.config_toml, |dir| learner.save(dir))?;
    (how.save_policy)(learner, folder.dir())
}
