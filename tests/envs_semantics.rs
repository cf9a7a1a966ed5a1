//! The environments' contract: determinism per seed, typed errors for bad input, the
//! wrappers' arithmetic, the vector env's autoreset, and `check_env` over every environment.

use policy_lab::envs::*;
use rand::{RngExt, SeedableRng};

/// Every registered environment, plus options that change its dynamics.
const SPECS: [&str; 11] = [
    "CartPole-v1",
    "FrozenLake-v1",
    "FrozenLake-v1:is_slippery=false",
    "FrozenLake8x8-v1",
    "Maze-v0",
    "Maze-v0:size=12,seed=5,holes=true,is_slippery=true",
    "BernoulliBandit-v0",
    "BernoulliBandit-v0:arms=3,pulls=20",
    "GaussianBandit-v0",
    "ContextualBandit-v0",
    "ContextualBandit-v0:contexts=6,arms=3,pulls=4",
];

#[test]
fn check_env_passes_for_every_environment() {
    for spec in SPECS {
        let (mut env, _) = make(spec).unwrap();
        check_env(&mut env, 3, 2_000).unwrap_or_else(|f| panic!("{spec}: {f:#?}"));
    }
    // The typed environments and the wrappers too.
    check_env(&mut cartpole_v1(), 1, 2_000).unwrap();
    check_env(&mut RecordEpisodeStatistics::new(cartpole_v1()), 1, 2_000).unwrap();
    // The normalizing wrappers learn running statistics across episodes, so a second seeded
    // run differs from the first by design; frozen statistics make them repeatable.
    let mut normalized = NormalizeReward::new(NormalizeObservation::new(cartpole_v1()));
    let failures = check_env(&mut normalized, 1, 2_000).unwrap_err();
    assert_eq!(
        failures,
        vec!["two resets with seed 1 and the same actions gave different trajectories"]
    );
    normalized.update_running_mean = false;
    normalized.inner_mut().update_running_mean = false;
    check_env(&mut normalized, 1, 2_000).unwrap();
    check_env(
        &mut OneHotObservation::new(frozen_lake_v1("8x8", true).unwrap()),
        2,
        2_000,
    )
    .unwrap();
    check_env(&mut Bandit::gaussian(5, 1).unwrap(), 4, 500).unwrap();
}

/// A deliberately broken environment: its reset ignores the seed. `check_env` must say so.
#[test]
fn check_env_catches_a_seed_bug() {
    struct Unseeded(CartPole);
    impl Env for Unseeded {
        type ObsSpace = BoxSpace<[f32; 4]>;
        type ActSpace = Discrete;
        fn observation_space(&self) -> &Self::ObsSpace {
            self.0.observation_space()
        }
        fn action_space(&self) -> &Discrete {
            self.0.action_space()
        }
        fn reset(&mut self, _seed: Option<u64>) -> ([f32; 4], Info) {
            self.0.reset(None)
        }
        fn step(&mut self, a: usize) -> Result<Step<[f32; 4]>> {
            self.0.step(a)
        }
    }
    let failures = check_env(&mut Unseeded(CartPole::new()), 0, 100).unwrap_err();
    assert!(
        failures
            .iter()
            .any(|f| f.contains("different trajectories")),
        "{failures:?}"
    );
}

/// Same seed, same actions: the same episode, bit for bit; another seed: another episode.
#[test]
fn seeded_episodes_are_deterministic() {
    for spec in SPECS {
        let run = |seed: u64| {
            let (mut env, _) = make(spec).unwrap();
            let mut rng = EnvRng::seed_from_u64(99);
            let (obs, _) = env.reset(Some(seed));
            let mut trace = vec![(obs, 0.0, false)];
            for _ in 0..300 {
                let step = env.step(rng.random_range(0..env.num_actions())).unwrap();
                trace.push((step.obs.clone(), step.reward, step.terminated));
                if step.done() {
                    let (obs, _) = env.reset(None);
                    trace.push((obs, 0.0, false));
                }
            }
            trace
        };
        assert_eq!(run(7), run(7), "{spec}");
        if !spec.contains("is_slippery=false") && !spec.starts_with("Maze-v0")
            || spec.contains("is_slippery=true")
        {
            assert_ne!(
                run(7),
                run(8),
                "{spec}: different seeds should give different episodes"
            );
        }
    }
}

#[test]
fn bad_actions_are_typed_errors() {
    let (mut env, _) = make("CartPole-v1").unwrap();
    env.reset(Some(0));
    let err = env.step(2).unwrap_err();
    assert!(matches!(err, EnvError::InvalidAction { .. }));
    assert_eq!(
        err.to_string(),
        "action 2 is not in the action space Discrete(2)"
    );
    // The episode goes on after a refused action.
    assert!(env.step(1).is_ok());

    let mut lake = GridWorld::frozen_lake("4x4", true).unwrap();
    lake.reset(Some(0));
    assert!(matches!(lake.step(4), Err(EnvError::InvalidAction { .. })));
    let mut bandit = Bandit::bernoulli(10, 0).unwrap();
    bandit.reset(Some(0));
    assert!(matches!(
        bandit.step(10),
        Err(EnvError::InvalidAction { .. })
    ));
    let mut venv = SyncVectorEnv::new(2, |_| CartPole::new()).unwrap();
    venv.reset(Some(0));
    assert!(matches!(
        venv.step(&[0]),
        Err(EnvError::InvalidAction { .. })
    ));
    assert!(matches!(
        venv.step(&[0, 5]),
        Err(EnvError::InvalidAction { .. })
    ));
}

#[test]
fn step_needs_a_reset_before_the_first_episode_and_after_each_one() {
    let mut env = CartPole::new();
    let err = env.step(0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step() called before the first reset(); call reset() first"
    );

    let mut env = cartpole_v1();
    env.reset(Some(0));
    let mut last = env.step(0).unwrap();
    while !last.done() {
        last = env.step(0).unwrap();
    }
    let err = env.step(0).unwrap_err();
    assert_eq!(
        err,
        EnvError::NeedsReset {
            when: "after the episode ended (terminated or truncated)"
        }
    );
    env.reset(None);
    assert!(env.step(0).is_ok());

    // After a truncation too.
    let mut env = TimeLimit::new(GridWorld::frozen_lake("4x4", false).unwrap(), 3).unwrap();
    env.reset(Some(0));
    for _ in 0..2 {
        assert!(!env.step(3).unwrap().done()); // UP into the wall: stays at the start
    }
    let step = env.step(3).unwrap();
    assert!(step.truncated && !step.terminated);
    assert!(matches!(env.step(3), Err(EnvError::NeedsReset { .. })));
    assert!(matches!(env.step(9), Err(EnvError::InvalidAction { .. })));
}

#[test]
fn invalid_configs_are_typed_errors() {
    let msg = |r: std::result::Result<AnyEnv, EnvError>| r.unwrap_err().to_string();
    let make_env = |s: &str| make(s).map(|(e, _)| e);
    assert!(msg(make_env("CartPole-v9"))
        .starts_with("unknown environment id 'CartPole-v9'; known ids are: CartPole-v1"));
    assert_eq!(
        msg(make_env("Maze-v0:sise=3")),
        "invalid environment config: Maze-v0 has no option 'sise'"
    );
    assert_eq!(
        msg(make_env("Maze-v0:size=big")),
        "invalid environment config: option size=big of Maze-v0 is not a valid value"
    );
    assert!(
        msg(make_env("Maze-v0:obstacle_prob=0.9")).contains("obstacle_prob must be in [0, 0.75]")
    );
    assert!(msg(make_env("FrozenLake-v1:map_name=5x5")).contains("unknown FrozenLake map '5x5'"));
    assert!(msg(make_env("BernoulliBandit-v0:arms=0")).contains("at least one arm"));
    assert!(msg(make_env("BernoulliBandit-v0:pulls=0"))
        .contains("pulls_per_episode must be at least 1"));
    assert!(Bandit::k_armed(vec![0.5, 1.5], ArmKind::Bernoulli)
        .unwrap_err()
        .to_string()
        .contains("p in [0, 1]"));
    assert!(Bandit::k_armed(vec![0.5], ArmKind::Gaussian { std: -1.0 }).is_err());
    assert!(
        Bandit::contextual(vec![vec![0.1, 0.2], vec![0.3]], ArmKind::Bernoulli)
            .unwrap_err()
            .to_string()
            .contains("context 1 has 1 arms")
    );
    assert!(GridWorld::new(&["SFX", "FFG"], GridRules::default())
        .unwrap_err()
        .to_string()
        .contains("unknown tile 'X'"));
    assert!(GridWorld::new(&["SF", "FF"], GridRules::default())
        .unwrap_err()
        .to_string()
        .contains("no goal"));
    assert!(GridWorld::new(&["SF", "SG"], GridRules::default())
        .unwrap_err()
        .to_string()
        .contains("exactly one start"));
    assert!(GridWorld::new(&["SFF", "FG"], GridRules::default())
        .unwrap_err()
        .to_string()
        .contains("row 1 has 2 tiles"));
    let bad = GridRules {
        success_rate: 1.5,
        ..GridRules::default()
    };
    assert!(GridWorld::new(&["SG"], bad).is_err());
    assert!(TimeLimit::new(CartPole::new(), 0).is_err());
    assert!(SyncVectorEnv::new(0, |_| CartPole::new()).is_err());
    assert!(NormalizeReward::with_params(CartPole::new(), 1.5, 1e-8).is_err());
    assert!(Discrete::new(0).is_err());
    assert!(BoxSpace::<Vec<f32>>::new(vec![0.0], vec![1.0, 2.0], vec![1]).is_err());
    assert!(BoxSpace::<[f32; 2]>::new(vec![0.0; 3], vec![1.0; 3], vec![3]).is_err());
    assert!(BoxSpace::<Vec<f32>>::new(vec![1.0], vec![0.0], vec![1]).is_err());
}

/// Slippery FrozenLake moves as intended 1/3 of the time and sideways 1/3 each way, never
/// backwards; the deterministic lake always moves as told.
#[test]
fn frozenlake_moves_follow_gymnasium_semantics() {
    let mut lake = GridWorld::frozen_lake("4x4", true).unwrap();
    // From state 6 (row 1, col 2) action DOWN goes to 10 (down), 5 (left: a hole) or 7
    // (right: a hole).
    let mut counts = std::collections::BTreeMap::new();
    lake.reset(Some(1));
    for _ in 0..30_000 {
        lake.reset(None);
        // Walk 0 -> 1 -> 2 -> 6 deterministically by replaying until we are at 6.
        let mut s = 0;
        let mut guard = 0;
        while s != 6 {
            let a = match s {
                0 | 1 => 2,
                2 => 1,
                _ => break,
            };
            let step = lake.step(a).unwrap();
            s = step.obs;
            guard += 1;
            if step.done() || guard > 50 {
                break;
            }
        }
        if s != 6 {
            continue;
        }
        let step = lake.step(1).unwrap();
        *counts.entry(step.obs).or_insert(0usize) += 1;
    }
    let total: usize = counts.values().sum();
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        vec![5, 7, 10],
        "{counts:?}"
    );
    for (s, n) in &counts {
        let frac = *n as f64 / total as f64;
        assert!(
            (frac - 1.0 / 3.0).abs() < 0.03,
            "state {s}: {frac} of {total}"
        );
    }

    let mut lake = GridWorld::frozen_lake("4x4", false).unwrap();
    lake.reset(Some(0));
    for (a, want, reward, done) in [
        (2, 1, 0.0, false),
        (2, 2, 0.0, false),
        (1, 6, 0.0, false),
        (1, 10, 0.0, false),
        (1, 14, 0.0, false),
        (2, 15, 1.0, true),
    ] {
        let step = lake.step(a).unwrap();
        assert_eq!(
            (step.obs, step.reward, step.terminated),
            (want, reward, done)
        );
        assert_eq!(step.info.get("prob"), Some(1.0));
    }
    // Into the edge: stay. Into a hole: terminated with reward 0.
    lake.reset(None);
    assert_eq!(lake.step(0).unwrap().obs, 0);
    assert_eq!(lake.step(3).unwrap().obs, 0);
    let step = lake.step(1).unwrap();
    assert_eq!(step.obs, 4);
    let step = lake.step(2).unwrap();
    assert_eq!((step.obs, step.reward, step.terminated), (5, 0.0, true));
}

/// The optimal policy of slippery FrozenLake 4x4 (found by value iteration) succeeds about
/// 74% of the time within the 100-step limit: the bar a learned policy must reach.
#[test]
fn value_iteration_solves_frozenlake() {
    let lake = GridWorld::frozen_lake("4x4", true).unwrap();
    let (values, policy) = lake.value_iteration(0.99, 1e-10);
    assert_eq!(
        &policy[..4],
        &[0, 3, 3, 3],
        "the well-known optimal first row: LEFT, UP, UP, UP"
    );
    assert!(
        values[0] > 0.5 && values[0] < 0.6,
        "V(start) = {}",
        values[0]
    );
    let mut env = frozen_lake_v1("4x4", true).unwrap();
    let mut wins = 0;
    env.reset(Some(0));
    for ep in 0..1000 {
        let (mut s, _) = if ep == 0 {
            env.reset(Some(0))
        } else {
            env.reset(None)
        };
        loop {
            let step = env.step(policy[s]).unwrap();
            s = step.obs;
            if step.done() {
                wins += usize::from(step.reward > 0.0);
                break;
            }
        }
    }
    assert!((700..=790).contains(&wins), "{wins} of 1000");
}

#[test]
fn generated_mazes_always_have_a_path_and_follow_their_config() {
    for seed in 0..200 {
        let config = MazeConfig {
            rows: 6 + (seed as usize % 7),
            cols: 5 + (seed as usize % 5),
            seed,
            obstacle_prob: 0.5,
            ..MazeConfig::default()
        };
        let maze = GridWorld::maze(&config).unwrap();
        let (values, _) = maze.value_iteration(0.95, 1e-9);
        assert!(values[maze.start()] > 0.0, "seed {seed}: no path\n{maze}");
        assert_eq!(
            maze.map(),
            generate_maze(&config).unwrap(),
            "generation is deterministic"
        );
        assert_eq!((maze.nrow(), maze.ncol()), (config.rows, config.cols));
    }
    let config = MazeConfig {
        rules: GridRules::deterministic(5.0, 0.1),
        ..MazeConfig::new(8, 3)
    };
    let mut maze = GridWorld::maze(&config).unwrap();
    let (_, policy) = maze.value_iteration(0.99, 1e-10);
    let (mut s, _) = maze.reset(Some(0));
    let mut ret = 0.0;
    let mut steps = 0;
    loop {
        let step = maze.step(policy[s]).unwrap();
        ret += step.reward;
        steps += 1;
        s = step.obs;
        if step.done() {
            assert!(step.terminated && step.reward == 5.0);
            break;
        }
    }
    assert!(
        (ret - (5.0 - 0.1 * (steps - 1) as f64)).abs() < 1e-9,
        "goal reward minus the step penalties: {ret}"
    );
    assert!(steps >= 14, "an 8x8 maze needs at least 14 moves");
}

#[test]
fn bandits_report_regret_and_contexts_matter() {
    let mut bandit = Bandit::k_armed(vec![0.2, 0.9, 0.5], ArmKind::Bernoulli).unwrap();
    bandit.reset(Some(0));
    let step = bandit.step(0).unwrap();
    assert!(step.terminated);
    assert!((step.info.get("regret").unwrap() - 0.7).abs() < 1e-12);
    assert_eq!(step.info.get("best_arm"), Some(1.0));
    bandit.reset(None);
    let step = bandit.step(2).unwrap();
    assert!((step.info.get("cumulative_regret").unwrap() - 1.1).abs() < 1e-12);

    // The empirical mean of an arm approaches its probability.
    let mut wins = 0.0;
    for _ in 0..20_000 {
        bandit.reset(None);
        wins += bandit.step(1).unwrap().reward;
    }
    assert!((wins / 20_000.0 - 0.9).abs() < 0.01);

    let mut g = Bandit::gaussian(10, 0).unwrap();
    g.reset(Some(0));
    let mean = g.means()[0][3];
    let avg = (0..20_000)
        .map(|_| {
            g.reset(None);
            g.step(3).unwrap().reward
        })
        .sum::<f64>()
        / 20_000.0;
    assert!((avg - mean).abs() < 0.03, "{avg} vs {mean}");

    let cb = Bandit::contextual_random(4, 4, 0).unwrap();
    let best: Vec<usize> = (0..4).map(|c| cb.best_arm(c)).collect();
    assert_eq!(best, vec![0, 1, 2, 3], "each context has its own best arm");
    let mut cb = cb.with_pulls_per_episode(3).unwrap();
    let (c, _) = cb.reset(Some(5));
    for t in 0..3 {
        let step = cb.step(0).unwrap();
        assert_eq!(step.obs, c, "the context stays for the whole episode");
        assert_eq!(step.terminated, t == 2);
    }
    assert!(cb.reset_to_context(9).is_err());
}

#[test]
fn time_limit_and_episode_statistics() {
    let mut env = RecordEpisodeStatistics::new(
        TimeLimit::new(
            Bandit::bernoulli(3, 0)
                .unwrap()
                .with_pulls_per_episode(10)
                .unwrap(),
            4,
        )
        .unwrap(),
    );
    env.reset(Some(0));
    let mut total = 0.0;
    for t in 0..4 {
        let step = env.step(0).unwrap();
        total += step.reward;
        assert_eq!(step.truncated, t == 3);
        assert!(!step.terminated);
        assert_eq!(step.info.episode.is_some(), t == 3);
        if let Some(ep) = step.info.episode {
            assert_eq!((ep.r, ep.l), (total, 4));
            assert!(ep.t >= 0.0);
        }
    }
    assert_eq!(env.episode_count, 1);
    assert_eq!(
        env.return_queue.iter().copied().collect::<Vec<_>>(),
        vec![total]
    );
    assert_eq!(env.inner().elapsed_steps(), 4);
}

/// NormalizeObservation and NormalizeReward reproduce Gymnasium's running statistics,
/// computed here independently with the textbook formulas.
#[test]
fn normalization_wrappers_match_their_formulas() {
    let mut env = NormalizeObservation::new(cartpole_v1());
    let mut raw_env = cartpole_v1();
    let (obs, _) = env.reset(Some(4));
    let (raw, _) = raw_env.reset(Some(4));
    let mut seen: Vec<[f32; 4]> = vec![raw];
    let mut last = obs;
    for a in [0, 1, 1, 0, 1, 0, 0, 1, 1, 1] {
        last = env.step(a).unwrap().obs;
        seen.push(raw_env.step(a).unwrap().obs);
    }
    // Gymnasium's RunningMeanStd starts from mean 0, var 1 with a pseudo-count of 1e-4.
    let n = seen.len() as f64;
    for i in 0..4 {
        let xs: Vec<f64> = seen.iter().map(|o| f64::from(o[i])).collect();
        let c0 = 1e-4;
        let mean = xs.iter().sum::<f64>() / (n + c0);
        let m2: f64 = c0 * (1.0 + mean * mean) + xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        let var = m2 / (n + c0);
        let want = (xs[xs.len() - 1] - mean) / (var + 1e-8).sqrt();
        assert!(
            (f64::from(last[i]) - want).abs() < 1e-4,
            "coordinate {i}: {} vs {want}",
            last[i]
        );
    }

    let mut env = NormalizeReward::with_params(
        Bandit::k_armed(vec![1.0], ArmKind::Bernoulli)
            .unwrap()
            .with_pulls_per_episode(3)
            .unwrap(),
        0.5,
        1e-8,
    )
    .unwrap();
    env.reset(Some(0));
    // Rewards are all 1; the discounted returns are 1, 1.5, and then 1 again: as in
    // Gymnasium, the step that terminates already drops the past (`gamma * (1 - terminated)`).
    let returns = [1.0, 1.5, 1.0];
    for (t, _) in returns.iter().enumerate() {
        let got = env.step(0).unwrap().reward;
        let g = &returns[..=t];
        let c0 = 1e-4;
        let n = g.len() as f64;
        let mean = g.iter().sum::<f64>() / (n + c0);
        let var = (c0 * (1.0 + mean * mean) + g.iter().map(|x| (x - mean).powi(2)).sum::<f64>())
            / (n + c0);
        assert!(
            (got - 1.0 / (var + 1e-8).sqrt()).abs() < 1e-6,
            "step {t}: {got}"
        );
    }
}

/// Same-step autoreset: a finished copy shows its next episode's first observation at once,
/// its last observation is in `final_obs`, and the copies are seeded `seed + i`.
#[test]
fn vector_env_autoresets_in_the_same_step() {
    let mut venv = SyncVectorEnv::new(3, |_| RecordEpisodeStatistics::new(cartpole_v1())).unwrap();
    let (obs, _) = venv.reset(Some(10));
    let obs = obs.clone();
    for i in 0..3 {
        let mut single = cartpole_v1();
        let (o, _) = single.reset(Some(10 + i as u64));
        assert_eq!(
            obs.row(i).to_vec(),
            o.to_vec(),
            "copy {i} is seeded with 10 + {i}"
        );
    }
    // Mirror copy 0 with a single env, pushing always left: it falls within ~10 steps.
    let mut mirror = cartpole_v1();
    mirror.reset(Some(10));
    let mut episodes = 0;
    for _ in 0..40 {
        let out = venv.step(&[0, 0, 1]).unwrap().clone();
        let want = mirror.step(0).unwrap();
        assert_eq!(out.rewards[0], want.reward);
        assert_eq!(out.terminated[0], want.terminated);
        if want.done() {
            episodes += 1;
            assert_eq!(out.final_obs.row(0).to_vec(), want.obs.to_vec());
            assert!(out.infos[0].episode.is_some());
            let (next, _) = mirror.reset(None);
            assert_eq!(
                out.obs.row(0).to_vec(),
                next.to_vec(),
                "the reset observation, in the same step"
            );
        } else {
            assert_eq!(out.obs.row(0).to_vec(), want.obs.to_vec());
            assert!(out.infos[0].episode.is_none());
        }
    }
    assert!(episodes >= 2);
}

/// CartPole's reset draws each state value uniformly from [-0.05, 0.05], and its constants
/// are Gymnasium's.
#[test]
fn cartpole_reset_distribution_and_constants() {
    use policy_lab::envs::cartpole::*;
    let mut env = CartPole::new();
    env.reset(Some(0));
    let n = 20_000;
    let mut sum = [0.0; 4];
    let mut sum_sq = [0.0; 4];
    for _ in 0..n {
        env.reset(None);
        for (i, v) in env.state().iter().enumerate() {
            assert!((-0.05..=0.05).contains(v));
            sum[i] += v;
            sum_sq[i] += v * v;
        }
    }
    for i in 0..4 {
        let mean = sum[i] / n as f64;
        let var = sum_sq[i] / n as f64 - mean * mean;
        assert!(mean.abs() < 0.002, "coordinate {i}: mean {mean}");
        assert!(
            (var - 0.01 / 12.0).abs() < 0.00005,
            "coordinate {i}: variance {var}, uniform gives 1/1200"
        );
    }
    assert_eq!(
        (
            GRAVITY,
            MASS_CART,
            MASS_POLE,
            LENGTH,
            FORCE_MAG,
            TAU,
            X_THRESHOLD
        ),
        (9.8, 1.0, 0.1, 0.5, 10.0, 0.02, 2.4)
    );
    assert!((THETA_THRESHOLD - 0.20943951023931953).abs() < 1e-15);
    assert_eq!((MAX_EPISODE_STEPS, REWARD_THRESHOLD), (500, 475.0));
    let space = env.observation_space();
    assert_eq!(space.high[0], 4.8);
    assert_eq!(space.high[2], (2.0 * THETA_THRESHOLD) as f32);
}

#[test]
fn a_vector_env_saved_mid_episode_goes_on_exactly() {
    for spec in SPECS {
        let (env, _) = make(spec).unwrap();
        let mut venv =
            SyncVectorEnv::new(3, |_| RecordEpisodeStatistics::new(env.clone())).unwrap();
        venv.reset(Some(11));
        let n = venv.single_action_space().n;
        let mut rng = EnvRng::seed_from_u64(3);
        let random_actions =
            |rng: &mut EnvRng| -> Vec<usize> { (0..3).map(|_| rng.random_range(0..n)).collect() };
        for _ in 0..37 {
            venv.step(&random_actions(&mut rng)).unwrap();
        }
        let saved = serde_json::to_string(&venv).unwrap();
        let mut restored: SyncVectorEnv<RecordEpisodeStatistics<AnyEnv>> =
            serde_json::from_str(&saved).unwrap();
        for t in 0..300 {
            let actions = random_actions(&mut rng);
            let a = venv.step(&actions).unwrap().clone();
            let b = restored.step(&actions).unwrap();
            assert_eq!(a.obs, b.obs, "{spec}, step {t}");
            assert_eq!(a.rewards, b.rewards, "{spec}, step {t}");
            assert_eq!(
                (&a.terminated, &a.truncated),
                (&b.terminated, &b.truncated),
                "{spec}, step {t}"
            );
            let ep = |s: &VecStep| -> Vec<Option<(f64, usize)>> {
                s.infos
                    .iter()
                    .map(|i| i.episode.map(|e| (e.r, e.l)))
                    .collect()
            };
            assert_eq!(ep(&a), ep(b), "{spec}, step {t}");
        }
    }
}
