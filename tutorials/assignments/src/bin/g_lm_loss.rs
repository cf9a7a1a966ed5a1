//! Grades assignment (g), the language-model rung's loss: `cargo run -p policy-lab-assignments --bin g_lm_loss`.
//!
//! The student writes policy-lab's own `lm::generate::{selective_log_softmax,
//! completion_batch}` and `core::objective::aggregate` (the handout has a `todo!()` in each):
//! the per-token log-probabilities of padded completions, the completion mask, and how each
//! GRPO `loss_type` makes one number of per-token losses (eq. GRPO-4). The checks work them
//! by hand, compare them with case files (`cases/g_lm_loss.json`, and held-out ones with
//! `--heldout DIR`), and ask a small transformer's log-probabilities of a padded batch to
//! equal those of each completion scored alone.

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use policy_lab::algos::grpo::{GrpoUpdate, LossType};
use policy_lab::backend::Inference;
use policy_lab::core::objective::aggregate;
use policy_lab::lm::generate::{completion_batch, completion_log_probs, selective_log_softmax};
use policy_lab::lm::model::{Batch, TransformerConfig};
use policy_lab_assignments::cases::lm::{LmCases, FILE};
use policy_lab_assignments::cases::{matrix, values};
use policy_lab_assignments::grade::{close, grade_with_cases, read_cases, CaseCheck, Check};

fn logp_by_hand() -> Result<(), String> {
    // Two positions over a vocabulary of 2: logits (0, ln 3) give probabilities (1/4, 3/4);
    // logits (1000, 1000) give (1/2, 1/2), which a softmax without its max subtracted loses.
    let device = Default::default();
    let logits = Tensor::<Inference, 3>::from_data(
        TensorData::new(vec![0.0, 3f32.ln(), 1000.0, 1000.0], [1, 2, 2]),
        &device,
    );
    let targets =
        Tensor::<Inference, 3, Int>::from_data(TensorData::new(vec![1i64, 0], [1, 2, 1]), &device);
    let got = values(selective_log_softmax(logits, targets));
    // (At 1000, f32 holds log-sums to about 6e-5.)
    close(
        "log-probabilities",
        &got,
        &[0.75f32.ln(), 0.5f32.ln()],
        2e-4,
    )
}

fn batch_by_hand() -> Result<(), String> {
    // Prompts [5] and [6, 7], completions [1, 2] and [3], pad 0.
    let prompts = Batch::left_padded(&[vec![5], vec![6, 7]], 0);
    let (batch, targets, mask) = completion_batch(prompts, &[vec![1, 2], vec![3]], 0);
    let want_tokens = vec![vec![0, 5, 1, 2], vec![6, 7, 3, 0]];
    let want_valid = vec![vec![false, true, true, true], vec![true, true, true, false]];
    if batch.tokens != want_tokens || batch.valid != want_valid {
        return Err(format!(
            "tokens {:?} and valid {:?}; expected {want_tokens:?} and {want_valid:?}",
            batch.tokens, batch.valid
        ));
    }
    if targets != [1, 2, 3, 0] {
        return Err(format!("targets {targets:?}; expected [1, 2, 3, 0]"));
    }
    close("mask", &mask, &[1.0, 1.0, 1.0, 0.0], 0.0)
}

fn aggregate_by_hand() -> Result<(), String> {
    // Two completions of 2 and 1 real tokens (3 columns): per-token losses 1, 1 and 4.
    let per_token = matrix(2, 3, &[1.0, 1.0, 9.0, 4.0, 9.0, 9.0]);
    let mask = matrix(2, 3, &[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    let loss = |loss_type| {
        let how = GrpoUpdate {
            loss_type,
            ..GrpoUpdate::default()
        }
        .aggregation(2, 3);
        values(aggregate(per_token.clone(), mask.clone(), how))[0]
    };
    // grpo: the mean of the rows' means (1 and 4); bnpo and dapo: 6 over 3 tokens; dr_grpo:
    // 6 over 2 rows x 3 columns. The 9s are padding: they must count for nothing.
    close("grpo", &[loss(LossType::Grpo)], &[2.5], 1e-6)?;
    close("bnpo", &[loss(LossType::Bnpo)], &[2.0], 1e-6)?;
    close("dapo", &[loss(LossType::Dapo)], &[2.0], 1e-6)?;
    close("dr_grpo", &[loss(LossType::DrGrpo)], &[1.0], 1e-6)
}

fn padding_changes_nothing() -> Result<(), String> {
    // A small random transformer: each completion's log-probabilities in a padded batch of
    // prompts and completions of several lengths equal those of the completion scored alone.
    let device = Default::default();
    Inference::seed(&device, 11);
    let model = TransformerConfig::new(13)
        .with_d_model(16)
        .with_n_layers(2)
        .with_n_heads(2)
        .with_d_ff(32)
        .init::<Inference>(&device);
    let prompts = vec![vec![3, 4, 5, 6], vec![7], vec![8, 9]];
    let completions = vec![vec![1, 2], vec![10, 11, 12, 2], vec![]];
    let (pad, temperature) = (0, 0.7);
    let err = |e: policy_lab::lm::model::ModelError| e.to_string();
    let (logp, mask) =
        completion_log_probs(&model, &prompts, &completions, pad, temperature).map_err(err)?;
    let (logp, mask) = (values(logp), values(mask));
    let width = 4;
    for (r, (prompt, completion)) in prompts.iter().zip(&completions).enumerate() {
        let row = r * width..(r + 1) * width;
        let want_mask: Vec<f32> = (0..width)
            .map(|j| (j < completion.len()) as u8 as f32)
            .collect();
        close(
            &format!("mask of row {r}"),
            &mask[row.clone()],
            &want_mask,
            0.0,
        )?;
        if completion.is_empty() {
            continue;
        }
        let (alone, _) = completion_log_probs(
            &model,
            std::slice::from_ref(prompt),
            std::slice::from_ref(completion),
            pad,
            temperature,
        )
        .map_err(err)?;
        close(
            &format!("log-probabilities of row {r} in the padded batch"),
            &logp[row][..completion.len()],
            &values(alone),
            1e-5,
        )?;
    }
    Ok(())
}

fn logp_cases(dir: &Path) -> Result<(), String> {
    let cases: LmCases = read_cases(dir, FILE)?;
    for (i, c) in cases.logp.iter().enumerate() {
        close("log-probabilities", &c.logp(), &c.logp, 1e-4).map_err(|e| {
            format!(
                "case {i} ({} rows, {} tokens, vocabulary {}): {e}",
                c.rows, c.tokens, c.vocab
            )
        })?;
    }
    Ok(())
}

fn batch_cases(dir: &Path) -> Result<(), String> {
    let cases: LmCases = read_cases(dir, FILE)?;
    for (i, c) in cases.batch.iter().enumerate() {
        let (tokens, valid, targets, mask) = c.batch();
        let case = format!(
            "case {i} (prompts {:?}, completions {:?})",
            c.prompts, c.completions
        );
        if tokens != c.tokens || valid != c.valid {
            return Err(format!(
                "{case}: tokens {tokens:?} and valid {valid:?}; expected {:?} and {:?}",
                c.tokens, c.valid
            ));
        }
        if targets != c.targets {
            return Err(format!(
                "{case}: targets {targets:?}; expected {:?}",
                c.targets
            ));
        }
        close("mask", &mask, &c.mask, 0.0).map_err(|e| format!("{case}: {e}"))?;
    }
    Ok(())
}

fn aggregate_cases(dir: &Path, types: &[LossType]) -> Result<(), String> {
    let cases: LmCases = read_cases(dir, FILE)?;
    for (i, c) in cases.aggregate.iter().enumerate() {
        if !types.contains(&c.loss_type) {
            continue;
        }
        close("loss", &[c.loss()], &[c.loss], 1e-5).map_err(|e| {
            format!(
                "case {i} ({:?}, {} rows, {} tokens): {e}",
                c.loss_type, c.rows, c.tokens
            )
        })?;
    }
    Ok(())
}

fn main() {
    grade_with_cases(
        "assignment (g): the language-model rung's log-probabilities, mask and loss",
        &[
            Check {
                name: "selective log-softmax by hand (and with logits of 1000)",
                points: 1,
                test: logp_by_hand,
            },
            Check {
                name: "a padded scoring batch by hand",
                points: 1,
                test: batch_by_hand,
            },
            Check {
                name: "each loss_type by hand, padding counting for nothing",
                points: 2,
                test: aggregate_by_hand,
            },
            Check {
                name: "a transformer's log-probabilities: padded batch = each completion alone",
                points: 2,
                test: padding_changes_nothing,
            },
        ],
        &[
            CaseCheck {
                name: "selective log-softmax",
                points: 2,
                test: logp_cases,
            },
            CaseCheck {
                name: "scoring batches and completion masks",
                points: 2,
                test: batch_cases,
            },
            CaseCheck {
                name: "loss_type grpo",
                points: 1,
                test: |d| aggregate_cases(d, &[LossType::Grpo]),
            },
            CaseCheck {
                name: "loss_type bnpo and dapo",
                points: 1,
                test: |d| aggregate_cases(d, &[LossType::Bnpo, LossType::Dapo]),
            },
            CaseCheck {
                name: "loss_type dr_grpo",
                points: 1,
                test: |d| aggregate_cases(d, &[LossType::DrGrpo]),
            },
        ],
    )
}
