//! A chapter's one source: Markdown prose with Rust cells. A cell is a fenced block whose
//! info string is `rust,cell`; its code runs in the chapter's notebook, and the book shows its
//! output beneath it. Every other fenced block (a listing, a `toml` block, a plain `rust`
//! block) is prose.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The info string that makes a fenced block a cell.
pub const CELL: &str = "rust,cell";

/// A piece of a chapter, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Markdown, as written (includes not yet resolved).
    Prose(String),
    /// The code of one cell, without its fences.
    Cell(String),
}

/// Splits a chapter into prose and cells. A cell's fence must be closed.
pub fn parse(text: &str) -> Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut prose = String::new();
    // The fence we are inside: its backtick count, whether it is a cell, its first line.
    let mut fence: Option<(usize, bool, usize)> = None;
    let mut code = String::new();
    for (i, line) in text.lines().enumerate() {
        let ticks = line.trim_start().chars().take_while(|c| *c == '`').count();
        match fence {
            None if ticks >= 3 => {
                let info = line.trim_start()[ticks..].trim();
                let is_cell = info == CELL;
                fence = Some((ticks, is_cell, i + 1));
                if is_cell {
                    if !prose.trim().is_empty() {
                        blocks.push(Block::Prose(std::mem::take(&mut prose)));
                    }
                    prose.clear();
                    continue;
                }
            }
            Some((open, is_cell, _)) if ticks >= open && line.trim()[ticks..].is_empty() => {
                fence = None;
                if is_cell {
                    blocks.push(Block::Cell(std::mem::take(&mut code)));
                    continue;
                }
            }
            Some((_, true, _)) => {
                code.push_str(line);
                code.push('\n');
                continue;
            }
            _ => {}
        }
        prose.push_str(line);
        prose.push('\n');
    }
    if let Some((_, true, line)) = fence {
        bail!("the cell opened at line {line} is not closed");
    }
    if !prose.trim().is_empty() {
        blocks.push(Block::Prose(prose));
    }
    Ok(blocks)
}

/// The cells of a chapter, in order.
pub fn cells(blocks: &[Block]) -> Vec<&str> {
    blocks
        .iter()
        .filter_map(|b| match b {
            Block::Cell(code) => Some(code.as_str()),
            Block::Prose(_) => None,
        })
        .collect()
}

/// `text` with every `{{#include PATH}}` and `{{#include PATH:ANCHOR}}` replaced by the file's
/// text (between `ANCHOR: name` and `ANCHOR_END: name`, anchor lines dropped), as mdBook
/// does; `PATH` is relative to `dir` (the book's `src/`).
pub fn resolve_includes(text: &str, dir: &Path) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#include ") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e)
            .context("an include without its closing }}")?;
        let target = rest[start + "{{#include ".len()..end].trim();
        let (path, anchor) = match target.rsplit_once(':') {
            Some((p, a)) if !a.contains('/') => (p, Some(a)),
            _ => (target, None),
        };
        let file = dir.join(path);
        let whole = std::fs::read_to_string(&file)
            .with_context(|| format!("reading the included {}", file.display()))?;
        out.push_str(&anchored(&whole, anchor).with_context(|| format!("in {}", file.display()))?);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The lines of `text` between `ANCHOR: name` and `ANCHOR_END: name` (all of it without an
/// anchor), with every anchor line left out.
fn anchored(text: &str, anchor: Option<&str>) -> Result<String> {
    let is_marker = |l: &str| l.contains("ANCHOR:") || l.contains("ANCHOR_END:");
    let mut inside = anchor.is_none();
    let mut found = anchor.is_none();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(a) = anchor {
            let name = |marker: &str| {
                line.split(marker)
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next() == Some(a))
                    .unwrap_or(false)
            };
            if name("ANCHOR_END:") {
                inside = false;
                continue;
            }
            if name("ANCHOR:") {
                inside = true;
                found = true;
                continue;
            }
        }
        if inside && !is_marker(line) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        bail!("no anchor {}", anchor.unwrap_or_default());
    }
    // As mdBook: an included block ends without its last newline.
    Ok(out.trim_end_matches('\n').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_split_from_prose_and_other_fences_stay_prose() {
        let text = "# T\n\nSome $x$.\n\n```rust\nlet listing = 1;\n```\n\n```rust,cell\nlet a = 1;\nprintln!(\"{a}\");\n```\n\nMore.\n\n````markdown\n```rust,cell\nnot a cell\n```\n````\n";
        let blocks = parse(text).unwrap();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        assert!(matches!(&blocks[0], Block::Prose(p) if p.contains("let listing = 1;")));
        assert_eq!(
            blocks[1],
            Block::Cell("let a = 1;\nprintln!(\"{a}\");\n".into())
        );
        assert!(matches!(&blocks[2], Block::Prose(p) if p.contains("not a cell")));
        assert_eq!(cells(&blocks), vec!["let a = 1;\nprintln!(\"{a}\");\n"]);
    }

    #[test]
    fn an_unclosed_cell_is_an_error_naming_its_line() {
        let e = parse("a\n```rust,cell\nlet x = 1;\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn includes_take_the_anchored_lines_without_the_markers() {
        let dir = std::env::temp_dir().join(format!("cells-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("f.rs"),
            "a\n// ANCHOR: one\nb\n// ANCHOR: inner\nc\n// ANCHOR_END: inner\n// ANCHOR_END: one\nd\n",
        )
        .unwrap();
        let got = resolve_includes("x {{#include f.rs:one}} y", &dir).unwrap();
        assert_eq!(got, "x b\nc y");
        let e = resolve_includes("{{#include f.rs:two}}", &dir).unwrap_err();
        assert!(format!("{e:#}").contains("no anchor two"), "{e:#}");
    }
}
