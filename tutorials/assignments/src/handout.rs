//! The student handout: a copy of the repository in which the library's own code for each
//! assignment is replaced by a `todo!()`, so that what the student writes is what the real
//! learners call.
//!
//! An assignment's place in the library is marked by two comments, which also read well in
//! the book's listings:
//!
//! ```text
//!     // Assignment (a) begins: the backward pass of eqs. (GAE-1, GAE-2).
//!     ...the library's code...
//!     // Assignment (a) ends.
//! ```
//!
//! The handout keeps the line that says what to write and replaces the code up to the end
//! marker with `todo!("assignment (a)")`, and writes the notebooks again (they carry the
//! book's listings of that code as text). It leaves out what students must not see: the
//! instructor solutions (`tutorials/assignments/solutions/`), CI's script, the built book,
//! and any held-out cases kept in the repository.

use std::fs;
use std::path::{Path, PathBuf};

/// One marked place: the assignment's letter, what to write there, and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub assignment: char,
    pub task: String,
    pub file: PathBuf,
    pub line: usize,
}

const BEGINS: &str = "// Assignment (";
const BEGINS_AFTER: &str = ") begins: ";
const ENDS_AFTER: &str = ") ends.";

/// The letter and task of a begin marker (`// Assignment (a) begins: what to write.`).
fn begin_marker(line: &str) -> Option<(char, &str)> {
    let rest = line.trim_start().strip_prefix(BEGINS)?;
    let mut chars = rest.chars();
    let letter = chars.next()?;
    let task = chars.as_str().strip_prefix(BEGINS_AFTER)?;
    Some((letter, task.trim()))
}

fn is_end_marker(line: &str, letter: char) -> bool {
    line.trim() == format!("{BEGINS}{letter}{ENDS_AFTER}")
}

/// Which assignments a handout stubs: all of them, or the letters given (`"bd"`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Assignments {
    #[default]
    All,
    Only(String),
}

impl Assignments {
    pub fn includes(&self, letter: char) -> bool {
        match self {
            Assignments::All => true,
            Assignments::Only(letters) => letters.contains(letter),
        }
    }
}

/// `text` with the code of every marked region of the chosen assignments replaced by a
/// `todo!()` (the others' left as they are, markers included), and the regions replaced.
/// Refuses a begin marker without its end marker, and nested markers.
pub fn stub_regions(
    text: &str,
    file: &Path,
    chosen: &Assignments,
) -> Result<(String, Vec<Region>), String> {
    let mut out = String::with_capacity(text.len());
    let mut regions = Vec::new();
    // The region open at this line: its letter, where it began, and whether it is stubbed.
    let mut open: Option<(char, usize, bool)> = None;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        match (open, begin_marker(line)) {
            (None, Some((letter, _))) if !chosen.includes(letter) => {
                out.push_str(line);
                open = Some((letter, i + 1, false));
            }
            (None, Some((letter, task))) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                out.push_str(&format!("{indent}// Assignment ({letter}): {task}\n"));
                out.push_str(&format!("{indent}todo!(\"assignment ({letter})\")\n"));
                regions.push(Region {
                    assignment: letter,
                    task: task.to_string(),
                    file: file.to_path_buf(),
                    line: i + 1,
                });
                open = Some((letter, i + 1, true));
            }
            (Some((letter, at, _)), Some(_)) => {
                return Err(format!(
                    "{}:{}: an assignment marker inside assignment ({letter})'s region, which begins at line {at}",
                    file.display(),
                    i + 1
                ))
            }
            (Some((letter, _, stubbed)), None) => {
                if !stubbed {
                    out.push_str(line);
                }
                if is_end_marker(line, letter) {
                    open = None;
                }
            }
            (None, None) => out.push_str(line),
        }
    }
    if let Some((letter, at, _)) = open {
        return Err(format!(
            "{}:{at}: assignment ({letter}) begins here and never ends (`{BEGINS}{letter}{ENDS_AFTER}`)",
            file.display()
        ));
    }
    Ok((out, regions))
}

/// What the handout leaves out, as paths relative to the repository's root.
pub const LEFT_OUT: &[&str] = &[
    "tutorials/assignments/solutions",
    "tutorials/assignments/heldout",
    ".ci",
    "target",
    "runs",
    ".git",
    // The built book shows the library's listings, the answers among them.
    "book/book",
    "book/check/node_modules",
];

/// Writes the handout of the repository at `repo` into `out` (which must not exist yet), with
/// the `chosen` assignments stubbed, and returns the marked regions it replaced.
pub fn build(repo: &Path, out: &Path, chosen: &Assignments) -> Result<Vec<Region>, String> {
    if out.exists() {
        return Err(format!("{} already exists", out.display()));
    }
    let mut regions = Vec::new();
    copy_dir(repo, repo, out, chosen, &mut regions)?;
    if regions.is_empty() {
        return Err(format!(
            "{} has no markers of assignments {chosen:?}: is it policy-lab's repository?",
            repo.display()
        ));
    }
    kernels_off(out)?;
    // The notebooks carry the book's listings of the library as text: write them again from
    // the stubbed library, so that they show the `todo!()`, not the answer.
    policy_lab_cells::write_notebooks(out, false).map_err(|e| format!("{e:#}"))?;
    let student = repo.join("tutorials/assignments/STUDENTS.md");
    let readme = fs::read_to_string(&student).map_err(|e| format!("{}: {e}", student.display()))?;
    fs::write(out.join("README.md"), readme).map_err(|e| e.to_string())?;
    Ok(regions)
}

/// The line of `src/kernels/mod.rs` that turns the fused kernels on by default.
const KERNELS_ON: &str = "pub const DEFAULT: bool = true;";

/// Turns the library's fused kernels (`kernels`) off by default in the handout: on the CPU
/// they stand in for some of the students' functions (`clipped_surrogate`,
/// `selective_log_softmax`), and a student's notebook and training runs must call their code.
fn kernels_off(out: &Path) -> Result<(), String> {
    let file = out.join("src/kernels/mod.rs");
    let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !text.contains(KERNELS_ON) {
        return Err(format!(
            "{} no longer has the line `{KERNELS_ON}`",
            file.display()
        ));
    }
    let off = KERNELS_ON.replace("true", "false");
    fs::write(&file, text.replace(KERNELS_ON, &off)).map_err(|e| e.to_string())
}

fn copy_dir(
    repo: &Path,
    dir: &Path,
    out: &Path,
    chosen: &Assignments,
    regions: &mut Vec<Region>,
) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path.strip_prefix(repo).expect("under the repository");
        if LEFT_OUT.iter().any(|l| relative == Path::new(l)) {
            continue;
        }
        let target = out.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            copy_dir(repo, &path, &target, chosen, regions)?;
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (stubbed, found) = stub_regions(&text, relative, chosen)?;
            regions.extend(found);
            fs::write(&target, stubbed).map_err(|e| format!("{}: {e}", target.display()))?;
        } else if kind.is_file() {
            fs::copy(&path, &target).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKED: &str = "fn f(x: f32) -> f32 {\n    let y = x;\n    // Assignment (a) begins: double it.\n    let z = 2.0 * y;\n    z\n    // Assignment (a) ends.\n}\n";

    #[test]
    fn a_marked_region_becomes_a_todo_with_its_task() {
        let (out, regions) = stub_regions(MARKED, Path::new("f.rs"), &Assignments::All).unwrap();
        assert_eq!(
            out,
            "fn f(x: f32) -> f32 {\n    let y = x;\n    // Assignment (a): double it.\n    todo!(\"assignment (a)\")\n}\n"
        );
        assert_eq!(regions.len(), 1);
        assert_eq!((regions[0].assignment, regions[0].line), ('a', 3));
        assert_eq!(regions[0].task, "double it.");
    }

    #[test]
    fn unmarked_text_is_unchanged() {
        let text = "// Assignment (x) is mentioned here, but not as a marker.\nfn g() {}\n";
        assert_eq!(
            stub_regions(text, Path::new("g.rs"), &Assignments::All).unwrap(),
            (text.to_string(), vec![])
        );
    }

    #[test]
    fn a_region_without_its_end_or_inside_another_is_refused() {
        let unended = MARKED.replace("    // Assignment (a) ends.\n", "");
        let err = stub_regions(&unended, Path::new("f.rs"), &Assignments::All).unwrap_err();
        assert!(
            err.contains("f.rs:3: assignment (a) begins here and never ends"),
            "{err}"
        );
        let wrong_end = MARKED.replace("(a) ends", "(b) ends");
        assert!(stub_regions(&wrong_end, Path::new("f.rs"), &Assignments::All).is_err());
        let nested = MARKED.replace("    z\n", "    // Assignment (b) begins: no.\n");
        let err = stub_regions(&nested, Path::new("f.rs"), &Assignments::All).unwrap_err();
        assert!(err.contains("inside assignment (a)'s region"), "{err}");
    }

    #[test]
    fn only_the_chosen_assignments_are_stubbed() {
        let both = format!("{MARKED}{}", MARKED.replace("(a)", "(b)"));
        let (out, regions) =
            stub_regions(&both, Path::new("f.rs"), &Assignments::Only("b".into())).unwrap();
        assert_eq!(regions.len(), 1);
        assert_eq!(regions[0].assignment, 'b');
        // (a)'s region is kept whole, its markers too; (b)'s is a todo.
        assert!(out.starts_with(MARKED), "{out}");
        assert!(out.contains("todo!(\"assignment (b)\")"), "{out}");
        assert!(!out.contains("todo!(\"assignment (a)\")"), "{out}");
    }
}
