//! Grades a class: every student's submission of one assignment, each check in its own
//! process under a time limit, into Gradescope's `results.json` per student and one CSV.
//!
//! ```bash
//! cargo run -p policy-lab-assignments --bin handout -- /tmp/handout
//! cargo run -p policy-lab-assignments --bin class -- --handout /tmp/handout \
//!     --submissions submissions/ --assignment a_returns_gae --heldout ~/heldout --out grades/
//! ```
//!
//! `submissions/` holds one folder per student, laid out like the repository, with the files
//! the student changed (for assignment (a), `src/core/advantage.rs`). Each is laid over a copy
//! of the handout and built; the grading machinery (`tutorials/assignments/` but the student
//! files) is never taken from a submission. A check that runs past `--timeout` seconds (60 by
//! default) or crashes scores 0 and costs only itself; `--jobs N` checks run side by side (by
//! default one per core, so that the checks of a submission that loops wait out their limits
//! together). A submission that does not build scores 0 with the compiler's message. Writes
//! `OUT/<student>/results.json` and `OUT/class.csv`. The builds share `OUT/target` (or `CARGO_TARGET_DIR`), so burn is
//! compiled once; keep that folder for grading only: the handout and every submission are
//! the same crates to cargo, told apart by their files' times, and every submission is
//! copied afresh so that it is built again. They are laid out one after another in the same
//! folder, `OUT/work/submission`, so that the compiler's incremental cache (which keys on the
//! files' paths) is reused: after the first build, each recompiles what the submission
//! changed, not the whole library.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Options {
    handout: PathBuf,
    submissions: PathBuf,
    assignment: String,
    heldout: Option<PathBuf>,
    timeout: Duration,
    /// Checks run at a time (`--jobs`, by default one per core).
    jobs: usize,
    out: PathBuf,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: class --handout DIR --submissions DIR --assignment NAME [--heldout DIR] [--timeout SECONDS] [--jobs N] --out DIR"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let (mut handout, mut submissions, mut assignment, mut heldout, mut out) =
        (None, None, None, None, None);
    let mut timeout = Duration::from_secs(60);
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--handout" => handout = Some(PathBuf::from(value)),
            "--submissions" => submissions = Some(PathBuf::from(value)),
            "--assignment" => assignment = Some(value),
            "--heldout" => heldout = Some(PathBuf::from(value)),
            "--timeout" => {
                timeout = Duration::from_secs(
                    value
                        .parse()
                        .unwrap_or_else(|_| usage("--timeout takes whole seconds")),
                )
            }
            "--jobs" => {
                jobs = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .unwrap_or_else(|| usage("--jobs takes a count of at least 1"))
            }
            "--out" => out = Some(PathBuf::from(value)),
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    Options {
        handout: handout.unwrap_or_else(|| usage("--handout is required")),
        submissions: submissions.unwrap_or_else(|| usage("--submissions is required")),
        assignment: assignment.unwrap_or_else(|| usage("--assignment is required")),
        heldout,
        timeout,
        jobs,
        out: out.unwrap_or_else(|| usage("--out is required")),
    }
}

/// Whether a submitted file may replace the handout's: anything but the grading machinery.
fn student_may_change(relative: &Path) -> bool {
    let Ok(inside) = relative.strip_prefix("tutorials/assignments") else {
        return true;
    };
    let student_files = ["src/e_ppo_vs_grpo.rs", "e_analysis.md", "src/h_reward.rs"];
    student_files.iter().any(|f| inside == Path::new(f))
}

/// Copies the files under `from` over `to`, those that `may_copy` (given their path under
/// `root`) accepts; lists the others in `refused`.
fn copy_files(
    root: &Path,
    from: &Path,
    to: &Path,
    may_copy: &dyn Fn(&Path) -> bool,
    refused: &mut Vec<String>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("inside the tree");
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_files(root, &path, &target, may_copy, refused)?;
        } else if may_copy(relative) {
            std::fs::copy(&path, &target)?;
        } else {
            refused.push(relative.display().to_string());
        }
    }
    Ok(())
}

/// Runs `command` for at most `limit`; `None` when it ran past it (and was killed).
fn run_limited(mut command: Command, limit: Duration) -> std::io::Result<Option<(bool, String)>> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let mut text = String::new();
            child
                .stdout
                .take()
                .expect("piped")
                .read_to_string(&mut text)?;
            child
                .stderr
                .take()
                .expect("piped")
                .read_to_string(&mut text)?;
            return Ok(Some((status.success(), text)));
        }
        if start.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh copy of the handout in `OUT/work/submission`, with the files of `submission`
/// that a student may change laid over it: the folder, and the files refused.
fn lay_out(o: &Options, submission: Option<&Path>) -> std::io::Result<(PathBuf, Vec<String>)> {
    let work = o.out.join("work").join("submission");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let mut refused = Vec::new();
    copy_files(&o.handout, &o.handout, &work, &|_| true, &mut refused)?;
    if let Some(submission) = submission {
        copy_files(
            submission,
            submission,
            &work,
            &student_may_change,
            &mut refused,
        )?;
    }
    Ok((work, refused))
}

/// Builds the grader of `o.assignment` in the repository `work`: its path, or why not.
fn build_grader(o: &Options, work: &Path) -> std::io::Result<Result<PathBuf, String>> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(dir)?,
        None => std::path::absolute(o.out.join("target"))?,
    };
    let mut build = Command::new("cargo");
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "policy-lab-assignments",
            "--bin",
            &o.assignment,
        ])
        .current_dir(work)
        .env("CARGO_TARGET_DIR", &target);
    Ok(match run_limited(build, Duration::from_secs(1800))? {
        Some((true, _)) => Ok(target.join("debug").join(&o.assignment)),
        Some((false, text)) => Err(format!(
            "the submission does not build:\n{}",
            tail(&text, 40)
        )),
        None => Err("the build ran past 30 minutes".into()),
    })
}

/// The grader's checks, `(points, name)`, as its `--list` gives them.
fn list_checks(
    o: &Options,
    grader: &Path,
    work: &Path,
) -> std::io::Result<Result<Vec<(u64, String)>, String>> {
    let mut list = Command::new(grader);
    list.arg("--list").current_dir(work);
    if let Some(h) = &o.heldout {
        list.arg("--heldout").arg(std::path::absolute(h)?);
    }
    Ok(match run_limited(list, Duration::from_secs(60))? {
        Some((true, text)) => Ok(text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(p, n)| (p.parse().unwrap_or(0), n.to_string()))
            .collect()),
        _ => Err("the grader could not list its checks".into()),
    })
}

/// Grades one submission against `checks`: Gradescope's results for it.
fn grade_one(o: &Options, checks: &[(u64, String)], submission: &Path) -> std::io::Result<Value> {
    let (work, refused) = lay_out(o, Some(submission))?;
    let note = if refused.is_empty() {
        String::new()
    } else {
        format!(
            "not graded from your submission (the grader's own files): {}\n",
            refused.join(", ")
        )
    };
    let zero = |why: &str| -> Vec<Value> {
        checks
            .iter()
            .map(|(points, name)| json!({"name": name, "score": 0, "max_score": points, "output": why}))
            .collect()
    };
    let grader = match build_grader(o, &work)? {
        Ok(grader) => grader,
        Err(why) => {
            return Ok(json!({"score": 0, "output": format!("{note}{why}"), "tests": zero(&why)}))
        }
    };
    // One check: its own process under the time limit, its result from the JSON it writes.
    let run_check = |i: usize| -> std::io::Result<Value> {
        let (points, name) = &checks[i];
        let json_path = std::path::absolute(work.join(format!("check-{i}.json")))?;
        let mut check = Command::new(&grader);
        check
            .arg("--only")
            .arg(name)
            .arg("--json")
            .arg(&json_path)
            .current_dir(&work);
        if let Some(h) = &o.heldout {
            check.arg("--heldout").arg(std::path::absolute(h)?);
        }
        let outcome = run_limited(check, o.timeout)?;
        let written: Option<Value> = std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let failed = |output: String| json!({"name": name, "score": 0, "max_score": points, "output": output});
        Ok(match (outcome, written) {
            (Some(_), Some(results)) => results["tests"][0].clone(),
            (Some((_, text)), None) => failed(format!("the check crashed:\n{}", tail(&text, 20))),
            (None, _) => failed(format!("did not finish within {} s", o.timeout.as_secs())),
        })
    };
    // `--jobs` checks at a time: each worker takes the next check not yet taken.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<std::io::Result<Value>>>> =
        checks.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..o.jobs.min(checks.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= checks.len() {
                    break;
                }
                *results[i].lock().unwrap() = Some(run_check(i));
            });
        }
    });
    let mut tests = Vec::new();
    for result in results {
        tests.push(result.into_inner().unwrap().expect("every check ran")?);
    }
    let score: u64 = tests.iter().map(|t| t["score"].as_u64().unwrap_or(0)).sum();
    Ok(json!({"score": score, "output": note, "tests": tests}))
}

fn main() {
    let o = options();
    std::fs::create_dir_all(&o.out).expect("the output folder");
    // The handout as given: its grader lists the checks (and builds burn into OUT/target once).
    let (handout, _) = lay_out(&o, None).expect("a copy of the handout");
    let checks = match build_grader(&o, &handout).expect("cargo runs") {
        Ok(grader) => list_checks(&o, &grader, &handout).expect("the grader runs"),
        Err(why) => Err(why),
    }
    .unwrap_or_else(|why| usage(&format!("the handout's grader: {why}")));
    let mut students: Vec<PathBuf> = std::fs::read_dir(&o.submissions)
        .unwrap_or_else(|e| usage(&format!("{}: {e}", o.submissions.display())))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    students.sort();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = String::from("student,score,max_score");
    for (_, name) in &checks {
        csv.push_str(&format!(",{}", quote(name)));
    }
    let max: u64 = checks.iter().map(|(p, _)| p).sum();
    for submission in &students {
        let student = submission
            .file_name()
            .expect("a folder")
            .to_string_lossy()
            .into_owned();
        let start = Instant::now();
        let mut results = grade_one(&o, &checks, submission).unwrap_or_else(
            |e| json!({"score": 0, "output": format!("grading failed: {e}"), "tests": []}),
        );
        results["max_score"] = json!(max);
        csv.push_str(&format!("\n{},{},{max}", quote(&student), results["score"]));
        for t in results["tests"].as_array().cloned().unwrap_or_default() {
            csv.push_str(&format!(",{}", t["score"]));
        }
        let dir = o.out.join(&student);
        std::fs::create_dir_all(&dir).expect("the student's folder");
        let text = serde_json::to_string_pretty(&results).expect("plain data");
        std::fs::write(dir.join("results.json"), text).expect("results.json");
        println!(
            "{student}: {}/{max} in {:.0} s",
            results["score"],
            start.elapsed().as_secs_f64()
        );
    }
    csv.push('\n');
    std::fs::write(o.out.join("class.csv"), csv).expect("class.csv");
    println!(
        "wrote {} and a results.json per student",
        o.out.join("class.csv").display()
    );
}
