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

use anyhow::{bail, Context, Result};
use serde_json::Value;

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

/// Writes `notebooks/<chapter>.ipynb` under `root` from every chapter with cells in
/// `root/book/src`, keeping the outputs of the cells whose code is unchanged; returns the
/// notebooks written. With `check`, writes nothing and fails if a notebook's cells differ
/// from its chapter's, or a notebook has no chapter.
pub fn write_notebooks(root: &Path, check: bool) -> Result<Vec<PathBuf>> {
    let src = root.join("book/src");
    let dir = root.join("notebooks");
    let chapters = with_cells(&src)?;
    let stems: Vec<String> = chapters.iter().map(|(s, _)| s.clone()).collect();
    let mut stale = Vec::new();
    let mut written = Vec::new();
    for (stem, blocks) in &chapters {
        let mut fresh = notebook::notebook(blocks, &src, &stems)?;
        let path = notebook_path(&dir, stem);
        let committed: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if check {
            if committed.map(|c| notebook::sources(&c)) != Some(notebook::sources(&fresh)) {
                stale.push(path.display().to_string());
            }
        } else {
            if let Some(old) = &committed {
                notebook::keep_outputs(&mut fresh, old);
            }
            let text = serde_json::to_string_pretty(&fresh)? + "\n";
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    // A notebook no chapter writes is a leftover.
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if path.extension().is_some_and(|e| e == "ipynb") && !stems.iter().any(|s| s == stem) {
            stale.push(format!("{} (no chapter writes it)", path.display()));
        }
    }
    if !stale.is_empty() {
        bail!(
            "these notebooks are not what their chapters write (run \
             `cargo run -p policy-lab-cells -- notebooks`):\n  {}",
            stale.join("\n  ")
        );
    }
    Ok(written)
}
