//! Builds the student handout: `cargo run -p policy-lab-assignments --bin handout -- OUT
//! [--assignments LETTERS]`.
//!
//! OUT becomes a copy of this repository in which each assignment's code in the library is a
//! `todo!()`, without the instructor solutions and CI's script, with the students' README
//! (`tutorials/assignments/STUDENTS.md`) as its README. `--assignments bd` stubs (b) and (d)
//! only, for a course that hands them out one homework at a time: the learners the graders
//! train then run on the library's own code for the rest. See
//! `policy_lab_assignments::handout`.

use std::path::Path;

use policy_lab_assignments::handout::{build, Assignments};

fn usage() -> ! {
    eprintln!(
        "usage: handout OUT [--assignments LETTERS]   (OUT must not exist; LETTERS: a-g, as abdfg)"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, chosen) = match args.as_slice() {
        [out] => (out, Assignments::All),
        [out, flag, letters] if flag == "--assignments" => {
            if letters.is_empty() || !letters.chars().all(|c| ('a'..='g').contains(&c)) {
                usage()
            }
            (out, Assignments::Only(letters.clone()))
        }
        _ => usage(),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match build(&repo, Path::new(out), &chosen) {
        Ok(regions) => {
            println!("wrote the handout to {out}; the library's code is a todo!() at:");
            for r in regions {
                println!(
                    "  ({}) {}:{}  {}",
                    r.assignment,
                    r.file.display(),
                    r.line,
                    r.task
                );
            }
        }
        Err(e) => {
            eprintln!("handout: {e}");
            std::process::exit(1)
        }
    }
}
