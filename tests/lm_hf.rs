//! Hugging Face checkpoints: the tiny random Qwen2 and Llama models of
//! `tests/fixtures/make_hf_fixtures.py` (made with `transformers`) load into our
//! `Transformer`, give `transformers`' logits to 1e-4 and its greedy generations token for
//! token; a broken checkpoint is a clear error.

use std::path::{Path, PathBuf};

use policy_lab::lm::generate::{generate, SamplingConfig};
use policy_lab::lm::hf::load_hf;
use policy_lab::lm::model::Batch;
use policy_lab::lm::tokenizer::Tokenizer;
use rand::SeedableRng;
use serde::Deserialize;

type B = burn::backend::NdArray;

#[derive(Deserialize)]
struct Expected {
    prompt: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
    greedy: Vec<u32>,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected(dir: &Path) -> Vec<Expected> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn matches_transformers(name: &str) {
    let dir = fixture(name);
    let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
    for case in expected(&dir) {
        assert_eq!(
            hf.tokenizer.encode(&case.prompt).unwrap(),
            case.ids,
            "{name}: tokenizer.json encodes {:?} as transformers does",
            case.prompt
        );
        let logits = hf
            .model
            .forward(&Batch::left_padded(std::slice::from_ref(&case.ids), 0))
            .unwrap();
        let ours: Vec<f32> = logits.into_data().to_vec().unwrap();
        let theirs: Vec<f32> = case.logits.concat();
        assert_eq!(ours.len(), theirs.len());
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{name} {:?}: largest logit difference {worst:e}",
            case.prompt
        );
        assert!(
            worst <= 1e-4,
            "{name} {:?}: logits differ by {worst}",
            case.prompt
        );

        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let out = generate(
            &hf.model,
            std::slice::from_ref(&case.ids),
            hf.tokenizer.pad_id(),
            hf.tokenizer.eos_id(),
            &SamplingConfig::greedy(case.greedy.len()),
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            out.tokens[0], case.greedy,
            "{name} {:?}: greedy",
            case.prompt
        );
    }
}

#[test]
fn a_qwen2_checkpoint_gives_the_logits_and_greedy_tokens_of_transformers() {
    matches_transformers("hf-tiny-qwen2");
}

#[test]
fn a_llama_checkpoint_gives_the_logits_and_greedy_tokens_of_transformers() {
    matches_transformers("hf-tiny-llama");
}

#[test]
fn left_padding_in_a_batch_changes_no_row() {
    // Two prompts of different lengths in one batch: each row's last logits are those of
    // the row alone (the padding mask and the per-row rotary positions).
    let dir = fixture("hf-tiny-qwen2");
    let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
    let cases = expected(&dir);
    let rows: Vec<Vec<u32>> = cases.iter().map(|c| c.ids.clone()).collect();
    let batch = Batch::left_padded(&rows, hf.tokenizer.pad_id());
    let logits = hf.model.forward(&batch).unwrap();
    let [_, len, vocab] = logits.dims();
    let values: Vec<f32> = logits.into_data().to_vec().unwrap();
    for (r, case) in cases.iter().enumerate() {
        let last = &values[(r * len + len - 1) * vocab..(r * len + len) * vocab];
        let theirs = case.logits.last().unwrap();
        let worst = last
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "row {r}: {worst}");
    }
}

/// A copy of a fixture in a fresh temporary folder, changed by `edit`.
fn broken(name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("policy-lab-hf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("hf-tiny-qwen2")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    edit(&dir);
    dir
}

fn load_error(dir: &Path) -> String {
    match load_hf::<B>(dir, &Default::default()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} not in config.json");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_broken_checkpoint_is_a_clear_error() {
    let no_weights = broken("noweights", |d| {
        std::fs::remove_file(d.join("model.safetensors")).unwrap()
    });
    assert!(load_error(&no_weights).contains("has no model.safetensors"));

    let no_tokenizer = broken("notok", |d| {
        std::fs::remove_file(d.join("tokenizer.json")).unwrap()
    });
    assert!(load_error(&no_tokenizer).contains("has no tokenizer.json"));

    let no_config = broken("noconfig", |d| {
        std::fs::remove_file(d.join("config.json")).unwrap()
    });
    assert!(load_error(&no_config).contains("is not a Hugging Face checkpoint (no config.json)"));

    let gpt2 = broken("arch", |d| edit_config(d, "\"qwen2\"", "\"gpt_neox\""));
    let e = load_error(&gpt2);
    assert!(
        e.contains("unsupported architecture \"gpt_neox\"") && e.contains("llama, qwen2"),
        "{e}"
    );

    let shape = broken("shape", |d| {
        edit_config(d, "\"intermediate_size\": 96", "\"intermediate_size\": 128")
    });
    let e = load_error(&shape);
    assert!(
        e.contains("model.layers.0.mlp.gate_proj.weight has the shape [96, 64], the config implies [128, 64]"),
        "{e}"
    );

    let scaled = broken("scaling", |d| {
        edit_config(d, "\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"")
    });
    assert!(load_error(&scaled).contains("unsupported rope_type"));

    for d in [no_weights, no_tokenizer, no_config, gpt2, shape, scaled] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn grpo_runs_from_a_hugging_face_checkpoint_and_saves_one_that_loads() {
    use policy_lab::lm::checkpoint::load_policy;
    use policy_lab::lm::tokenizer::LmTokenizer;
    use policy_lab::run::lm::{run_rl, LmAlgo, LmRunConfig};

    // What `policy-lab lm grpo --task add:2 --init DIR` does, on a tiny budget.
    let mut config = LmRunConfig {
        algo: LmAlgo::Grpo,
        ..LmRunConfig::default()
    };
    config.task.digits = 2;
    config.task.test_size = 16;
    config.rl.iterations = 2;
    config.rl.eval_every = 2;
    config.grpo.update.num_groups = 2;
    config.grpo.update.num_generations = 4;
    let out = std::env::temp_dir().join(format!("policy-lab-hf-grpo-{}", std::process::id()));
    let summary = run_rl::<policy_lab::backend::Cpu>(
        &config,
        &fixture("hf-tiny-qwen2"),
        &[Default::default()],
        &out,
        policy_lab::run::Start::New,
        &mut std::io::sink(),
    )
    .unwrap();
    assert_eq!(summary.end.problems, 16);
    let saved = load_policy::<B>(&summary.model, None, &Default::default()).unwrap();
    assert!(matches!(saved.tokenizer, LmTokenizer::Hf(_)));
    assert_eq!(saved.config.vocab_size, 320);
    std::fs::remove_dir_all(&out).unwrap();
}
