//! Pictures of gridworlds, as SVG text or PNG files (with `plotters`).
//!
//! A [`GridPicture`] draws the map (floor, holes, walls, start, goal) and, on top of it, any
//! of: a value heatmap (one number per cell), a policy's arrows (an action per cell, or the
//! action probabilities, drawn as arrows whose length is the probability), the path of an
//! episode, and the agent. The book and the notebooks draw learned policies with it.
//!
//! ```no_run
//! # use policy_lab_envs::{GridWorld, render::GridPicture};
//! let lake = GridWorld::frozen_lake("4x4", true).unwrap();
//! let (values, policy) = lake.value_iteration(0.99, 1e-8);
//! let svg = GridPicture::new(&lake).values(&values).greedy_policy(&policy).to_svg();
//! GridPicture::new(&lake).values(&values).greedy_policy(&policy).save_png("lake.png").unwrap();
//! ```

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gridworld::{GridWorld, Tile, DOWN, LEFT, RIGHT, UP};

/// Pixels per cell side.
const CELL: i32 = 64;

/// A picture of a gridworld with optional overlays.
#[derive(Clone, Debug)]
pub struct GridPicture<'a> {
    world: &'a GridWorld,
    values: Option<&'a [f64]>,
    arrows: Option<Vec<[f64; 4]>>,
    path: Option<&'a [usize]>,
    agent: Option<usize>,
}

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not draw or write the picture: {0}")]
    Draw(String),
    #[error("an overlay has {got} entries but the grid has {expected} cells")]
    Size { got: usize, expected: usize },
}

impl<'a> GridPicture<'a> {
    /// The bare map.
    pub fn new(world: &'a GridWorld) -> Self {
        Self {
            world,
            values: None,
            arrows: None,
            path: None,
            agent: None,
        }
    }
    /// Colours each cell by its value (dark = low, bright = high).
    pub fn values(mut self, values: &'a [f64]) -> Self {
        self.values = Some(values);
        self
    }
    /// One arrow per cell for the action `policy[s]`.
    pub fn greedy_policy(mut self, policy: &[usize]) -> Self {
        self.arrows = Some(
            policy
                .iter()
                .map(|&a| {
                    let mut p = [0.0; 4];
                    p[a.min(3)] = 1.0;
                    p
                })
                .collect(),
        );
        self
    }
    /// Four arrows per cell, each as long as the probability of its action.
    pub fn action_probs(mut self, probs: &[[f64; 4]]) -> Self {
        self.arrows = Some(probs.to_vec());
        self
    }
    /// The cells an episode visited, joined by a line.
    pub fn path(mut self, states: &'a [usize]) -> Self {
        self.path = Some(states);
        self
    }
    /// Marks the agent's cell.
    pub fn agent(mut self, state: usize) -> Self {
        self.agent = Some(state);
        self
    }

    /// The picture's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            (self.world.ncol() as i32 * CELL) as u32,
            (self.world.nrow() as i32 * CELL) as u32,
        )
    }

    /// The picture as an SVG document.
    pub fn to_svg(&self) -> String {
        let mut svg = String::new();
        {
            let area = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            // Drawing into a string cannot fail for a valid overlay; an invalid one draws
            // nothing, which `check` reports through `save_png`/`try_svg`.
            let _ = self.draw(&area);
        }
        svg
    }

    /// The picture as an SVG document, or the reason it cannot be drawn.
    pub fn try_svg(&self) -> Result<String, RenderError> {
        self.check()?;
        Ok(self.to_svg())
    }

    /// Writes the picture as a PNG file.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<(), RenderError> {
        self.check()?;
        let area = BitMapBackend::new(path.as_ref(), self.size()).into_drawing_area();
        self.draw(&area)?;
        area.present().map_err(|e| RenderError::Draw(e.to_string()))
    }

    /// Writes the picture as an SVG file.
    pub fn save_svg(&self, path: impl AsRef<Path>) -> Result<(), RenderError> {
        std::fs::write(path, self.try_svg()?).map_err(|e| RenderError::Draw(e.to_string()))
    }

    fn check(&self) -> Result<(), RenderError> {
        let expected = self.world.nrow() * self.world.ncol();
        let lens = [
            self.values.map(<[f64]>::len),
            self.arrows.as_ref().map(Vec::len),
        ];
        match lens.into_iter().flatten().find(|&n| n != expected) {
            Some(got) => Err(RenderError::Size { got, expected }),
            None => Ok(()),
        }
    }

    fn center(&self, s: usize) -> (i32, i32) {
        let (r, c) = (
            (s / self.world.ncol()) as i32,
            (s % self.world.ncol()) as i32,
        );
        (c * CELL + CELL / 2, r * CELL + CELL / 2)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), RenderError> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| RenderError::Draw(e.to_string());
        self.check()?;
        area.fill(&WHITE).map_err(err)?;
        let n = self.world.nrow() * self.world.ncol();
        let (vmin, vmax) = match self.values {
            Some(v) => v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(*x), hi.max(*x))
                }),
            None => (0.0, 1.0),
        };
        for s in 0..n {
            let (cx, cy) = self.center(s);
            let (x0, y0) = (cx - CELL / 2, cy - CELL / 2);
            let tile = self.world.tile(s);
            let fill = match (tile, self.values) {
                (Tile::Wall, _) => RGBColor(90, 90, 90),
                (Tile::Hole, _) => RGBColor(20, 40, 90),
                (Tile::Goal, _) => RGBColor(240, 190, 40),
                (_, Some(v)) => heat((v[s] - vmin) / (vmax - vmin).max(1e-12)),
                (Tile::Start, None) => RGBColor(170, 220, 170),
                (Tile::Free, None) => RGBColor(200, 230, 250),
            };
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + CELL, y0 + CELL)],
                fill.filled(),
            ))
            .map_err(err)?;
            area.draw(&Rectangle::new(
                [(x0, y0), (x0 + CELL, y0 + CELL)],
                RGBColor(255, 255, 255).stroke_width(1),
            ))
            .map_err(err)?;
            if tile == Tile::Start {
                area.draw(&Rectangle::new(
                    [(x0 + 2, y0 + 2), (x0 + CELL - 2, y0 + CELL - 2)],
                    GREEN.stroke_width(3),
                ))
                .map_err(err)?;
            }
            if let (Some(arrows), Tile::Start | Tile::Free) = (&self.arrows, tile) {
                for (a, p) in arrows[s].iter().enumerate() {
                    if *p > 0.02 {
                        self.draw_arrow(area, s, a, *p).map_err(err)?;
                    }
                }
            }
        }
        if let Some(path) = self.path {
            let points: Vec<(i32, i32)> = path.iter().map(|&s| self.center(s)).collect();
            area.draw(&PathElement::new(
                points,
                RGBColor(220, 40, 40).stroke_width(3),
            ))
            .map_err(err)?;
        }
        if let Some(s) = self.agent {
            area.draw(&Circle::new(
                self.center(s),
                CELL / 5,
                RGBColor(220, 40, 40).filled(),
            ))
            .map_err(err)?;
        }
        Ok(())
    }

    /// An arrow from the cell's centre in the direction of action `a`, `p` of the way to the
    /// cell's edge.
    fn draw_arrow<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        s: usize,
        a: usize,
        p: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (cx, cy) = self.center(s);
        let (dx, dy) = match a {
            LEFT => (-1, 0),
            DOWN => (0, 1),
            RIGHT => (1, 0),
            UP => (0, -1),
            _ => (0, 0),
        };
        let len = (f64::from(CELL) * 0.42 * p.clamp(0.0, 1.0)).round() as i32;
        let tip = (cx + dx * len, cy + dy * len);
        let head = 7;
        let base = (tip.0 - dx * head, tip.1 - dy * head);
        let (px, py) = (-dy, dx);
        let black = RGBColor(20, 20, 20);
        area.draw(&PathElement::new(
            vec![(cx, cy), base],
            black.stroke_width(3),
        ))?;
        area.draw(&Polygon::new(
            vec![
                tip,
                (base.0 + px * head, base.1 + py * head),
                (base.0 - px * head, base.1 - py * head),
            ],
            black.filled(),
        ))
    }
}

/// A dark-blue → green → yellow colour ramp for `t` in [0, 1] (close to viridis).
fn heat(t: f64) -> RGBColor {
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(
        mix(stops[i].0, stops[i + 1].0),
        mix(stops[i].1, stops[i + 1].1),
        mix(stops[i].2, stops[i + 1].2),
    )
}

/// A film strip of CartPole states: up to `frames` evenly spaced snapshots of the cart and
/// pole, left to right and top to bottom, five to a row.
#[derive(Clone, Debug)]
pub struct CartPoleStrip<'a> {
    states: &'a [[f64; 4]],
    frames: usize,
}

impl<'a> CartPoleStrip<'a> {
    const W: i32 = 200;
    const H: i32 = 120;
    const PER_ROW: usize = 5;

    pub fn new(states: &'a [[f64; 4]], frames: usize) -> Self {
        Self {
            states,
            frames: frames.max(1),
        }
    }

    fn picked(&self) -> Vec<[f64; 4]> {
        let n = self.states.len();
        if n == 0 {
            return Vec::new();
        }
        let k = self.frames.min(n);
        (0..k)
            .map(|i| self.states[if k == 1 { 0 } else { i * (n - 1) / (k - 1) }])
            .collect()
    }

    pub fn size(&self) -> (u32, u32) {
        let k = self.picked().len().max(1);
        let cols = k.min(Self::PER_ROW) as i32;
        let rows = k.div_ceil(Self::PER_ROW) as i32;
        ((cols * Self::W) as u32, (rows * Self::H) as u32)
    }

    /// The strip as an SVG document.
    pub fn to_svg(&self) -> String {
        let mut svg = String::new();
        {
            let area = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            let _ = self.draw(&area);
        }
        svg
    }

    /// Writes the strip as a PNG file.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<(), RenderError> {
        let area = BitMapBackend::new(path.as_ref(), self.size()).into_drawing_area();
        self.draw(&area)
            .map_err(|e| RenderError::Draw(e.to_string()))?;
        area.present().map_err(|e| RenderError::Draw(e.to_string()))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        area.fill(&WHITE)?;
        // World to pixels: the track spans x in [-2.4, 2.4]; the pole (1 m long) is drawn
        // at the same scale.
        let scale = f64::from(Self::W - 20) / (2.0 * crate::cartpole::X_THRESHOLD);
        for (i, [x, _, theta, _]) in self.picked().into_iter().enumerate() {
            let (fx, fy) = (
                (i % Self::PER_ROW) as i32 * Self::W,
                (i / Self::PER_ROW) as i32 * Self::H,
            );
            let ground = fy + Self::H - 25;
            area.draw(&Rectangle::new(
                [(fx + 2, fy + 2), (fx + Self::W - 2, fy + Self::H - 2)],
                RGBColor(200, 200, 200),
            ))?;
            area.draw(&PathElement::new(
                vec![(fx + 10, ground), (fx + Self::W - 10, ground)],
                BLACK,
            ))?;
            let cx = fx + Self::W / 2 + (x * scale).round() as i32;
            area.draw(&Rectangle::new(
                [(cx - 15, ground - 12), (cx + 15, ground)],
                RGBColor(50, 50, 50).filled(),
            ))?;
            let pole = 2.0 * crate::cartpole::LENGTH * scale;
            let tip = (
                cx + (pole * theta.sin()).round() as i32,
                ground - 12 - (pole * theta.cos()).round() as i32,
            );
            area.draw(&PathElement::new(
                vec![(cx, ground - 12), tip],
                RGBColor(200, 120, 60).stroke_width(5),
            ))?;
            area.draw(&Circle::new(
                (cx, ground - 12),
                3,
                RGBColor(120, 120, 200).filled(),
            ))?;
        }
        Ok(())
    }
}
