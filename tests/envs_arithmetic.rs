//! The arithmetic task from the outside: its settings read from TOML and JSON, a save and
//! restore mid-episode, and an evaluation pass over the whole held-out set. (The rules of
//! the reward, the splits and the `Text` space are unit-tested in `envs/src/arithmetic.rs`
//! and `envs/src/space.rs`.)

use policy_lab::envs::*;
use rand::SeedableRng;

#[test]
fn the_config_reads_from_toml_with_lowercase_names_and_refuses_unknown_keys() {
    let config: ArithmeticConfig = toml::from_str(
        r#"
        op = "mul"
        digits = 2
        split = "test"
        test_size = 100
        split_seed = 7
        "#,
    )
    .unwrap();
    assert_eq!(config.op, Op::Mul);
    assert_eq!(config.split, Split::Test);
    assert_eq!(
        (config.digits, config.test_size, config.split_seed),
        (2, 100, 7)
    );
    // Unset keys keep their defaults; the completion limit follows the digits.
    assert_eq!((config.correct_reward, config.format_reward), (1.0, 0.1));
    assert_eq!(config.completion_limit(), 5);
    // A run saves the config it used; it reads back the same, with or without a limit.
    for max_completion_length in [None, Some(9)] {
        let config = ArithmeticConfig {
            max_completion_length,
            ..config.clone()
        };
        let saved = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<ArithmeticConfig>(&saved).unwrap(), config);
    }
    let env = Arithmetic::new(config).unwrap();
    assert_eq!(env.test_problems().len(), 100);

    let err = toml::from_str::<ArithmeticConfig>("digit = 2").unwrap_err();
    assert!(err.to_string().contains("unknown field `digit`"), "{err}");
    assert!(toml::from_str::<ArithmeticConfig>(r#"op = "sub""#).is_err());
    // A config that reads but is out of range is refused by `new`.
    let config: ArithmeticConfig = toml::from_str("digits = 12").unwrap();
    assert!(matches!(
        Arithmetic::new(config),
        Err(EnvError::InvalidConfig(_))
    ));
}

#[test]
fn an_environment_saved_mid_episode_goes_on_exactly() {
    for split in [Split::Train, Split::Test] {
        let config = ArithmeticConfig {
            split,
            ..Default::default()
        };
        let mut env = Arithmetic::new(config).unwrap();
        env.reset(Some(5));
        for _ in 0..10 {
            env.step("12".into()).unwrap();
            env.reset(None);
        }
        // Mid-episode: a prompt is showing and no completion has been scored yet.
        let saved = serde_json::to_string(&env).unwrap();
        let mut restored: Arithmetic = serde_json::from_str(&saved).unwrap();
        assert_eq!(restored.prompt(), env.prompt());
        assert_eq!(restored.test_problems(), env.test_problems());
        // A saved environment is the same text every time (no hash-map order in it).
        assert_eq!(serde_json::to_string(&restored).unwrap(), saved);
        let answer = |e: &Arithmetic| {
            let (a, b) = e.problem();
            e.answer(a, b).to_string()
        };
        for t in 0..200 {
            let (x, y) = (answer(&env), answer(&restored));
            assert_eq!(x, y, "{split:?}, episode {t}");
            let (s1, s2) = (env.step(x).unwrap(), restored.step(y).unwrap());
            assert_eq!(s1, s2, "{split:?}, episode {t}");
            assert!(s1.terminated);
            assert_eq!(
                env.reset(None),
                restored.reset(None),
                "{split:?}, episode {t}"
            );
        }
        // The phase is saved too: a finished episode still needs a reset after restoring.
        env.step("1".into()).unwrap();
        let mut restored: Arithmetic =
            serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert!(matches!(
            restored.step("1".into()),
            Err(EnvError::NeedsReset { .. })
        ));
    }
}

#[test]
fn an_evaluation_pass_over_the_test_set_scores_every_problem_once() {
    let mut env = Arithmetic::new(ArithmeticConfig {
        op: Op::Mul,
        digits: 2,
        test_size: 300,
        split: Split::Test,
        ..Default::default()
    })
    .unwrap();
    let problems = env.test_problems().to_vec();
    assert_eq!(problems.len(), 300);
    // A "model" that answers right on even-indexed problems and is off by one otherwise.
    let mut correct = 0.0;
    let mut total_reward = 0.0;
    for (i, &(a, b)) in problems.iter().enumerate() {
        let (prompt, _) = env.reset_to_problem(a, b).unwrap();
        assert_eq!(prompt, env.prompt_of(a, b));
        assert!(prompt.contains('*'));
        let answer = env.answer(a, b) + u64::from(i % 2 == 1);
        let step = env.step(answer.to_string()).unwrap();
        correct += step.info.get("correct").unwrap();
        assert_eq!(step.info.get("format"), Some(1.0));
        total_reward += step.reward;
    }
    assert_eq!(correct, 150.0);
    assert!((total_reward - (150.0 * 1.1 + 150.0 * 0.1)).abs() < 1e-9);
    // A warm-start demonstration is a right answer to a training problem.
    let mut rng = EnvRng::seed_from_u64(0);
    for _ in 0..200 {
        let (prompt, completion) = env.demonstration(&mut rng);
        let (a, b) = prompt.trim_end_matches('=').split_once('*').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(!env.is_test_problem(a, b));
        assert_eq!(completion, (a * b).to_string());
    }
}

#[test]
fn check_env_passes_on_the_arithmetic_task() {
    for op in [Op::Add, Op::Mul] {
        let mut env = Arithmetic::new(ArithmeticConfig {
            op,
            digits: 4,
            ..Default::default()
        })
        .unwrap();
        check_env(&mut env, 11, 1_000).unwrap_or_else(|f| panic!("{op}: {f:#?}"));
    }
}
