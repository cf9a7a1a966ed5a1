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
use plotters::prelude::*;

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
    let path = dir.join("metrics.jsonl");
    let text = crate::run::folder::read_text(&path)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut points = Vec::new();
    // A bad line is named by its number; undefined metrics (`null`) are left out.
    for m in crate::run::folder::parse_rows(&path, &lines)? {
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
                    let ys: Vec<f64> = runs
                        .iter()
                        .filter_map(|r| {
                            r.points.iter().take_while(|p| p.0 <= x).last().map(|p| p.1)
                        })
                        .collect();
                    if ys.is_empty() {
                        return None;
                    }
                    let n = ys.len() as f64;
                    let mean = ys.iter().sum::<f64>() / n;
                    let std = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
                    Some((x, mean, mean - std, mean + std))
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

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

/// Draws `curves` into `<stem>.png` and `<stem>.svg`; returns the two paths.
pub fn draw(curves: &[MeanCurve], x: XAxis, title: &str, stem: &Path) -> Result<Vec<PathBuf>> {
    if curves.iter().all(|c| c.points.is_empty()) {
        bail!("nothing to plot: the runs have no episodic_return or reward yet");
    }
    register_font();
    let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
    draw_on(
        &BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        curves,
        x,
        title,
    )?;
    draw_on(
        &SVGBackend::new(&svg, (900, 560)).into_drawing_area(),
        curves,
        x,
        title,
    )?;
    Ok(vec![png, svg])
}

fn draw_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[MeanCurve],
    x: XAxis,
    title: &str,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the plot: {e}");
    area.fill(&WHITE).map_err(e)?;
    let all = curves.iter().flat_map(|c| c.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in all {
        x0 = x0.min(p.0);
        x1 = x1.max(p.0);
        y0 = y0.min(p.2);
        y1 = y1.max(p.3);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x.label())
        .y_desc(curves.first().map_or("return", |c| c.y))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for (i, c) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let band: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|p| (p.0, p.3))
            .chain(c.points.iter().rev().map(|p| (p.0, p.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
            .map_err(e)?;
        let label = if c.seeds > 1 {
            format!("{} ({} seeds)", c.label, c.seeds)
        } else {
            c.label.clone()
        };
        chart
            .draw_series(LineSeries::new(
                c.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(e)?;
    area.present().map_err(e)?;
    Ok(())
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
