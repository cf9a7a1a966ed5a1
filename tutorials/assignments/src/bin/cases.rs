//! Writes the graders' case files: `cargo run -p policy-lab-assignments --bin cases -- [--seed
//! S] [--out DIR]`. Without flags, the public cases (seed 0) into `cases/`, which ship with
//! the handout; with a seed of the instructor's and a folder outside the handout, held-out
//! ones, for `GRADER --heldout DIR`. Needs the instructor's repository (in a handout the
//! library's code for each assignment is a `todo!()`).

use std::path::PathBuf;

use policy_lab_assignments::cases::{returns_gae, RETURNS_GAE};

fn main() {
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
    std::fs::create_dir_all(&out).expect("the case folder");
    let path = out.join(RETURNS_GAE);
    let text = serde_json::to_string(&returns_gae(seed)).expect("plain data");
    std::fs::write(&path, text + "\n").expect("the case file");
    println!("wrote {} (seed {seed})", path.display());
}
