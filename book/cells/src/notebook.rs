//! A chapter's notebook for Jupyter's Rust kernel (evcxr): the prose as markdown cells (with
//! the book's listings written in), the chapter's cells as code cells in the same order, and
//! a first code cell that compiles policy-lab.

use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use crate::chapter::{resolve_includes, Block};

/// The first code cell of every notebook: evcxr's optimization level 1, then policy-lab from
/// this checkout.
///
/// At evcxr's default, 2, a cell that calls generic burn code (`Tensor::<Cpu, 2>::random`,
/// `Reinforce::<Cpu>::new`) compiles that code again for itself, 10 to 45 s. At level 1,
/// rustc shares generic code that policy-lab already compiled (`-Zshare-generics` is on
/// below level 2), and such a cell compiles in 1 to 3 s; what the cells run is about 10%
/// slower (measured in the README's CI section).
pub const SETUP: &str = ":opt 1\n:dep policy-lab = { path = \"..\" }";

/// The notebook of a chapter. `src` is the book's `src/` (for includes); `notebooks` lists the
/// chapters that have a notebook, so that a link to one of them points at its notebook.
pub fn notebook(blocks: &[Block], src: &Path, notebooks: &[String]) -> Result<Value> {
    let mut cells = Vec::new();
    let mut index = 0;
    for block in blocks {
        match block {
            Block::Prose(text) => {
                let text = relink(&resolve_includes(text, src)?, notebooks);
                for section in sections(&text) {
                    cells.push(json!({
                        "cell_type": "markdown",
                        "metadata": {},
                        "source": lines(section.trim()),
                    }));
                    // The setup cell follows the title and introduction, before anything runs.
                    if !cells.iter().any(is_setup) {
                        cells.push(code(SETUP, json!({"policy_lab": "setup"})));
                    }
                }
            }
            Block::Cell(source) => {
                if !cells.iter().any(is_setup) {
                    cells.push(code(SETUP, json!({"policy_lab": "setup"})));
                }
                cells.push(code(
                    source.trim_end(),
                    json!({"policy_lab": {"cell": index}}),
                ));
                index += 1;
            }
        }
    }
    Ok(json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": ""
            }
        },
        "nbformat": 4,
        "nbformat_minor": 4
    }))
}

/// `text` cut before each `##` or `###` heading outside a fenced block: one markdown cell per
/// section, as a notebook reader expects.
fn sections(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let heading = line.starts_with("## ") || line.starts_with("### ");
        if heading && !fenced && !out.last().is_some_and(|s| s.trim().is_empty()) {
            out.push(String::new());
        }
        let last = out.last_mut().expect("never empty");
        last.push_str(line);
        last.push('\n');
    }
    out.retain(|s| !s.trim().is_empty());
    out
}

fn is_setup(cell: &Value) -> bool {
    cell["metadata"]["policy_lab"] == "setup"
}

fn code(source: &str, metadata: Value) -> Value {
    json!({
        "cell_type": "code",
        "execution_count": null,
        "metadata": metadata,
        "outputs": [],
        "source": lines(source),
    })
}

/// Jupyter's form of a cell's text: lines, each but the last ending in a newline.
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// Links to another chapter (`(ppo.md)`, `(ppo.md#clip)`) point at its notebook when it has
/// one.
fn relink(text: &str, notebooks: &[String]) -> String {
    let mut out = text.to_string();
    for stem in notebooks {
        out = out
            .replace(&format!("]({stem}.md)"), &format!("]({stem}.ipynb)"))
            .replace(&format!("]({stem}.md#"), &format!("]({stem}.ipynb#"));
    }
    out
}

/// Copies into `fresh` the outputs of every code cell of `old` (the notebook as it was) whose
/// code is unchanged, so that editing a chapter's prose keeps what its cells printed.
pub fn keep_outputs(fresh: &mut Value, old: &Value) {
    let Some(old_cells) = old["cells"].as_array() else {
        return;
    };
    let Some(cells) = fresh["cells"].as_array_mut() else {
        return;
    };
    for cell in cells.iter_mut().filter(|c| c["cell_type"] == "code") {
        let same = old_cells.iter().find(|o| {
            o["cell_type"] == "code"
                && o["metadata"]["policy_lab"] == cell["metadata"]["policy_lab"]
                && source(o) == source(cell)
        });
        if let Some(o) = same {
            cell["outputs"] = o["outputs"].clone();
            cell["execution_count"] = o["execution_count"].clone();
        }
    }
}

/// The notebook's cells as (type, source) pairs: what must match between a committed notebook
/// (which carries outputs) and the one the chapter writes.
pub fn sources(notebook: &Value) -> Vec<(String, String)> {
    notebook["cells"]
        .as_array()
        .map(|cells| {
            cells
                .iter()
                .map(|c| (c["cell_type"].as_str().unwrap_or("").to_string(), source(c)))
                .collect()
        })
        .unwrap_or_default()
}

/// A cell's source as one string.
pub fn source(cell: &Value) -> String {
    text(&cell["source"])
}

/// Jupyter's multi-line text (a cell's source, an output's text or data) as one string: it
/// may be a string or a list of lines.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chapter::parse;

    #[test]
    fn rewriting_keeps_the_outputs_of_unchanged_code_only() {
        let old_blocks =
            parse("# T\n\n```rust,cell\nlet a = 1;\n```\n\n```rust,cell\na\n```\n").unwrap();
        let mut old = notebook(&old_blocks, Path::new("."), &[]).unwrap();
        for cell in old["cells"].as_array_mut().unwrap() {
            if cell["cell_type"] == "code" {
                cell["outputs"] =
                    json!([{"output_type": "stream", "name": "stdout", "text": ["x"]}]);
                cell["execution_count"] = json!(1);
            }
        }
        // New prose, the first cell unchanged, the second changed.
        let new_blocks =
            parse("# T, again\n\n```rust,cell\nlet a = 1;\n```\n\n```rust,cell\na + 1\n```\n")
                .unwrap();
        let mut fresh = notebook(&new_blocks, Path::new("."), &[]).unwrap();
        keep_outputs(&mut fresh, &old);
        let code: Vec<&Value> = fresh["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["cell_type"] == "code")
            .collect();
        assert_eq!(code[1]["execution_count"], 1, "unchanged: kept");
        assert_eq!(code[2]["outputs"], json!([]), "changed: dropped");
        assert!(code[2]["execution_count"].is_null());
    }

    #[test]
    fn the_notebook_has_the_chapters_cells_in_order_after_the_setup_cell() {
        let blocks =
            parse("# Title\n\nSee [PPO](ppo.md#clip).\n\n```rust,cell\nlet a = 1;\n```\n\nText.\n\n```rust,cell\na + 1\n```\n")
                .unwrap();
        let nb = notebook(&blocks, Path::new("."), &["ppo".into()]).unwrap();
        let s = sources(&nb);
        let kinds: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["markdown", "code", "code", "markdown", "code"]);
        assert_eq!(s[1].1, SETUP);
        assert_eq!(s[2].1, "let a = 1;");
        assert_eq!(s[4].1, "a + 1");
        assert!(s[0].1.contains("(ppo.ipynb#clip)"), "{}", s[0].1);
        assert_eq!(nb["cells"][4]["metadata"]["policy_lab"]["cell"], 1);
        // One markdown cell per section, the setup cell after the first.
        let blocks = parse("# T\n\nIntro.\n\n## A\n\n```text\n## not a heading\n```\n\n### B\n\n```rust,cell\n1\n```\n").unwrap();
        let by_section = sources(&notebook(&blocks, Path::new("."), &[]).unwrap());
        let kinds: Vec<&str> = by_section.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["markdown", "code", "markdown", "markdown", "code"]);
        assert!(by_section[2].1.contains("## not a heading"));
    }
}
