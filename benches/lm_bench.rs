//! Timings of the language-model pieces on the CPU: the policy-lab side of
//! `scripts/bench_lm.sh`, which runs Hugging Face `transformers` and TRL on the same shapes.
//!
//! cargo bench --bench lm_bench -- generate [rows] [reps]
//! LM_BENCH_BACKEND=flex cargo bench --features flex --bench lm_bench -- generate|grpo ...
//! cargo bench --bench lm_bench -- grpo [steps]
//! LM_BENCH_FUSED=0 cargo bench --bench lm_bench -- grpo ...   (without `kernels`'s kernels)
//! cargo bench --bench lm_bench -- grpo-vs-ppo [steps]
//! cargo bench --bench lm_bench -- logprobs [vocab] [rows]
//! cargo bench --bench lm_bench -- accumulation [vocab] [parts]
//! cargo bench --bench lm_bench -- smollm2 [rows] [reps]      (after scripts/get_smollm2.sh)
//!
//! The model is GPT-2-like: 4 layers, width 128, 4 heads, MLP 512, a context of 32, the
//! arithmetic task's 17-token vocabulary, freshly initialized (seed 0). `LM_BENCH_SHAPE=
//! layers,width,heads,vocab` (read by `scripts/hf_lm_bench.py` too) sets another shape, with
//! an MLP of 4 x width: `scripts/bench_lm.sh sweep` runs 0.8M to GPT-2 small's 124M
//! (`12,768,12,50257`). A vocabulary larger than the task's only adds output rows; sampled ids
//! past the task's characters decode to nothing.
//!
//! * `generate`: `rows` prompts of 9 tokens (BOS + `123+456=`), 8 new tokens each (EOS never
//!   stops a row), sampled at temperature 1; prints `tokens_per_second` (mean of `reps`).
//! * `grpo`: GRPO iterations with 8 prompts x 8 generations and up to 8 new tokens on 3-digit
//!   addition (TRL's shape in the benchmark); prints the mean `step_seconds` after a warm-up.
//! * `grpo-vs-ppo`: GRPO (16 x 8) and PPO with a value head (128 prompts) on the same model
//!   and batch: mean step time, and the peak heap memory of one iteration above what was
//!   held before it (measured by a counting allocator).
//! * `logprobs`: the memory of scoring completions (`completion_log_probs`, the step where
//!   a large vocabulary runs out of memory): `rows` prompts of 9 tokens and completions of 8
//!   on a model with a `vocab`-token vocabulary (default 32,000, 64 rows); the peak heap
//!   above the model of a forward and backward pass (the policy) and of a forward pass
//!   without gradients (the reference), and the step time.
//! * `plot-sweep`: draws `runs/bench/lm_sweep.csv` (written by `scripts/bench_lm.sh sweep`)
//!   into `runs/bench/lm_sweep.{png,svg}`: policy-lab's speed over Hugging Face's at each size.
//! * `smollm2`: SmolLM2-135M-Instruct from its GGUF file (f32 master weights): `rows` copies
//!   of the chat-templated prompt "What is 23 + 58?", 64 new tokens each, greedy (EOS never
//!   stops a row); prints `tokens_per_second` (mean of `reps`) and the peak heap above the
//!   loaded model. `scripts/smollm2_bench.py` runs transformers and llama.cpp the same way.
//! * `smollm2-grpo`: GRPO steps on SmolLM2-135M-Instruct (f32 master weights, Adam): 8
//!   chat-templated 3-digit additions x 8 completions of up to 64 new tokens at temperature
//!   1, beta 0, one update per batch (TRL's defaults); prints the mean `step_seconds` after a
//!   warm-up step, the mean completion length (EOS ends a completion, as in TRL) and the peak
//!   heap above the loaded model. `scripts/smollm2_bench.py trl` runs TRL's GRPOTrainer the
//!   same way.
//! * `accumulation`: one GRPO iteration (16 prompts x 8, up to 8 new tokens) on a model with
//!   a `vocab`-token vocabulary (default 32,000), with `gradient_accumulation_steps` 1 and
//!   `parts` (default 4): peak heap memory and step time of each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::tensor::backend::Backend;
use policy_lab::algos::grpo::GrpoUpdate;
use policy_lab::algos::grpo_lm::GrpoLm;
use policy_lab::algos::grpo_lm::GrpoLmConfig;
use policy_lab::algos::ppo_lm::PpoLm;
use policy_lab::backend::Cpu;
use policy_lab::envs::{Arithmetic, ArithmeticConfig};
use policy_lab::lm::generate::{generate, SamplingConfig};
use policy_lab::lm::model::{Transformer, TransformerConfig};
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;
use policy_lab::run::lm::LmRunConfig;
use rand::SeedableRng;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The benchmark's shape: `LM_BENCH_SHAPE=layers,width,heads,vocab`, or the default.
fn shape() -> TransformerConfig {
    let default = TransformerConfig::new(task_tokenizer().vocab_size()).with_max_seq_len(32);
    let Ok(text) = std::env::var("LM_BENCH_SHAPE") else {
        return default;
    };
    let v: Vec<usize> = text
        .split(',')
        .map(|x| {
            x.trim()
                .parse()
                .expect("LM_BENCH_SHAPE=layers,width,heads,vocab")
        })
        .collect();
    assert!(
        v.len() == 4,
        "LM_BENCH_SHAPE=layers,width,heads,vocab, not {text}"
    );
    TransformerConfig::new(v[3])
        .with_max_seq_len(32)
        .with_n_layers(v[0])
        .with_d_model(v[1])
        .with_n_heads(v[2])
        .with_d_ff(4 * v[1])
}

fn model<B: Backend>() -> Transformer<B> {
    let device = Default::default();
    let model = policy_lab::backend::seeded::<B, _>(&device, 0, || shape().init(&device));
    eprintln!("parameters={}", burn::module::Module::num_params(&model));
    model
}

fn task() -> Arithmetic {
    Arithmetic::new(ArithmeticConfig::default()).expect("3-digit addition")
}

fn main() {
    policy_lab::backend::keep_freed_memory();
    // `LM_BENCH_FUSED=0`: the definitions instead of `kernels`'s kernels, to measure them.
    if std::env::var("LM_BENCH_FUSED").is_ok_and(|v| v == "0") {
        policy_lab::kernels::set_enabled(false);
    }
    // `cargo bench` adds `--bench` to the arguments; it is not one of ours.
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let what = args.next().unwrap_or_else(|| "generate".into());
    let n: Option<usize> = args.next().and_then(|s| s.parse().ok());
    let m: Option<usize> = args.next().and_then(|s| s.parse().ok());
    match what.as_str() {
        "generate" if flex() => {
            #[cfg(feature = "flex")]
            bench_generate::<burn::backend::Flex>(n.unwrap_or(64), m.unwrap_or(20));
        }
        "grpo" if flex() => {
            #[cfg(feature = "flex")]
            bench_grpo::<burn::backend::Autodiff<burn::backend::Flex>>(n.unwrap_or(10));
        }
        "generate" => bench_generate::<burn::backend::NdArray>(n.unwrap_or(64), m.unwrap_or(20)),
        "grpo" => bench_grpo::<Cpu>(n.unwrap_or(10)),
        "grpo-vs-ppo" => bench_grpo_vs_ppo(n.unwrap_or(5)),
        "logprobs" => bench_logprobs(n.unwrap_or(32_000), m.unwrap_or(64)),
        "accumulation" => bench_accumulation(n.unwrap_or(32_000), m.unwrap_or(4)),
        "plot-sweep" => plot_sweep(),
        "smollm2" => bench_smollm2(n.unwrap_or(1), m.unwrap_or(3)),
        "smollm2-grpo" => bench_smollm2_grpo(n.unwrap_or(2)),
        other => panic!(
            "lm_bench runs generate, grpo, grpo-vs-ppo, logprobs, accumulation, smollm2, \
             smollm2-grpo or plot-sweep, not {other}"
        ),
    }
}

/// `LM_BENCH_BACKEND=flex`: `generate` and `grpo` on burn's Flex CPU backend (built with
/// `--features flex`) instead of NdArray.
fn flex() -> bool {
    let flex = std::env::var("LM_BENCH_BACKEND").is_ok_and(|b| b == "flex");
    assert!(
        !flex || cfg!(feature = "flex"),
        "LM_BENCH_BACKEND=flex needs `--features flex`"
    );
    flex
}

fn bench_generate<B: Backend>(rows: usize, reps: usize) {
    let model = model::<B>();
    let tok = task_tokenizer();
    let prompt = policy_lab::lm::sft::encode_prompt(&tok, "123+456=").unwrap();
    let prompts = vec![prompt; rows];
    let sampling = SamplingConfig {
        max_new_tokens: 8,
        ..SamplingConfig::default()
    };
    let mean = mean_tokens_per_second(&model, &prompts, tok.pad_id(), &sampling, reps);
    println!("generate rows={rows} new_tokens=8 reps={reps} tokens_per_second={mean:.0}");
}

/// Generation tokens per second of `prompts` (EOS never stops a row), the mean of `reps`
/// runs after a warm-up.
fn mean_tokens_per_second<B: Backend>(
    model: &Transformer<B>,
    prompts: &[Vec<u32>],
    pad: u32,
    sampling: &SamplingConfig,
    reps: usize,
) -> f64 {
    let mut rng = policy_lab::envs::EnvRng::seed_from_u64(0);
    let mut run = || {
        let start = Instant::now();
        let out = generate(model, prompts, pad, u32::MAX, sampling, &mut rng, None).unwrap();
        let tokens: usize = out.tokens.iter().map(Vec::len).sum();
        tokens as f64 / start.elapsed().as_secs_f64()
    };
    run(); // warm-up
    (0..reps).map(|_| run()).sum::<f64>() / reps as f64
}

fn bench_smollm2(rows: usize, reps: usize) {
    use policy_lab::lm::tokenizer::encode_prompt;
    let hf = smollm2::<burn::backend::NdArray>();
    let prompt = encode_prompt(&hf.tokenizer, "What is 23 + 58?").unwrap();
    let prompts = vec![prompt; rows];
    let sampling = SamplingConfig::greedy(64);
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let pad = hf.tokenizer.pad_id();
    let mean = mean_tokens_per_second(&hf.model, &prompts, pad, &sampling, reps);
    let peak = (PEAK.load(Ordering::Relaxed) - before) as f64 / (1 << 20) as f64;
    println!("smollm2 rows={rows} new_tokens=64 reps={reps} tokens_per_second={mean:.1} peak_MiB_above_model={peak:.0}");
}

fn bench_smollm2_grpo(steps: usize) {
    let hf = smollm2::<Cpu>();
    let config = trl_shape(1e-6);
    let mut grpo = GrpoLm::new(config, 64, hf.model, task(), hf.tokenizer, 0).expect("valid");
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    grpo.iterate().unwrap(); // warm-up
    let (mut seconds, mut length) = (0.0, 0.0);
    for _ in 0..steps {
        let start = Instant::now();
        let m = grpo.iterate().unwrap();
        seconds += start.elapsed().as_secs_f64();
        length += m["completions/mean_length"];
    }
    let n = steps as f64;
    let peak = (PEAK.load(Ordering::Relaxed) - before) as f64 / (1 << 20) as f64;
    println!(
        "smollm2 grpo prompts=8 generations=8 max_new_tokens=64 steps={steps} step_seconds={:.2} \
         mean_completion_length={:.1} peak_MiB_above_model={peak:.0}",
        seconds / n,
        length / n
    );
}

/// SmolLM2-135M-Instruct from its GGUF file, its chat template on.
fn smollm2<B: Backend>() -> policy_lab::lm::hf::HfModel<B> {
    let path = policy_lab::lm::gguf_model::smollm2_path();
    let mut hf = policy_lab::lm::gguf_model::load_gguf::<B>(&path, &Default::default())
        .unwrap_or_else(|e| panic!("{e:#} (bash scripts/get_smollm2.sh fetches it)"));
    hf.tokenizer.use_chat_template(None).unwrap();
    hf
}

/// GRPO in TRL's benchmark shape: 8 prompts x 8 generations, otherwise the defaults.
fn trl_shape(learning_rate: f64) -> GrpoLmConfig {
    GrpoLmConfig {
        update: GrpoUpdate {
            num_groups: 8,
            num_generations: 8,
            learning_rate,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    }
}

fn bench_grpo<A: burn::tensor::backend::AutodiffBackend>(steps: usize) {
    let config = trl_shape(1e-5);
    let mut grpo =
        GrpoLm::new(config, 8, model::<A>(), task(), task_tokenizer(), 0).expect("valid");
    grpo.iterate().unwrap(); // warm-up
    let start = Instant::now();
    for _ in 0..steps {
        grpo.iterate().unwrap();
    }
    let s = start.elapsed().as_secs_f64() / steps as f64;
    println!("grpo prompts=8 generations=8 max_new_tokens=8 steps={steps} step_seconds={s:.4}");
}

fn bench_grpo_vs_ppo(steps: usize) {
    let defaults = LmRunConfig::default();
    let batch = defaults.grpo.update.num_groups * defaults.grpo.update.num_generations;
    assert_eq!(
        batch, defaults.ppo.num_prompts,
        "the same number of completions"
    );
    let (g_s, g_mem) = measure(
        || {
            let c = defaults.grpo.clone();
            GrpoLm::new(c, 8, model::<Cpu>(), task(), task_tokenizer(), 0).expect("valid")
        },
        |l| {
            l.iterate().unwrap();
        },
        steps,
    );
    let (p_s, p_mem) = measure(
        || {
            let c = defaults.ppo.clone();
            PpoLm::new(c, 8, model::<Cpu>(), task(), task_tokenizer(), 0).expect("valid")
        },
        |l| {
            l.iterate().unwrap();
        },
        steps,
    );
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!("batch={batch} completions, up to 8 new tokens, {steps} steps each");
    println!("grpo step_seconds={g_s:.4} peak_MiB={:.1}", mib(g_mem));
    println!("ppo  step_seconds={p_s:.4} peak_MiB={:.1}", mib(p_mem));
    println!(
        "grpo/ppo: time {:.2}, memory {:.2}",
        g_s / p_s,
        g_mem as f64 / p_mem as f64
    );
}

/// Builds a learner with `make` and runs `step` once to warm up and then `steps` times:
/// returns the mean time of those steps, and the peak heap memory in use from before
/// `make` to the end (the learner's weights, optimizer moments and, for PPO, value model
/// count, as do the activations of its largest iteration).
fn measure<L>(
    make: impl FnOnce() -> L,
    mut step: impl FnMut(&mut L),
    steps: usize,
) -> (f64, usize) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut learner = make();
    step(&mut learner);
    let start = Instant::now();
    for _ in 0..steps {
        step(&mut learner);
    }
    let seconds = start.elapsed().as_secs_f64() / steps as f64;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop(learner);
    (seconds, peak)
}

fn bench_logprobs(vocab: usize, rows: usize) {
    use policy_lab::lm::generate::completion_log_probs;
    let device = Default::default();
    let shape = TransformerConfig::new(vocab).with_max_seq_len(32);
    let policy: Transformer<Cpu> =
        policy_lab::backend::seeded::<Cpu, _>(&device, 0, || shape.init(&device));
    let reference = burn::module::AutodiffModule::valid(&policy);
    let prompts: Vec<Vec<u32>> = (0..rows)
        .map(|r| (0..9).map(|i| ((r * 31 + i * 7) % vocab) as u32).collect())
        .collect();
    let completions: Vec<Vec<u32>> = (0..rows)
        .map(|r| {
            (0..8)
                .map(|i| ((r * 17 + i * 13 + 5) % vocab) as u32)
                .collect()
        })
        .collect();
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let run = |train: bool| {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        if train {
            let (logp, mask) =
                completion_log_probs(&policy, &prompts, &completions, 0, 1.0).unwrap();
            let grads = (logp * mask).sum().backward();
            drop(grads);
        } else {
            let (logp, _) =
                completion_log_probs(&reference, &prompts, &completions, 0, 1.0).unwrap();
            drop(logp);
        }
        (
            start.elapsed().as_secs_f64(),
            PEAK.load(Ordering::Relaxed) - before,
        )
    };
    run(true); // warm-up
    let (t_train, m_train) = run(true);
    let (t_ref, m_ref) = run(false);
    println!(
        "logprobs vocab={vocab} rows={rows} prompt=9 completion=8: policy (forward+backward) \
         peak_MiB={:.1} seconds={t_train:.3}; reference (forward) peak_MiB={:.1} seconds={t_ref:.3}",
        mib(m_train),
        mib(m_ref)
    );
}

fn bench_accumulation(vocab: usize, parts: usize) {
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let mut results = Vec::new();
    for steps in [1, parts] {
        let (seconds, peak) = measure(
            || {
                let config = GrpoLmConfig {
                    gradient_accumulation_steps: steps,
                    update: GrpoUpdate {
                        num_groups: 16,
                        num_generations: 8,
                        learning_rate: 1e-5,
                        ..GrpoUpdate::default()
                    },
                };
                let device = Default::default();
                let shape = TransformerConfig::new(vocab).with_max_seq_len(32);
                let model =
                    policy_lab::backend::seeded::<Cpu, _>(&device, 0, || shape.init(&device));
                GrpoLm::new(config, 8, model, task(), task_tokenizer(), 0).expect("valid")
            },
            |l| {
                l.iterate().unwrap();
            },
            2,
        );
        println!(
            "grpo vocab={vocab} 16x8 gradient_accumulation_steps={steps}: peak_MiB={:.1} step_seconds={seconds:.3}",
            mib(peak)
        );
        results.push(peak);
    }
    println!("memory ratio {:.2}", results[1] as f64 / results[0] as f64);
}

/// The size sweep's ratios against the model size: generation tokens/s of policy-lab over
/// transformers', and TRL's GRPO step time over policy-lab's (above 1: policy-lab is faster).
fn plot_sweep() {
    let text = std::fs::read_to_string("runs/bench/lm_sweep.csv")
        .expect("runs/bench/lm_sweep.csv: run `bash scripts/bench_lm.sh sweep` first");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (params, ours_tps, hf_tps, ours_step, trl_step) = (
        col("parameters"),
        col("ours_tokens_per_second"),
        col("hf_tokens_per_second"),
        col("ours_step_seconds"),
        col("trl_step_seconds"),
    );
    let (mut xs, mut generation, mut step, mut one) = (vec![], vec![], vec![], vec![]);
    for line in lines {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.parse().unwrap_or(f64::NAN))
            .collect();
        xs.push(v[params].log10());
        generation.push(v[ours_tps] / v[hf_tps]);
        step.push(v[trl_step] / v[ours_step]);
        one.push(1.0);
    }
    let files = policy_lab::run::figure::Figure::new(
        "policy-lab against transformers and TRL on the CPU, by model size",
    )
    .x("log10(parameters)", false)
    .y("how many times faster policy-lab is")
    .legend("upper right")
    .line(
        "generation: tokens/s, policy-lab / transformers",
        &xs,
        &generation,
    )
    .line("GRPO step: time, TRL / policy-lab", &xs, &step)
    .line("as fast", &xs, &one)
    .save(std::path::Path::new("runs/bench/lm_sweep"))
    .expect("drawing the sweep");
    for f in files {
        println!("wrote {}", f.display());
    }
}
