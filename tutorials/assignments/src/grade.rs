//! What every grader shares: run each check (a `todo!()` or a panic counts as a failure),
//! print one line per check and the score, and exit with failure unless every check passed.
//!
//! Every grader takes the same flags:
//!
//! * `--heldout DIR`: grade the case checks again on the held-out cases in DIR (written by
//!   `--bin cases -- --seed S --out DIR`), reported apart from the public ones;
//! * `--json FILE`: write Gradescope's `results.json` (score, max_score, and per test its name,
//!   score, max_score, output and visibility) to FILE;
//! * `--list`: print the checks, `points<TAB>name` a line each;
//! * `--only NAME`: grade one check (the class grader, `--bin class`, runs each in its own
//!   process under a time limit).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One graded check: its points and a test that returns why it failed.
pub struct Check {
    pub name: &'static str,
    pub points: u32,
    pub test: fn() -> Result<(), String>,
}

/// A check over a set of cases whose expected values were computed by the instructor's build
/// (`cargo run -p policy-lab-assignments --bin cases`): it runs on the public cases in
/// `cases/`, and again on held-out ones when the grader is given `--heldout DIR`. The test
/// gets the folder that holds the set.
pub struct CaseCheck {
    pub name: &'static str,
    pub points: u32,
    pub test: fn(&Path) -> Result<(), String>,
}

/// The public cases, shipped with the handout.
pub fn public_cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

/// One line of the report, in Gradescope's `results.json` form.
#[derive(Serialize)]
struct Graded {
    name: String,
    score: u32,
    max_score: u32,
    output: String,
    /// `visible` for checks students can run themselves, `after_published` for held-out ones.
    visibility: &'static str,
}

/// What the grader was asked (its command-line flags).
#[derive(Default)]
struct Options {
    /// `--heldout DIR`: also grade the case checks on the held-out cases in DIR.
    heldout: Option<PathBuf>,
    /// `--json FILE`: write Gradescope's `results.json` there.
    json: Option<PathBuf>,
    /// `--list`: print the checks, `points<TAB>name` a line each, and grade nothing.
    list: bool,
    /// `--only NAME`: grade that check alone (the class grader runs each in its own process).
    only: Option<String>,
}

fn options() -> Options {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--heldout" => o.heldout = Some(value().into()),
            "--json" => o.json = Some(value().into()),
            "--only" => o.only = Some(value()),
            "--list" => o.list = true,
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    o
}

fn usage(why: &str) -> ! {
    eprintln!("{why}\nusage: GRADER [--heldout DIR] [--json results.json] [--list] [--only CHECK]");
    std::process::exit(2)
}

/// Runs `checks`, prints the score of `assignment`, and exits (status 0 only on full marks).
pub fn grade(assignment: &str, checks: &[Check]) -> ! {
    grade_with_cases(assignment, checks, &[])
}

/// Runs `checks`, then `case_checks` on the public cases (and on the held-out ones with
/// `--heldout DIR`), prints one line per check and the score of `assignment` (public and
/// held-out apart), writes `--json FILE` if asked, and exits (status 0 only on full marks).
pub fn grade_with_cases(assignment: &str, checks: &[Check], case_checks: &[CaseCheck]) -> ! {
    // The library's fused kernels (`kernels`) stand in for some of the student's functions
    // on the CPU (the clipped surrogate, the selective log-softmax): off, so that the
    // student's code is what the checks and the learners run.
    policy_lab::kernels::set_enabled(false);
    let options = options();
    type Run<'a> = Box<dyn Fn() -> Result<(), String> + 'a>;
    let mut plan: Vec<(String, u32, &'static str, Run)> = Vec::new();
    for c in checks {
        plan.push((c.name.to_string(), c.points, "visible", Box::new(c.test)));
    }
    let sets = [
        Some((public_cases(), "public cases", "visible")),
        options
            .heldout
            .clone()
            .map(|dir| (dir, "held-out cases", "after_published")),
    ];
    for (dir, which, visibility) in sets.into_iter().flatten() {
        for c in case_checks {
            let (dir, test) = (dir.clone(), c.test);
            let name = format!("{} ({which})", c.name);
            plan.push((name, c.points, visibility, Box::new(move || test(&dir))));
        }
    }
    if options.list {
        for (name, points, ..) in &plan {
            println!("{points}\t{name}");
        }
        std::process::exit(0)
    }
    if let Some(only) = &options.only {
        plan.retain(|(name, ..)| name == only);
        if plan.is_empty() {
            usage(&format!("no check is called {only:?} (--list shows them)"));
        }
    }
    // The student's `todo!()` panics; the grader reports it instead of the panic message.
    std::panic::set_hook(Box::new(|_| {}));
    println!("grading {assignment}");
    let mut report = Vec::new();
    for (name, points, visibility, test) in &plan {
        let outcome = match catch_unwind(AssertUnwindSafe(test)) {
            Ok(result) => result,
            Err(panic) => Err(match panic.downcast_ref::<String>() {
                Some(m) => format!("panicked: {m}"),
                None => match panic.downcast_ref::<&str>() {
                    Some(m) => format!("panicked: {m}"),
                    None => "panicked".to_string(),
                },
            }),
        };
        let (score, output) = match outcome {
            Ok(()) => {
                println!("  [{points:>2}/{points:>2}] {name}");
                (*points, String::new())
            }
            Err(why) => {
                println!("  [ 0/{points:>2}] {name}: {why}");
                (0, why)
            }
        };
        report.push(Graded {
            name: name.clone(),
            score,
            max_score: *points,
            output,
            visibility,
        });
    }
    let sum = |held: bool| {
        let part = report
            .iter()
            .filter(|g| (g.visibility == "after_published") == held);
        part.fold((0, 0), |(got, max), g| (got + g.score, max + g.max_score))
    };
    let ((got, total), (held_got, held_total)) = (sum(false), sum(true));
    if held_total > 0 {
        println!(
            "score: {}/{} (public checks {got}/{total}, held-out cases {held_got}/{held_total})",
            got + held_got,
            total + held_total
        );
    } else {
        println!("score: {got}/{total}");
    }
    if let Some(path) = &options.json {
        let results = serde_json::json!({
            "score": got + held_got,
            "max_score": total + held_total,
            "tests": report,
        });
        let text = serde_json::to_string_pretty(&results).expect("plain data");
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2)
        }
    }
    std::process::exit(if got + held_got == total + held_total {
        0
    } else {
        1
    })
}

/// Reads the case file `name` (JSON) from the case folder `dir`.
pub fn read_cases<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, String> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `Ok` if `got` and `want` have the same length and differ by at most `tol` everywhere.
pub fn close(what: &str, got: &[f32], want: &[f32], tol: f32) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{what}: {} values, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // Written so that a NaN fails too.
        let within = (g - w).abs() <= tol;
        if !within {
            return Err(format!("{what}[{i}] = {g}, expected {w} (tolerance {tol})"));
        }
    }
    Ok(())
}

/// A seeded generator for the graders' random cases.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Trains `config` (the student's code inside the learners) and asks its greedy evaluation's
/// mean return to reach `target`: bounded by steps (`config.total_timesteps`), as the
/// ladder's own tests are, never by time.
pub fn learns(config: policy_lab::run::train::RunConfig, target: f64) -> Result<(), String> {
    use policy_lab::run::train::train_on;
    let out = std::env::temp_dir().join(format!(
        "policy-lab-grade-{}-{}-{}",
        config.algo.name(),
        config.seed,
        std::process::id()
    ));
    let summary = train_on(
        &config,
        &out,
        policy_lab::run::Start::Overwrite,
        &mut std::io::sink(),
    )
    .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&out);
    let got = summary?.evaluation.mean_return();
    if got >= target {
        Ok(())
    } else {
        Err(format!(
            "{} on {} (seed {}) reached a greedy return of {got:.3} after {} steps; it needs {target}",
            config.algo.name(),
            config.env,
            config.seed,
            config.total_timesteps
        ))
    }
}

/// The ladder's run of `algo` on its maze (`Maze-v0`, 8x8, optimal greedy return 0.870)
/// with the ladder's step budget and settings and seed 1, evaluated over 10 episodes.
pub fn ladder_run(algo: policy_lab::run::train::Algo) -> policy_lab::run::train::RunConfig {
    policy_lab::run::train::RunConfig {
        eval_episodes: 10,
        ..policy_lab::run::ladder::ladder_config(algo, 1)
    }
}

/// The greedy return a ladder run must reach: the maze's optimum (0.870) to within 0.01.
pub const LADDER_TARGET: f64 = 0.86;
