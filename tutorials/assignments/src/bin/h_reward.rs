//! Grades assignment (h): `cargo run --release -p policy-lab-assignments --bin h_reward`.
//!
//! The student's reward functions (`src/h_reward.rs`) are scored on hand-written replies, then
//! GRPO trains SmolLM2-135M-Instruct with them for 6 iterations and its held-out greedy
//! accuracy is compared with the base model's. The accuracy is the grader's own measure (the
//! last `<answer>` of a reply against the `answer` column, as a number), never the student's
//! rewards: a reward that pays for the format alone trains a well-formatted model, not a
//! better one. Measured with this grader on 2026-12-08 (base 0.245 on the 49 held-out sums):
//! the instructor solution (accuracy, and format weighted 0.2) reached 0.714 (+47 points);
//! the same two with equal weights 0.571 (+33: both bars, narrowly); a format reward alone
//! 0.122 (-12, and it fails the case check of wrong sums).

use std::sync::{Arc, OnceLock};

use burn::module::AutodiffModule;

use policy_lab::algos::grpo::GrpoUpdate;
use policy_lab::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use policy_lab::backend::Cpu;
use policy_lab::envs::{ArithmeticConfig, Split};
use policy_lab::lm::dataset::{arithmetic, Dataset, DatasetTask, Question, Row};
use policy_lab::lm::dataset_eval::evaluate_dataset;
use policy_lab::lm::generate::SamplingConfig;
use policy_lab::lm::gguf_model::{load_gguf, smollm2_path};
use policy_lab::lm::hf::HfTokenizer;
use policy_lab::lm::model::Transformer;
use policy_lab::lm::reward::RewardFuncs;
use policy_lab::lm::rewards::{Accuracy, Extract, Rewards, Sample, TextRewards};
use policy_lab_assignments::grade::{grade, Check};
use policy_lab_assignments::h_reward::rewards;
use rand::SeedableRng;

/// The chapter's two-shot prompt, as `src/h_reward.rs` describes it.
const SYSTEM: &str = "Reply with the answer only, in <answer> </answer> tags.";
const EXAMPLES: [(&str, &str); 2] = [
    ("What is 12 + 7?", "<answer>19</answer>"),
    ("What is 40 + 25?", "<answer>65</answer>"),
];
/// One-digit sums, 49 of the 100 held out.
const HELD_OUT: usize = 49;
const ITERATIONS: usize = 6;
const MAX_COMPLETION: usize = 16;

/// The rows of `split`: every training problem once (51), or the 49 held-out ones.
fn dataset(split: Split) -> Result<Arc<Dataset>, String> {
    let task = ArithmeticConfig {
        digits: 1,
        test_size: HELD_OUT,
        ..ArithmeticConfig::default()
    };
    let rows = if split == Split::Train { 64 } else { HELD_OUT };
    let examples: Vec<(String, String)> = EXAMPLES
        .iter()
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect();
    let d = arithmetic(&task, split, rows, 0, Question::Chat)
        .map_err(|e| e.to_string())?
        .with_system(SYSTEM)
        .and_then(|d| d.with_examples(&examples))
        .map_err(|e| format!("{e:#}"))?;
    Ok(Arc::new(d))
}

/// The student's total reward of each reply to `row`.
fn totals(functions: &Rewards, row: &Row, replies: &[String]) -> Result<Vec<f32>, String> {
    let samples: Vec<Sample> = replies
        .iter()
        .map(|c| Sample {
            prompt: "",
            completion: c,
            row,
        })
        .collect();
    let scores = functions.score(&samples).map_err(|e| format!("{e:#}"))?;
    Ok(scores.total)
}

/// Training rows whose numbers are both at least 1 (so that "0" or a digit dropped is never
/// the sum by accident), with their sums.
fn some_rows() -> Result<Vec<(Row, i64)>, String> {
    let train = dataset(Split::Train)?;
    let rows: Vec<(Row, i64)> = train
        .rows
        .iter()
        .filter_map(|r| {
            let (a, b) = (
                r.text("a")?.parse::<i64>().ok()?,
                r.text("b")?.parse::<i64>().ok()?,
            );
            (a > 0 && b > 0).then(|| (r.clone(), a + b))
        })
        .take(4)
        .collect();
    if rows.len() < 4 {
        return Err("the grader's dataset has too few rows".into());
    }
    Ok(rows)
}

fn finite() -> Result<(), String> {
    let functions = rewards();
    for (row, sum) in some_rows()? {
        let replies = vec![
            String::new(),
            format!("<answer>{sum}</answer>"),
            "<answer></answer>".into(),
            "<answer>99999999999999999999999999</answer>".into(),
            "<answer>-0</answer>".into(),
            "<answer>3.5</answer>".into(),
            "</answer><answer>".into(),
            "ответ: семь 🙂".into(),
            "<answer>".repeat(200),
            "1 + 1 = 2. ".repeat(100),
        ];
        let got = totals(&functions, &row, &replies)?;
        if got.len() != replies.len() {
            return Err(format!(
                "{} rewards for {} replies",
                got.len(),
                replies.len()
            ));
        }
        if let Some((reply, r)) = replies.iter().zip(&got).find(|(_, r)| !r.is_finite()) {
            return Err(format!("the reply {reply:?} got the reward {r}"));
        }
    }
    Ok(())
}

/// `right` must score strictly more than each of `others` (for row `row`).
fn above(functions: &Rewards, row: &Row, right: String, others: Vec<String>) -> Result<(), String> {
    let mut replies = vec![right];
    replies.extend(others);
    let got = totals(functions, row, &replies)?;
    for (reply, r) in replies.iter().zip(&got).skip(1) {
        if *r >= got[0] {
            return Err(format!(
                "{:?} scores {r}, not below the right reply {:?} ({})",
                reply, replies[0], got[0]
            ));
        }
    }
    Ok(())
}

fn right_above_wrong() -> Result<(), String> {
    let functions = rewards();
    for (row, sum) in some_rows()? {
        let (a, b) = (row.text("a").unwrap(), row.text("b").unwrap());
        let wrong = vec![
            format!("<answer>{}</answer>", sum + 1),
            format!("<answer>{}</answer>", sum - 1),
            format!("<answer>{}</answer>", sum + 10),
            format!("<answer>{a}{b}</answer>"),
            format!("<answer>-{sum}</answer>"),
            "<answer>19</answer>".into(),
            String::new(),
            // The right number, not in the format the prompt asks for.
            format!("{sum}"),
            format!("The answer is {sum}."),
            format!("<answer>{sum}"),
        ];
        above(&functions, &row, format!("<answer>{sum}</answer>"), wrong)?;
    }
    Ok(())
}

fn hedging_pays_less() -> Result<(), String> {
    let functions = rewards();
    for (row, sum) in some_rows()? {
        let w = sum + 1;
        let list: Vec<String> = (0..=18).map(|n| n.to_string()).collect();
        let hedges = vec![
            format!("<answer>{w}</answer><answer>{sum}</answer>"),
            format!("<answer>{sum}</answer><answer>{w}</answer>"),
            format!("<answer>{sum}</answer> or <answer>{w}</answer>"),
            format!("<answer>{w} {sum}</answer>"),
            format!("<answer>{}, {sum}, {w}</answer>", sum - 1),
            format!("<answer>{}</answer>", list.join(" ")),
            list.join(" "),
        ];
        above(&functions, &row, format!("<answer>{sum}</answer>"), hedges)?;
    }
    Ok(())
}

fn alone_as_in_a_batch() -> Result<(), String> {
    let functions = rewards();
    for (row, sum) in some_rows()? {
        let replies = vec![
            format!("<answer>{sum}</answer>"),
            format!("<answer>{}</answer>", sum + 1),
            format!("The answer is {sum}."),
            String::new(),
            format!("<answer>{sum}</answer>"),
        ];
        let batch = totals(&functions, &row, &replies)?;
        let mut reversed = replies.clone();
        reversed.reverse();
        let mut back = totals(&functions, &row, &reversed)?;
        back.reverse();
        for (i, reply) in replies.iter().enumerate() {
            let alone = totals(&functions, &row, std::slice::from_ref(reply))?[0];
            if alone != batch[i] || back[i] != batch[i] {
                return Err(format!(
                    "{reply:?} scores {alone} alone, {} in a batch and {} in the reversed batch",
                    batch[i], back[i]
                ));
            }
        }
    }
    Ok(())
}

/// The grader's held-out measure of `model`: greedy, the last `<answer>` against `answer`.
fn held_out_accuracy(
    model: &Transformer<burn::backend::NdArray>,
    tokenizer: &HfTokenizer,
    test: &Arc<Dataset>,
) -> Result<f64, String> {
    let task = DatasetTask::new(test, tokenizer.chat_template.as_ref(), false)
        .map_err(|e| format!("{e:#}"))?;
    let measure = TextRewards {
        functions: Rewards::default().with(
            Accuracy {
                extract: Extract::AnswerTag,
                column: "answer".into(),
                numeric: true,
            },
            1.0,
        ),
        dataset: test.clone(),
        task,
    };
    let greedy = SamplingConfig::greedy(MAX_COMPLETION);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let scores = evaluate_dataset(
        model,
        tokenizer,
        &measure,
        (&greedy, 1),
        None,
        &mut rng,
        &mut |_, _| {},
    )
    .map_err(|e| e.to_string())?;
    Ok(scores.mean_at_k)
}

/// The base model's held-out accuracy and the trained one's, once per grader run (both
/// training checks read it).
fn base_and_trained() -> Result<(f64, f64), String> {
    static RESULT: OnceLock<Result<(f64, f64), String>> = OnceLock::new();
    RESULT.get_or_init(train).clone()
}

fn train() -> Result<(f64, f64), String> {
    let functions = rewards();
    // The student's code here is the rewards alone: the library's fused kernels (off in every
    // grader, for the assignments they stand in for) run the model, 3 times faster.
    policy_lab::kernels::set_enabled(true);
    let path = smollm2_path();
    if !path.exists() {
        return Err(format!(
            "SmolLM2's GGUF file is not at {}: run `bash scripts/get_smollm2.sh`",
            path.display()
        ));
    }
    let smol = load_gguf::<Cpu>(&path, &Default::default()).map_err(|e| format!("{e:#}"))?;
    let (train, test) = (dataset(Split::Train)?, dataset(Split::Test)?);
    let base = held_out_accuracy(&smol.model.valid(), &smol.tokenizer, &test)?;
    println!("    base model: held-out accuracy {base:.3} ({HELD_OUT} sums, greedy)");
    let task = DatasetTask::new(&train, smol.tokenizer.chat_template.as_ref(), false)
        .map_err(|e| format!("{e:#}"))?;
    let text = TextRewards {
        functions,
        dataset: train,
        task: task.clone(),
    };
    let config = GrpoLmConfig {
        update: GrpoUpdate {
            num_groups: 8,
            num_generations: 8,
            learning_rate: 2e-5,
            dynamic_sampling: false,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    };
    let tokenizer = smol.tokenizer.clone();
    let mut grpo = GrpoLm::new(config, MAX_COMPLETION, smol.model, task, smol.tokenizer, 0)
        .map_err(|e| e.to_string())?
        .with_rewards(RewardFuncs::text(text));
    for i in 1..=ITERATIONS {
        let m = grpo.iterate().map_err(|e| e.to_string())?;
        let yours: Vec<String> = m
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("rewards/")?.strip_suffix("/mean")?;
                Some(format!("{name} {v:.2}"))
            })
            .collect();
        println!(
            "    iteration {i}: your reward {:.3} ({}); groups with equal rewards {:.2}",
            m["reward"],
            yours.join(", "),
            m["frac_reward_zero_std"]
        );
    }
    let trained = held_out_accuracy(&grpo.model.valid(), &tokenizer, &test)?;
    println!(
        "    trained: held-out accuracy {trained:.3} ({:+.0} points)",
        100.0 * (trained - base)
    );
    Ok((base, trained))
}

fn beats_base_by(points: f64) -> Result<(), String> {
    let (base, trained) = base_and_trained()?;
    if trained - base < points / 100.0 {
        return Err(format!(
            "held-out accuracy {trained:.3} against the base model's {base:.3}: {:+.0} points, \
             not {points:+.0}",
            100.0 * (trained - base)
        ));
    }
    Ok(())
}

fn main() {
    grade(
        "assignment (h): a reward that teaches SmolLM2",
        &[
            Check {
                name: "one finite reward per reply, whatever the reply holds",
                points: 1,
                test: finite,
            },
            Check {
                name: "the right sum in the asked format scores above every wrong reply",
                points: 2,
                test: right_above_wrong,
            },
            Check {
                name: "hedging (two answers, a list of numbers) scores below the right sum",
                points: 2,
                test: hedging_pays_less,
            },
            Check {
                name: "a reply scores the same alone as in a batch",
                points: 1,
                test: alone_as_in_a_batch,
            },
            Check {
                name: "GRPO with your rewards beats the base model by 10 points (held out)",
                points: 2,
                test: || beats_base_by(10.0),
            },
            Check {
                name: "GRPO with your rewards beats the base model by 30 points (held out)",
                points: 2,
                test: || beats_base_by(30.0),
            },
        ],
    )
}
