//! `check_env`: the checks Gymnasium's `check_env` makes, for any [`Env`].
//!
//! 1. the reset observation lies in the observation space and flattens to finite features;
//! 2. sampled actions lie in the action space;
//! 3. every step's observation lies in the space, its reward is finite, its info values are
//!    finite;
//! 4. resetting with the same seed and replaying the same actions gives the same
//!    observations, rewards and flags (reset-seed determinism);
//! 5. after an episode ends, `step` refuses to continue until `reset`.
//!
//! Rust's types already check what Gymnasium checks at run time about return types.

use rand::SeedableRng;

use crate::env::{Act, Env, EnvRng, Obs, Step};
use crate::error::EnvError;
use crate::space::Space;

/// Runs every check over `steps` random steps from `seed`; returns each failed check's
/// description, or `Ok` when all pass.
pub fn check_env<E: Env>(env: &mut E, seed: u64, steps: usize) -> Result<(), Vec<String>> {
    let mut failures = Vec::new();
    let first = rollout(env, seed, steps, &mut failures);
    let second = rollout(env, seed, steps, &mut failures);
    if first != second {
        failures.push(format!(
            "two resets with seed {seed} and the same actions gave different trajectories"
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

/// What must repeat under the same seed: observations, rewards, flags and info values (not
/// the wall time in `info.episode`).
type Trajectory<E> = Vec<(Obs<E>, f64, bool, bool, Vec<(&'static str, f64)>)>;

fn record<O>(step: &Step<O>) -> (O, f64, bool, bool, Vec<(&'static str, f64)>)
where
    O: Clone,
{
    let ep = step
        .info
        .episode
        .map(|e| vec![("episode.r", e.r), ("episode.l", e.l as f64)])
        .unwrap_or_default();
    (
        step.obs.clone(),
        step.reward,
        step.terminated,
        step.truncated,
        step.info.iter().chain(ep).collect(),
    )
}

/// Resets with `seed`, then takes `steps` random actions (seeded by `seed` too), resetting
/// (unseeded) after each episode. Records what it saw and notes every failed check.
fn rollout<E: Env>(
    env: &mut E,
    seed: u64,
    steps: usize,
    failures: &mut Vec<String>,
) -> Trajectory<E> {
    let mut actions_rng = EnvRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    let check_obs = |obs: &Obs<E>, env: &E, when: &str, failures: &mut Vec<String>| {
        let space = env.observation_space();
        if !space.contains(obs) {
            failures.push(format!("{when}: observation {obs:?} is not in {space}"));
        }
        if space.flatten(obs).iter().any(|v| !v.is_finite()) {
            failures.push(format!(
                "{when}: observation {obs:?} flattens to non-finite features"
            ));
        }
    };
    let (obs, _) = env.reset(Some(seed));
    check_obs(&obs, env, "reset", failures);
    let mut out: Trajectory<E> = vec![(obs, 0.0, false, false, vec![])];
    for t in 0..steps {
        let action: Act<E> = env.action_space().sample(&mut actions_rng);
        if !env.action_space().contains(&action) {
            failures.push(format!(
                "step {t}: the sampled action {action:?} is not in {}",
                env.action_space()
            ));
        }
        let step = match env.step(action.clone()) {
            Ok(step) => step,
            Err(e) => {
                failures.push(format!("step {t}: a valid action {action:?} failed: {e}"));
                return out;
            }
        };
        check_obs(&step.obs, env, &format!("step {t}"), failures);
        if !step.reward.is_finite() {
            failures.push(format!("step {t}: reward {} is not finite", step.reward));
        }
        if let Some((k, v)) = step.info.iter().find(|(_, v)| !v.is_finite()) {
            failures.push(format!("step {t}: info[{k}] = {v} is not finite"));
        }
        let done = step.done();
        out.push(record(&step));
        if done {
            match env.step(action) {
                Err(EnvError::NeedsReset { .. }) => {}
                other => failures.push(format!(
                    "step {t}: a step after the episode ended returned {other:?}"
                )),
            }
            let (obs, _) = env.reset(None);
            check_obs(&obs, env, "reset", failures);
            out.push((obs, 0.0, false, false, vec![]));
        }
    }
    out
}
