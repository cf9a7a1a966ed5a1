//! The RLHF rung, end to end on a generated preference task: `lm reward` trains a reward
//! model to 90% held-out pair accuracy, and GRPO against it (no task reward) raises the hidden
//! rater's score of the policy's completions. Bounded by steps and iterations.

use policy_lab::lm::checkpoint::load_policy;
use policy_lab::run::lm::{run_lm, LmAlgo};
use policy_lab::run::Start;

mod common;
use common::small_lm_run as small;

#[test]
fn a_reward_model_is_learned_and_grpo_against_it_learns_the_hidden_rule() {
    let root = std::env::temp_dir().join(format!("policy-lab-rlhf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let sink = &mut std::io::sink();

    // 1. The reward model: 300 steps of 32 pairs.
    let mut reward = small(LmAlgo::Reward);
    reward.reward.steps = 300;
    reward.reward.eval_every = 100;
    let rm = run_lm(&reward, &root.join("reward"), Start::New, sink).unwrap();
    println!(
        "reward model: held-out pair accuracy {:.3}",
        rm.end.accuracy
    );
    assert!(
        rm.end.accuracy >= 0.9,
        "held-out pair accuracy {}",
        rm.end.accuracy
    );

    // 2. A policy that writes digits: a short SFT on the task.
    let mut sft = small(LmAlgo::Sft);
    sft.sft.steps = 60;
    sft.sft.eval_every = 60;
    sft.sft.stop_at_accuracy = 2.0;
    let policy = run_lm(&sft, &root.join("sft"), Start::New, sink).unwrap();

    // 3. GRPO with the reward model as its only reward (KL weight 0).
    let mut grpo = small(LmAlgo::Grpo);
    grpo.init = Some(policy.model.clone());
    grpo.rl.iterations = 20;
    grpo.rl.eval_every = 20;
    grpo.rl.reward_funcs = vec![rm.model.display().to_string()];
    grpo.grpo.update.num_groups = 8;
    grpo.grpo.update.learning_rate = 1e-3;
    run_lm(&grpo, &root.join("grpo"), Start::New, sink).unwrap();
    let text = std::fs::read_to_string(root.join("grpo/metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let series = |key: &str| -> Vec<f64> { rows.iter().filter_map(|r| r[key].as_f64()).collect() };
    let (hidden, model) = (series("hidden_score"), series("rewards/model/mean"));
    println!("hidden score per iteration: {hidden:.2?}\nreward model's score: {model:.2?}");
    assert_eq!(hidden.len(), 20);
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    assert!(
        mean(&hidden[15..]) > mean(&hidden[..5]) + 0.5,
        "the hidden rater's score did not rise: {hidden:?}"
    );
    assert!(mean(&model[15..]) > mean(&model[..5]));

    // 4. PPO with a value head against the same reward model, with the task's reward beside
    //    it at weight 0.5 (TRL's reward_weights): the hidden score rises too.
    let mut ppo = small(LmAlgo::Ppo);
    ppo.init = Some(policy.model.clone());
    ppo.rl.iterations = 20;
    ppo.rl.eval_every = 20;
    ppo.rl.reward_funcs = vec!["task".into(), rm.model.display().to_string()];
    ppo.rl.reward_weights = Some(vec![0.5, 1.0]);
    ppo.ppo.num_prompts = 64;
    ppo.ppo.update.learning_rate = 1e-3;
    run_lm(&ppo, &root.join("ppo"), Start::New, sink).unwrap();
    let text = std::fs::read_to_string(root.join("ppo/metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let series = |key: &str| -> Vec<f64> { rows.iter().filter_map(|r| r[key].as_f64()).collect() };
    let (hidden, task) = (series("hidden_score"), series("rewards/task/mean"));
    println!("PPO: hidden score per iteration: {hidden:.2?}\ntask reward: {task:.2?}");
    assert_eq!(hidden.len(), 20);
    assert!(
        mean(&hidden[15..]) > mean(&hidden[..5]) + 0.5,
        "PPO: the hidden rater's score did not rise: {hidden:?}"
    );

    // The checkpoint it wrote is a policy again.
    let saved =
        load_policy::<burn::backend::NdArray>(&root.join("grpo/model"), None, &Default::default());
    assert!(saved.is_ok());
    let _ = std::fs::remove_dir_all(&root);
}
