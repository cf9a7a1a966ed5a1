//! A chapter's book page: each cell's code, and beneath it what that cell printed and drew
//! when its notebook was last executed (text, and SVG figures inline).
//!
//! Outputs are matched to cells by their number and checked against the cell's source: an
//! output of code that has changed since is not shown as this code's.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::chapter::Block;
use crate::notebook::{source, text};

/// What to do about a cell without a current output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Say so on the page (a local build before the notebooks ran).
    Note,
    /// Fail the build (CI, where the notebooks have just run).
    Fail,
}

/// The page's Markdown: prose as written, each cell as a Rust listing followed by its outputs
/// from `executed` (the chapter's executed notebook, if there is one).
pub fn render(blocks: &[Block], executed: Option<&Value>, missing: Missing) -> Result<String> {
    let mut out = String::new();
    let mut index = 0;
    for block in blocks {
        match block {
            Block::Prose(text) => out.push_str(text),
            Block::Cell(code) => {
                out.push_str("```rust\n");
                out.push_str(code);
                out.push_str("```\n\n");
                match executed.and_then(|nb| outputs_of(nb, index, code)) {
                    Some(outputs) => {
                        // A cell whose last line is a loop "returns" `()`: nothing to show.
                        for o in outputs.iter().filter(|o| !is_unit(o)) {
                            out.push_str(&html(o)?);
                            out.push_str("\n\n");
                        }
                    }
                    None if missing == Missing::Fail => {
                        bail!(
                            "cell {} has no output from its current code: execute the \
                             chapter's notebook (bash scripts/run_chapters.sh)",
                            index + 1
                        )
                    }
                    None => out.push_str(
                        "<p class=\"cell-missing\">(this cell's output is written when the \
                         notebooks run: <code>bash scripts/run_chapters.sh</code>)</p>\n\n",
                    ),
                }
                index += 1;
            }
        }
    }
    Ok(out)
}

/// Whether `output` is the unit value `()` that evcxr prints for a cell ending in a loop.
fn is_unit(output: &Value) -> bool {
    let text = &output["data"]["text/plain"];
    output["output_type"] == "execute_result"
        && output["data"].as_object().is_some_and(|d| d.len() == 1)
        && (text == "()"
            || text
                .as_array()
                .is_some_and(|t| t.len() == 1 && t[0] == "()"))
}

/// The outputs of cell `index` in an executed notebook, if its source is `code`.
fn outputs_of<'a>(notebook: &'a Value, index: usize, code: &str) -> Option<&'a Vec<Value>> {
    let cell = notebook["cells"]
        .as_array()?
        .iter()
        .find(|c| c["metadata"]["policy_lab"]["cell"].as_u64() == Some(index as u64))?;
    let executed = cell["execution_count"].is_number();
    (executed && source(cell).trim_end() == code.trim_end())
        .then(|| cell["outputs"].as_array())
        .flatten()
}

/// One output as a single line of HTML (so that Markdown leaves it alone: a blank line would
/// end the HTML block), with `$` escaped (so that the math renderer leaves it alone).
fn html(output: &Value) -> Result<String> {
    let pre = |class: &str, body: &str| {
        let body = escape(body.trim_end()).replace('\n', "&#10;");
        format!("<pre class=\"{class}\">{body}</pre>")
    };
    Ok(match output["output_type"].as_str().unwrap_or("") {
        "stream" if output["name"] == "stderr" => {
            pre("cell-output cell-stderr", &text(&output["text"]))
        }
        "stream" => pre("cell-output", &text(&output["text"])),
        "display_data" | "execute_result" => {
            let data = &output["data"];
            if let Some(svg) = data.get("image/svg+xml") {
                let svg = text(svg).replace(['\n', '\r'], " ").replace('$', "&#36;");
                format!("<div class=\"cell-figure\">{svg}</div>")
            } else if let Some(h) = data.get("text/html") {
                format!(
                    "<div class=\"cell-html\">{}</div>",
                    text(h).replace('\n', " ")
                )
            } else {
                pre("cell-output", &text(&data["text/plain"]))
            }
        }
        "error" => bail!(
            "a cell failed when its notebook ran: {}: {}",
            output["ename"].as_str().unwrap_or("error"),
            output["evalue"].as_str().unwrap_or("")
        ),
        other => bail!("an output of unknown type {other:?}"),
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('$', "&#36;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chapter::parse;
    use serde_json::json;

    fn executed(code: &str, outputs: Value) -> Value {
        json!({"cells": [
            {"cell_type": "code", "source": [":dep x"], "metadata": {"policy_lab": "setup"}, "execution_count": 1, "outputs": []},
            {"cell_type": "code", "source": [code], "metadata": {"policy_lab": {"cell": 0}}, "execution_count": 2, "outputs": outputs}
        ]})
    }

    #[test]
    fn a_cell_is_followed_by_its_text_and_its_figure() {
        let blocks = parse("Intro.\n\n```rust,cell\nprintln!(\"hi\");\n```\n").unwrap();
        let nb = executed(
            "println!(\"hi\");",
            json!([
                {"output_type": "stream", "name": "stdout", "text": ["costs $5\n", "\n", "a < b\n"]},
                {"output_type": "display_data", "data": {"image/svg+xml": "<svg>\n<text>x</text>\n</svg>"}, "metadata": {}}
            ]),
        );
        let page = render(&blocks, Some(&nb), Missing::Fail).unwrap();
        assert!(page.contains("```rust\nprintln!(\"hi\");\n```"), "{page}");
        assert!(
            page.contains("<pre class=\"cell-output\">costs &#36;5&#10;&#10;a &lt; b</pre>"),
            "{page}"
        );
        assert!(page.contains("<div class=\"cell-figure\"><svg> <text>x</text> </svg></div>"));
    }

    #[test]
    fn an_output_of_other_code_or_a_missing_one_is_not_shown() {
        let blocks = parse("```rust,cell\nlet changed = 2;\n```\n").unwrap();
        let nb = executed("let old = 1;", json!([]));
        let e = render(&blocks, Some(&nb), Missing::Fail).unwrap_err();
        assert!(e.to_string().contains("cell 1 has no output"), "{e}");
        let page = render(&blocks, None, Missing::Note).unwrap();
        assert!(page.contains("cell-missing"), "{page}");
    }

    #[test]
    fn the_unit_value_of_a_cell_ending_in_a_loop_is_not_shown() {
        let blocks = parse("```rust,cell\nfor _ in 0..1 {}\n```\n").unwrap();
        let unit = json!({"output_type": "execute_result", "data": {"text/plain": ["()"]}, "metadata": {}});
        let page = render(
            &blocks,
            Some(&executed("for _ in 0..1 {}", json!([unit]))),
            Missing::Fail,
        )
        .unwrap();
        assert!(!page.contains("()"), "{page}");
    }

    #[test]
    fn a_failed_cell_fails_the_page() {
        let blocks = parse("```rust,cell\nboom()\n```\n").unwrap();
        let nb = executed(
            "boom()",
            json!([{"output_type": "error", "ename": "Error", "evalue": "boom", "traceback": []}]),
        );
        let e = render(&blocks, Some(&nb), Missing::Note).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
