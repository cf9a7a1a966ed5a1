//! The run layer (`policy_lab::run`) with a learner small enough to read: one number that
//! counts iterations. It checks the rules every run keeps, toy or language model: a
//! divergence names the update, the metric and the newest checkpoint; nothing non-finite is
//! saved; an undefined metric is logged as `null`, not a stop; a run folder is owned.

use std::path::{Path, PathBuf};

use anyhow::Result;
use policy_lab::core::learner::Learner;
use policy_lab::run::{drive, Budget, Drive, Progress, RunFolder, RunState, Start};
use policy_lab::Metrics;

/// A learner whose one weight counts its iterations; it can be told to produce a NaN loss,
/// a non-finite weight, or an undefined explained variance at a given iteration.
#[derive(Default)]
struct Counter {
    weight: f64,
    iteration: usize,
    nan_loss_at: Option<usize>,
    infinite_weight_at: Option<usize>,
    undefined_variance: bool,
}

impl Learner for Counter {
    type Policy = f64;
    fn iterate(&mut self) -> Result<Metrics> {
        self.iteration += 1;
        self.weight += 1.0;
        if self.infinite_weight_at == Some(self.iteration) {
            self.weight = f64::INFINITY;
        }
        let mut m = Metrics::new();
        let loss = match self.nan_loss_at == Some(self.iteration) {
            true => f64::NAN,
            false => 1.0 / self.iteration as f64,
        };
        m.insert("loss", loss);
        if self.undefined_variance {
            m.insert("explained_variance", f64::NAN);
        }
        Ok(m)
    }
    fn global_step(&self) -> usize {
        10 * self.iteration
    }
    fn policy(&self) -> &f64 {
        &self.weight
    }
    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::write(
            dir.join("weight.json"),
            serde_json::to_vec(&(self.weight, self.iteration))?,
        )?;
        Ok(())
    }
    fn load(&mut self, dir: &Path) -> Result<()> {
        (self.weight, self.iteration) =
            serde_json::from_slice(&std::fs::read(dir.join("weight.json"))?)?;
        Ok(())
    }
    fn is_finite(&self) -> bool {
        self.weight.is_finite()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("policy-lab-runlayer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const CONFIG: &str = "iterations = 6\n";

/// Runs `learner` for 6 iterations in `dir`, checkpointing every 2.
fn run(learner: &mut Counter, dir: &Path, start: Start) -> Result<usize> {
    let mut folder = RunFolder::open(dir, start, CONFIG, format!("resume {}", dir.display()))?;
    let (mut state, mut rows) = (RunState::default(), Vec::new());
    if start == Start::Resume {
        let (ckpt, s, r) = folder.resume_at(CONFIG, &[])?;
        learner.load(&ckpt)?;
        (state, rows) = (s, r);
    }
    let mut sink = std::io::sink();
    let mut progress = Progress::new("test", 6, "iterations", 6, 6, &mut sink);
    let driven = drive(
        learner,
        &mut folder,
        (state, rows),
        Drive::new(CONFIG, 2, Budget::Iterations(6))
            // The run folder knows a policy by the name `policy.mpk`.
            .save_policy(|l: &Counter, dir| {
                Ok(std::fs::write(
                    dir.join("policy.mpk"),
                    l.weight.to_string(),
                )?)
            }),
        &mut progress,
    )?;
    Ok(driven.iterations)
}

#[test]
fn a_divergence_names_the_update_the_metric_and_the_newest_checkpoint() {
    let dir = scratch("nan");
    let mut learner = Counter {
        nan_loss_at: Some(3),
        ..Counter::default()
    };
    let e = format!("{:#}", run(&mut learner, &dir, Start::New).unwrap_err());
    assert!(
        e.starts_with("update 3 produced loss = NaN; stopping"),
        "{e}"
    );
    assert!(e.contains("resume/, at iteration 2"), "{e}");
    // The checkpoint it names is there, and holds iteration 2.
    let (weight, iteration): (f64, usize) =
        serde_json::from_slice(&std::fs::read(dir.join("resume/weight.json")).unwrap()).unwrap();
    assert_eq!((weight, iteration), (2.0, 2));
    // The NaN row was not logged.
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn non_finite_weights_are_never_saved() {
    let dir = scratch("inf");
    // The weight becomes infinite at iteration 4, with finite metrics: the checkpoint due
    // at 4 is refused and the one at 2 stays.
    let mut learner = Counter {
        infinite_weight_at: Some(4),
        ..Counter::default()
    };
    let e = format!("{:#}", run(&mut learner, &dir, Start::New).unwrap_err());
    assert!(
        e.contains("after update 4 the network's weights are not finite"),
        "{e}"
    );
    assert!(e.contains("resume/, at iteration 2"), "{e}");
    let saved = std::fs::read_to_string(dir.join("resume/weight.json")).unwrap();
    assert!(saved.starts_with("[2.0,2]"), "{saved}");
    assert_eq!(
        std::fs::read_to_string(dir.join("policy.mpk")).unwrap(),
        "2"
    );
}

#[test]
fn an_undefined_metric_is_logged_as_null_and_the_run_goes_on() {
    // On c4cb50f the language-model runner stopped on explained_variance = NaN (PPO on a
    // batch whose returns are all equal), which the toy runner allowed.
    let dir = scratch("undefined");
    let mut learner = Counter {
        undefined_variance: true,
        ..Counter::default()
    };
    assert_eq!(run(&mut learner, &dir, Start::New).unwrap(), 6);
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 6);
    assert!(
        log.lines()
            .all(|l| l.contains("\"explained_variance\":null")),
        "{log}"
    );
}

#[test]
fn a_run_folder_is_refused_to_a_second_run_unless_resumed_or_overwritten() {
    let dir = scratch("owned");
    run(&mut Counter::default(), &dir, Start::New).unwrap();
    let before = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    let e = format!(
        "{:#}",
        run(&mut Counter::default(), &dir, Start::New).unwrap_err()
    );
    assert!(
        e.contains("already holds a run") && e.contains("--overwrite"),
        "{e}"
    );
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), before);
    // --overwrite replaces it; --resume of a finished run has nothing left to do.
    assert_eq!(
        run(&mut Counter::default(), &dir, Start::Overwrite).unwrap(),
        6
    );
    assert_eq!(
        run(&mut Counter::default(), &dir, Start::Resume).unwrap(),
        6
    );
}

#[test]
fn a_locked_run_folder_is_refused_naming_the_holder() {
    let dir = scratch("locked");
    let _held = RunFolder::open(&dir, Start::New, CONFIG, "resume".into()).unwrap();
    let e = format!(
        "{:#}",
        RunFolder::open(&dir, Start::Overwrite, CONFIG, "resume".into())
            .err()
            .unwrap()
    );
    assert!(
        e.contains("being written by another policy-lab process")
            && e.contains(&format!("pid {}", std::process::id())),
        "{e}"
    );
}

#[test]
fn a_resume_goes_on_from_the_checkpoint_with_the_same_rows() {
    let whole = scratch("whole");
    run(&mut Counter::default(), &whole, Start::New).unwrap();
    // Stopped by a divergence at 5: the checkpoint is at 4; the resumed run's log is the
    // uninterrupted one, row for row (but for the clock).
    let broken = scratch("broken");
    let mut learner = Counter {
        nan_loss_at: Some(5),
        ..Counter::default()
    };
    run(&mut learner, &broken, Start::New).unwrap_err();
    run(&mut Counter::default(), &broken, Start::Resume).unwrap();
    let rows = |dir: &Path| -> Vec<(f64, f64)> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["iteration"].as_f64().unwrap(),
                    v["loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(rows(&broken), rows(&whole));
}

#[test]
fn a_resume_after_an_edit_of_the_settings_names_the_key() {
    let text = |k: &str| format!("algo = \"ppo\"\n[ppo]\nhidden = [64, 64]\nnum_envs = {k}\n");
    let change = policy_lab::run::folder::config_change(&text("4"), &text("8"), &[]).unwrap();
    assert_eq!(change.as_deref(), Some("`ppo.num_envs` was 4, is now 8"));
    let same = policy_lab::run::folder::config_change(&text("4"), &text("4"), &[]).unwrap();
    assert_eq!(same, None);
    let allowed =
        policy_lab::run::folder::config_change(&text("4"), &text("8"), &["ppo.num_envs"]).unwrap();
    assert_eq!(allowed, None);
}
