//! Live output: one progress bar on a terminal (steps, return or reward, steps per second;
//! never past 100%), plain lines every few iterations anywhere else (a log file, a pipe, a
//! notebook).
//!
//! The bar is drawn only when the program says it runs on a terminal
//! ([`bars_on_terminal`], called by `main`); the library (tests, notebooks) writes lines to
//! the writer it is given.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::Metrics;

static BARS: AtomicBool = AtomicBool::new(false);

/// Draws progress bars from now on when standard error is a terminal (for `main`).
pub fn bars_on_terminal() {
    BARS.store(std::io::stderr().is_terminal(), Ordering::SeqCst);
}

/// The progress of one run: `done` of `total` (environment steps, iterations, episodes).
pub struct Progress<'a> {
    bar: Option<ProgressBar>,
    out: &'a mut (dyn Write + Send),
    total: usize,
    unit: &'static str,
    /// Lines are written every this many updates (and at the last).
    every: usize,
    updates: usize,
}

impl<'a> Progress<'a> {
    /// Progress toward `total` `unit`s (`"steps"`, `"iterations"`, `"episodes"`); lines go to
    /// `out` about `lines` times in all when no bar is drawn.
    pub fn new(
        title: &str,
        total: usize,
        unit: &'static str,
        lines: usize,
        expected_updates: usize,
        out: &'a mut (dyn Write + Send),
    ) -> Self {
        let bar = BARS.load(Ordering::SeqCst).then(|| {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos:>8}/{len} {msg} ({elapsed})",
            )
            .expect("a valid template")
            .progress_chars("#>.");
            bar.set_style(style);
            bar.set_prefix(title.to_string());
            bar
        });
        Self {
            bar,
            out,
            total,
            unit,
            every: expected_updates.div_ceil(lines.max(1)).max(1),
            updates: 0,
        }
    }

    /// `done` units so far; `m` gives the numbers shown (`episodic_return`, `reward`,
    /// `test_accuracy`, `loss`).
    pub fn update(&mut self, done: usize, m: &Metrics) -> std::io::Result<()> {
        self.updates += 1;
        let done = done.min(self.total);
        let mut shown: Vec<String> = ["episodic_return", "reward", "test_accuracy", "loss"]
            .iter()
            .filter_map(|k| Some(format!("{} {:.3}", short(k), m.get(*k)?)))
            .collect();
        if let Some(sps) = m.get("SPS") {
            shown.push(format!("{sps:.0} steps/s"));
        }
        let msg = shown.join("  ");
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(msg);
            }
            None if self.updates.is_multiple_of(self.every) || done == self.total => {
                let pct = 100.0 * done as f64 / self.total.max(1) as f64;
                writeln!(
                    self.out,
                    "{pct:>3.0}% {done}/{} {}  {msg}",
                    self.total, self.unit
                )?;
            }
            None => {}
        }
        Ok(())
    }

    /// A line of its own, above the bar.
    pub fn say(&mut self, line: &str) -> std::io::Result<()> {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                Ok(())
            }
            None => writeln!(self.out, "{line}"),
        }
    }

    /// Ends the bar, leaving its last state on screen.
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn short(key: &str) -> &str {
    match key {
        "episodic_return" => "return",
        "test_accuracy" => "test accuracy",
        other => other,
    }
}
