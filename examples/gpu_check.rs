//! The GPU check (`scripts/gpu_check.sh`, which builds and runs this): on a device, in one
//! run, the numbers BENCHMARKS.md's GPU table holds.
//!
//! 1. **logits**: each tiny Hugging Face fixture (`tests/fixtures/hf-tiny-*`) on the device
//!    against the CPU and against transformers (`expected.json`);
//! 2. **sft**: a fixed number of SFT steps on `add:3`, the checkpoint the RL runs start from;
//! 3. **grpo** and **ppo**: a fixed number of RL iterations from it, the same batch of
//!    completions per iteration (GRPO: 8 groups of 8; PPO with a value head: 64 prompts, one
//!    completion each; the model and batch of `scripts/hf_lm_bench.py grpo`, which the script
//!    runs with TRL on the same device): time per iteration and completion tokens per second;
//! 4. **grpo-bf16**: the GRPO run in bf16 with f32 master weights (`precision = "bf16"`),
//!    where the backend stores bf16 (CUDA; not the CPU backend of the dry run);
//! 5. **grpo-dp**: the GRPO run data-parallel over `--devices N`;
//! 6. **smollm2**: SmolLM2-135M-Instruct from its GGUF file (`scripts/get_smollm2.sh`): its
//!    logits on the device against the CPU's, greedy generation tokens/s at 1 row and 64 rows
//!    (64 new tokens), and one GRPO iteration (8 groups of 8, the chat template) on add:3
//!    (not in the dry run: on the CPU of CI that step alone takes minutes).
//!
//! It prints one markdown table row per measurement, and writes each phase's start and end
//! (Unix milliseconds) to `--phases FILE`, from which the script takes each phase's peak GPU
//! memory (`nvidia-smi`, sampled beside it).
//!
//! ```bash
//! cargo run --release --example gpu_check -- --device cpu --dry-run   # what CI runs
//! cargo run --release --features cuda --example gpu_check -- --device cuda --devices 2
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use policy_lab::backend::Device;
use policy_lab::lm::checkpoint::checkpoint_logits;
use policy_lab::lm::model::Precision;
use policy_lab::run::lm::{run_lm, supports_precision, LmAlgo, LmRunConfig};
use policy_lab::run::Start;

struct Options {
    device: Device,
    devices: usize,
    dry_run: bool,
    phases: Option<PathBuf>,
    out: PathBuf,
}

fn options() -> Result<Options> {
    let mut o = Options {
        device: Device::Cpu,
        devices: 1,
        dry_run: false,
        phases: None,
        out: std::env::temp_dir().join(format!("policy-lab-gpu-check-{}", std::process::id())),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--device" => o.device = value()?.parse()?,
            "--devices" => o.devices = value()?.parse()?,
            "--dry-run" => o.dry_run = true,
            "--phases" => o.phases = Some(value()?.into()),
            "--out" => o.out = value()?.into(),
            _ => bail!("usage: gpu_check [--device cpu|wgpu|cuda] [--devices N] [--dry-run] [--phases FILE] [--out DIR]"),
        }
    }
    Ok(o)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

/// Runs `f` as the phase `name`, recording its start and end in the phases file.
fn phase<T>(o: &Options, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = now_ms();
    let out = f().with_context(|| format!("phase {name}"))?;
    if let Some(path) = &o.phases {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{name} {start} {}", now_ms())?;
    }
    Ok(out)
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The fixtures' logits on the device, against the CPU's and transformers'.
fn logits(o: &Options) -> Result<()> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("hf-tiny-"))
        .collect();
    names.sort();
    for name in names {
        let dir = fixtures.join(&name);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?)?;
        let cases = expected.as_array().context("expected.json is a list")?;
        let rows: Vec<Vec<u32>> = cases
            .iter()
            .map(|c| serde_json::from_value(c["ids"].clone()))
            .collect::<Result<_, _>>()?;
        let theirs: Vec<Vec<f32>> = cases
            .iter()
            .map(|c| {
                let rows: Vec<Vec<f32>> = serde_json::from_value(c["logits"].clone())?;
                Ok(rows.concat())
            })
            .collect::<Result<_, serde_json::Error>>()?;
        let on_device = checkpoint_logits(&dir, o.device, &rows)?;
        let on_cpu = checkpoint_logits(&dir, Device::Cpu, &rows)?;
        let (mut vs_cpu, mut vs_hf) = (0.0f32, 0.0f32);
        for ((d, c), t) in on_device.iter().zip(&on_cpu).zip(&theirs) {
            vs_cpu = vs_cpu.max(largest_difference(d, c));
            vs_hf = vs_hf.max(largest_difference(d, t));
        }
        println!(
            "| logits of {name} ({} prompts) | {} | largest difference from the CPU {vs_cpu:.1e}, from transformers (CPU) {vs_hf:.1e} |",
            rows.len(),
            o.device.name()
        );
        if vs_hf > 1e-3 {
            bail!(
                "{name} on {}: the logits differ from transformers' by {vs_hf}",
                o.device.name()
            );
        }
    }
    Ok(())
}

/// Time per iteration and completion tokens per second of a finished run, from its
/// `metrics.jsonl` (iterations after the first, which includes the backend's warm-up).
fn throughput(run: &Path) -> Result<(f64, f64, usize)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl"))?;
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let rows: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["iteration"].as_f64().is_some_and(|i| i >= 1.0))
        .collect();
    if rows.len() < 2 {
        bail!(
            "{} has {} iterations; the check needs 2",
            run.display(),
            rows.len()
        );
    }
    let get = |r: &serde_json::Value, k: &str| r[k].as_f64().with_context(|| format!("no {k}"));
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    let seconds = get(last, "time")? - get(first, "time")?;
    let iterations = rows.len() - 1;
    let mut tokens = 0.0;
    for pair in rows.windows(2) {
        let completions = get(pair[1], "completions_seen")? - get(pair[0], "completions_seen")?;
        tokens += completions * get(pair[1], "completions/mean_length")?;
    }
    Ok((seconds / iterations as f64, tokens / seconds, iterations))
}

fn main() -> Result<()> {
    let o = options()?;
    let _ = std::fs::remove_dir_all(&o.out);
    let (sft_steps, iterations) = if o.dry_run { (20, 3) } else { (300, 12) };
    println!("| check | device | result |\n|---|---|---|");
    phase(&o, "logits", || logits(&o))?;

    let mut config = LmRunConfig {
        device: o.device,
        ..LmRunConfig::default()
    };
    config.task.digits = 3;
    config.sft.steps = sft_steps;
    config.sft.eval_every = sft_steps;
    config.sft.stop_at_accuracy = 2.0;
    config.rl.iterations = iterations;
    config.rl.eval_every = iterations;
    config.checkpoint_every = iterations.max(sft_steps);
    let sink = &mut std::io::sink();
    let sft = phase(&o, "sft", || {
        let start = Instant::now();
        let summary = run_lm(&config, &o.out.join("sft"), Start::New, sink)?;
        println!(
            "| SFT on add:3, {sft_steps} steps | {} | {:.2} s a step; held-out accuracy {:.3} |",
            o.device.name(),
            start.elapsed().as_secs_f64() / sft_steps as f64,
            summary.end.accuracy
        );
        Ok(summary.model)
    })?;
    config.init = Some(sft);

    let runs = [
        ("grpo", LmAlgo::Grpo, 1, "GRPO, 8 groups of 8 completions"),
        (
            "grpo-bf16",
            LmAlgo::Grpo,
            1,
            "GRPO in bf16 (f32 master weights), 8 groups of 8",
        ),
        (
            "ppo",
            LmAlgo::Ppo,
            1,
            "PPO with a value head, 64 completions",
        ),
        (
            "grpo-dp",
            LmAlgo::Grpo,
            o.devices,
            "GRPO data-parallel, 8 groups of 8",
        ),
    ];
    for (name, algo, devices, what) in runs {
        if name == "grpo-dp" && devices < 2 {
            println!(
                "| {what} | {} | not run: one device (--devices N for N >= 2) |",
                o.device.name()
            );
            continue;
        }
        let mut run = config.clone();
        if name == "grpo-bf16" {
            if !supports_precision(o.device, Precision::Bf16)? {
                println!(
                    "| {what} | {} | not run: this backend stores no bf16 |",
                    o.device.name()
                );
                continue;
            }
            run.precision = Precision::Bf16;
        }
        run.algo = algo;
        run.rl.devices = devices;
        run.grpo.update.num_groups = 8;
        run.ppo.num_prompts = 64;
        let folder = o.out.join(name);
        phase(&o, name, || {
            run_lm(&run, &folder, Start::New, sink)?;
            let (step, tokens_per_second, n) = throughput(&folder)?;
            println!(
                "| {what}, {n} iterations from the SFT checkpoint | {} x{devices} | {step:.3} s an iteration, {tokens_per_second:.0} completion tokens/s |",
                o.device.name()
            );
            Ok(())
        })?;
    }
    phase(&o, "smollm2", || smollm2(&o, &config))?;
    let _ = std::fs::remove_dir_all(&o.out);
    Ok(())
}

/// The `smollm2` phase (see the module docs).
fn smollm2(o: &Options, config: &LmRunConfig) -> Result<()> {
    use policy_lab::lm::checkpoint::load_pretrained;
    use policy_lab::lm::tokenizer::encode_prompt;
    use policy_lab::run::generate::generation_speed;
    let path = policy_lab::lm::gguf_model::smollm2_path();
    let device = o.device.name();
    if !path.exists() {
        println!(
            "| SmolLM2-135M-Instruct | {device} | not run: `bash scripts/get_smollm2.sh` first |"
        );
        return Ok(());
    }
    let question = "What is 23 + 58?";
    let mut cpu = load_pretrained::<burn::backend::NdArray>(&path, &Default::default())?;
    cpu.tokenizer.use_chat_template(None)?;
    let rows = [encode_prompt(&cpu.tokenizer, question)?];
    let on_device = checkpoint_logits(&path, o.device, &rows)?;
    let on_cpu = checkpoint_logits(&path, Device::Cpu, &rows)?;
    println!(
        "| SmolLM2 logits of a chat prompt ({} tokens) | {device} | largest difference from the CPU {:.1e} |",
        rows[0].len(),
        largest_difference(&on_device[0], &on_cpu[0])
    );
    // The dry run (CI, a debug build on the CPU) only shows that each step runs.
    let (new_tokens, batch) = if o.dry_run { (8, 8) } else { (64, 64) };
    for rows in [1, batch] {
        let tokens_per_second = generation_speed(&path, o.device, question, rows, new_tokens)?;
        println!(
            "| SmolLM2 greedy generation, {rows} rows x {new_tokens} new tokens | {device} | {tokens_per_second:.0} tokens/s |"
        );
    }
    if o.dry_run {
        println!("| SmolLM2 GRPO iteration, 8 groups of 8 | {device} | not run in the dry run |");
        return Ok(());
    }
    let mut run = config.clone();
    run.algo = LmAlgo::Grpo;
    run.init = Some(path.clone());
    run.rl.chat_template = true;
    run.rl.iterations = 3;
    run.rl.eval_every = 3;
    run.grpo.update.num_groups = 8;
    let folder = o.out.join("smollm2-grpo");
    run_lm(&run, &folder, Start::New, &mut std::io::sink())?;
    let (step, tokens_per_second, n) = throughput(&folder)?;
    println!(
        "| SmolLM2 GRPO on add:3 with its chat template, 8 groups of 8, {n} iterations | {device} | {step:.3} s an iteration, {tokens_per_second:.0} completion tokens/s |"
    );
    Ok(())
}
