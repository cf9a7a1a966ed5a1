//! `policy-lab-cells`: the chapters' two outputs from their one source.
//!
//! ```text
//! policy-lab-cells notebooks           write notebooks/<chapter>.ipynb for every chapter with cells
//! policy-lab-cells notebooks --check   fail if a committed notebook's cells differ from its chapter's
//! policy-lab-cells supports html       (mdBook asks this of a preprocessor)
//! policy-lab-cells                     mdBook's preprocessor: reads [context, book] on stdin
//! ```
//!
//! Run from the repository root (`notebooks`) or by mdBook from `book/` (the preprocessor).
//! With `POLICY_LAB_CELLS_REQUIRE=1` (CI), a cell without an output of its current code fails
//! the book's build.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use policy_lab_cells::page::{render, Missing};
use policy_lab_cells::{chapter, notebook_path, write_notebooks};
use serde_json::Value;

fn main() {
    // The message, with its causes, and no backtrace: these are a user's errors, not bugs.
    if let Err(e) = run() {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["supports", renderer] => std::process::exit(if renderer == "html" { 0 } else { 1 }),
        ["notebooks"] => {
            for path in write_notebooks(Path::new("."), false)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        ["notebooks", "--check"] => write_notebooks(Path::new("."), true).map(|_| ()),
        [] => preprocess(),
        _ => bail!("usage: policy-lab-cells [notebooks [--check] | supports RENDERER]"),
    }
}

/// mdBook's preprocessor: every chapter with cells gets its outputs.
fn preprocess() -> Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let (context, mut book): (Value, Value) = serde_json::from_str(&input)?;
    let root = PathBuf::from(context["root"].as_str().unwrap_or("."));
    let notebooks = root.join("../notebooks");
    let missing = match std::env::var("POLICY_LAB_CELLS_REQUIRE").as_deref() {
        Ok("1") => Missing::Fail,
        _ => Missing::Note,
    };
    visit(&mut book, &mut |chapter| {
        let Some(path) = chapter["path"].as_str() else {
            return Ok(());
        };
        let stem = Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let blocks = chapter::parse(chapter["content"].as_str().unwrap_or_default())?;
        if chapter::cells(&blocks).is_empty() {
            return Ok(());
        }
        let executed: Option<Value> = std::fs::read_to_string(notebook_path(&notebooks, stem))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let page = render(&blocks, executed.as_ref(), missing)
            .with_context(|| format!("in the chapter {path}"))?;
        chapter["content"] = Value::String(page);
        Ok(())
    })?;
    serde_json::to_writer(std::io::stdout(), &book)?;
    Ok(())
}

/// Calls `f` on every chapter of mdBook's book, at any depth.
fn visit(v: &mut Value, f: &mut impl FnMut(&mut Value) -> Result<()>) -> Result<()> {
    match v {
        Value::Object(map) => {
            if let Some(chapter) = map.get_mut("Chapter") {
                f(chapter)?;
            }
            for (_, child) in map.iter_mut() {
                visit(child, f)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                visit(item, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}
