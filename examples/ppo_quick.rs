//! Scratch driver while the `train` command is built.
use burn::module::AutodiffModule;
use policy_lab::algos::{grpo::*, ppo::*, reinforce::*};
use policy_lab::backend::Cpu;
use policy_lab::envs::{make, RecordEpisodeStatistics, SyncVectorEnv};
use policy_lab::evaluate::evaluate;

fn main() {
    let algo = std::env::args().nth(1).unwrap();
    let env_id = std::env::args().nth(2).unwrap();
    let steps: usize = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let dev = Default::default();
    let venv = |n| {
        SyncVectorEnv::new(n, |_| {
            RecordEpisodeStatistics::new(make(&env_id).unwrap().0)
        })
        .unwrap()
    };
    let (mut env, spec) = make(&env_id).unwrap();
    let t = std::time::Instant::now();
    let actor = match algo.as_str() {
        "ppo" => {
            let mut a = Ppo::<Cpu>::new(PpoConfig::default(), venv(4), 1, steps, dev).unwrap();
            while a.global_step < steps {
                let m = a.iterate().unwrap();
                if a.iteration % 20 == 0 {
                    println!("{} {:?}", a.global_step, m.get("episodic_return"));
                }
            }
            a.model.actor.valid()
        }
        "reinforce" => {
            let mut a = Reinforce::<Cpu>::new(ReinforceConfig::default(), venv(8), 1, dev).unwrap();
            while a.global_step < steps {
                let m = a.iterate().unwrap();
                if a.iteration % 20 == 0 {
                    println!("{} {:?}", a.global_step, m.get("episodic_return"));
                }
            }
            a.model.actor.valid()
        }
        "trpo" => {
            let mut a =
                policy_lab::algos::trpo::Trpo::<Cpu>::new(Default::default(), venv(4), 1, dev)
                    .unwrap();
            while a.global_step < steps {
                let m = a.iterate().unwrap();
                if a.iteration % 10 == 0 {
                    println!(
                        "{} {:?} kl {:?} ls {:?}",
                        a.global_step,
                        m.get("episodic_return"),
                        m.get("kl"),
                        m.get("line_search_steps")
                    );
                }
            }
            a.model.actor.valid()
        }
        _ => {
            let mut a = Grpo::<Cpu>::new(
                GrpoConfig::default(),
                make(&env_id).unwrap().0,
                spec.max_episode_steps,
                1,
                dev,
            )
            .unwrap();
            while a.global_step < steps {
                let m = a.iterate().unwrap();
                if a.iteration % 20 == 0 {
                    println!(
                        "{} {:?} {:?}",
                        a.global_step,
                        m.get("reward"),
                        m.get("frac_reward_zero_std")
                    );
                }
            }
            a.actor.valid()
        }
    };
    let ev = evaluate(&actor, &mut env, 100, 7, &Default::default()).unwrap();
    println!(
        "{algo} {env_id}: greedy mean return {:.3} success {:.2} in {:.1}s",
        ev.mean_return(),
        ev.success_rate(),
        t.elapsed().as_secs_f64()
    );
}
