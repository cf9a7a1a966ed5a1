//! Writes the graders' case files: `cargo run -p policy-lab-assignments --bin cases -- [--seed
//! S] [--out DIR]`. Without flags, the public cases (seed 0) into `cases/`, which ship with
//! the handout; with a seed of the instructor's and a folder outside the handout, held-out
//! ones, for `GRADER --heldout DIR`. Needs the instructor's repository (in a handout the
//! library's code for each assignment is a `todo!()`).

use std::path::PathBuf;

fn main() {
    // The expected values come from the definitions the students write, not from the
    // library's fused kernels (`kernels`), which agree with them within 1e-6.
    policy_lab::kernels::set_enabled(false);
    let (mut seed, mut out) = (0u64, policy_lab_assignments::grade::public_cases());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--seed", Some(v)) => seed = v.parse().expect("--seed takes a number"),
            ("--out", Some(v)) => out = PathBuf::from(v),
            _ => {
                eprintln!("usage: cases [--seed S] [--out DIR]");
                std::process::exit(2)
            }
        }
    }
    match policy_lab_assignments::cases::write_all(seed, &out) {
        Ok(files) => {
            for f in files {
                println!("wrote {f} (seed {seed})");
            }
        }
        Err(e) => {
            eprintln!("{}: {e}", out.display());
            std::process::exit(1)
        }
    }
}
