//! Issue 14, point 2: settings cut by meaning. Each algorithm's update settings are shared by
//! its toy and language-model learners; each learner owns its collection settings; no table
//! accepts a key that its learner does not use. On c4cb50f the language model's `[ppo]`
//! accepted `num_envs`, `num_steps`, `anneal_lr`, `ent_coef` and `hidden` and ignored them,
//! PPO's batch came from `grpo.num_groups * grpo.num_generations`, the toy `[grpo]` accepted
//! `gradient_accumulation_steps` (and refused it at run time), and an LM run had three
//! `max_completion_length` keys.

use policy_lab::run::lm::{LmAlgo, LmRunConfig};
use policy_lab::run::train::{Algo, RunConfig};

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
    let c = LmRunConfig::from_toml("algo = \"ppo\"\n[ppo]\nnum_prompts = 24").unwrap();
    assert_eq!(c.ppo.num_prompts, 24);
    let c = LmRunConfig::from_toml("algo = \"grpo\"\n[grpo]\nnum_groups = 3").unwrap();
    assert_eq!(c.grpo.update.num_groups, 3);
    // The shared update settings sit in the same table.
    let c = LmRunConfig::from_toml("algo = \"ppo\"\n[ppo]\nclip_coef = 0.1\nnum_minibatches = 2")
        .unwrap();
    assert_eq!(
        (c.ppo.update.clip_coef, c.ppo.update.num_minibatches),
        (0.1, 2)
    );
    // num_minibatches must divide the prompts, not some other learner's batch.
    let e = lm_err("algo = \"ppo\"\n[ppo]\nnum_prompts = 10\nnum_minibatches = 4");
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
    let c =
        LmRunConfig::from_toml("algo = \"grpo\"\n[grpo]\ngradient_accumulation_steps = 2").unwrap();
    assert_eq!(c.grpo.gradient_accumulation_steps, 2);
    // And the toy learner's network is not a key of the language model's GRPO.
    let e = lm_err("[grpo]\nhidden = [16]");
    assert!(e.contains("unknown field `hidden`"), "{e}");
}

#[test]
fn a_language_model_run_has_one_completion_length_the_tasks() {
    let key = "[grpo]\nmax_completion_length = 9";
    assert!(lm_err(key).contains("unknown field `max_completion_length`"));
    // `rl.max_completion_length` is a dataset's limit (`lm grpo --dataset`); the task has its own.
    let e = lm_err("algo = \"grpo\"\n[rl]\nmax_completion_length = 9");
    assert!(
        e.contains("the arithmetic task's is task.max_completion_length"),
        "{e}"
    );
    let c = LmRunConfig::from_toml(
        "algo = \"grpo\"\n[rl]\nmax_completion_length = 9\ndataset = \"d.jsonl\"\nreward_funcs = [\"accuracy\"]",
    )
    .unwrap();
    assert_eq!(c.max_completion_length(), 9);
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

/// Issue 14, point 2 at the level of a run's file: on e107af7 a toy run's config.toml held
/// every rung's table (a `[trpo]` table in a PPO run, read by nothing) and accepted them all,
/// and an LM run's file held `[sft]`, `[model]`, `[rl]`, `[grpo]` and `[ppo]` whatever its
/// stage.
#[test]
fn a_toy_runs_file_holds_and_accepts_only_its_own_rungs_table() {
    let text = RunConfig::default().to_toml();
    assert!(text.contains("[ppo]"), "{text}");
    for other in ["[trpo]", "[grpo]", "[reinforce]"] {
        assert!(
            !text.contains(other),
            "{other} written in a PPO run's file:\n{text}"
        );
    }
    let e = toy_err("algo = \"ppo\"\nseed = 2\n[trpo]\ntarget_kl = 0.02\n");
    assert!(
        e.contains("line 3: table [trpo] holds the settings of the rung `trpo`")
            && e.contains("`algo = \"ppo\"`"),
        "{e}"
    );
    // The command line's rung is the one that counts: `--algo grpo` over a REINFORCE file.
    let file = "algo = \"reinforce\"\n[reinforce]\nlearning_rate = 0.03\n";
    let e = RunConfig::from_toml_as(file, Some(Algo::Grpo)).unwrap_err();
    assert!(
        format!("{e:#}").contains("line 2: table [reinforce]"),
        "{e:#}"
    );
    let c = RunConfig::from_toml_as("[trpo]\ntarget_kl = 0.02\n", Some(Algo::Trpo)).unwrap();
    assert_eq!((c.algo, c.trpo.target_kl), (Algo::Trpo, 0.02));
}

#[test]
fn a_language_model_runs_file_holds_and_accepts_only_its_stages_tables() {
    for (algo, kept, dropped) in [
        (
            LmAlgo::Sft,
            &["[task]", "[model]", "[sft]"],
            &["[rl]", "[grpo]", "[ppo]"],
        ),
        (
            LmAlgo::Grpo,
            &["[task]", "[rl]", "[grpo]"],
            &["[model]", "[sft]", "[ppo]"],
        ),
        (
            LmAlgo::Ppo,
            &["[task]", "[rl]", "[ppo]"],
            &["[model]", "[sft]", "[grpo]"],
        ),
    ] {
        let text = LmRunConfig {
            algo,
            ..Default::default()
        }
        .to_toml();
        assert!(kept.iter().all(|t| text.contains(t)), "{algo:?}:\n{text}");
        assert!(
            !dropped.iter().any(|t| text.contains(t)),
            "{algo:?}:\n{text}"
        );
    }
    let refused = |text: &str, algo| {
        format!(
            "{:#}",
            LmRunConfig::from_toml_as(text, Some(algo)).unwrap_err()
        )
    };
    let e = refused("[task]\ndigits = 2\n[model]\nd_model = 32\n", LmAlgo::Grpo);
    assert!(
        e.contains(
            "line 3: table [model] does nothing in an `lm grpo` run: the model and its \
                    shape come from `--init`"
        ),
        "{e}"
    );
    let e = refused("[grpo]\nnum_groups = 2\n", LmAlgo::Ppo);
    assert!(
        e.contains("line 1: table [grpo] does nothing in an `lm ppo` run"),
        "{e}"
    );
    let e = refused("init = \"runs/sft\"\n[sft]\nsteps = 3\n", LmAlgo::Sft);
    assert!(
        e.contains("line 1: key `init` does nothing in an `lm sft` run"),
        "{e}"
    );
    let e = refused("[rl]\niterations = 3\n", LmAlgo::Sft);
    assert!(
        e.contains("line 1: table [rl] does nothing in an `lm sft` run"),
        "{e}"
    );
    // A file without `algo` is read for the stage the command names.
    let c = LmRunConfig::from_toml_as("[grpo]\nnum_groups = 2\n", Some(LmAlgo::Grpo)).unwrap();
    assert_eq!(c.grpo.update.num_groups, 2);
}
