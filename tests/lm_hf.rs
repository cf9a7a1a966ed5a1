//! Hugging Face checkpoints: the tiny random Qwen2, Llama, Llama 3.x (rope scaling, an
//! explicit head_dim) and Qwen3 (query/key norms, head_dim apart from the width) models of
//! `tests/fixtures/make_hf_fixtures.py` (made with `transformers`) load into our
//! `Transformer`, give `transformers`' logits to 1e-4 and its greedy generations token for
//! token, alone and in a left-padded batch; a broken or unsupported checkpoint is a clear
//! error that names the key and its value. And the first GRPO step on a dataset with reward
//! functions equals TRL's `GRPOTrainer` (`tests/fixtures/grpo-trl/`).

use std::path::{Path, PathBuf};

use policy_lab::lm::generate::{generate, SamplingConfig};
use policy_lab::lm::hf::load_hf;
use policy_lab::lm::model::Batch;
use policy_lab::lm::tokenizer::Tokenizer;
use rand::SeedableRng;
use serde::Deserialize;

mod common;

type B = burn::backend::NdArray;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected(dir: &Path) -> Vec<common::Expected> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn matches_transformers(name: &str) {
    let dir = fixture(name);
    let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
    common::matches_transformers(name, &hf, &expected(&dir), 1e-4);
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
fn a_llama3_checkpoint_with_rope_scaling_and_head_dim_gives_the_logits_of_transformers() {
    matches_transformers("hf-tiny-llama3");
}

#[test]
fn a_qwen3_checkpoint_gives_the_logits_and_greedy_tokens_of_transformers() {
    matches_transformers("hf-tiny-qwen3");
}

/// The three prompts in one left-padded batch, as transformers ran them.
#[derive(Deserialize)]
struct ExpectedBatch {
    ids: Vec<Vec<u32>>,
    /// Per row, the logits of its real positions.
    logits: Vec<Vec<Vec<f32>>>,
    greedy: Vec<Vec<u32>>,
}

fn matches_transformers_batched(name: &str) {
    let dir = fixture(name);
    let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
    let want: ExpectedBatch =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_batch.json")).unwrap())
            .unwrap();
    let batch = Batch::left_padded(&want.ids, hf.tokenizer.pad_id());
    let logits = hf.model.forward(&batch).unwrap();
    let [_, len, vocab] = logits.dims();
    let values: Vec<f32> = logits.into_data().to_vec().unwrap();
    for (r, (ids, theirs)) in want.ids.iter().zip(&want.logits).enumerate() {
        let start = (r * len + len - ids.len()) * vocab;
        let ours = &values[start..(r + 1) * len * vocab];
        let worst = ours
            .iter()
            .zip(theirs.concat())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!("{name} batch row {r}: largest logit difference {worst:e}");
        assert!(
            worst <= 1e-4,
            "{name} batch row {r}: logits differ by {worst}"
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let steps = want.greedy.iter().map(Vec::len).max().unwrap();
    let out = generate(
        &hf.model,
        &want.ids,
        hf.tokenizer.pad_id(),
        hf.tokenizer.eos_id(),
        &SamplingConfig::greedy(steps),
        &mut rng,
        None,
    )
    .unwrap();
    for (r, theirs) in want.greedy.iter().enumerate() {
        // transformers pads a row that ended early; ours stops it at its EOS.
        let ours = &out.tokens[r];
        assert_eq!(
            ours[..],
            theirs[..ours.len()],
            "{name} batch row {r}: greedy"
        );
        assert!(
            theirs[ours.len()..]
                .iter()
                .all(|&t| t == hf.tokenizer.pad_id()),
            "{name} batch row {r}: greedy stopped at {} tokens, transformers went on: {theirs:?}",
            ours.len()
        );
    }
}

#[test]
fn llama3_and_qwen3_in_a_left_padded_batch_give_the_logits_and_tokens_of_transformers() {
    matches_transformers_batched("hf-tiny-llama3");
    matches_transformers_batched("hf-tiny-qwen3");
}

#[test]
fn an_older_config_with_rope_theta_and_rope_scaling_loads_the_same_model() {
    // transformers before 5 wrote `rope_theta` and `rope_scaling` (with `type` or
    // `rope_type`); transformers 5 writes `rope_parameters`. Both are the same model.
    let dir = std::env::temp_dir().join(format!("policy-lab-hf-llama3-old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("hf-tiny-llama3")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut rope = config["rope_parameters"].take();
    let object = config.as_object_mut().unwrap();
    object.remove("rope_parameters");
    object.insert("rope_theta".into(), rope["rope_theta"].take());
    let rope = rope.as_object_mut().unwrap();
    rope.remove("rope_theta");
    let kind = rope.remove("rope_type").unwrap();
    rope.insert("type".into(), kind);
    object.insert(
        "rope_scaling".into(),
        serde_json::Value::Object(rope.clone()),
    );
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();

    let new = load_hf::<B>(&fixture("hf-tiny-llama3"), &Default::default()).unwrap();
    let old = load_hf::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(new.config, old.config);
    assert!(old.config.rope_scaling.is_some());
    let _ = std::fs::remove_dir_all(dir);
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
        e.contains("unsupported architecture \"gpt_neox\"") && e.contains("llama, qwen2, qwen3"),
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
    let e = load_error(&scaled);
    assert!(
        e.contains("unsupported rope_parameters.rope_type \"yarn\""),
        "{e}"
    );

    // Every option the model cannot reproduce is refused, naming the key and its value.
    let sliding = broken("sliding", |d| {
        edit_config(
            d,
            "\"use_sliding_window\": false",
            "\"use_sliding_window\": true",
        )
    });
    let e = load_error(&sliding);
    assert!(e.contains("unsupported use_sliding_window true"), "{e}");
    let act = broken("act", |d| {
        edit_config(d, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"")
    });
    let e = load_error(&act);
    assert!(e.contains("unsupported hidden_act \"gelu\""), "{e}");
    let partial = broken("partial", |d| {
        edit_config(
            d,
            "\"hidden_act\"",
            "\"partial_rotary_factor\": 0.5, \"hidden_act\"",
        )
    });
    let e = load_error(&partial);
    assert!(e.contains("unsupported partial_rotary_factor 0.5"), "{e}");
    let layers = broken("layers", |d| {
        edit_config(d, "\"full_attention\"", "\"sliding_attention\"")
    });
    let e = load_error(&layers);
    assert!(
        e.contains("unsupported layer_types entry \"sliding_attention\""),
        "{e}"
    );

    for d in [
        no_weights,
        no_tokenizer,
        no_config,
        gpt2,
        shape,
        scaled,
        sliding,
        act,
        partial,
        layers,
    ] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn grpo_runs_from_a_hugging_face_checkpoint_and_saves_one_that_loads() {
    use policy_lab::lm::checkpoint::load_policy;
    use policy_lab::lm::checkpoint::LmTokenizer;
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

/// What `apply_chat_template` made of a conversation in `make_hf_fixtures.py`.
#[derive(Deserialize)]
struct ChatCase {
    messages: Vec<policy_lab::lm::chat::Message>,
    add_generation_prompt: bool,
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct ChatError {
    messages: Vec<policy_lab::lm::chat::Message>,
    error: String,
}

#[derive(Deserialize)]
struct ExpectedChat {
    cases: Vec<ChatCase>,
    errors: Vec<ChatError>,
}

#[test]
fn chat_templates_render_the_text_and_ids_of_transformers() {
    // Llama 3 style (the template in tokenizer_config.json, BOS written by the template) and
    // ChatML (in chat_template.jinja, as transformers 5 saves it): a system message,
    // multi-turn, with and without the generation prompt, and conversations the template
    // rejects with raise_exception.
    for name in ["hf-tiny-llama3", "hf-tiny-qwen3"] {
        let dir = fixture(name);
        let hf = load_hf::<B>(&dir, &Default::default()).unwrap();
        let template = hf.tokenizer.chat_template.clone().expect("a chat template");
        let want: ExpectedChat =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected_chat.json")).unwrap())
                .unwrap();
        for case in &want.cases {
            let text = template
                .render(&case.messages, case.add_generation_prompt)
                .unwrap();
            assert_eq!(text, case.text, "{name}: {:?}", case.messages);
            assert_eq!(hf.tokenizer.encode(&text).unwrap(), case.ids, "{name}: ids");
        }
        assert!(!want.errors.is_empty());
        for case in &want.errors {
            let e = template
                .render(&case.messages, true)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&case.error),
                "{name}: {e} (transformers: {})",
                case.error
            );
        }
    }
}

#[test]
fn a_run_with_chat_template_writes_prompts_as_trl_does_and_keeps_it_in_its_checkpoint() {
    use policy_lab::lm::checkpoint::load_policy;
    use policy_lab::lm::sft::encode_prompt;
    use policy_lab::run::lm::{run_rl, LmAlgo, LmRunConfig};

    // The prompt as TRL formats a conversational one: [{"role": "user", "content": prompt}],
    // apply_chat_template(..., add_generation_prompt=True), tokenized without special tokens.
    let dir = fixture("hf-tiny-qwen3");
    let want: ExpectedChat =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected_chat.json")).unwrap())
            .unwrap();
    let case = &want.cases[0];
    assert!(case.add_generation_prompt && case.messages.len() == 1);
    let mut hf = load_hf::<B>(&dir, &Default::default()).unwrap();
    assert_eq!(
        encode_prompt(&hf.tokenizer, &case.messages[0].content).unwrap(),
        [
            hf.tokenizer.bos_id().into_iter().collect::<Vec<_>>(),
            hf.tokenizer.encode(&case.messages[0].content).unwrap()
        ]
        .concat(),
        "without chat_template, the raw text"
    );
    hf.tokenizer.use_chat_template(None).unwrap();
    assert_eq!(
        encode_prompt(&hf.tokenizer, &case.messages[0].content).unwrap(),
        case.ids
    );

    // `lm grpo --init DIR` with `rl.chat_template = true`, on a tiny budget. The template's
    // markers are plain text to this tiny tokenizer (a real checkpoint has them as special
    // tokens), about 100 tokens: a copy of the model with a longer context (rotary positions,
    // so the weights are the same model).
    let long =
        std::env::temp_dir().join(format!("policy-lab-hf-chat-model-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&long);
    std::fs::create_dir_all(&long).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, long.join(path.file_name().unwrap())).unwrap();
    }
    edit_config(
        &long,
        "\"max_position_embeddings\": 64",
        "\"max_position_embeddings\": 256",
    );
    let mut config = LmRunConfig {
        algo: LmAlgo::Grpo,
        ..LmRunConfig::default()
    };
    config.task.digits = 1;
    config.task.test_size = 8;
    config.rl.iterations = 1;
    config.rl.eval_every = 1;
    config.rl.chat_template = true;
    config.grpo.update.num_groups = 2;
    config.grpo.update.num_generations = 2;
    let out = std::env::temp_dir().join(format!("policy-lab-hf-chat-{}", std::process::id()));
    let summary = run_rl::<policy_lab::backend::Cpu>(
        &config,
        &long,
        &out,
        policy_lab::run::Start::New,
        &mut std::io::sink(),
    )
    .unwrap();
    let saved = load_policy::<B>(&summary.model, None, &Default::default()).unwrap();
    assert!(
        saved.tokenizer.chat().is_some(),
        "the checkpoint keeps the chat format"
    );
    assert_eq!(
        encode_prompt(&saved.tokenizer, &case.messages[0].content).unwrap(),
        case.ids
    );
    std::fs::remove_dir_all(&out).unwrap();

    // A model without a template refuses the setting, naming it.
    let Err(e) = run_rl::<policy_lab::backend::Cpu>(
        &config,
        &fixture("hf-tiny-qwen2"),
        &out,
        policy_lab::run::Start::New,
        &mut std::io::sink(),
    ) else {
        panic!("hf-tiny-qwen2 has no chat template, yet the run started");
    };
    assert!(format!("{e:#}").contains("has no chat template"), "{e:#}");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&long);
}

#[derive(Deserialize)]
struct TrlStep {
    prompt_ids: Vec<Vec<u32>>,
    completion_ids: Vec<Vec<u32>>,
    finished: Vec<bool>,
    rewards: std::collections::BTreeMap<String, Vec<f32>>,
    advantages: Vec<f32>,
    per_token_logps: Vec<Vec<f32>>,
    loss: f64,
}

#[derive(Deserialize)]
struct TrlExpected {
    reward_weights: Vec<f32>,
    standard: TrlStep,
    conversational: TrlStep,
}

/// TRL's `GRPOTrainer`, first step, on a dataset with reward functions
/// (`tests/fixtures/grpo-trl/make_grpo_trl_fixture.py`): the same prompt ids, each function's
/// rewards, the weighted sum's advantages, the per-token log-probabilities and the loss, in
/// the standard and the conversational format.
#[test]
fn the_first_grpo_step_on_a_dataset_equals_trls() {
    use burn::module::AutodiffModule;
    use policy_lab::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
    use policy_lab::core::advantage::group_advantages;
    use policy_lab::lm::checkpoint::{load_policy, LmTokenizer};
    use policy_lab::lm::dataset::{Dataset, DatasetTask};
    use policy_lab::lm::generate::completion_log_probs;
    use policy_lab::lm::reward::RewardFuncs;
    use policy_lab::lm::rewards::{RewardSettings, Rewards, TextRewards};
    use policy_lab::lm::rollout::{LmRollout, LmTask, TextEnv};
    use std::sync::Arc;
    type A = burn::backend::Autodiff<B>;

    let here = fixture("grpo-trl");
    let want: TrlExpected =
        serde_json::from_str(&std::fs::read_to_string(here.join("expected.json")).unwrap())
            .unwrap();
    // The tiny Llama with the fixture's chat template beside it.
    let model_dir =
        std::env::temp_dir().join(format!("policy-lab-grpo-trl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&model_dir);
    std::fs::create_dir_all(&model_dir).unwrap();
    for entry in std::fs::read_dir(fixture("hf-tiny-llama")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() != "expected.json" {
            std::fs::copy(&path, model_dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        here.join("chat_template.jinja"),
        model_dir.join("chat_template.jinja"),
    )
    .unwrap();
    let device = Default::default();
    let loaded = load_policy::<A>(&model_dir, None, &device).unwrap();
    let LmTokenizer::Hf(hf) = &loaded.tokenizer else {
        panic!("a Hugging Face tokenizer")
    };
    let template = hf.chat_template.clone();
    assert!(template.is_some());
    let g = 4;
    for (format, step) in [
        ("standard", &want.standard),
        ("conversational", &want.conversational),
    ] {
        let rows = [("12+34=", "46"), ("7+8=", "15")];
        let text: String = rows
            .iter()
            .map(|(q, a)| {
                let prompt = match format {
                    "standard" => serde_json::json!(q),
                    _ => serde_json::json!([{"role": "user", "content": q}]),
                };
                format!("{}\n", serde_json::json!({"prompt": prompt, "answer": a}))
            })
            .collect();
        let dataset = Arc::new(Dataset::parse(&text, format).unwrap());
        let mut task = DatasetTask::new(&dataset, template.as_ref(), false).unwrap();
        // The prompts' token ids, as TRL tokenizes them.
        let mut prompts = Vec::new();
        for (row, want_ids) in step.prompt_ids.iter().enumerate() {
            let prompt = task.show(row);
            let ids = task.encode(&loaded.tokenizer, &prompt).unwrap();
            assert_eq!(&ids, want_ids, "{format}: the prompt of row {row}");
            prompts.extend(std::iter::repeat_n(ids, g));
        }
        let (logp, _) = completion_log_probs(
            &loaded.model.valid(),
            &prompts,
            &step.completion_ids,
            loaded.tokenizer.pad_id(),
            1.0,
        )
        .unwrap();
        let width = step.completion_ids.iter().map(Vec::len).max().unwrap();
        let flat: Vec<f32> = logp.into_data().to_vec().unwrap();
        let logp: Vec<Vec<f32>> = step
            .completion_ids
            .iter()
            .enumerate()
            .map(|(i, c)| flat[i * width..i * width + c.len()].to_vec())
            .collect();
        assert_eq!(
            logp.iter().flatten().count(),
            step.per_token_logps.iter().flatten().count()
        );
        for (ours, theirs) in logp
            .iter()
            .flatten()
            .zip(step.per_token_logps.iter().flatten())
        {
            assert!(
                (ours - theirs).abs() < 1e-5,
                "{format}: log-prob {ours} against {theirs}"
            );
        }
        let mut rollout = LmRollout {
            prompts,
            tokens: step.completion_ids.clone(),
            logp,
            finished: step.finished.clone(),
            rewards: vec![0.0; 8],
            prompt_rows: (0..8).map(|i| Some(i / g)).collect(),
        };
        // The reward functions, weighted: each function's rewards and the sum TRL took.
        let settings = RewardSettings {
            format: r"\d+".into(),
            ..RewardSettings::default()
        };
        let names = ["accuracy".to_string(), "format".to_string()];
        let rewards = || RewardFuncs::<B> {
            task_weight: 0.0,
            models: Vec::new(),
            text: Some(TextRewards {
                functions: Rewards::from_names(&names, Some(&want.reward_weights), &settings)
                    .unwrap(),
                dataset: dataset.clone(),
                task: task.clone(),
            }),
        };
        rewards().rescore(&mut rollout, &loaded.tokenizer).unwrap();
        for (i, r) in rollout.rewards.iter().enumerate() {
            let sum = step.rewards["accuracy"][i] * want.reward_weights[0]
                + step.rewards["format"][i] * want.reward_weights[1];
            assert_eq!(*r, sum, "{format}: the reward of completion {i}");
        }
        let config = GrpoLmConfig::default();
        let u = &config.update;
        let adv = group_advantages(&rollout.rewards, g, u.baseline, u.scale_rewards);
        for (ours, theirs) in adv.iter().zip(&step.advantages) {
            assert!(
                (ours - theirs).abs() < 1e-5,
                "{format}: advantage {ours} against {theirs}"
            );
        }
        // The loss of the first update, as the learner computes it.
        let learner = GrpoLm::new(
            GrpoLmConfig {
                update: policy_lab::algos::grpo::GrpoUpdate {
                    num_groups: 2,
                    num_generations: g,
                    ..config.update.clone()
                },
                ..config.clone()
            },
            width,
            loaded.model.clone(),
            LmTask::Dataset(task.clone()),
            loaded.tokenizer.clone(),
            0,
        )
        .unwrap()
        .with_rewards(rewards());
        let (_, metrics) = learner.gradients(&rollout).unwrap();
        let loss = metrics["loss"];
        assert!(
            (loss - step.loss).abs() < 1e-5,
            "{format}: loss {loss} against TRL's {}",
            step.loss
        );
    }
    std::fs::remove_dir_all(&model_dir).unwrap();
}
