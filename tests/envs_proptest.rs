//! Property tests: every environment, driven by arbitrary action sequences and seeds, never
//! panics, keeps its observations inside its observation space, and its episode statistics
//! add up.

use policy_lab::envs::*;
use proptest::prelude::*;

const SPECS: [&str; 8] = [
    "CartPole-v1",
    "FrozenLake-v1",
    "FrozenLake8x8-v1:is_slippery=false",
    "Maze-v0:size=6,obstacle_prob=0.4",
    "Maze-v0:rows=3,cols=9,holes=true,is_slippery=true,step_penalty=0.5",
    "BernoulliBandit-v0:pulls=7",
    "GaussianBandit-v0:arms=4",
    "ContextualBandit-v0:contexts=3,arms=5,pulls=2",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_play_keeps_the_contract(
        which in 0..SPECS.len(),
        seed in any::<u64>(),
        // Raw action numbers; some are out of range on purpose.
        actions in prop::collection::vec(0usize..12, 1..1500),
    ) {
        let (env, spec) = make(SPECS[which]).unwrap();
        let mut env = RecordEpisodeStatistics::new(env);
        let (obs, _) = env.reset(Some(seed));
        prop_assert!(env.observation_space().contains(&obs));
        let (mut ret, mut len, mut episodes) = (0.0, 0usize, 0usize);
        for a in actions {
            match env.step(a) {
                Err(EnvError::InvalidAction { .. }) => {
                    prop_assert!(a >= env.action_space().n, "a valid action {a} was refused");
                    continue;
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
                Ok(step) => {
                    prop_assert!(a < env.action_space().n);
                    prop_assert!(env.observation_space().contains(&step.obs));
                    prop_assert!(step.obs.iter().all(|v| v.is_finite()));
                    prop_assert!(step.reward.is_finite());
                    ret += step.reward;
                    len += 1;
                    if let Some(limit) = spec.max_episode_steps {
                        prop_assert!(len <= limit);
                        // As in Gymnasium, the limit sets `truncated` even on a terminal step.
                        prop_assert_eq!(step.truncated, len == limit);
                    }
                    prop_assert_eq!(step.info.episode.is_some(), step.done());
                    if let Some(ep) = step.info.episode {
                        prop_assert!((ep.r - ret).abs() < 1e-9, "episode return {} vs sum of rewards {}", ep.r, ret);
                        prop_assert_eq!(ep.l, len);
                        episodes += 1;
                        let after = env.step(0);
                        prop_assert!(matches!(after, Err(EnvError::NeedsReset { .. })), "{:?}", after);
                        let (obs, _) = env.reset(None);
                        prop_assert!(env.observation_space().contains(&obs));
                        ret = 0.0;
                        len = 0;
                    }
                }
            }
        }
        prop_assert_eq!(env.episode_count, episodes);
        prop_assert_eq!(env.length_queue.len(), episodes.min(100));
    }

    #[test]
    fn vector_env_rows_stay_in_the_space(seed in any::<u64>(), n in 1usize..6, steps in 1usize..400) {
        let mut venv = SyncVectorEnv::new(n, |_| make("FrozenLake-v1").unwrap().0).unwrap();
        venv.reset(Some(seed));
        let mut rng = seeded_rng(Some(seed));
        for _ in 0..steps {
            let actions: Vec<usize> = (0..n).map(|_| venv.single_action_space().sample(&mut rng)).collect();
            let out = venv.step(&actions).unwrap();
            for i in 0..n {
                // A one-hot row: exactly one 1.
                let row = out.obs.row(i);
                prop_assert_eq!(row.iter().filter(|v| **v == 1.0).count(), 1);
                prop_assert_eq!(row.iter().filter(|v| **v == 0.0).count(), 15);
                if out.done(i) {
                    prop_assert_eq!(out.final_obs.row(i).iter().filter(|v| **v == 1.0).count(), 1);
                }
            }
        }
    }

    #[test]
    fn box_samples_are_contained(lows in prop::collection::vec(-1e3f32..1e3, 1..8), width in 0.0f32..10.0, seed in any::<u64>()) {
        let highs: Vec<f32> = lows.iter().map(|l| l + width).collect();
        let n = lows.len();
        let space = BoxSpace::<Vec<f32>>::new(lows, highs, vec![n]).unwrap();
        let mut rng = seeded_rng(Some(seed));
        for _ in 0..50 {
            prop_assert!(space.contains(&space.sample(&mut rng)));
        }
        let unbounded = BoxSpace::<Vec<f32>>::uniform(f32::NEG_INFINITY, f32::INFINITY, vec![n]).unwrap();
        prop_assert!(unbounded.contains(&unbounded.sample(&mut rng)));
        prop_assert!(!space.contains(&vec![f32::NAN; n]));
    }
}
