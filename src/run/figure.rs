//! One plot style for every figure policy-lab draws: the book's cells, the notebooks,
//! `policy-lab plot` and the main job's `runs/ladder/`.
//!
//! * axis titles say what is counted and in what unit (`environment steps`, `wall time (s)`);
//! * counted axes get whole-number ticks with thousands separators (`10,000`, not `10000.0`);
//! * the colours are Okabe and Ito's palette, told apart with colour-blindness;
//! * a white background, so that a figure reads the same on the book's light and dark themes.
//!
//! ```no_run
//! use policy_lab::run::figure::Figure;
//! let xs: Vec<f64> = (0..=100).map(|i| i as f64 / 50.0).collect();
//! let fig = Figure::new("the clipped objective")
//!     .x("ratio r", false)
//!     .y("L(r) for A = 1")
//!     .line("clipped", &xs, &xs.iter().map(|r| r.min(1.2)).collect::<Vec<_>>());
//! fig.save(std::path::Path::new("clip")).unwrap(); // clip.png and clip.svg
//! ```
//!
//! In a notebook, a `Figure` as a cell's last expression shows inline.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Okabe and Ito's colour-blind-safe palette (2008), without its yellow, which is too pale on
/// white.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// One series of a figure.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// `(x, y)` points, drawn as a line (or as markers with `markers`).
    pub points: Vec<(f64, f64)>,
    /// A shaded band `(x, low, high)` under the line (e.g. one standard deviation over seeds).
    pub band: Vec<(f64, f64, f64)>,
    pub markers: bool,
}

/// A figure: a title, two axes and its series. Build it with the methods below, then
/// [`Figure::svg`], [`Figure::save`], or show it in a notebook.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Whole-number ticks with thousands separators on the x axis (counted steps).
    pub x_counts: bool,
    pub series: Vec<Series>,
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// Where the legend goes: `"upper left"` (the default; learning curves rise to the
    /// right), `"upper right"`, `"lower left"` or `"lower right"`.
    pub legend: &'static str,
}

impl Figure {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            x_counts: false,
            series: Vec::new(),
            size: (720, 440),
            legend: "upper left",
        }
    }
    /// The x axis' title; `counts` for whole-number ticks (steps, episodes, iterations).
    pub fn x(mut self, label: &str, counts: bool) -> Self {
        self.x_label = label.into();
        self.x_counts = counts;
        self
    }
    pub fn y(mut self, label: &str) -> Self {
        self.y_label = label.into();
        self
    }
    /// Moves the legend to where the data is not (see [`Figure::legend`]).
    pub fn legend(mut self, corner: &'static str) -> Self {
        self.legend = corner;
        self
    }
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }
    /// A line through `(xs[i], ys[i])`.
    pub fn line(self, label: &str, xs: &[f64], ys: &[f64]) -> Self {
        self.add(label, xs, ys, Vec::new(), false)
    }
    /// Points as markers, no line.
    pub fn points(self, label: &str, xs: &[f64], ys: &[f64]) -> Self {
        self.add(label, xs, ys, Vec::new(), true)
    }
    /// A mean line with a shaded band from `low` to `high` (over seeds, say).
    pub fn band(self, label: &str, xs: &[f64], mean: &[f64], low: &[f64], high: &[f64]) -> Self {
        let band = xs
            .iter()
            .zip(low.iter().zip(high))
            .map(|(x, (l, h))| (*x, *l, *h))
            .collect();
        self.add(label, xs, mean, band, false)
    }
    /// The mean over `runs` (each `ys` on the same `xs`) with a band of one standard deviation.
    pub fn mean_over(self, label: &str, xs: &[f64], runs: &[Vec<f64>]) -> Self {
        let at = |i: usize| -> Vec<f64> { runs.iter().filter_map(|r| r.get(i).copied()).collect() };
        let stats: Vec<(f64, f64)> = (0..xs.len())
            .map(|i| crate::core::metrics::mean_sd(&at(i)))
            .collect();
        let mean: Vec<f64> = stats.iter().map(|(m, _)| *m).collect();
        let low: Vec<f64> = stats.iter().map(|(m, s)| m - s).collect();
        let high: Vec<f64> = stats.iter().map(|(m, s)| m + s).collect();
        let label = format!("{label} (mean ± sd, {} seeds)", runs.len());
        self.band(&label, xs, &mean, &low, &high)
    }
    fn add(
        mut self,
        label: &str,
        xs: &[f64],
        ys: &[f64],
        band: Vec<(f64, f64, f64)>,
        markers: bool,
    ) -> Self {
        let points = xs
            .iter()
            .zip(ys)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| (*x, *y))
            .collect();
        self.series.push(Series {
            label: label.into(),
            points,
            band,
            markers,
        });
        self
    }

    /// The figure as SVG text.
    pub fn svg(&self) -> Result<String> {
        register_font();
        let mut text = String::new();
        {
            let area = SVGBackend::with_string(&mut text, self.size).into_drawing_area();
            self.draw_on(&area)?;
        }
        Ok(text)
    }

    /// Writes `<stem>.png` and `<stem>.svg`; returns their paths (in that order).
    pub fn save(&self, stem: &Path) -> Result<Vec<PathBuf>> {
        register_font();
        let (svg, png) = (stem.with_extension("svg"), stem.with_extension("png"));
        crate::core::files::write_atomic(&svg, self.svg()?.as_bytes())?;
        self.draw_on(&BitMapBackend::new(&png, self.size).into_drawing_area())?;
        Ok(vec![png, svg])
    }

    /// What evcxr calls to show a value: the figure inline, as SVG.
    pub fn evcxr_display(&self) {
        match self.svg() {
            Ok(svg) => println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{svg}\nEVCXR_END_CONTENT"),
            Err(e) => eprintln!("the figure could not be drawn: {e:#}"),
        }
    }

    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the figure: {e}");
        area.fill(&WHITE).map_err(e)?;
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for s in &self.series {
            for &(x, y) in &s.points {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
            }
            for &(x, l, h) in &s.band {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(l), y1.max(h));
            }
        }
        if x0 > x1 {
            return Err(anyhow!("the figure {:?} has no finite point", self.title));
        }
        let pad = ((y1 - y0) * 0.06).max(1e-6);
        let x_pad = if x1 > x0 { 0.0 } else { 0.5 };
        let counts = self.x_counts;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x0 - x_pad)..(x1 + x_pad), (y0 - pad)..(y1 + pad))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_label_formatter(&|x| tick(*x, counts))
            .y_label_formatter(&|y| tick(*y, false))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(e)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if !s.band.is_empty() {
                let outline: Vec<(f64, f64)> = s
                    .band
                    .iter()
                    .map(|b| (b.0, b.2))
                    .chain(s.band.iter().rev().map(|b| (b.0, b.1)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.2).filled(),
                    )))
                    .map_err(e)?;
            }
            let drawn = if s.markers {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(e)?
            } else {
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(e)?
            };
            if !s.label.is_empty() {
                drawn.label(s.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
                });
            }
        }
        if self.series.iter().any(|s| !s.label.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .label_font(("sans-serif", 14))
                .position(match self.legend {
                    "upper right" => SeriesLabelPosition::UpperRight,
                    "lower left" => SeriesLabelPosition::LowerLeft,
                    "lower right" => SeriesLabelPosition::LowerRight,
                    _ => SeriesLabelPosition::UpperLeft,
                })
                .draw()
                .map_err(e)?;
        }
        area.present().map_err(e)?;
        Ok(())
    }
}

/// A tick label: whole numbers with thousands separators for counts, otherwise at most four
/// significant digits without trailing zeros.
pub fn tick(v: f64, counts: bool) -> String {
    if counts || (v.fract() == 0.0 && v.abs() >= 1000.0) {
        let n = v.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        return if n < 0 {
            format!("-{grouped}")
        } else {
            grouped
        };
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// The embedded font, registered once: drawing needs no fonts installed on the machine.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            include_bytes!("../../assets/fonts/DejaVuSans.ttf"),
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_ticks_are_whole_numbers_with_separators() {
        assert_eq!(tick(10000.0, true), "10,000");
        assert_eq!(tick(1234567.4, true), "1,234,567");
        assert_eq!(tick(-2500.0, true), "-2,500");
        assert_eq!(tick(0.25, false), "0.25");
        assert_eq!(tick(2.0, false), "2");
        assert_eq!(tick(-0.00001, false), "0");
    }

    #[test]
    fn a_figure_draws_its_series_bands_and_axis_titles() {
        let xs = [0.0, 5000.0, 10000.0];
        let svg = Figure::new("curve")
            .x("environment steps", true)
            .y("return")
            .mean_over("ppo", &xs, &[vec![1.0, 2.0, 3.0], vec![3.0, 4.0, 5.0]])
            .svg()
            .unwrap();
        for needle in [
            "curve",
            "environment steps",
            "return",
            "10,000",
            "ppo (mean ± sd, 2 seeds)",
        ] {
            assert!(svg.contains(needle), "{needle} not in the SVG");
        }
        assert!(!svg.contains("10000.0"));
        // Okabe-Ito blue for the first series.
        assert!(
            svg.to_lowercase().contains("#0072b2"),
            "the palette's first colour"
        );
        assert!(Figure::new("empty").svg().is_err());
    }
}
