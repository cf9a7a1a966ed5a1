//! Builds the student handout: `cargo run -p policy-lab-assignments --bin handout -- OUT`.
//!
//! OUT becomes a copy of this repository in which each assignment's code in the library is a
//! `todo!()`, without the instructor solutions and CI's script, with the students' README
//! (`tutorials/assignments/STUDENTS.md`) as its README. See `policy_lab_assignments::handout`.

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: handout OUT   (OUT must not exist)");
        std::process::exit(2)
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match policy_lab_assignments::handout::build(&repo, Path::new(out)) {
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
