//! `policy-lab lm ...` runs end to end on a tiny budget: an SFT warm start saved as a
//! checkpoint, RL from it (GRPO and PPO), the evaluation, and the clear errors for bad input.

use std::path::PathBuf;

use policy_lab::lm::checkpoint::LmTokenizer;
use policy_lab::lm::checkpoint::{load_lm, save_lm};
use policy_lab::lm::model::TransformerConfig;
use policy_lab::lm::task::{parse_task, task_tokenizer};
use policy_lab::lm::tokenizer::{CharTokenizer, Tokenizer};
use policy_lab::run::lm::{run_eval, run_rl, run_sft, LmAlgo, LmRunConfig};
use policy_lab::run::Start;

type B = policy_lab::backend::Cpu;
type Inner = burn::backend::NdArray;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("policy-lab-lm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// One-digit addition on a small model, with short budgets.
fn tiny_config() -> LmRunConfig {
    let mut c = LmRunConfig::default();
    c.task = parse_task("add:1", &c.task).unwrap();
    c.task.test_size = 40;
    c.model.d_model = 64;
    c.model.n_layers = 2;
    c.model.d_ff = 128;
    c.model.max_seq_len = 12;
    c.sft.steps = 60;
    c.sft.eval_every = 20;
    c.sft.batch_size = 32;
    c.sft.learning_rate = 3e-3;
    c.sft.stop_at_accuracy = 2.0;
    c.rl.iterations = 4;
    c.rl.eval_every = 2;
    c.grpo.update.num_groups = 4;
    c.grpo.update.num_generations = 4;
    c.ppo.num_prompts = 16;
    c
}

#[test]
fn sft_then_grpo_and_ppo_write_run_folders_that_eval_and_plot_read() {
    let dir = scratch("runs");
    let device = Default::default();
    let sink = &mut std::io::sink();
    let mut config = tiny_config();
    let sft = run_sft::<B>(&config, &device, &dir.join("sft"), Start::New, sink).unwrap();
    assert_eq!(sft.iterations, 60);
    assert!(sft.start.is_none());
    assert_eq!(sft.end.problems, 40);
    // The saved model scores the same through the evaluation command's path.
    let again = run_eval::<Inner>(&sft.model, &config.task, None, &device).unwrap();
    assert_eq!(again, sft.end);
    // The SFT loss fell.
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("sft/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 60);
    let (first, last) = (
        rows[0]["loss"].as_f64().unwrap(),
        rows[59]["loss"].as_f64().unwrap(),
    );
    assert!(last < 0.7 * first, "SFT loss {first} -> {last}");

    for algo in [LmAlgo::Grpo, LmAlgo::Ppo] {
        config.algo = algo;
        let out = dir.join(algo.name());
        let rl = run_rl::<B>(&config, &sft.model, &out, Start::New, sink).unwrap();
        assert_eq!(rl.start.as_ref(), Some(&sft.end), "{algo:?}");
        assert_eq!(rl.iterations, 4);
        let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 5, "the start and 4 iterations");
        assert_eq!(rows[0]["test_accuracy"].as_f64(), Some(sft.end.accuracy));
        let rows = &rows[1..];
        // 16 completions per iteration for both: 4 groups of 4, and 16 prompts (GRPO's
        // dynamic sampling may draw up to three more batches to refill groups that teach
        // nothing).
        let seen = rows[3]["global_step"].as_f64().unwrap();
        match algo {
            LmAlgo::Ppo => assert_eq!(seen, 64.0),
            _ => assert!(
                (64.0..=256.0).contains(&seen) && seen % 16.0 == 0.0,
                "{seen}"
            ),
        }
        assert!(rows[1]["test_accuracy"].is_number() && rows[0]["test_accuracy"].is_null());
        for key in [
            "reward",
            "completions/mean_length",
            "clip_ratio/region_mean",
        ] {
            if algo == LmAlgo::Ppo && key.starts_with("clip_ratio") {
                continue;
            }
            assert!(
                rows[3][key].is_number(),
                "{algo:?}: {key} missing in {}",
                rows[3]
            );
        }
        if algo == LmAlgo::Ppo {
            for key in ["value_loss", "approx_kl", "clipfrac", "explained_variance"] {
                assert!(
                    rows[3].get(key).is_some(),
                    "ppo: {key} missing in {}",
                    rows[3]
                );
            }
        }
        let curve =
            policy_lab::run::plot::read_run(&out, policy_lab::run::plot::XAxis::Steps).unwrap();
        assert_eq!(
            curve.points.len(),
            3,
            "{algo:?}: accuracy at the start and at iterations 2 and 4"
        );
        assert_eq!(curve.y, "held-out accuracy");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_task_is_refused_with_the_list_of_tasks() {
    let base = LmRunConfig::default().task;
    let err = parse_task("sub:3", &base).unwrap_err().to_string();
    assert!(
        err.contains("unknown task \"sub\"") && err.contains("add, mul"),
        "{err}"
    );
    let err = parse_task("add:x", &base).unwrap_err().to_string();
    assert!(err.contains("not a number of digits"), "{err}");
    let err = parse_task("add:12", &base).unwrap_err().to_string();
    assert!(err.contains("digits must be 1 to 9"), "{err}");
    assert_eq!(parse_task("mul:2", &base).unwrap().digits, 2);
}

#[test]
fn a_prompt_longer_than_the_context_is_a_clear_error() {
    let dir = scratch("context");
    let device = Default::default();
    let tokenizer = task_tokenizer();
    // A model that sees 8 tokens; 3-digit prompts alone take 9 (BOS + "123+456=").
    let shape = TransformerConfig::new(tokenizer.vocab_size())
        .with_max_seq_len(8)
        .with_d_model(32)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(64);
    save_lm(
        &dir,
        &shape.init::<Inner>(&device),
        &shape,
        &LmTokenizer::Char(tokenizer),
    )
    .unwrap();
    let task = parse_task("add:3", &LmRunConfig::default().task).unwrap();
    let err = run_eval::<Inner>(&dir, &task, None, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("longer than the model's context of 8"),
        "{err}"
    );
    // RL checks before it starts, naming the task and the checkpoint.
    let mut config = LmRunConfig {
        task,
        ..LmRunConfig::default()
    };
    config.algo = LmAlgo::Grpo;
    let err = run_rl::<B>(
        &config,
        &dir,
        &dir.join("rl"),
        Start::New,
        &mut std::io::sink(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("add:3 needs sequences of up to") && err.contains("sees at most 8"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_with_another_tokenizer_is_refused() {
    let dir = scratch("tokenizer");
    let device = Default::default();
    let other = CharTokenizer::new("0123456789+=");
    let shape = TransformerConfig::new(other.vocab_size())
        .with_max_seq_len(16)
        .with_d_model(32)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(64);
    save_lm(
        &dir,
        &shape.init::<Inner>(&device),
        &shape,
        &LmTokenizer::Char(other.clone()),
    )
    .unwrap();
    // Loading without a check works, and gives the saved tokenizer back.
    let loaded = load_lm::<Inner>(&dir, None, &device).unwrap();
    assert!(matches!(loaded.tokenizer, LmTokenizer::Char(t) if t == other));
    let err = load_lm::<Inner>(&dir, Some(&task_tokenizer()), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("the tokenizer does not match the checkpoint"),
        "{err}"
    );
    assert!(
        err.contains("char:0123456789+=\"") && err.contains("char:0123456789+*= \""),
        "{err}"
    );
    // A folder that is not a checkpoint says so.
    let err = load_lm::<Inner>(&dir.join("nothing"), None, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is not a language-model checkpoint"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_lm_config_refuses_unknown_keys_and_bad_values() {
    let err = LmRunConfig::from_toml("[sft]\nstep = 3").unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown field `step`"),
        "{err:#}"
    );
    let err = LmRunConfig::from_toml("algo = \"grpo\"\n[grpo]\nnum_generations = 1").unwrap_err();
    assert!(
        format!("{err:#}").contains("num_generations (G) must be at least 2"),
        "{err:#}"
    );
    let err = LmRunConfig::from_toml("[model]\nd_model = 30\nn_heads = 4").unwrap_err();
    assert!(
        format!("{err:#}").contains("multiple of n_heads"),
        "{err:#}"
    );
    // Each stage's file round-trips: the settings it reads come back as written.
    for algo in [LmAlgo::Sft, LmAlgo::Grpo, LmAlgo::Ppo] {
        let config = LmRunConfig {
            algo,
            ..tiny_config()
        };
        let back = LmRunConfig::from_toml(&config.to_toml()).unwrap();
        assert_eq!(back.to_toml(), config.to_toml(), "{algo:?}");
    }
    // A partial table keeps the language-model defaults of the keys it does not set.
    let partial = LmRunConfig::from_toml("algo = \"grpo\"\n[grpo]\ntemperature = 1.3").unwrap();
    let defaults = LmRunConfig::default();
    assert_eq!(partial.grpo.update.temperature, 1.3);
    assert_eq!(
        partial.grpo.update.learning_rate,
        defaults.grpo.update.learning_rate
    );
    assert_eq!(
        partial.grpo.update.num_groups,
        defaults.grpo.update.num_groups
    );
    assert!(partial.grpo.update.dynamic_sampling);
    // The shipped config of the README's 8 x 8 run.
    let text = std::fs::read_to_string("configs/lm-grpo-8x8.toml").unwrap();
    let c = LmRunConfig::from_toml_as(&text, Some(LmAlgo::Grpo)).unwrap();
    assert_eq!(
        (c.grpo.update.num_groups, c.grpo.update.num_generations),
        (8, 8)
    );
    assert_eq!(c.grpo.update.learning_rate, 5e-5);
    assert!(!c.grpo.update.dynamic_sampling);
}

#[test]
fn lm_eval_of_another_task_uses_that_tasks_own_test_set() {
    // c4cb50f scored an add:1 model on add:3 over the first 49 problems (add:1's test size).
    let dir = scratch("other-task");
    let config = tiny_config();
    run_sft::<B>(
        &config,
        &Default::default(),
        &dir.join("sft"),
        Start::New,
        &mut std::io::sink(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_policy-lab"))
        .args(["lm", "eval"])
        .arg(dir.join("sft"))
        .args(["--task", "add:2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("add:2 held-out accuracy") && text.contains("over 500 problems"),
        "{text}"
    );
    // Progress while it evaluates.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(progress.contains("500/500 problems"), "{progress}");
}

#[test]
fn lm_dataset_writes_rows_that_the_dataset_reader_takes_back() {
    use policy_lab::lm::dataset::{Dataset, Prompt};
    let dir = scratch("dataset");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_policy-lab"))
            .args(["lm", "dataset"])
            .args(args)
            .output()
            .unwrap()
    };
    let file = dir.join("add2-test.jsonl");
    let out = run(&[
        "add:2",
        "--split",
        "test",
        "--chat",
        "--rows",
        "50",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Dataset::read(&file).unwrap();
    assert_eq!(d.rows.len(), 50);
    for row in &d.rows {
        let Prompt::Conversation(m) = &row.prompt else {
            panic!("--chat writes conversational rows")
        };
        let (a, b): (u64, u64) = (
            row.text("a").unwrap().parse().unwrap(),
            row.text("b").unwrap().parse().unwrap(),
        );
        assert_eq!(m[0].content, format!("What is {a} + {b}?"));
        assert_eq!(row.text("answer").unwrap(), (a + b).to_string());
    }
    let countdown = dir.join("countdown.jsonl");
    let out = run(&[
        "countdown:4",
        "--rows",
        "5",
        "--out",
        countdown.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Dataset::read(&countdown).unwrap();
    assert_eq!(d.rows.len(), 5);
    assert_eq!(d.rows[0].columns["nums"].as_array().unwrap().len(), 4);
    let out = run(&["countdown:9", "--out", countdown.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 to 6 numbers"));
    let out = run(&["add:2", "--split", "dev", "--out", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the splits are train and test"));
}

#[test]
fn lm_eval_on_a_dataset_scores_each_greedy_completion_by_its_row() {
    let dir = scratch("eval-dataset");
    let config = tiny_config();
    run_sft::<B>(
        &config,
        &Default::default(),
        &dir.join("sft"),
        Start::New,
        &mut std::io::sink(),
    )
    .unwrap();
    let bin = || std::process::Command::new(env!("CARGO_BIN_EXE_policy-lab"));
    let data = dir.join("add1.jsonl");
    let out = bin()
        .args([
            "lm", "dataset", "add:1", "--split", "test", "--rows", "20", "--out",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // In a folder that is not there yet: `lm eval` makes it, as `lm dataset --out` does.
    let completions = dir.join("evals/base/completions.jsonl");
    let out = bin()
        .args(["lm", "eval"])
        .arg(dir.join("sft"))
        .arg("--dataset")
        .arg(&data)
        .args(["--max-new-tokens", "3", "--format", r"\d+", "--completions"])
        .arg(&completions)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every line of the file: the prompt, the completion and its rewards, which follow from
    // the completion and the row's answer; the printed means are theirs.
    let rows = policy_lab::lm::dataset::Dataset::read(&data).unwrap().rows;
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&completions)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 20);
    let mut right = 0;
    for (line, row) in lines.iter().zip(&rows) {
        let completion = line["completion"].as_str().unwrap();
        let digits: String = completion.chars().filter(char::is_ascii_digit).collect();
        let expected = row.text("answer").unwrap();
        // The accuracy reward's rule: the last number of the completion.
        let last = completion
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|s| !s.is_empty());
        let is_right = last.map(|d| d.parse::<u64>().unwrap()) == Some(expected.parse().unwrap());
        right += usize::from(is_right);
        assert_eq!(
            line["accuracy"].as_f64().unwrap() == 1.0,
            is_right,
            "{line}"
        );
        let formatted = !completion.is_empty() && digits.len() == completion.len();
        assert_eq!(line["format"].as_f64().unwrap() == 1.0, formatted, "{line}");
        assert!(line["prompt"].as_str().unwrap().ends_with('='));
    }
    assert!(
        text.contains(&format!(
            "accuracy: {:.3} over 20 prompts",
            right as f64 / 20.0
        )),
        "{text}"
    );
    // A conversational row needs a chat template, which the character model has not.
    std::fs::write(
        &data,
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"1+2=\"}], \"answer\": \"3\"}\n",
    )
    .unwrap();
    let out = bin()
        .args(["lm", "eval"])
        .arg(dir.join("sft"))
        .arg("--dataset")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no chat template"));
}

/// Rows in the task's notation (`3+4=`) with an answer, and Countdown's columns too, so that
/// every built-in reward function has what it reads.
fn write_addition_rows(path: &std::path::Path, pairs: &[(u64, u64)]) {
    let text: String = pairs
        .iter()
        .map(|&(a, b)| {
            let row = serde_json::json!({
                "prompt": format!("{a}+{b}="), "answer": (a + b).to_string(),
                "nums": [a, b], "target": a + b,
            });
            format!("{row}\n")
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn lm_grpo_on_a_dataset_scores_with_every_reward_function_and_logs_each() {
    let dir = scratch("grpo-dataset");
    std::fs::create_dir_all(&dir).unwrap();
    let sink = &mut std::io::sink();
    let mut config = tiny_config();
    let sft = run_sft::<B>(
        &config,
        &Default::default(),
        &dir.join("sft"),
        Start::New,
        sink,
    )
    .unwrap();
    let (train, eval) = (dir.join("train.jsonl"), dir.join("eval.jsonl"));
    let pairs: Vec<(u64, u64)> = (0..30).map(|i| (i % 10, (i * 7 + 3) % 10)).collect();
    write_addition_rows(&train, &pairs[..22]);
    write_addition_rows(&eval, &pairs[22..]);
    // A verifier in another language: one JSON line in per completion, one number out.
    let verify = dir.join("verify.sh");
    std::fs::write(&verify, "while read -r line; do echo 0.25; done\n").unwrap();
    config.algo = LmAlgo::Grpo;
    config.rl.dataset = Some(train.clone());
    config.rl.eval_dataset = Some(eval.clone());
    config.rl.max_completion_length = Some(4);
    config.rl.iterations = 2;
    config.rl.eval_every = 1;
    config.rl.rewards.format = r"\d+".into();
    config.rl.rewards.length_target = 2;
    let command = format!("command:sh {}", verify.display());
    config.rl.reward_funcs = ["accuracy", "format", "length", "equation", &command]
        .map(String::from)
        .to_vec();
    let weights = [1.0, 0.5, 0.1, 1.0, 2.0];
    config.rl.reward_weights = Some(weights.to_vec());
    let out = dir.join("grpo");
    let rl = run_rl::<B>(&config, &sft.model, &out, Start::New, sink).unwrap();
    assert_eq!(rl.iterations, 2);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "row 0 (the start) and two iterations");
    // The held-out measure at the start is what `lm eval --dataset` gives the same model.
    let names = ["accuracy".to_string(), "format".to_string()];
    let settings = config.rl.rewards.clone();
    let sampling = policy_lab::run::lm::Sampling {
        k: 1,
        temperature: 1.0,
        max_new_tokens: 4,
        seed: 0,
    };
    let base = policy_lab::run::lm::run_eval_dataset::<Inner>(
        &sft.model,
        &eval,
        (&names, &settings),
        false,
        sampling,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(base.completions.len(), 8);
    assert_eq!(rows[0]["test_accuracy"].as_f64().unwrap(), base.means[0].1);
    assert_eq!(rows[0]["test_format"].as_f64().unwrap(), base.means[1].1);
    for row in &rows[1..] {
        // Each function's mean and std under TRL's names; the reward is their weighted sum.
        let names = [
            "accuracy",
            "format",
            "length",
            "equation",
            "command:verify.sh",
        ];
        let mut sum = 0.0;
        for (name, w) in names.iter().zip(weights) {
            let mean = row[format!("rewards/{name}/mean")]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {row}"));
            assert!(row[format!("rewards/{name}/std")].is_f64(), "{name}");
            sum += w as f64 * mean;
        }
        assert_eq!(
            row["rewards/command:verify.sh/mean"].as_f64().unwrap(),
            0.25
        );
        assert_eq!(row["rewards/command:verify.sh/std"].as_f64().unwrap(), 0.0);
        // No `<answer>` tag from this model: Countdown's equation reward is 0.
        assert_eq!(row["rewards/equation/mean"].as_f64().unwrap(), 0.0);
        let reward = row["reward"].as_f64().unwrap();
        assert!((reward - sum).abs() < 1e-5, "reward {reward} against {sum}");
        assert!(row["test_accuracy"].is_f64() && row["test_reward"].is_f64());
        assert!(row.get("rewards/task/mean").is_none());
    }

    // A command that fails, or hangs past its limit, stops the run with the reason.
    let fails = dir.join("fails.sh");
    std::fs::write(&fails, "echo broken verifier >&2; exit 3\n").unwrap();
    config.rl.reward_funcs = vec![format!("command:sh {}", fails.display())];
    config.rl.reward_weights = None;
    let e = run_rl::<B>(&config, &sft.model, &dir.join("fails"), Start::New, sink).unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("a reward function failed") && e.contains("broken verifier"),
        "{e}"
    );
    config.rl.reward_funcs = vec!["command:sleep 30".into()];
    config.rl.rewards.command_timeout_s = 1;
    let started = std::time::Instant::now();
    let e = run_rl::<B>(&config, &sft.model, &dir.join("hangs"), Start::New, sink).unwrap_err();
    assert!(
        format!("{e:#}").contains("did not finish within 1 s"),
        "{e:#}"
    );
    assert!(started.elapsed().as_secs() < 20);
    // Without a dataset the text's functions have nothing to read; with one, "task" is
    // not a function of it.
    config.rl.reward_funcs = vec!["accuracy".into()];
    config.rl.dataset = None;
    config.rl.eval_dataset = None;
    assert!(format!("{:#}", config.validate().unwrap_err()).contains("set rl.dataset"));
    config.rl.dataset = Some(train.clone());
    config.rl.reward_funcs = vec!["task".into()];
    assert!(format!("{:#}", config.validate().unwrap_err()).contains("not one of them"));
    config.rl.reward_funcs = vec!["exactness".into()];
    let e = run_rl::<B>(&config, &sft.model, &dir.join("unknown"), Start::New, sink).unwrap_err();
    assert!(format!("{e:#}").contains("exactness"), "{e:#}");
}

#[test]
fn lm_grpo_refuses_a_bad_row_and_lm_eval_gives_pass_at_k() {
    let dir = scratch("dataset-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let sink = &mut std::io::sink();
    let config = tiny_config();
    run_sft::<B>(
        &config,
        &Default::default(),
        &dir.join("sft"),
        Start::New,
        sink,
    )
    .unwrap();
    let bin = || std::process::Command::new(env!("CARGO_BIN_EXE_policy-lab"));
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt\": \"1+2=\", \"answer\": \"3\"}\n{\"prompt\": 7}\n",
    )
    .unwrap();
    let out = bin()
        .args(["lm", "grpo", "--init"])
        .arg(dir.join("sft"))
        .arg("--dataset")
        .arg(&bad)
        .args(["--max-completion-length", "4", "--iterations", "1", "--out"])
        .arg(dir.join("bad-run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");
    assert!(!dir.join("bad-run").join("metrics.jsonl").exists());

    // pass@k and mean@k: k samples of each prompt, scored row by row.
    let data = dir.join("eval.jsonl");
    write_addition_rows(&data, &[(1, 2), (3, 4), (5, 0), (2, 2), (9, 0), (4, 4)]);
    let completions = dir.join("completions.jsonl");
    let out = bin()
        .args(["lm", "eval"])
        .arg(dir.join("sft"))
        .arg("--dataset")
        .arg(&data)
        .args([
            "--k",
            "4",
            "--max-new-tokens",
            "3",
            "--seed",
            "5",
            "--completions",
        ])
        .arg(&completions)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&completions)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 24);
    let right: Vec<bool> = lines
        .iter()
        .map(|l| l["accuracy"].as_f64().unwrap() == 1.0)
        .collect();
    let pass = right.chunks(4).filter(|g| g.iter().any(|&r| r)).count() as f64 / 6.0;
    let mean = right.iter().filter(|&&r| r).count() as f64 / 24.0;
    assert!(
        text.contains(&format!("pass@4: {pass:.3}, mean@4: {mean:.3}")),
        "{text}"
    );
    assert!(pass >= mean);
    // The 4 of a prompt share it.
    for g in lines.chunks(4) {
        assert!(g.iter().all(|l| l["prompt"] == g[0]["prompt"]));
    }
}
