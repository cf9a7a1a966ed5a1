//! Every rung of the ladder learns, on budgets bounded by environment steps (never by time),
//! with fixed seeds on the CPU.

use burn::module::AutodiffModule;
use policy_lab::algos::grpo::{Grpo, GrpoConfig, GrpoUpdate};
use policy_lab::algos::ppo::{Ppo, PpoConfig};
use policy_lab::algos::reinforce::{Reinforce, ReinforceConfig};
use policy_lab::algos::trpo::{Trpo, TrpoConfig};
use policy_lab::backend::Cpu;
use policy_lab::core::nn::Mlp;
use policy_lab::core::rollout::{actor_log_probs, make_vec_env};
use policy_lab::envs::{make, EnvKind};
use policy_lab::run::evaluate::evaluate;

type Inner = <Cpu as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// The probability the policy puts on each arm of a one-context bandit.
fn arm_probs(actor: &Mlp<Inner>) -> Vec<f32> {
    actor_log_probs(actor, &[1.0], 1)
        .iter()
        .map(|l| l.exp())
        .collect()
}

fn best_arm(id: &str) -> usize {
    match make(id).unwrap().0.kind {
        EnvKind::Bandit(b) => b.best_arm(0),
        _ => unreachable!(),
    }
}

const BANDIT: &str = "BernoulliBandit-v0";

#[test]
fn reinforce_finds_the_best_arm_within_5000_pulls() {
    for seed in 0..3 {
        let config = ReinforceConfig {
            num_envs: 8,
            num_steps: 16,
            learning_rate: 3e-2,
            ..ReinforceConfig::default()
        };
        let mut learner = Reinforce::<Cpu>::new(
            config,
            make_vec_env(BANDIT, 8).unwrap(),
            seed,
            Default::default(),
        )
        .unwrap();
        while learner.global_step() + 128 <= 5000 {
            learner.iterate().unwrap();
        }
        let p = arm_probs(&learner.model.actor.valid());
        assert!(
            p[best_arm(BANDIT)] >= 0.9,
            "seed {seed}, after {} pulls: {p:?}",
            learner.global_step()
        );
    }
}

#[test]
fn grpo_finds_the_best_arm_within_5000_pulls() {
    for seed in 0..3 {
        let config = GrpoConfig {
            update: GrpoUpdate {
                num_generations: 8,
                num_groups: 8,
                learning_rate: 1e-2,
                ..GrpoUpdate::default()
            },
            ..GrpoConfig::default()
        };
        let (env, spec) = make(BANDIT).unwrap();
        let mut learner = Grpo::<Cpu>::new(
            config,
            env,
            spec.max_episode_steps,
            seed,
            Default::default(),
        )
        .unwrap();
        while learner.global_step() + 64 <= 5000 {
            learner.iterate().unwrap();
        }
        let p = arm_probs(&learner.actor.valid());
        assert!(
            p[best_arm(BANDIT)] >= 0.9,
            "seed {seed}, after {} pulls: {p:?}",
            learner.global_step()
        );
    }
}

const MAZE: &str = "Maze-v0";

/// The greedy policy reaches the goal of the default 8x8 maze, by the shortest path (the
/// return is the goal reward minus one step penalty per move).
fn solves_the_maze(actor: &Mlp<Inner>) {
    let (mut env, _) = make(MAZE).unwrap();
    let optimum = {
        let grid = env.grid().unwrap();
        let (values, _) = grid.value_iteration(1.0, 1e-12);
        values[grid.start()]
    };
    let eval = evaluate(actor, &mut env, 5, 0).unwrap();
    assert!(
        eval.success_rate() == Some(1.0) && (eval.mean_return() - optimum).abs() < 1e-6,
        "{eval:?}, optimum {optimum}"
    );
}

#[test]
fn all_four_solve_a_generated_maze() {
    let mut reinforce = Reinforce::<Cpu>::new(
        ReinforceConfig::default(),
        make_vec_env(MAZE, 8).unwrap(),
        1,
        Default::default(),
    )
    .unwrap();
    while reinforce.global_step() < 40_000 {
        reinforce.iterate().unwrap();
    }
    solves_the_maze(&reinforce.model.actor.valid());

    let mut ppo = Ppo::<Cpu>::new(
        PpoConfig::default(),
        make_vec_env(MAZE, 4).unwrap(),
        1,
        100_000,
        Default::default(),
    )
    .unwrap();
    while ppo.global_step() < 100_000 {
        ppo.iterate().unwrap();
    }
    solves_the_maze(&ppo.model.actor.valid());

    let mut trpo = Trpo::<Cpu>::new(
        TrpoConfig::default(),
        make_vec_env(MAZE, 4).unwrap(),
        1,
        Default::default(),
    )
    .unwrap();
    while trpo.global_step() < 60_000 {
        trpo.iterate().unwrap();
    }
    solves_the_maze(&trpo.model.actor.valid());

    let (env, spec) = make(MAZE).unwrap();
    let mut grpo = Grpo::<Cpu>::new(
        GrpoConfig::default(),
        env,
        spec.max_episode_steps,
        1,
        Default::default(),
    )
    .unwrap();
    while grpo.global_step() < 100_000 {
        grpo.iterate().unwrap();
    }
    solves_the_maze(&grpo.actor.valid());
}

#[test]
fn trpo_and_ppo_balance_cartpole_on_a_small_budget() {
    let mut trpo = Trpo::<Cpu>::new(
        TrpoConfig::default(),
        make_vec_env("CartPole-v1", 4).unwrap(),
        1,
        Default::default(),
    )
    .unwrap();
    while trpo.global_step() < 50_000 {
        trpo.iterate().unwrap();
    }
    let (mut env, _) = make("CartPole-v1").unwrap();
    let eval = evaluate(&trpo.model.actor.valid(), &mut env, 5, 100).unwrap();
    assert!(
        eval.mean_return() >= 200.0,
        "TRPO after 50k steps: {eval:?}"
    );

    let mut ppo = Ppo::<Cpu>::new(
        PpoConfig::default(),
        make_vec_env("CartPole-v1", 4).unwrap(),
        1,
        50_000,
        Default::default(),
    )
    .unwrap();
    let first = ppo.iterate().unwrap()["episodic_return"];
    while ppo.global_step() < 50_000 {
        ppo.iterate().unwrap();
    }
    let eval = evaluate(&ppo.model.actor.valid(), &mut env, 5, 100).unwrap();
    assert!(
        eval.mean_return() >= 4.0 * first,
        "PPO after 50k steps: {eval:?}, first iteration's episodes {first}"
    );
}

/// The main job's GRPO (the ladder's settings, `configs/maze_grpo.toml`, and budget) learns a
/// policy that is right as it samples, not only greedily: on seeds 1-3 at least 90% of the
/// sampled episodes reach the goal and the policy's entropy is under 0.5 nats. With GRPO's
/// default settings on the same budget it was 5-20% and 1.383-1.385 nats of ln 4 = 1.386.
#[test]
fn the_main_jobs_grpo_learns_a_confident_policy_on_seeds_1_to_3() {
    use policy_lab::run::ladder::{ladder_run, LADDER_SEEDS};
    use policy_lab::run::train::Algo;
    let root = std::env::temp_dir().join(format!("policy-lab-ladder-grpo-{}", std::process::id()));
    for seed in LADDER_SEEDS {
        let row = ladder_run(
            Algo::Grpo,
            seed,
            &root.join(seed.to_string()),
            &mut std::io::sink(),
        )
        .unwrap();
        println!("{row:?}");
        assert!(
            row.steps <= 100_000 + 16 * 256,
            "bounded by steps: {}",
            row.steps
        );
        assert!(row.sampled_success >= 0.9, "seed {seed}: {row:?}");
        assert!(row.entropy < 0.5, "seed {seed}: {row:?}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A policy with all-zero output weights is uniform: its entropy is ln 4 in every state of
/// the maze, and sampled play wanders (greedy play takes the first action every time).
#[test]
fn a_uniform_policy_has_the_entropy_ln_4() {
    use policy_lab::run::evaluate::evaluate_sampled;
    let (mut env, _) = make(MAZE).unwrap();
    let actor = Mlp::<Inner>::new(env.obs_dim(), &[8], 4, 0.0, &Default::default());
    let sampled = evaluate_sampled(&actor, &mut env, 20, 0).unwrap();
    assert!(
        (sampled.entropy - 4f64.ln()).abs() < 1e-5,
        "{}",
        sampled.entropy
    );
    let greedy = evaluate(&actor, &mut env, 2, 0).unwrap();
    assert!((greedy.entropy - 4f64.ln()).abs() < 1e-5);
    // Sampled play takes other paths than greedy play's one.
    assert!(
        sampled.lengths.iter().any(|l| *l != greedy.lengths[0]),
        "{sampled:?}"
    );
}

/// The README's ladder table is the main job's own (`ladder_table`, copied in by
/// `scripts/reproduce_ladder_results.sh`): the same columns, a line per rung and per run.
#[test]
fn the_readme_holds_the_main_jobs_table() {
    use policy_lab::run::ladder::{ladder_table, LadderRow, LADDER_SEEDS};
    use policy_lab::run::train::Algo;
    let rows: Vec<LadderRow> = Algo::ALL
        .iter()
        .flat_map(|&algo| {
            LADDER_SEEDS.iter().map(move |&seed| LadderRow {
                algo,
                seed,
                steps: 1,
                updates: 1,
                seconds: 1.0,
                greedy_return: 0.0,
                greedy_success: 0.0,
                sampled_return: 0.0,
                sampled_success: 0.0,
                entropy: 0.0,
                steps_to_90: None,
            })
        })
        .collect();
    let ours = ladder_table(&rows, 0.87);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let begin = readme
        .find("<!-- ladder-table: begin")
        .expect("the README's ladder table");
    let end = readme.find("<!-- ladder-table: end -->").unwrap();
    let block = &readme[begin..end];
    // Every line of the table that does not hold a measurement is the same.
    let fixed = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("| ") || l.starts_with("| algorithm"))
            .filter(|l| !l.starts_with('#') && !l.starts_with("<!--") && !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(fixed(block), fixed(&ours));
    let rungs = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| algorithm"))
            .count()
    };
    assert_eq!(rungs(block), rungs(&ours));
}
