//! Step throughput of the environments (criterion). Each iteration is one step with a random
//! action, resetting when an episode ends, as a rollout does.
//!
//! cargo bench -p policy-lab-envs --bench step

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use policy_lab_envs::*;

/// One random step of `env`, resetting at the end of an episode.
fn random_step<E: Env<ActSpace = Discrete>>(env: &mut E, rng: &mut EnvRng) {
    let a = env.action_space().sample(rng);
    let step = env.step(a).expect("valid action");
    if step.done() {
        env.reset(None);
    }
    std::hint::black_box(step.obs);
}

fn bench<E: Env<ActSpace = Discrete>>(c: &mut Criterion, name: &str, mut env: E) {
    let mut group = c.benchmark_group("single");
    group.throughput(Throughput::Elements(1));
    let mut rng = seeded_rng(Some(0));
    env.reset(Some(0));
    group.bench_function(name, |b| b.iter(|| random_step(&mut env, &mut rng)));
    group.finish();
}

fn single(c: &mut Criterion) {
    bench(c, "CartPole-v1", cartpole_v1());
    bench(c, "FrozenLake8x8-v1", frozen_lake_v1("8x8", true).unwrap());
    bench(
        c,
        "Maze-v0 16x16",
        TimeLimit::new(GridWorld::maze(&MazeConfig::new(16, 0)).unwrap(), 1024).unwrap(),
    );
    bench(c, "BernoulliBandit-v0", Bandit::bernoulli(10, 0).unwrap());
    bench(
        c,
        "ContextualBandit-v0",
        Bandit::contextual_random(4, 4, 0).unwrap(),
    );
}

fn vectorized(c: &mut Criterion) {
    let mut group = c.benchmark_group("vector");
    for n in [8usize, 64] {
        group.throughput(Throughput::Elements(n as u64));
        let mut rng = seeded_rng(Some(0));
        let mut venv = SyncVectorEnv::new(n, |_| cartpole_v1()).unwrap();
        venv.reset(Some(0));
        let mut actions = vec![0usize; n];
        group.bench_with_input(BenchmarkId::new("CartPole-v1", n), &n, |b, _| {
            b.iter(|| {
                for a in actions.iter_mut() {
                    *a = venv.single_action_space().sample(&mut rng);
                }
                std::hint::black_box(venv.step(&actions).expect("valid actions").obs.sum());
            })
        });
        let mut venv = SyncVectorEnv::new(n, |_| make("FrozenLake8x8-v1").unwrap().0).unwrap();
        venv.reset(Some(0));
        group.bench_with_input(
            BenchmarkId::new("FrozenLake8x8-v1 one-hot", n),
            &n,
            |b, _| {
                b.iter(|| {
                    for a in actions.iter_mut() {
                        *a = venv.single_action_space().sample(&mut rng);
                    }
                    std::hint::black_box(venv.step(&actions).expect("valid actions").obs.sum());
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, single, vectorized);
criterion_main!(benches);
