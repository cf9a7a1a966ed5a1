//! Our environments against Gymnasium 1.4 itself, on fixtures that Gymnasium generated
//! (`tests/fixtures/make_gymnasium_fixtures.py`).

use policy_lab::envs::{cartpole_v1, Env, GridWorld};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("valid JSON")
}

/// Replays every Gymnasium episode from its initial state with its actions: every
/// observation agrees to 1e-5, and rewards, terminated and truncated agree exactly
/// (including the 500-step truncation of CartPole-v1).
#[test]
fn cartpole_trajectories_match_gymnasium() {
    let data = fixture("cartpole_v1_trajectories.json");
    let episodes = data["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 12);
    let mut steps_checked = 0;
    let mut truncations = 0;
    for ep in episodes {
        let mut env = cartpole_v1();
        env.reset(Some(0));
        let s0: Vec<f64> = ep["initial_state"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        env.inner_mut().reset_to_state([s0[0], s0[1], s0[2], s0[3]]);
        for (t, step) in ep["steps"].as_array().unwrap().iter().enumerate() {
            let action = step["action"].as_u64().unwrap() as usize;
            let ours = env.step(action).unwrap();
            for (i, want) in step["obs"].as_array().unwrap().iter().enumerate() {
                let want = want.as_f64().unwrap();
                let got = f64::from(ours.obs[i]);
                assert!(
                    (got - want).abs() <= 1e-5,
                    "seed {} step {t} obs[{i}]: ours {got}, Gymnasium {want}",
                    ep["seed"]
                );
            }
            assert_eq!(ours.reward, step["reward"].as_f64().unwrap());
            assert_eq!(
                ours.terminated,
                step["terminated"].as_bool().unwrap(),
                "seed {} step {t}",
                ep["seed"]
            );
            assert_eq!(
                ours.truncated,
                step["truncated"].as_bool().unwrap(),
                "seed {} step {t}",
                ep["seed"]
            );
            truncations += usize::from(ours.truncated);
            steps_checked += 1;
        }
        assert!(
            env.step(0).is_err(),
            "the episode is over: step must ask for a reset"
        );
    }
    assert!(
        steps_checked > 3000 && truncations >= 5,
        "{steps_checked} steps, {truncations} truncations"
    );
}

/// FrozenLake-v1's transition model P[s][a] (probabilities, next states, rewards,
/// termination) equals Gymnasium's for both maps, slippery or not, and another success rate.
#[test]
fn frozenlake_model_matches_gymnasium() {
    let data = fixture("frozenlake_v1_model.json");
    let models = data["models"].as_array().unwrap();
    assert_eq!(models.len(), 5);
    for m in models {
        let map = m["map_name"].as_str().unwrap();
        let mut lake = GridWorld::frozen_lake(map, m["is_slippery"].as_bool().unwrap()).unwrap();
        let success_rate = m["success_rate"].as_f64().unwrap();
        if (success_rate - 1.0 / 3.0).abs() > 1e-12 {
            let rules = policy_lab::envs::GridRules {
                success_rate,
                ..lake.rules().clone()
            };
            lake = GridWorld::new(&lake.map(), rules).unwrap();
        }
        let p = m["P"].as_array().unwrap();
        assert_eq!(p.len(), lake.observation_space().n);
        for (s, actions) in p.iter().enumerate() {
            for (a, outcomes) in actions.as_array().unwrap().iter().enumerate() {
                let ours = lake.transitions(s, a);
                let theirs = outcomes.as_array().unwrap();
                assert_eq!(ours.len(), theirs.len(), "{map} s={s} a={a}");
                for (o, t) in ours.iter().zip(theirs) {
                    let t = t.as_array().unwrap();
                    assert!(
                        (o.prob - t[0].as_f64().unwrap()).abs() < 1e-12,
                        "{map} s={s} a={a}"
                    );
                    assert_eq!(o.next as u64, t[1].as_u64().unwrap(), "{map} s={s} a={a}");
                    assert_eq!(o.reward, t[2].as_f64().unwrap(), "{map} s={s} a={a}");
                    assert_eq!(o.terminated, t[3].as_bool().unwrap(), "{map} s={s} a={a}");
                }
            }
        }
    }
}
