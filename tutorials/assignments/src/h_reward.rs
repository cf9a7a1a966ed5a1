//! Assignment (h): write the reward that teaches a real model. Book chapter "GRPO on a
//! language model", section "Your own task on a real model".
//!
//! The model is SmolLM2-135M-Instruct (`bash scripts/get_smollm2.sh` puts its GGUF file in the
//! cache). Each prompt is the chapter's two-shot one: a system message, "Reply with the answer
//! only, in <answer> </answer> tags.", two worked examples (12 + 7 and 40 + 25, answered
//! `<answer>19</answer>` and `<answer>65</answer>`), then "What is a + b?" for one-digit `a`
//! and `b`. Each row has the columns `a`, `b` and `answer` (the sum, as text). The base model
//! keeps the format but gets about a quarter of the sums right.
//!
//! Write `rewards`: reward functions (closures over a [`Sample`]: the completion, the prompt,
//! the row) and their weights, as TRL's `reward_funcs` and `reward_weights`. Write them
//! yourself: reading the library's `Accuracy` and `Format` is fine, calling them is not the
//! exercise. The grader
//!
//! 1. scores hand-written replies with them: one finite reward per reply whatever it holds,
//!    the right sum in the asked format above every wrong reply, a reply that hedges (two
//!    answers, a list of numbers) below the right one, and the same reward for a reply
//!    whether it is scored alone or in a batch;
//! 2. trains SmolLM2 with them: 6 GRPO iterations of 8 prompts x 8 completions of at most 16
//!    tokens, learning rate 2e-5, seed 0, and TRL's other defaults (advantages scaled by each
//!    group's standard deviation, `scale_rewards = "group"`; no KL term); then measures the
//!    greedy accuracy on 49 held-out sums (the last `<answer>` of the reply, as a number,
//!    against the `answer` column) and compares it with the base model's on the same 49.
//!    Beat the base model by 10 points, then by 30.
//!
//! The book's section shows why the weights matter under group scaling, and what a group whose
//! rewards are all equal teaches. Grade:
//! `cargo run --release -p policy-lab-assignments --bin h_reward` (3 minutes on 2 cores, once built).
#[allow(unused_imports)] // what you will need
use policy_lab::lm::rewards::{Closure, Rewards, Sample};

/// Your reward functions and their weights: `Rewards::default().with(Closure { name:
/// "...".into(), f: |s: &Sample| ... }, weight)` for each.
pub fn rewards() -> Rewards {
    todo!()
}
