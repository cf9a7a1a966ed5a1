//! `policy-lab lm generate`: a model's answers to prompts. The model is anything `--init`
//! takes (a GGUF file such as SmolLM2's, a Hugging Face folder, a run of this project); a
//! model with a chat template gets each prompt as the user's message of a conversation
//! (`--raw`: the text as it is). Greedy unless a temperature, top-k or top-p is given. One
//! prompt is printed token by token as it comes; several are generated as one batch.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use burn::tensor::backend::Backend;
use rand::SeedableRng;

use crate::lm::checkpoint::{load_policy, LmTokenizer};
use crate::lm::generate::{generate, SamplingConfig};
use crate::lm::tokenizer::{encode_prompt, Tokenizer};

/// How `lm generate` writes and samples.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// The prompts as they are, without the chat template.
    pub raw: bool,
    /// A system message before each prompt (only with a chat template).
    pub system: Option<String>,
    pub sampling: SamplingConfig,
    pub seed: u64,
}

/// Generates an answer to each of `prompts` with the model at `model`, writing them to `out`
/// (the one prompt's tokens as they come) and returning them.
pub fn run_generate<B: Backend>(
    model: &Path,
    prompts: &[String],
    options: &GenerateOptions,
    out: &mut dyn Write,
    device: &B::Device,
) -> Result<Vec<String>> {
    options.sampling.validate()?;
    if prompts.is_empty() {
        bail!("no prompt: give --prompt TEXT or --prompts FILE");
    }
    let mut loaded = load_policy::<B>(model, None, device)?;
    match (&mut loaded.tokenizer, options.raw) {
        (LmTokenizer::Hf(t), false) if t.chat_template.is_some() => {
            t.use_chat_template(options.system.clone())?
        }
        _ if options.system.is_some() => bail!(
            "--system-prompt needs a chat template: {} has none (or --raw was given)",
            model.display()
        ),
        _ => {}
    }
    let tokenizer = &loaded.tokenizer;
    let ids = prompts
        .iter()
        .map(|p| encode_prompt(tokenizer, p))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
    if longest + options.sampling.max_new_tokens > loaded.config.max_seq_len {
        bail!(
            "a prompt of {longest} tokens and --max-new-tokens {} exceed the model's context of {} tokens",
            options.sampling.max_new_tokens,
            loaded.config.max_seq_len
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let start = Instant::now();
    // One prompt: print the text as it grows (a token may end inside a character).
    let stream = prompts.len() == 1;
    let mut so_far: Vec<u32> = Vec::new();
    let mut printed = 0;
    let mut on_token = |_row: usize, token: u32| {
        if !stream || token == tokenizer.eos_id() {
            return;
        }
        so_far.push(token);
        let text = tokenizer.decode(&so_far);
        if text.len() > printed && !text.ends_with('\u{FFFD}') {
            let _ = write!(out, "{}", &text[printed..]);
            let _ = out.flush();
            printed = text.len();
        }
    };
    let completions = generate(
        &loaded.model,
        &ids,
        tokenizer.pad_id(),
        tokenizer.eos_id(),
        &options.sampling,
        &mut rng,
        Some(&mut on_token),
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let answers: Vec<String> = completions
        .tokens
        .iter()
        .map(|t| tokenizer.decode(t))
        .collect();
    if stream {
        writeln!(out, "{}", &answers[0][printed.min(answers[0].len())..])?;
    } else {
        for (prompt, answer) in prompts.iter().zip(&answers) {
            writeln!(out, "### {prompt}\n{answer}\n")?;
        }
    }
    let tokens: usize = completions.tokens.iter().map(Vec::len).sum();
    eprintln!(
        "{tokens} tokens in {seconds:.2} s ({:.1} tokens/s, {} prompts)",
        tokens as f64 / seconds.max(1e-9),
        prompts.len()
    );
    Ok(answers)
}

/// Greedy generation speed of the model at `model` on `device`, in tokens per second: `rows`
/// copies of `prompt` (in the model's chat template, where it has one), `new_tokens` each
/// (EOS never stops a row), timed after a warm-up run. What the GPU check measures.
pub fn generation_speed(
    model: &Path,
    device: crate::backend::Device,
    prompt: &str,
    rows: usize,
    new_tokens: usize,
) -> Result<f64> {
    crate::backend::on_backend!(device, B => {
        let mut loaded = load_policy::<B>(model, None, &Default::default())?;
        if let LmTokenizer::Hf(t) = &mut loaded.tokenizer {
            if t.chat_template.is_some() {
                t.use_chat_template(None)?;
            }
        }
        let prompts = vec![encode_prompt(&loaded.tokenizer, prompt)?; rows];
        let sampling = SamplingConfig::greedy(new_tokens);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let pad = loaded.tokenizer.pad_id();
        let mut run = || -> Result<f64> {
            let start = Instant::now();
            let out = generate(&loaded.model, &prompts, pad, u32::MAX, &sampling, &mut rng, None)?;
            let tokens: usize = out.tokens.iter().map(Vec::len).sum();
            Ok(tokens as f64 / start.elapsed().as_secs_f64())
        };
        run()?; // warm-up
        run()
    })?
}
