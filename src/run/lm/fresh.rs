//! The runner of every stage that trains a fresh model of `[model]`'s shape (`lm sft`,
//! `lm reward`; `lm::stage::FreshStage`): the model made from the seed, `steps` optimizer
//! steps driven by [`crate::run::drive`], the held-out measure every `eval_every` steps, and
//! an early stop where the stage has one (SFT's partial warm start).

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

use super::{check_precision, finish, open_folder, LmRunConfig, LmSummary, Out};
use crate::lm::checkpoint::LmTokenizer;
use crate::lm::sft::SftConfig;
use crate::lm::stage::{Fresh, FreshStage};
use crate::lm::task::{task_tokenizer, Accuracy};
use crate::lm::tokenizer::Tokenizer;
use crate::run::{drive, resume_from, Budget, Drive, Progress, Start};

/// The stage `stage` (the settings of `config.algo`'s table) on a fresh model, into `out`,
/// on `device`.
pub fn run_fresh<B: AutodiffBackend, S: FreshStage>(
    config: &LmRunConfig,
    stage: &S,
    device: &B::Device,
    out: Out,
) -> Result<LmSummary> {
    config.validate()?;
    check_precision::<B>(config.precision, device)?;
    let (mut folder, config_toml) = open_folder(config, &out)?;
    let tokenizer = task_tokenizer();
    let shape = config.transformer(tokenizer.vocab_size());
    let fresh = Fresh::<B> {
        shape: &shape,
        precision: config.precision,
        task: &config.task,
        seed: config.seed,
        device,
    };
    let mut learner = stage.learner(&fresh)?;
    let mut evaluate = stage.evaluator(&fresh)?;
    let resumable = config.algo.resumable();
    let resumable: Vec<&str> = resumable.iter().map(String::as_str).collect();
    let (state, history) = resume_from(
        &mut folder,
        &mut learner,
        &config_toml,
        &resumable,
        out.start,
    )?;
    // The measure last taken (a resumed run's, from its rows), and whether it reached the
    // stopping point.
    let measured = |row: &crate::run::MetricsRow| row.get(S::MEASURE).copied();
    let mut last = Accuracy {
        accuracy: history.iter().rev().find_map(measured).unwrap_or(0.0),
        ..Accuracy::default()
    };
    let reached = std::cell::Cell::new(last.accuracy >= stage.stop_at());
    let lm_tokenizer = LmTokenizer::Char(tokenizer);
    let (steps, every) = (stage.steps(), stage.eval_every());
    let name = config.algo.name();
    let mut bar = Progress::new(name, steps, "steps", 20, steps, out.progress);
    let driven = drive(
        &mut learner,
        &mut folder,
        (state, history),
        Drive::new(
            &config_toml,
            config.checkpoint_every,
            Budget::Iterations(steps),
        )
        .stop_early(|| reached.get())
        .after(|it, m, l| {
            if it % every == 0 || it == steps {
                last = evaluate(l, m)?;
                reached.set(last.accuracy >= stage.stop_at());
            }
            Ok(())
        })
        .save_policy(|l, dir| S::save(l, &shape, &lm_tokenizer, &dir.join("model"))),
        &mut bar,
    )?;
    bar.finish();
    finish(&mut folder, None, last, &driven)
}

/// SFT from a fresh model on the task's demonstrations, stopping at `sft.stop_at_accuracy`
/// ([`run_fresh`] of `config.sft`).
pub fn run_sft<B: AutodiffBackend>(
    config: &LmRunConfig,
    device: &B::Device,
    out: &Path,
    start: Start,
    progress: &mut (dyn Write + Send),
) -> Result<LmSummary> {
    let out = Out {
        dir: out,
        start,
        progress,
    };
    run_fresh::<B, SftConfig>(config, &config.sft, device, out)
}
