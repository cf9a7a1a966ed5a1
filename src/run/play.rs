//! `policy-lab play`: run an agent in an environment and show what happens.
//!
//! Plays a few episodes, prints each episode's return and length (and, for a bandit, the
//! regret), and renders them: as text frames in the terminal (`ansi`), or as pictures in the
//! output folder (`image`): a gridworld with the agent's path, policy arrows and values
//! (PNG and SVG), a CartPole film strip (PNG and SVG).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use policy_lab_envs::render::{CartPoleStrip, GridPicture};
use policy_lab_envs::{make, seeded_rng, AnyEnv, Env, EnvKind};

use crate::agents::{Agent, HeuristicAgent, RandomAgent};

/// Which agent plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AgentKind {
    Random,
    Heuristic,
}

/// How episodes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RenderMode {
    None,
    Ansi,
    Image,
}

/// What to play.
#[derive(Clone, Debug)]
pub struct PlayConfig {
    /// An environment id, with options (see `policy-lab envs`).
    pub env: String,
    pub agent: AgentKind,
    pub episodes: usize,
    pub seed: u64,
    pub render: RenderMode,
    /// Where pictures go (for `RenderMode::Image`).
    pub out: PathBuf,
}

/// One played episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub ret: f64,
    pub length: usize,
    pub terminated: bool,
    /// The bandit's cumulative regret at the end of the episode, for bandits.
    pub cumulative_regret: Option<f64>,
}

/// Plays `config.episodes` episodes, writing a report (and ANSI frames) to `out`; returns the
/// episodes and the paths of the pictures it wrote.
pub fn play(config: &PlayConfig, out: &mut impl Write) -> Result<(Vec<Episode>, Vec<PathBuf>)> {
    let (mut env, spec) = make(&config.env)?;
    let mut agent: Box<dyn Agent> = match config.agent {
        AgentKind::Random => Box::new(RandomAgent {
            num_actions: env.num_actions(),
        }),
        AgentKind::Heuristic => Box::new(HeuristicAgent::for_env(&env)),
    };
    let mut rng = seeded_rng(Some(config.seed.wrapping_add(1)));
    writeln!(
        out,
        "{} ({}), {:?} agent, {} episodes, seed {}",
        spec.id,
        env.describe_observation_space(),
        config.agent,
        config.episodes,
        config.seed
    )?;
    if config.render == RenderMode::Image {
        std::fs::create_dir_all(&config.out)
            .with_context(|| format!("creating {}", config.out.display()))?;
    }
    let mut episodes = Vec::new();
    let mut pictures = Vec::new();
    for ep in 0..config.episodes {
        let seed = if ep == 0 { Some(config.seed) } else { None };
        let (mut obs, _) = env.reset(seed);
        let mut trace = Trace::start(&env);
        let mut episode = Episode {
            ret: 0.0,
            length: 0,
            terminated: false,
            cumulative_regret: None,
        };
        if config.render == RenderMode::Ansi {
            writeln!(out, "--- episode {ep}")?;
            writeln!(out, "{}", env.render_ansi().unwrap_or_default())?;
        }
        loop {
            let action = agent.act(&obs, &mut rng);
            let step = env.step(action)?;
            agent.observe(&obs, action, step.reward, &step.info);
            episode.ret += step.reward;
            episode.length += 1;
            episode.cumulative_regret = step.info.get("cumulative_regret");
            trace.record(&env);
            if config.render == RenderMode::Ansi {
                writeln!(out, "{}", env.render_ansi().unwrap_or_default())?;
            }
            obs = step.obs;
            if step.terminated || step.truncated {
                episode.terminated = step.terminated;
                break;
            }
        }
        if config.render == RenderMode::Image {
            pictures.extend(trace.save(&env, agent.as_ref(), &config.out, ep)?);
        }
        // Long runs (a bandit plays hundreds of one-pull episodes) print every tenth.
        let every = (config.episodes / 10).max(1);
        if config.episodes <= 20 || ep % every == 0 || ep + 1 == config.episodes {
            writeln!(
                out,
                "episode {ep:>3}: return {:>8.3}  length {:>4}  {}{}",
                episode.ret,
                episode.length,
                if episode.terminated {
                    "terminated"
                } else {
                    "truncated"
                },
                episode
                    .cumulative_regret
                    .map(|r| format!("  cumulative regret {r:.3}"))
                    .unwrap_or_default()
            )?;
        }
        episodes.push(episode);
    }
    let n = episodes.len().max(1) as f64;
    let mean = episodes.iter().map(|e| e.ret).sum::<f64>() / n;
    let std = (episodes.iter().map(|e| (e.ret - mean).powi(2)).sum::<f64>() / n).sqrt();
    let threshold = spec
        .reward_threshold
        .map(|t| format!(" (solved at {t})"))
        .unwrap_or_default();
    writeln!(
        out,
        "mean return {mean:.3} +/- {std:.3} over {} episodes{threshold}",
        episodes.len()
    )?;
    for p in &pictures {
        writeln!(out, "wrote {}", p.display())?;
    }
    Ok((episodes, pictures))
}

/// The states an episode went through, for pictures.
enum Trace {
    Grid(Vec<usize>),
    CartPole(Vec<[f64; 4]>),
    None,
}

impl Trace {
    fn start(env: &AnyEnv) -> Self {
        let mut trace = match &env.kind {
            EnvKind::Grid(_) => Trace::Grid(Vec::new()),
            EnvKind::CartPole(_) => Trace::CartPole(Vec::new()),
            _ => Trace::None,
        };
        trace.record(env);
        trace
    }
    fn record(&mut self, env: &AnyEnv) {
        match (self, &env.kind) {
            (Trace::Grid(states), EnvKind::Grid(g)) => states.push(g.inner().state()),
            (Trace::CartPole(states), EnvKind::CartPole(c)) => states.push(c.inner().state()),
            _ => {}
        }
    }
    /// Writes this episode's pictures (PNG and SVG) into `dir`.
    fn save(
        &self,
        env: &AnyEnv,
        agent: &dyn Agent,
        dir: &std::path::Path,
        ep: usize,
    ) -> Result<Vec<PathBuf>> {
        let (png, svg) = (
            dir.join(format!("episode_{ep:03}.png")),
            dir.join(format!("episode_{ep:03}.svg")),
        );
        match (self, &env.kind) {
            (Trace::Grid(states), EnvKind::Grid(g)) => {
                let mut picture = GridPicture::new(g.inner())
                    .path(states)
                    .agent(*states.last().unwrap_or(&0));
                if let Some((values, policy)) = agent.grid_policy() {
                    picture = picture.values(values).greedy_policy(policy);
                }
                picture.save_png(&png)?;
                picture.save_svg(&svg)?;
            }
            (Trace::CartPole(states), EnvKind::CartPole(_)) => {
                let strip = CartPoleStrip::new(states, 10);
                strip.save_png(&png)?;
                std::fs::write(&svg, strip.to_svg())?;
            }
            _ => return Ok(Vec::new()),
        }
        Ok(vec![png, svg])
    }
}
