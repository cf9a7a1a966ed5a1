//! What every grader shares: run each check (a `todo!()` or a panic counts as a failure),
//! print one line per check and the score, and exit with failure unless every check passed.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// One graded check: its points and a test that returns why it failed.
pub struct Check {
    pub name: &'static str,
    pub points: u32,
    pub test: fn() -> Result<(), String>,
}

/// Runs `checks`, prints the score of `assignment`, and exits (status 0 only on full marks).
pub fn grade(assignment: &str, checks: &[Check]) -> ! {
    // The student's `todo!()` panics; the grader reports it instead of the panic message.
    std::panic::set_hook(Box::new(|_| {}));
    let (mut got, mut total) = (0, 0);
    println!("grading {assignment}");
    for check in checks {
        total += check.points;
        let outcome = match catch_unwind(AssertUnwindSafe(check.test)) {
            Ok(result) => result,
            Err(panic) => Err(match panic.downcast_ref::<String>() {
                Some(m) => format!("panicked: {m}"),
                None => match panic.downcast_ref::<&str>() {
                    Some(m) => format!("panicked: {m}"),
                    None => "panicked".to_string(),
                },
            }),
        };
        match outcome {
            Ok(()) => {
                got += check.points;
                println!("  [{:>2}/{:>2}] {}", check.points, check.points, check.name);
            }
            Err(why) => println!("  [ 0/{:>2}] {}: {why}", check.points, check.name),
        }
    }
    println!("score: {got}/{total}");
    std::process::exit(if got == total { 0 } else { 1 })
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
