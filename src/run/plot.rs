//! Learning curves: `policy-lab plot runs/...`.
//!
//! Each run folder holds `config.toml` and `metrics.jsonl`. Runs of the same algorithm on
//! the same environment (different seeds) are drawn as one curve: the mean over seeds with
//! a band of one standard deviation. The y value is `episodic_return` (or, for GRPO, its
//! `reward`: the mean return of the iteration's episodes), against environment steps or
//! wall time. Writes a PNG and an SVG.
//!
//! Language-model runs (`policy-lab lm ...`) are drawn the same way, with the held-out
//! `test_accuracy` against completions (`global_step`) or wall time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use crate::core::metrics::mean_sd;
use crate::run::figure::Figure;
use crate::run::train::RunConfig;

/// The x axis of a learning curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum XAxis {
    /// Environment steps (`global_step`).
    Steps,
    /// Wall-clock seconds (`time`).
    Time,
}

impl XAxis {
    fn key(self) -> &'static str {
        match self {
            XAxis::Steps => "global_step",
            XAxis::Time => "time",
        }
    }
    fn label(self) -> &'static str {
        match self {
            XAxis::Steps => "environment steps",
            XAxis::Time => "wall time (s)",
        }
    }
}

/// One run's curve: `(x, return)` points.
#[derive(Clone, Debug)]
pub struct RunCurve {
    pub label: String,
    /// What y is: `return` or `held-out accuracy`.
    pub y: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// Reads a run folder's curve.
pub fn read_run(dir: &Path, x: XAxis) -> Result<RunCurve> {
    let text = std::fs::read_to_string(dir.join("config.toml"))
        .with_context(|| format!("{} is not a run folder (no config.toml)", dir.display()))?;
    // A toy-environment run, or else a language-model run.
    let (label, y_keys, y) = match RunConfig::from_toml(&text) {
        Ok(config) => (
            format!("{} on {}", config.algo.name(), config.env),
            &["episodic_return", "reward"][..],
            "return",
        ),
        Err(toy_err) => {
            let config = crate::run::lm::LmRunConfig::from_toml(&text)
                .map_err(|_| toy_err)
                .with_context(|| format!("reading {}/config.toml", dir.display()))?;
            let t = &config.task;
            (
                format!("{} on {}:{}", config.algo.name(), t.op, t.digits),
                &["test_accuracy"][..],
                "held-out accuracy",
            )
        }
    };
    let mut points = Vec::new();
    // A bad line is named by its number; undefined metrics (`null`) are left out.
    for m in crate::run::folder::read_metrics(dir)? {
        let yv = y_keys.iter().find_map(|k| m.get(*k));
        if let (Some(x), Some(yv)) = (m.get(x.key()), yv) {
            points.push((*x, *yv));
        }
    }
    Ok(RunCurve { label, y, points })
}

/// A curve averaged over seeds: `(x, mean, mean - std, mean + std)` on a common grid.
#[derive(Clone, Debug)]
pub struct MeanCurve {
    pub label: String,
    pub y: &'static str,
    pub seeds: usize,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// Groups runs by label and averages each group on 100 x positions, each run holding its
/// last value (runs that have not reached an x yet are left out there).
pub fn average(runs: &[RunCurve]) -> Vec<MeanCurve> {
    let mut groups: BTreeMap<&str, Vec<&RunCurve>> = BTreeMap::new();
    for r in runs.iter().filter(|r| !r.points.is_empty()) {
        groups.entry(&r.label).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(label, runs)| {
            let x_max = runs
                .iter()
                .map(|r| r.points.last().map_or(0.0, |p| p.0))
                .fold(0.0, f64::max);
            let x_min = runs
                .iter()
                .map(|r| r.points[0].0)
                .fold(f64::INFINITY, f64::min);
            let points = (0..100)
                .filter_map(|i| {
                    let x = x_min + (x_max - x_min) * f64::from(i) / 99.0;
                    let ys: Vec<f64> = runs.iter().filter_map(|r| value_at(&r.points, x)).collect();
                    if ys.is_empty() {
                        return None;
                    }
                    let (mean, sd) = mean_sd(&ys);
                    Some((x, mean, mean - sd, mean + sd))
                })
                .collect();
            MeanCurve {
                label: label.to_string(),
                y: runs[0].y,
                seeds: runs.len(),
                points,
            }
        })
        .collect()
}

/// A curve's value at `x`: its last point at or before `x` (a run's metrics hold until the
/// next iteration's); none before its first point.
pub fn value_at(points: &[(f64, f64)], x: f64) -> Option<f64> {
    points.iter().take_while(|p| p.0 <= x).last().map(|p| p.1)
}

/// A curve on the x positions of `grid` ([`value_at`], or its first value before it starts),
/// so that runs logged at different steps can be averaged point by point.
pub fn on_grid(points: &[(f64, f64)], grid: &[f64]) -> Vec<f64> {
    let first = points.first().map_or(f64::NAN, |p| p.1);
    grid.iter()
        .map(|x| value_at(points, *x).unwrap_or(first))
        .collect()
}

/// Draws `curves` into `<stem>.png` and `<stem>.svg` in the one plot style
/// ([`crate::run::figure`]): each label's mean over seeds with a band of one standard
/// deviation. Returns the two paths.
pub fn draw(curves: &[MeanCurve], x: XAxis, title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    if curves.iter().all(|c| c.points.is_empty()) {
        bail!("nothing to plot: the runs have no episodic_return or reward yet");
    }
    let y = curves.first().map_or("return", |c| c.y);
    let mut figure = Figure::new(title).x(x.label(), x == XAxis::Steps).y(y);
    for c in curves {
        let label = if c.seeds > 1 {
            format!("{} (mean ± sd, {} seeds)", c.label, c.seeds)
        } else {
            c.label.clone()
        };
        let column =
            |k: usize| -> Vec<f64> { c.points.iter().map(|p| [p.0, p.1, p.2, p.3][k]).collect() };
        figure = if c.seeds > 1 {
            figure.band(&label, &column(0), &column(1), &column(2), &column(3))
        } else {
            figure.line(&label, &column(0), &column(1))
        };
    }
    figure.save(stem)
}

/// An SVG image that Jupyter's Rust kernel (evcxr) shows inline: evaluate an `Svg` as a
/// cell's last expression, e.g. `Svg::open(&files[1])?` for the SVG that [`draw`] wrote.
#[derive(Clone, Debug)]
pub struct Svg(pub String);

impl Svg {
    /// Reads an SVG file.
    pub fn open(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self(text))
    }

    /// What evcxr calls to show a value: the image between its content markers.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}
