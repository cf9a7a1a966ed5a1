#!/usr/bin/env python3
"""Writes the chapter notebooks (notebooks/*.ipynb) from the cells below.

The notebooks are committed without outputs: CI executes every one through the real evcxr
kernel (scripts/check_notebooks.sh), so an output committed here could only go stale. Edit
the cells here and run `python3 notebooks/make_notebooks.py`; CI checks that the committed
notebooks are what this script writes.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent
DEP = ':dep policy-lab = { path = ".." }'

NOTEBOOKS = {
    "environments": [
        ("md", """# Environments and bandits

The notebook of the book's chapter *Environments and bandits*. Every environment follows
Gymnasium: `reset(seed)` gives `(obs, info)`, `step(action)` gives a `Step` with `obs`,
`reward`, `terminated` and `truncated`. The first cell compiles policy-lab (a few minutes the
first time)."""),
        ("code", DEP),
        ("code", """use policy_lab::envs::{make, Env};
let (mut env, spec) = make("FrozenLake-v1")?;
let (obs, _info) = env.reset(Some(0));
println!("{} with a time limit of {:?} steps; first observation {:?}", spec.id, spec.max_episode_steps, obs);
println!("{}", env.render_ansi().unwrap_or_default());"""),
        ("md", """A random agent on each environment, and how its episode ended: *terminated* (a terminal
state: nothing comes after it) or *truncated* (the time limit cut it: a learner must still
bootstrap from the last state)."""),
        ("code", """use policy_lab::rand::{RngExt, SeedableRng};
let mut rng = policy_lab::rand::rngs::StdRng::seed_from_u64(0);
for id in ["BernoulliBandit-v0", "FrozenLake-v1", "Maze-v0", "CartPole-v1"] {
    let (mut env, _) = make(id)?;
    env.reset(Some(0));
    let (mut ret, mut steps) = (0.0, 0);
    let how = loop {
        let step = env.step(rng.random_range(0..env.num_actions()))?;
        ret += step.reward;
        steps += 1;
        if step.terminated { break "terminated"; }
        if step.truncated { break "truncated"; }
    };
    println!("{id:<20} return {ret:6.2} in {steps:3} steps, {how}");
}"""),
    ],
    "reinforce": [
        ("md", """# The policy gradient and REINFORCE

REINFORCE with a learned baseline on a 10-armed Bernoulli bandit: watch the policy move its
probability to the best arm (the book's chapter derives eqs. RF-1 to RF-4)."""),
        ("code", DEP),
        ("code", """use policy_lab::burn::module::AutodiffModule;
use policy_lab::algos::reinforce::{Reinforce, ReinforceConfig};
use policy_lab::backend::Cpu;
use policy_lab::core::rollout::{actor_log_probs, make_vec_env};
let config = ReinforceConfig { num_envs: 8, num_steps: 16, learning_rate: 3e-2, ..ReinforceConfig::default() };
let mut learner = Reinforce::<Cpu>::new(config, make_vec_env("BernoulliBandit-v0", 8)?, 0, Default::default())?;
for it in 0..20 {
    learner.iterate()?;
    if it % 5 == 4 {
        let p: Vec<String> = actor_log_probs(&learner.model.actor.valid(), &[1.0], 1, &Default::default())
            .iter().map(|l| format!("{:.2}", l.exp())).collect();
        println!("pulls {:5}: arm probabilities [{}]", learner.global_step(), p.join(" "));
    }
}"""),
    ],
    "gae": [
        ("md", """# Actor-critic and GAE

Generalized advantage estimation (eqs. GAE-1 and GAE-2) on a hand-made rollout whose episode
ends after the third step. Change `lambda` and see the bias-variance trade-off: 0 is the
one-step TD error, 1 the Monte-Carlo return minus the baseline."""),
        ("code", DEP),
        ("code", """use policy_lab::core::advantage::gae;
let rewards = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
let values = [0.5, 0.6, 0.8, 0.4, 0.5, 0.6];
let next_values = [0.6, 0.8, 0.0, 0.5, 0.6, 0.7]; // 0 after the terminal step 3
let ends = [false, false, true, false, false, false];
for lambda in [0.0, 0.5, 0.95, 1.0] {
    let (adv, _) = gae(&rewards, &values, &next_values, &ends, 1, 0.99, lambda);
    println!("lambda {lambda:4}: {:?}", adv.iter().map(|a| (a * 1000.0).round() / 1000.0).collect::<Vec<_>>());
}"""),
    ],
    "trpo": [
        ("md", """# Natural gradients and TRPO

TRPO on slippery FrozenLake for a small budget: each update solves for the natural gradient
with conjugate gradient on Fisher-vector products (eqs. TRPO-4, TRPO-5), then a line search
keeps the KL within its bound."""),
        ("code", DEP),
        ("code", """use policy_lab::backend::Cpu;
use policy_lab::run::Start;
use policy_lab::run::train::{train, Algo, RunConfig};
let config = RunConfig { algo: Algo::Trpo, env: "FrozenLake-v1".into(), seed: 1, total_timesteps: 20_000, ..RunConfig::default() };
let summary = train::<Cpu>(&config, Default::default(), std::path::Path::new("../runs/notebook-trpo"), Start::Overwrite, &mut std::io::sink())?;
for row in summary.history.iter().step_by(4) {
    println!("step {:6}: KL {:.4} (bound {}), backtracks {}", row["global_step"], row["kl"], config.trpo.target_kl, row["line_search_steps"]);
}
println!("greedy success rate {:.2}", summary.evaluation.success_rate().unwrap_or_default());"""),
    ],
    "ppo": [
        ("md", """# PPO

PPO with CleanRL's settings on CartPole for 30,000 steps, its diagnostics, and the learning
curve drawn inline."""),
        ("code", DEP),
        ("code", """use policy_lab::backend::Cpu;
use policy_lab::run::plot::{average, draw, read_run, Svg, XAxis};
use policy_lab::run::Start;
use policy_lab::run::train::{train, Algo, RunConfig};
let out = std::path::Path::new("../runs/notebook-ppo");
let config = RunConfig { algo: Algo::Ppo, env: "CartPole-v1".into(), seed: 1, total_timesteps: 30_000, ..RunConfig::default() };
let summary = train::<Cpu>(&config, Default::default(), out, Start::Overwrite, &mut std::io::sink())?;
let last = summary.history.last().unwrap().clone(); // owned: evcxr keeps only owned values between cells
println!("approx_kl {:.1e}, clipfrac {:.3}, explained variance {:.2}", last["approx_kl"], last["clipfrac"], last["explained_variance"]);"""),
        ("code", """let files = draw(&average(&[read_run(out, XAxis::Steps)?]), XAxis::Steps, "PPO on CartPole-v1", &out.join("curve"))?;
Svg::open(&files[1])?"""),
    ],
    "grpo": [
        ("md", """# GRPO on toy environments

GRPO (no critic: groups of episodes from the same start, group-relative advantages) on a
generated maze, the learned policy drawn as arrows over the maze, and PPO's policy and values
on the same maze for comparison."""),
        ("code", DEP),
        ("code", """use policy_lab::burn::module::AutodiffModule;
use policy_lab::algos::grpo::{Grpo, GrpoConfig, GrpoUpdate};
use policy_lab::backend::Cpu;
use policy_lab::envs::make;
use policy_lab::run::evaluate::draw_grid_policy;
use policy_lab::run::plot::Svg;
let (env, spec) = make("Maze-v0")?;
let mut learner = Grpo::<Cpu>::new(GrpoConfig { update: GrpoUpdate { learning_rate: 1e-3, ..GrpoUpdate::default() }, ..GrpoConfig::default() }, env, spec.max_episode_steps, 1, Default::default())?;
for it in 1..=40 {
    let m = learner.iterate()?;
    if it % 10 == 0 { println!("iteration {it}: mean reward {:.3}, groups with equal rewards {:.2}", m["reward"], m["frac_reward_zero_std"]); }
}"""),
        ("code", """let (mut maze, _) = make("Maze-v0")?;
std::fs::create_dir_all("../runs/notebook-grpo")?;
let files = draw_grid_policy(&learner.actor.valid(), None, &mut maze, std::path::Path::new("../runs/notebook-grpo/policy"), &Default::default())?;
Svg::open(&files[1])?"""),
        ("md", """Each arrow is as long as the probability of its action; the red line is one greedy episode.
GRPO has no critic, so there are no values to draw. PPO on the same maze (CleanRL's settings,
100,000 steps) learns a critic too: its value of each cell colours the cell, bright where
the goal is near."""),
        ("code", """use policy_lab::algos::ppo::{Ppo, PpoConfig};
use policy_lab::core::rollout::make_vec_env;
let budget = 100_000;
let config = PpoConfig::default();
let mut ppo = Ppo::<Cpu>::new(config.clone(), make_vec_env("Maze-v0", config.num_envs)?, 1, budget, Default::default())?;
while ppo.global_step() < budget {
    ppo.iterate()?;
}
let (mut maze, _) = make("Maze-v0")?;
let files = {
    // In a block: evcxr keeps a cell's variables for later cells only if it can name their types.
    let (actor, critic) = (ppo.model.actor.valid(), ppo.model.critic.valid());
    draw_grid_policy(&actor, Some(&critic), &mut maze, std::path::Path::new("../runs/notebook-grpo/ppo-policy"), &Default::default())?
};
Svg::open(&files[1])?"""),
    ],
    "lm_sft": [
        ("md", """# Language models as policies

A small transformer learns one-digit addition from demonstrations (supervised fine-tuning):
the warm start for RL. Tokens are actions; a completion is an episode."""),
        ("code", DEP),
        ("code", """use policy_lab::backend::Cpu;
use policy_lab::run::lm::{run_sft, LmRunConfig};
use policy_lab::run::Start;
let mut config = LmRunConfig::default();
config.task.digits = 1;
config.task.test_size = 20;
config.model.d_model = 64;
config.model.n_layers = 2;
config.model.d_ff = 256;
config.sft.steps = 200;
config.sft.stop_at_accuracy = 0.5;
let summary = run_sft::<Cpu>(&config, &Default::default(), std::path::Path::new("../runs/notebook-lm-sft"), Start::Overwrite, &mut std::io::sink())?;
println!("held-out accuracy {:.2} after {} steps", summary.end.accuracy, summary.iterations);"""),
    ],
    "grpo_lm": [
        ("md", """# GRPO on a small language model

A warm start by SFT, then GRPO from it with the same `grpo_loss` the toy environments use,
and the held-out accuracy curve inline."""),
        ("code", DEP),
        ("code", """use policy_lab::backend::Cpu;
use policy_lab::run::lm::{run_rl, run_sft, LmAlgo, LmRunConfig};
use policy_lab::run::Start;
use policy_lab::run::plot::{average, draw, read_run, Svg, XAxis};
let mut config = LmRunConfig::default();
config.task.digits = 1;
config.task.test_size = 40;
config.model.d_model = 64;
config.model.n_layers = 2;
config.model.d_ff = 256;
config.sft.steps = 300;
config.sft.stop_at_accuracy = 0.3;
let sft = run_sft::<Cpu>(&config, &Default::default(), std::path::Path::new("../runs/notebook-grpo-lm/sft"), Start::Overwrite, &mut std::io::sink())?;
config.algo = LmAlgo::Grpo;
config.grpo.update.num_groups = 8;
config.grpo.update.num_generations = 8;
config.grpo.update.learning_rate = 1e-4;
config.rl.iterations = 20;
config.rl.eval_every = 5;
let out = std::path::Path::new("../runs/notebook-grpo-lm/grpo");
let rl = run_rl::<Cpu>(&config, &sft.model, &[Default::default()], out, Start::Overwrite, &mut std::io::sink())?;
println!("held-out accuracy {:.3} -> {:.3}", sft.end.accuracy, rl.end.accuracy);"""),
        ("code", """let files = draw(&average(&[read_run(out, XAxis::Steps)?]), XAxis::Steps, "GRPO on add:1", &out.join("curve"))?;
Svg::open(&files[1])?"""),
    ],
    "data_parallel": [
        ("md", """# Scaling to GPUs: data parallelism

Data-parallel GRPO on two CPU "devices" (peers sharing the cores): each samples half of the
groups, and burn's all-reduce averages the gradients before every step. With
`--features cuda`, `policy_lab::backend::devices::<Cuda>(n)` gives GPUs 0..n."""),
        ("code", DEP),
        ("code", """use policy_lab::algos::grpo::GrpoUpdate;
use policy_lab::algos::grpo_lm::GrpoLmConfig;
use policy_lab::backend::Cpu;
use policy_lab::envs::{Arithmetic, ArithmeticConfig};
use policy_lab::lm::model::{Transformer, TransformerConfig};
use policy_lab::run::parallel::grpo_data_parallel;
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;
let env = Arithmetic::new(ArithmeticConfig { digits: 1, test_size: 20, ..ArithmeticConfig::default() })?;
let tokenizer = task_tokenizer();
let model: Transformer<Cpu> = policy_lab::backend::seeded::<Cpu, _>(&Default::default(), 1, || {
    TransformerConfig::new(tokenizer.vocab_size()).with_d_model(32).with_n_layers(2).with_n_heads(4)
        .with_d_ff(64).with_max_seq_len(16).init(&Default::default())
});
let config = GrpoLmConfig {
    update: GrpoUpdate { num_groups: 8, num_generations: 4, learning_rate: 1e-3, ..GrpoUpdate::default() },
    ..GrpoLmConfig::default()
};
let max_len = env.config().completion_limit();
grpo_data_parallel(config, max_len, model, env, tokenizer, 1, policy_lab::backend::devices::<Cpu>(2), 3, |it, m, _| {
    println!("iteration {it}: mean reward {:.3} over {} completions", m["reward"], m["completions_seen"]);
    Ok(())
})?;"""),
    ],
}


def cell(kind, text):
    lines = text.splitlines(keepends=True)
    if kind == "md":
        return {"cell_type": "markdown", "metadata": {}, "source": lines}
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}


def notebook(cells):
    return {
        "cells": [cell(k, t) for k, t in cells],
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {"codemirror_mode": "rust", "file_extension": ".rs",
                              "mimetype": "text/rust", "name": "Rust", "pygment_lexer": "rust",
                              "version": ""},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        path = HERE / f"{name}.ipynb"
        path.write_text(json.dumps(notebook(cells), indent=1) + "\n")
        print("wrote", path)
