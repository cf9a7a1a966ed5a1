//! Issue 14, point 2: settings cut by meaning. Each algorithm's update settings are shared by
//! its toy and language-model learners; each learner owns its collection settings; no table
//! accepts a key that its learner does not use. On c4cb50f the language model's `[ppo]`
//! accepted `num_envs`, `num_steps`, `anneal_lr`, `ent_coef` and `hidden` and ignored them,
//! PPO's batch came from `grpo.num_groups * grpo.num_generations`, the toy `[grpo]` accepted
//! `gradient_accumulation_steps` (and refused it at run time), and an LM run had three
//! `max_completion_length` keys.

use policy_lab::run::lm::LmRunConfig;
use policy_lab::run::train::RunConfig;

fn lm_err(text: &str) -> String {
    format!("{:#}", LmRunConfig::from_toml(text).unwrap_err())
}

fn toy_err(text: &str) -> String {
    format!("{:#}", RunConfig::from_toml(text).unwrap_err())
}

#[test]
fn the_language_models_ppo_refuses_the_toy_learners_collection_keys() {
    for key in [
        "num_envs = 8",
        "num_steps = 64",
        "anneal_lr = false",
        "ent_coef = 0.1",
        "hidden = [32]",
    ] {
        let e = lm_err(&format!("algo = \"ppo\"\n[ppo]\n{key}"));
        let name = key.split(' ').next().unwrap();
        assert!(
            e.contains(&format!("line 3, key `ppo.{name}`: unknown field `{name}`")),
            "{key}: {e}"
        );
    }
}

#[test]
fn the_language_models_ppo_takes_its_batch_from_its_own_table() {
    let c = LmRunConfig::from_toml("[ppo]\nnum_prompts = 24\n[grpo]\nnum_groups = 3").unwrap();
    assert_eq!(c.ppo.num_prompts, 24);
    assert_eq!(c.grpo.update.num_groups, 3);
    // The shared update settings sit in the same table.
    let c = LmRunConfig::from_toml("[ppo]\nclip_coef = 0.1\nnum_minibatches = 2").unwrap();
    assert_eq!(
        (c.ppo.update.clip_coef, c.ppo.update.num_minibatches),
        (0.1, 2)
    );
    // num_minibatches must divide the prompts, not some other learner's batch.
    let e = lm_err("[ppo]\nnum_prompts = 10\nnum_minibatches = 4");
    assert!(
        e.contains("ppo: num_minibatches must divide num_prompts"),
        "{e}"
    );
}

#[test]
fn gradient_accumulation_is_a_key_of_the_language_models_grpo_only() {
    let e = toy_err("algo = \"grpo\"\n[grpo]\ngradient_accumulation_steps = 2");
    assert!(
        e.contains("line 3, key `grpo.gradient_accumulation_steps`: unknown field"),
        "{e}"
    );
    let c = LmRunConfig::from_toml("[grpo]\ngradient_accumulation_steps = 2").unwrap();
    assert_eq!(c.grpo.gradient_accumulation_steps, 2);
    // And the toy learner's network is not a key of the language model's GRPO.
    let e = lm_err("[grpo]\nhidden = [16]");
    assert!(e.contains("unknown field `hidden`"), "{e}");
}

#[test]
fn a_language_model_run_has_one_completion_length_the_tasks() {
    for key in [
        "[grpo]\nmax_completion_length = 9",
        "[rl]\nmax_completion_length = 9",
    ] {
        assert!(
            lm_err(key).contains("unknown field `max_completion_length`"),
            "{key}"
        );
    }
    let c = LmRunConfig::from_toml("[task]\ndigits = 2\nmax_completion_length = 7").unwrap();
    assert_eq!(c.max_completion_length(), 8, "7 characters and EOS");
}

#[test]
fn a_bad_value_of_a_shared_setting_is_named_at_its_own_line() {
    // The shared settings are a flattened struct; serde reports their errors at the table.
    let e = toy_err("seed = 1\n[ppo]\nnum_envs = 2\nlearning_rate = \"fast\"\n");
    assert!(
        e.contains("line 4, key `ppo.learning_rate`: invalid type: string \"fast\""),
        "{e}"
    );
    let e = lm_err("[grpo]\n\nepsilon = [1]\ntemperature = 0.5");
    assert!(
        e.contains("line 3, key `grpo.epsilon`: invalid type"),
        "{e}"
    );
    // A toy learner's own setting, as before.
    let e = toy_err("[ppo]\nnum_envs = \"x\"");
    assert!(e.contains("line 2, key `ppo.num_envs`"), "{e}");
}

#[test]
fn every_default_key_round_trips_and_is_known() {
    let toy = RunConfig::default();
    assert_eq!(RunConfig::from_toml(&toy.to_toml()).unwrap(), toy);
    let lm = LmRunConfig::default();
    assert_eq!(LmRunConfig::from_toml(&lm.to_toml()).unwrap(), lm);
    // The toy PPO table is flat, as in CleanRL: collection and update keys side by side.
    let text = toy.to_toml();
    let ppo = text.split("[ppo]").nth(1).unwrap();
    for key in [
        "num_envs",
        "anneal_lr",
        "ent_coef",
        "clip_coef",
        "learning_rate",
    ] {
        assert!(ppo.contains(&format!("\n{key} = ")), "{key} in {ppo}");
    }
}
