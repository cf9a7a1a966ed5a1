//! GRPO on the small language model, through the same `grpo_loss` as the toy environments:
//! from a weak SFT start, the mean reward rises on a budget bounded by iterations.

use burn::tensor::backend::Backend;
use policy_lab::algos::grpo::GrpoConfig;
use policy_lab::algos::grpo_lm::GrpoLm;
use policy_lab::envs::{BoxSpace, Env, EnvError, Info, Obs, Space, Step};
use policy_lab::lm::model::TransformerConfig;
use policy_lab::lm::sft::train_sft;
use policy_lab::lm::tokenizer::{CharTokenizer, Tokenizer};
use rand::{Rng, RngExt, SeedableRng};

type B = policy_lab::backend::Cpu;

/// Any string (the test's text space).
#[derive(Clone, Debug)]
struct Strings;

impl std::fmt::Display for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Strings")
    }
}

impl Space for Strings {
    type Item = String;
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        rng.random_range(0..100u32).to_string()
    }
    fn contains(&self, _: &String) -> bool {
        true
    }
    fn flat_dim(&self) -> usize {
        0
    }
    fn flatten_into(&self, _: &String, _: &mut [f32]) {}
    fn flatten_space(&self) -> BoxSpace<Vec<f32>> {
        BoxSpace::new(vec![], vec![], vec![0]).unwrap()
    }
}

/// One-digit addition, one step per episode: reward 1 for the right sum.
#[derive(Clone, Debug)]
struct Addition {
    problem: (u32, u32),
    space: Strings,
}

impl Env for Addition {
    type ObsSpace = Strings;
    type ActSpace = Strings;
    fn observation_space(&self) -> &Strings {
        &self.space
    }
    fn action_space(&self) -> &Strings {
        &self.space
    }
    fn reset(&mut self, seed: Option<u64>) -> (Obs<Self>, Info) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.unwrap_or(0));
        self.problem = (rng.random_range(0..10), rng.random_range(0..10));
        (
            format!("{}+{}=", self.problem.0, self.problem.1),
            Info::default(),
        )
    }
    fn step(&mut self, completion: String) -> Result<Step<Obs<Self>>, EnvError> {
        let right = completion == (self.problem.0 + self.problem.1).to_string();
        Ok(Step {
            obs: String::new(),
            reward: if right { 1.0 } else { 0.0 },
            terminated: true,
            truncated: false,
            info: Info::default(),
        })
    }
}

#[test]
fn grpo_raises_the_mean_reward_of_a_weak_sft_model() {
    let tokenizer = CharTokenizer::new("0123456789+=");
    B::seed(&Default::default(), 0);
    let model = TransformerConfig::new(tokenizer.vocab_size())
        .with_d_model(64)
        .with_n_layers(2)
        .with_n_heads(4)
        .with_d_ff(128)
        .with_max_seq_len(16)
        .init::<B>(&Default::default());
    // A short warm start: the model learns the format and some sums.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batches: Vec<Vec<(String, String)>> = (0..SFT_STEPS)
        .map(|_| {
            (0..32)
                .map(|_| {
                    let (a, b) = (rng.random_range(0..10u32), rng.random_range(0..10u32));
                    (format!("{a}+{b}="), (a + b).to_string())
                })
                .collect()
        })
        .collect();
    let (model, _) = train_sft(model, &tokenizer, batches, 3e-3).unwrap();

    let config = GrpoConfig {
        num_generations: 8,
        num_groups: 16,
        learning_rate: 1e-3,
        ..GrpoConfig::default()
    };
    let env = Addition {
        problem: (0, 0),
        space: Strings,
    };
    let mut grpo = GrpoLm::new(config, 3, model, env, tokenizer, 1).unwrap();
    let rewards: Vec<f64> = (0..ITERATIONS)
        .map(|_| grpo.iterate().unwrap()["reward"])
        .collect();
    let first = rewards[..10].iter().sum::<f64>() / 10.0;
    let last = rewards[ITERATIONS - 10..].iter().sum::<f64>() / 10.0;
    println!("mean reward {first:.3} -> {last:.3}");
    assert!(
        last >= first + 0.15,
        "mean reward {first:.3} -> {last:.3}: {rewards:?}"
    );
}

const SFT_STEPS: usize = 120;
const ITERATIONS: usize = 100;
