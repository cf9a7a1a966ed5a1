//! Evaluation: play a policy greedily (the most likely action) or as it samples (what it
//! learned as a distribution), and report its returns, successes and entropy.

use burn::tensor::backend::Backend;
use policy_lab_envs::{AnyEnv, Env};

use crate::core::nn::{categorical, Mlp};
use crate::core::rollout::{actor_log_probs, critic_values};

/// The outcome of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub returns: Vec<f64>,
    pub lengths: Vec<usize>,
    /// Whether the environment has a goal to reach (a maze, a lake), so that an episode
    /// succeeds or fails; CartPole and the bandits have none.
    pub has_goal: bool,
    /// The policy's entropy in nats, `-Σ_a π(a|s) ln π(a|s)`, averaged over every state the
    /// episodes visited: near `ln(actions)` for a policy that still guesses, near 0 for one
    /// that has decided.
    pub entropy: f64,
}

/// How an evaluation picks each action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Play {
    /// The most likely action (deterministic).
    Greedy,
    /// An action drawn from the policy, with a generator seeded with this number.
    Sampled(u64),
}

impl Evaluation {
    pub fn mean_return(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len().max(1) as f64
    }
    /// The fraction of episodes that reached the goal (a positive return in a maze or on the
    /// lake); `None` for an environment without a goal.
    pub fn success_rate(&self) -> Option<f64> {
        self.has_goal.then(|| {
            self.returns.iter().filter(|r| **r > 0.0).count() as f64
                / self.returns.len().max(1) as f64
        })
    }
}

/// Plays `episodes` episodes of `env` with the greedy action of `actor`, the first reset
/// seeded with `seed`. Give it a policy on a backend without autodiff (`actor.valid()`, or
/// one loaded on `backend::Inference`): on an autodiff backend every step would add to a
/// graph that nothing frees.
pub fn evaluate<B: Backend>(
    actor: &Mlp<B>,
    env: &mut AnyEnv,
    episodes: usize,
    seed: u64,
) -> policy_lab_envs::Result<Evaluation> {
    play(actor, env, episodes, seed, Play::Greedy, &mut |_, _| {})
}

/// [`evaluate`], with each action drawn from the policy (a generator seeded with `seed`):
/// what the policy does as the distribution it learned, which greedy play can hide (a
/// nearly uniform policy whose argmax happens to be right).
pub fn evaluate_sampled<B: Backend>(
    actor: &Mlp<B>,
    env: &mut AnyEnv,
    episodes: usize,
    seed: u64,
) -> policy_lab_envs::Result<Evaluation> {
    let how = Play::Sampled(seed);
    play(actor, env, episodes, seed, how, &mut |_, _| {})
}

/// Plays `episodes` episodes, each action chosen as `how` says ([`evaluate`],
/// [`evaluate_sampled`]), calling `after_episode(episodes done, its return)` after each
/// episode (for a progress bar).
pub fn play<B: Backend>(
    actor: &Mlp<B>,
    env: &mut AnyEnv,
    episodes: usize,
    seed: u64,
    how: Play,
    after_episode: &mut dyn FnMut(usize, f64),
) -> policy_lab_envs::Result<Evaluation> {
    use rand::SeedableRng;
    let (dim, num_actions) = (env.obs_dim(), env.num_actions());
    let mut rng = rand::rngs::StdRng::seed_from_u64(match how {
        Play::Greedy => 0,
        Play::Sampled(seed) => seed,
    });
    if episodes == 0 {
        return Err(policy_lab_envs::EnvError::InvalidConfig(
            "an evaluation needs at least 1 episode".to_string(),
        ));
    }
    let mut out = Evaluation {
        returns: Vec::new(),
        lengths: Vec::new(),
        has_goal: env.grid().is_some(),
        entropy: 0.0,
    };
    let (mut entropy, mut steps) = (0.0, 0usize);
    for ep in 0..episodes {
        let (mut obs, _) = env.reset(if ep == 0 { Some(seed) } else { None });
        let (mut ret, mut len) = (0.0, 0);
        loop {
            let log_probs = actor_log_probs(actor, &obs, dim);
            entropy -= log_probs
                .iter()
                .map(|lp| f64::from(lp.exp() * lp))
                .filter(|x| x.is_finite())
                .sum::<f64>();
            steps += 1;
            let action = match how {
                Play::Greedy => categorical::greedy(&log_probs, num_actions)[0],
                Play::Sampled(_) => categorical::sample(&log_probs, num_actions, &mut rng).0[0],
            };
            let step = env.step(action)?;
            ret += step.reward;
            len += 1;
            obs = step.obs;
            if step.terminated || step.truncated {
                break;
            }
        }
        out.returns.push(ret);
        out.lengths.push(len);
        after_episode(out.returns.len(), ret);
    }
    out.entropy = entropy / steps.max(1) as f64;
    Ok(out)
}

/// Draws a gridworld policy: the action probabilities of every cell as arrows, the cells one
/// greedy episode visits and, given a critic (REINFORCE's, TRPO's or PPO's; GRPO has none),
/// its value of every cell as the cell's colour. Writes `<stem>.png` and `<stem>.svg`;
/// returns their paths.
pub fn draw_grid_policy<B: Backend>(
    actor: &Mlp<B>,
    critic: Option<&Mlp<B>>,
    env: &mut AnyEnv,
    stem: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let Some(grid) = env.grid().cloned() else {
        anyhow::bail!("only gridworlds can be drawn with their policy");
    };
    let n = grid.nrow() * grid.ncol();
    let one_hot: Vec<f32> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    let log_probs = actor_log_probs(actor, &one_hot, n);
    let probs: Vec<[f64; 4]> = log_probs
        .chunks(4)
        .map(|r| std::array::from_fn(|a| f64::from(r[a].exp())))
        .collect();
    // One greedy episode, for its path.
    let (mut obs, _) = env.reset(Some(0));
    let mut path = vec![grid.start()];
    loop {
        let action = categorical::greedy(&actor_log_probs(actor, &obs, n), 4)[0];
        let step = env.step(action)?;
        path.push(step.obs.iter().position(|v| *v > 0.5).unwrap_or(0));
        obs = step.obs;
        if step.terminated || step.truncated {
            break;
        }
    }
    let values: Option<Vec<f64>> = critic.map(|critic| {
        critic_values(critic, &one_hot, n)
            .into_iter()
            .map(f64::from)
            .collect()
    });
    let mut picture = policy_lab_envs::render::GridPicture::new(&grid)
        .action_probs(&probs)
        .path(&path)
        .agent(*path.last().unwrap_or(&0));
    if let Some(values) = &values {
        picture = picture.values(values);
    }
    let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
    picture.save_png(&png)?;
    picture.save_svg(&svg)?;
    Ok(vec![png, svg])
}
