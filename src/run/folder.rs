//! The run folder: the one place where every run, toy or language model, keeps its work.
//!
//! ```text
//! runs/NAME/.lock           held (an advisory lock) while a process writes the folder
//! runs/NAME/config.toml     the run's settings, frozen when the run was created
//! runs/NAME/metrics.jsonl   one JSON object per iteration (an undefined metric is `null`)
//! runs/NAME/resume/         the newest checkpoint: the learner's state, `run.json` (where the
//!                           loop stood) and `config.toml` (the settings it was made with)
//! ```
//!
//! The rules a run folder keeps, so that no afternoon of training is ever lost:
//!
//! * **owned**: one process at a time (a second one is refused with the holder's pid);
//!   training into an existing run is refused unless the user says `--resume` or
//!   `--overwrite`;
//! * **atomic**: every file is written to a temporary name and renamed into place, and a
//!   checkpoint folder is swapped in whole, so a crash leaves the previous one intact;
//! * **frozen**: `--resume` after an edit of `config.toml` is refused, naming the key;
//! * **finite**: a non-finite metric stops the run ([`RunFolder::log`]), naming the update,
//!   the metric and the newest checkpoint that exists; a learner with non-finite weights is
//!   never saved.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::core::files::remove;
pub use crate::core::files::{read_json, read_text, swap_in, temporary, write_atomic, write_json};
use crate::Metrics;

/// How a run uses its folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run: the folder must not hold a run already.
    New,
    /// A new run that replaces the run in the folder, if any (`--overwrite`).
    Overwrite,
    /// Go on from the folder's newest checkpoint (`--resume`).
    Resume,
}

impl Start {
    /// The start the command line's `--resume` and `--overwrite` ask for.
    pub fn from_flags(resume: bool, overwrite: bool) -> Self {
        match (resume, overwrite) {
            (true, _) => Start::Resume,
            (false, true) => Start::Overwrite,
            (false, false) => Start::New,
        }
    }
}

/// Where the training loop stood at a checkpoint (`resume/run.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Iterations done (and lines in `metrics.jsonl` that belong to them).
    pub iterations: usize,
    /// Wall-clock seconds spent training so far.
    pub seconds: f64,
    /// Lines in `metrics.jsonl` that belong to the checkpoint, when not one per iteration
    /// (a language model's RL run logs its starting accuracy first); set by
    /// [`RunFolder::checkpoint`].
    #[serde(default)]
    pub rows: Option<usize>,
}

/// Metrics that are undefined by construction in some iterations: logged as `null`, never a
/// reason to stop (explained variance of constant returns; the gradient norm of a batch
/// with no gradient, e.g. a GRPO batch whose groups all have zero advantage).
pub const MAY_BE_UNDEFINED: [&str; 2] = ["explained_variance", "grad_norm"];

/// A run folder being written; the lock is held until it is dropped.
pub struct RunFolder {
    dir: PathBuf,
    /// The advisory lock: released by the operating system when the file is closed, also
    /// when the process is killed.
    _lock: File,
    jsonl: File,
    /// Rows in `metrics.jsonl`.
    rows: usize,
    /// The iteration of the newest checkpoint in `resume/`, if there is one.
    checkpoint: Option<usize>,
    /// How to say "resume" for this run (`policy-lab train --resume DIR`).
    resume_command: String,
    /// What [`RunFolder::resume_at`] found and will write at the first row or checkpoint:
    /// the log cut back to the checkpoint, and the settings. Nothing is written before the
    /// learner has loaded its checkpoint, so a failed resume changes no file.
    pending: Option<(String, String)>,
    /// Whether this process has written its pid into the lock and begun to write.
    claimed: bool,
}

/// Files a run folder may hold; anything else in an existing folder means it is not a run
/// folder, and `--overwrite` will not empty it.
const RUN_FILES: [&str; 15] = [
    ".lock",
    "config.toml",
    "metrics.jsonl",
    "metrics.csv",
    "policy.mpk",
    "policy.png",
    "policy.svg",
    "eval.json",
    "summary.json",
    "resume",
    "resume.tmp",
    "resume.old",
    "model",
    "model.tmp",
    "model.old",
];

impl RunFolder {
    /// Opens `dir` for a run whose settings are `config_toml`; with [`Start::Resume`] the
    /// caller then reads the checkpoint and calls [`RunFolder::resume_at`].
    /// `resume_command` is what the user types to go on (`policy-lab train --resume DIR`).
    pub fn open(
        dir: &Path,
        start: Start,
        config_toml: &str,
        resume_command: String,
    ) -> Result<Self> {
        if dir.exists() && !dir.is_dir() {
            bail!(
                "{} is a file, not a folder: choose another run folder (--out)",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the run folder {} (is its parent writable?)",
                dir.display()
            )
        })?;
        let mut lock = lock(dir)?;
        let has_run = dir.join("config.toml").exists() || dir.join("metrics.jsonl").exists();
        match start {
            Start::New if has_run => bail!(
                "{} already holds a run: go on with `--resume {}`, replace it with \
                 `--overwrite`, or choose another folder with `--out`",
                dir.display(),
                dir.display()
            ),
            Start::Resume if !has_run => bail!(
                "{} is not a run folder (no config.toml): there is nothing to resume",
                dir.display()
            ),
            Start::Overwrite | Start::New => {
                let strangers = strangers(dir)?;
                if let Some(name) = strangers.first() {
                    bail!(
                        "{} holds {name}, which is not part of a run: it is not a run folder, \
                         and nothing in it is replaced; choose another folder with `--out`",
                        dir.display()
                    );
                }
                claim(&mut lock)?;
                for name in RUN_FILES.iter().filter(|n| **n != ".lock") {
                    remove(&dir.join(name))?;
                }
                write_atomic(&dir.join("config.toml"), config_toml.as_bytes())?;
                write_atomic(&dir.join("metrics.jsonl"), b"")?;
            }
            Start::Resume => {}
        }
        let jsonl = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("metrics.jsonl"))
            .with_context(|| format!("opening {}/metrics.jsonl", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            claimed: start != Start::Resume,
            _lock: lock,
            jsonl,
            rows: 0,
            checkpoint: None,
            resume_command,
            pending: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the user types to go on from the newest checkpoint.
    pub fn resume_command(&self) -> &str {
        &self.resume_command
    }

    /// The newest checkpoint's folder: `resume/`, or `resume.old/` after a crash between
    /// the two renames of a swap.
    pub fn checkpoint_dir(&self) -> Option<PathBuf> {
        checkpoint_in(&self.dir)
    }

    /// Reads the newest checkpoint's place, checks that the run's `config_toml` (with the
    /// changes `allowed` to differ, e.g. `total_timesteps`) is the one the checkpoint was
    /// made with, and cuts `metrics.jsonl` back to the checkpoint's rows. Returns the
    /// checkpoint's folder and where the loop stood; the rows kept are returned parsed.
    pub fn resume_at(
        &mut self,
        config_toml: &str,
        allowed: &[&str],
    ) -> Result<(PathBuf, RunState, Vec<MetricsRow>)> {
        let Some(ckpt) = self.checkpoint_dir() else {
            bail!(
                "{} has no checkpoint to resume from (no resume/ folder): the run stopped \
                 before its first checkpoint; start it again with `--overwrite`",
                self.dir.display()
            );
        };
        let frozen = read_text(&ckpt.join("config.toml"))?;
        if let Some(change) = config_change(&frozen, config_toml, allowed)? {
            return Err(changed_since_created(&self.dir, &change));
        }
        let state: RunState = read_json(&ckpt.join("run.json"))?;
        let path = self.dir.join("metrics.jsonl");
        let text = read_text(&path)?;
        let rows = state.rows.unwrap_or(state.iterations);
        let lines: Vec<&str> = text.lines().take(rows).collect();
        if lines.len() < rows {
            bail!(
                "{} has {} lines but the checkpoint (iteration {}) counts {rows}: the log was cut",
                path.display(),
                lines.len(),
                state.iterations
            );
        }
        let parsed = parse_rows(&path, &lines)?;
        let kept: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.pending = Some((kept, config_toml.to_string()));
        self.rows = parsed.len();
        self.checkpoint = Some(state.iterations);
        Ok((ckpt, state, parsed))
    }

    /// Appends one row to `metrics.jsonl`. A non-finite value stops the run, naming the
    /// update (`iteration`), the metric and the newest checkpoint; a metric that may be
    /// undefined ([`MAY_BE_UNDEFINED`]) is written as `null` instead.
    pub fn log(&mut self, iteration: usize, metrics: &Metrics) -> Result<()> {
        self.settle()?;
        if let Some((k, v)) = metrics
            .iter()
            .find(|(k, v)| !v.is_finite() && !MAY_BE_UNDEFINED.contains(k))
        {
            bail!(
                "update {iteration} produced {k} = {v}; stopping (the run diverged: try a \
                 smaller learning rate). {}",
                self.newest_checkpoint()
            );
        }
        let line = serde_json::to_string(metrics)?;
        writeln!(self.jsonl, "{line}")
            .with_context(|| format!("writing {}/metrics.jsonl", self.dir.display()))?;
        self.rows += 1;
        Ok(())
    }

    /// Where the newest checkpoint is, in words, for a message that stops the run.
    pub fn newest_checkpoint(&self) -> String {
        match self.checkpoint {
            Some(it) => format!(
                "The newest good checkpoint is {}/resume/, at iteration {it}: `{}` goes on from \
                 there",
                self.dir.display(),
                self.resume_command
            ),
            None => format!(
                "No checkpoint was written yet: {} holds no model to go on from",
                self.dir.display()
            ),
        }
    }

    /// Writes a checkpoint: `save` fills a fresh folder, which is then swapped in for
    /// `resume/` with `run.json` (`state`) and the frozen settings (`config_toml`). The log
    /// is flushed to disk first, so every row the checkpoint counts is there.
    pub fn checkpoint(
        &mut self,
        state: RunState,
        config_toml: &str,
        save: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let tmp = self.begin_checkpoint()?;
        save(&tmp)?;
        self.finish_checkpoint(state, config_toml)
    }

    /// The first half of [`RunFolder::checkpoint`], for learners that save from several
    /// threads (data-parallel peers): flushes the log and returns the fresh folder to fill.
    pub fn begin_checkpoint(&mut self) -> Result<PathBuf> {
        self.settle()?;
        self.jsonl.flush()?;
        self.jsonl
            .sync_data()
            .with_context(|| format!("writing {}/metrics.jsonl", self.dir.display()))?;
        let tmp = self.dir.join("resume.tmp");
        remove(&tmp)?;
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(tmp)
    }

    /// The second half: `run.json` and the settings into the filled folder, which is then
    /// swapped in for `resume/`.
    pub fn finish_checkpoint(&mut self, state: RunState, config_toml: &str) -> Result<()> {
        let tmp = self.dir.join("resume.tmp");
        write_atomic(&tmp.join("config.toml"), config_toml.as_bytes())?;
        let state = RunState {
            rows: Some(self.rows),
            ..state
        };
        write_atomic(&tmp.join("run.json"), &serde_json::to_vec(&state)?)?;
        swap_in(&tmp, &self.dir.join("resume"))?;
        self.checkpoint = Some(state.iterations);
        Ok(())
    }

    /// Writes `name` in the run folder atomically.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.settle()?;
        write_atomic(&self.dir.join(name), bytes)
    }

    /// Before the first write: the pid into the lock, and what a resume found pending.
    fn settle(&mut self) -> Result<()> {
        if !self.claimed {
            claim(&mut self._lock)?;
            self.claimed = true;
        }
        if let Some((kept, config_toml)) = self.pending.take() {
            let path = self.dir.join("metrics.jsonl");
            write_atomic(&path, kept.as_bytes())?;
            write_atomic(&self.dir.join("config.toml"), config_toml.as_bytes())?;
            self.jsonl = std::fs::OpenOptions::new().append(true).open(&path)?;
        }
        Ok(())
    }
}

/// One iteration's metrics as read back from `metrics.jsonl` (undefined ones left out).
pub type MetricsRow = std::collections::BTreeMap<String, f64>;

/// The rows of the run folder `dir`'s `metrics.jsonl`, one per logged iteration.
pub fn read_metrics(dir: &Path) -> Result<Vec<MetricsRow>> {
    let path = dir.join("metrics.jsonl");
    let text = read_text(&path)?;
    parse_rows(&path, &text.lines().collect::<Vec<_>>())
}

/// The metric `y` against the metric `x`, `(x, y)`, over the rows where both are defined and
/// finite (`test_accuracy` only at evaluations, `episodic_return` only where an episode ended).
pub fn curve(rows: &[MetricsRow], x: &str, y: &str) -> Vec<(f64, f64)> {
    let point = |m: &MetricsRow| Some((*m.get(x)?, *m.get(y)?));
    let points = rows.iter().filter_map(point);
    points.filter(|(_, y)| y.is_finite()).collect()
}

/// Parses `metrics.jsonl` lines; a bad line is named by its number in the file.
pub fn parse_rows(path: &Path, lines: &[&str]) -> Result<Vec<MetricsRow>> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let row: std::collections::BTreeMap<String, Option<f64>> = serde_json::from_str(line)
                .with_context(|| {
                format!(
                    "{} line {}: not a row of metrics (a JSON object of numbers)",
                    path.display(),
                    i + 1
                )
            })?;
            Ok(row.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
        })
        .collect()
}

/// Takes the run folder's advisory lock, or names the process that holds it.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot write in the run folder {} (is it read-only?)",
                dir.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "{} is being written by another policy-lab process (pid {}); wait for it to \
                 finish, stop it, or choose another folder with `--out`",
                dir.display(),
                holder.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
    Ok(file)
}

/// Writes this process's pid into the lock it holds, for a second process to name.
fn claim(lock: &mut File) -> Result<()> {
    use std::io::Seek;
    lock.set_len(0)?;
    lock.rewind()?;
    write!(lock, "{}", std::process::id())?;
    Ok(())
}

/// The entries of `dir` that a run folder does not have.
fn strangers(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let ours = RUN_FILES.contains(&name.as_str()) || name.ends_with(".tmp");
        if !ours {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The newest whole checkpoint of the run folder `dir`: `resume/`, or `resume.old/` between
/// the two renames of a swap.
fn checkpoint_in(dir: &Path) -> Option<PathBuf> {
    ["resume", "resume.old"]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|d| d.join("run.json").exists())
}

/// The error for a run whose `config.toml` was edited after it was created.
fn changed_since_created(dir: &Path, change: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{}/config.toml was changed since the run was created: {change}. A resumed run must go \
         on with the settings it was made with; put the old value back, or start a new run \
         (another --out, or --overwrite)",
        dir.display()
    )
}

/// For a run folder whose `config.toml` no longer reads (`error`): when the file was edited
/// since the run was created, that edit is the error to report ("`algo` was ..., is now
/// ..."), since it explains the failure; otherwise `error` itself.
pub fn edited_or(dir: &Path, error: anyhow::Error) -> anyhow::Error {
    let frozen =
        checkpoint_in(dir).and_then(|c| std::fs::read_to_string(c.join("config.toml")).ok());
    let now = std::fs::read_to_string(dir.join("config.toml"));
    match (frozen, now) {
        (Some(frozen), Ok(now)) => match config_change(&frozen, &now, &[]) {
            Ok(Some(change)) => changed_since_created(dir, &change),
            _ => error,
        },
        _ => error,
    }
}

/// The first setting that differs between two TOML texts, except the `allowed` ones
/// (dotted keys, e.g. `rl.iterations`), as "KEY was OLD, is now NEW".
pub fn config_change(old: &str, new: &str, allowed: &[&str]) -> Result<Option<String>> {
    let parse = |t: &str| -> Result<toml::Table> { Ok(toml::from_str(t)?) };
    let (old, new) = (flatten(&parse(old)?), flatten(&parse(new)?));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
        if old.get(key) != new.get(key) {
            return Ok(Some(format!(
                "`{key}` was {}, is now {}",
                show(old.get(key)),
                show(new.get(key))
            )));
        }
    }
    Ok(None)
}

/// A TOML table as dotted keys and their values written out.
fn flatten(table: &toml::Table) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = Default::default();
    walk("", &toml::Value::Table(table.clone()), &mut out);
    out
}
