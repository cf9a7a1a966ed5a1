//! policy-lab's chapters are written once, as Markdown with Rust cells (`book/src/*.md`), and
//! built into two things:
//!
//! * the **book page** (this crate is the book's mdBook preprocessor): each cell's code, and
//!   beneath it the text and figures it produced when the chapter's notebook last ran
//!   ([`page`]);
//! * the **notebook** for Jupyter's Rust kernel, evcxr (`notebooks/<chapter>.ipynb`): the same
//!   cells in the same order, the prose and equations as markdown cells ([`notebook`]).
//!
//! `bash scripts/run_chapters.sh` writes the notebooks and executes them through evcxr; the
//! book then shows those outputs. See the README's "Chapters" section.

pub mod chapter;
pub mod notebook;
pub mod page;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The chapters listed in `SUMMARY.md` under `src`, in the book's order (file stems).
pub fn chapters(src: &Path) -> Result<Vec<String>> {
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).context("reading SUMMARY.md")?;
    Ok(summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter_map(|link| link.strip_suffix(".md"))
        .map(String::from)
        .collect())
}

/// The chapters that have cells, each with its parsed source.
pub fn with_cells(src: &Path) -> Result<Vec<(String, Vec<chapter::Block>)>> {
    let mut out = Vec::new();
    for stem in chapters(src)? {
        let path = src.join(format!("{stem}.md"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let blocks = chapter::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if !chapter::cells(&blocks).is_empty() {
            out.push((stem, blocks));
        }
    }
    Ok(out)
}

/// Where a chapter's notebook lives.
pub fn notebook_path(notebooks: &Path, stem: &str) -> PathBuf {
    notebooks.join(format!("{stem}.ipynb"))
}
