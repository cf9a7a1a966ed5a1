//! Assignment (h), the instructor's solution: an accuracy reward and a format reward written
//! as closures, the format weighted 0.2. (The student's file, with the task, is
//! `src/h_reward.rs`.)
//!
//! Why these weights: the grader trains with TRL's default advantages, each group's rewards
//! minus their mean divided by their standard deviation. A group whose replies are all wrong
//! but differ in format then gets advantages as large as a group with a right sum in it; with
//! the format at 0.2 of the accuracy, the sum is what the total mostly says. With the grader
//! these reached 0.714 from the base model's 0.245; equal weights 0.571, and a format reward
//! alone 0.122 (measured 2026-12-08).
use policy_lab::lm::rewards::{Closure, Rewards, Sample};

/// The text inside the reply's last `<answer>...</answer>`, trimmed.
fn tagged(reply: &str) -> Option<&str> {
    let end = reply.rfind("</answer>")?;
    let start = reply[..end].rfind("<answer>")? + "<answer>".len();
    Some(reply[start..end].trim())
}

/// Whether the whole reply is one `<answer>` tag around an integer (spaces allowed around it).
fn well_formed(reply: &str) -> bool {
    let Some(inside) = reply
        .trim()
        .strip_prefix("<answer>")
        .and_then(|r| r.strip_suffix("</answer>"))
    else {
        return false;
    };
    let number = inside.trim();
    let digits = number.strip_prefix('-').unwrap_or(number);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

pub fn rewards() -> Rewards {
    // 1 when the last tag holds the row's sum as a number ("07" and " 7 " count), else 0.
    let accuracy = Closure {
        name: "sum".into(),
        f: |s: &Sample| {
            let want = s
                .row
                .text("answer")
                .and_then(|a| a.trim().parse::<i64>().ok());
            let got = tagged(s.completion).and_then(|t| t.parse::<i64>().ok());
            match (got, want) {
                (Some(g), Some(w)) if g == w => 1.0,
                _ => 0.0,
            }
        },
    };
    // 1 when the reply is the answer alone, in the tags the system message asks for.
    let format = Closure {
        name: "format".into(),
        f: |s: &Sample| if well_formed(s.completion) { 1.0 } else { 0.0 },
    };
    Rewards::default().with(accuracy, 1.0).with(format, 0.2)
}
