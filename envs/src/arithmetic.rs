//! Arithmetic: a verifiable text task for reinforcement learning on language models.
//!
//! Each episode is one problem, such as `123+456=`. The observation is that prompt (a
//! [`Text`] over `0123456789+*=`); the action is the model's completion, a string; the
//! episode ends after that one step (`terminated = true`). It is a contextual bandit whose
//! contexts and arms are strings, and its reward is *verifiable*: a program checks the
//! answer, no learned reward model is involved.
//!
//! ```text
//! let (prompt, _) = env.reset(Some(seed));   // "123+456="
//! let step = env.step("579".into())?;        // reward 1.1, terminated
//! ```
//!
//! ## Reward
//!
//! The completion is first stripped of trailing spaces (a model may pad its answer). Then:
//!
//! * `format_reward` (0.1 by default) if what remains is *well formed*: one or more ASCII
//!   digits and nothing else, a right answer or not;
//! * plus `correct_reward` (1.0 by default) if it is well formed and its value is the right
//!   answer. Leading zeros are accepted (`"0579"` is 579), a leading `+` or space is not.
//!
//! So a right answer earns 1.1, a wrong number 0.1, anything else (`"57 9"`, `"=579"`, the
//! empty string) 0. The step's [`Info`] holds `correct` and `format` (1.0 or 0.0),
//! `completion_length` (characters written) and `answer_length` (digits of the right answer).
//!
//! ## Action space
//!
//! A completion is whatever the model wrote: up to `max_completion_length` characters
//! (default `2 * digits + 1`, room for the longest product and a space) from
//! `0123456789+*= `, the characters a model that reads the prompts may write. The empty
//! string is in the space (a model may stop at once; it earns 0). A completion outside the
//! space (too long, or with another character) is refused with
//! [`EnvError::InvalidAction`]; clip or filter generations to the space first.
//!
//! ## Splits
//!
//! Operands are uniform in `[0, 10^digits)`, independently. The *test* set is the first
//! `test_size` distinct problems drawn from a generator seeded with `split_seed`, so it is
//! the same for everyone who uses the same `(op, digits, test_size, split_seed)`. With
//! `split = "train"` the environment draws uniformly but redraws any test problem, so
//! training never sees one; with `split = "test"` it draws from the test set.
//! [`Arithmetic::test_problems`] lists the test set in order, for an evaluation that goes
//! through all of it.
//!
//! As everywhere in this crate, `reset(Some(seed))` re-seeds the environment, so GRPO can
//! reset `G` clones with the same seed and get the same prompt in each.

use std::fmt;

use rand::{Rng, RngExt, SeedableRng};

use crate::env::{check_action, seeded_rng, Env, EnvRng, Info, Phase, Step};
use crate::error::{EnvError, Result};
use crate::space::Text;

/// The characters of a prompt.
pub const PROMPT_CHARSET: &str = "0123456789+*=";
/// The characters a completion may contain.
pub const COMPLETION_CHARSET: &str = "0123456789+*= ";
/// The most characters a completion may be configured to have.
pub const MAX_COMPLETION_LIMIT: usize = 1024;
/// The largest held-out test set.
pub const MAX_TEST_SIZE: usize = 1_000_000;

/// The operation of the problems.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `a+b=`
    #[default]
    Add,
    /// `a*b=`
    Mul,
}

impl Op {
    /// The character between the operands.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Mul => '*',
        }
    }
    /// The result. Operands below `10^9` (all the environment draws) cannot overflow a
    /// `u64`; larger ones saturate at `u64::MAX` rather than panic.
    pub fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Op::Add => a.saturating_add(b),
            Op::Mul => a.saturating_mul(b),
        }
    }
    /// The most digits a result of two `digits`-digit operands can have.
    pub fn max_answer_digits(self, digits: u32) -> usize {
        match self {
            Op::Add => digits as usize + 1,
            Op::Mul => 2 * digits as usize,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Add => "add",
            Op::Mul => "mul",
        })
    }
}

/// Which problems an episode draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Any problem except the held-out test problems.
    #[default]
    Train,
    /// Only the held-out test problems.
    Test,
}

/// The settings of an [`Arithmetic`] environment (a TOML table; unknown keys are refused).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArithmeticConfig {
    /// Addition or multiplication.
    pub op: Op,
    /// Digits of each operand, 1 to 9: operands are uniform in `[0, 10^digits)`.
    pub digits: u32,
    /// Train or test problems.
    pub split: Split,
    /// How many problems are held out for testing. Must be below half the number of
    /// distinct problems, `10^(2 * digits) / 2` (so at most 49 for one digit).
    pub test_size: usize,
    /// Seeds the draw of the test set (not the episodes).
    pub split_seed: u64,
    /// Reward for the right answer.
    pub correct_reward: f64,
    /// Reward for a well-formed answer (digits only), right or wrong.
    pub format_reward: f64,
    /// The most characters a completion may have; `None` (the default) means
    /// `2 * digits + 1`. (Left out of a saved config when `None`: TOML has no null.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_length: Option<usize>,
}

impl Default for ArithmeticConfig {
    fn default() -> Self {
        Self {
            op: Op::Add,
            digits: 3,
            split: Split::Train,
            test_size: 500,
            split_seed: 0,
            correct_reward: 1.0,
            format_reward: 0.1,
            max_completion_length: None,
        }
    }
}

impl ArithmeticConfig {
    /// The completion length limit in effect.
    pub fn completion_limit(&self) -> usize {
        self.max_completion_length
            .unwrap_or(2 * self.digits as usize + 1)
    }

    /// Checks every field; the message says which one is wrong and why.
    pub fn validate(&self) -> Result<()> {
        if !(1..=9).contains(&self.digits) {
            return Err(EnvError::config(format!(
                "arithmetic digits must be 1 to 9 (operands below 10^9 keep products in a u64), got {}",
                self.digits
            )));
        }
        let distinct = 10u128.pow(2 * self.digits);
        if self.test_size == 0 || 2 * self.test_size as u128 >= distinct {
            return Err(EnvError::config(format!(
                "arithmetic test_size must be at least 1 and below half of the {distinct} distinct \
                 {}-digit problems, got {}",
                self.digits, self.test_size
            )));
        }
        if self.test_size > MAX_TEST_SIZE {
            return Err(EnvError::config(format!(
                "arithmetic test_size must be at most {MAX_TEST_SIZE}, got {}",
                self.test_size
            )));
        }
        for (name, value) in [
            ("correct_reward", self.correct_reward),
            ("format_reward", self.format_reward),
        ] {
            if !value.is_finite() {
                return Err(EnvError::config(format!(
                    "arithmetic {name} must be finite, got {value}"
                )));
            }
        }
        let limit = self.completion_limit();
        let needed = self.op.max_answer_digits(self.digits);
        if limit < needed || limit > MAX_COMPLETION_LIMIT {
            return Err(EnvError::config(format!(
                "arithmetic max_completion_length must be from {needed} (the longest answer to \
                 {}-digit {}) to {MAX_COMPLETION_LIMIT}, got {limit}",
                self.digits, self.op
            )));
        }
        Ok(())
    }
}

/// The arithmetic environment; see the module docs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Arithmetic {
    config: ArithmeticConfig,
    /// The held-out problems, in the order they were drawn.
    test_problems: Vec<(u64, u64)>,
    /// The same problems sorted, to look one up by binary search (a sorted `Vec` rather
    /// than a `HashSet`, so that a saved environment is the same file every time).
    test_sorted: Vec<(u64, u64)>,
    /// The current problem and its prompt.
    problem: (u64, u64),
    prompt: String,
    /// The completion of the last step, for `render_ansi`.
    last_completion: Option<String>,
    rng: EnvRng,
    phase: Phase,
    observation_space: Text,
    action_space: Text,
}

impl Arithmetic {
    /// An environment with these settings (checked by [`ArithmeticConfig::validate`]).
    pub fn new(config: ArithmeticConfig) -> Result<Self> {
        config.validate()?;
        let digits = config.digits as usize;
        // Prompts run from "0+0=" to two full operands, the operator and "=".
        let observation_space = Text::new(4, 2 * digits + 2, PROMPT_CHARSET)?;
        let action_space = Text::new(0, config.completion_limit(), COMPLETION_CHARSET)?;
        let test_problems = draw_test_set(config.digits, config.test_size, config.split_seed);
        let mut test_sorted = test_problems.clone();
        test_sorted.sort_unstable();
        let mut env = Self {
            config,
            test_problems,
            test_sorted,
            problem: (0, 0),
            prompt: String::new(),
            last_completion: None,
            rng: seeded_rng(None),
            phase: Phase::NotStarted,
            observation_space,
            action_space,
        };
        env.prompt = env.prompt_of(0, 0);
        Ok(env)
    }

    /// The settings.
    pub fn config(&self) -> &ArithmeticConfig {
        &self.config
    }

    /// The held-out test problems `(a, b)`, in their fixed order.
    pub fn test_problems(&self) -> &[(u64, u64)] {
        &self.test_problems
    }

    /// Whether `(a, b)` is a held-out test problem.
    pub fn is_test_problem(&self, a: u64, b: u64) -> bool {
        self.test_sorted.binary_search(&(a, b)).is_ok()
    }

    /// The prompt of a problem, e.g. `"123+456="`.
    pub fn prompt_of(&self, a: u64, b: u64) -> String {
        format!("{a}{}{b}=", self.config.op.symbol())
    }

    /// The right answer to a problem.
    pub fn answer(&self, a: u64, b: u64) -> u64 {
        self.config.op.apply(a, b)
    }

    /// The current problem `(a, b)` (meaningful after a reset).
    pub fn problem(&self) -> (u64, u64) {
        self.problem
    }

    /// The current prompt.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// A `(prompt, completion)` pair with the right answer, from the train split (whatever
    /// this environment's split), for supervised warm-starting. Draws from `rng`, not from
    /// the environment's own generator, so it does not disturb the episodes.
    pub fn demonstration<R: Rng + ?Sized>(&self, rng: &mut R) -> (String, String) {
        let (a, b) = draw_train(&self.test_sorted, self.operand_bound(), rng);
        (self.prompt_of(a, b), self.answer(a, b).to_string())
    }

    /// Starts an episode on a chosen problem (an evaluation loop over
    /// [`test_problems`](Self::test_problems) can use the environment's own scoring this
    /// way). Operands must be below `10^digits`; the split is not checked.
    pub fn reset_to_problem(&mut self, a: u64, b: u64) -> Result<(String, Info)> {
        let bound = self.operand_bound();
        if a >= bound || b >= bound {
            return Err(EnvError::config(format!(
                "operands must be below 10^{} = {bound}, got ({a}, {b})",
                self.config.digits
            )));
        }
        self.problem = (a, b);
        self.prompt = self.prompt_of(a, b);
        self.last_completion = None;
        self.phase = Phase::Running;
        Ok((self.prompt.clone(), Info::default()))
    }

    /// Operands lie in `[0, operand_bound)`.
    fn operand_bound(&self) -> u64 {
        10u64.pow(self.config.digits)
    }

    /// The reward of `completion` for the current problem, and the step's info.
    fn score(&self, completion: &str) -> (f64, Info) {
        let (a, b) = self.problem;
        let answer = self.answer(a, b);
        let trimmed = completion.trim_end_matches(' ');
        let well_formed = !trimmed.is_empty() && trimmed.bytes().all(|c| c.is_ascii_digit());
        // Only digits reach `parse` (which would accept a leading '+'); a number too large
        // for a u64 is wrong, not an error.
        let correct = well_formed && trimmed.parse::<u64>().ok() == Some(answer);
        let mut reward = 0.0;
        if well_formed {
            reward += self.config.format_reward;
        }
        if correct {
            reward += self.config.correct_reward;
        }
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut info = Info::with("correct", flag(correct));
        info.insert("format", flag(well_formed));
        info.insert("completion_length", completion.chars().count() as f64);
        info.insert("answer_length", answer.to_string().len() as f64);
        (reward, info)
    }
}

/// A uniform problem with operands below `bound` that is not in `test_sorted` (rejection
/// sampling: the test set is less than half of all problems, so this takes fewer than two
/// draws on average).
fn draw_train<R: Rng + ?Sized>(test_sorted: &[(u64, u64)], bound: u64, rng: &mut R) -> (u64, u64) {
    loop {
        let p = (rng.random_range(0..bound), rng.random_range(0..bound));
        if test_sorted.binary_search(&p).is_err() {
            return p;
        }
    }
}

/// The first `test_size` distinct problems drawn with `split_seed` (`test_size` is below
/// half the number of problems, so this ends quickly).
fn draw_test_set(digits: u32, test_size: usize, split_seed: u64) -> Vec<(u64, u64)> {
    let bound = 10u64.pow(digits);
    let mut rng = EnvRng::seed_from_u64(split_seed);
    let mut seen = std::collections::HashSet::with_capacity(test_size);
    let mut problems = Vec::with_capacity(test_size);
    while problems.len() < test_size {
        let p = (rng.random_range(0..bound), rng.random_range(0..bound));
        if seen.insert(p) {
            problems.push(p);
        }
    }
    problems
}

impl Env for Arithmetic {
    type ObsSpace = Text;
    type ActSpace = Text;

    fn observation_space(&self) -> &Text {
        &self.observation_space
    }
    fn action_space(&self) -> &Text {
        &self.action_space
    }
    /// Draws a problem from the split and returns its prompt.
    fn reset(&mut self, seed: Option<u64>) -> (String, Info) {
        if seed.is_some() {
            self.rng = seeded_rng(seed);
        }
        let (a, b) = match self.config.split {
            Split::Train => draw_train(&self.test_sorted, self.operand_bound(), &mut self.rng),
            Split::Test => self.test_problems[self.rng.random_range(0..self.test_problems.len())],
        };
        self.reset_to_problem(a, b)
            .expect("a drawn problem has valid operands")
    }
    /// Scores the completion; always terminates. The observation is the same prompt.
    fn step(&mut self, completion: String) -> Result<Step<String>> {
        check_action(&self.action_space, &completion)?;
        self.phase.check_running()?;
        let (reward, info) = self.score(&completion);
        self.last_completion = Some(completion);
        self.phase = Phase::Done;
        Ok(Step {
            obs: self.prompt.clone(),
            reward,
            terminated: true,
            truncated: false,
            info,
        })
    }
    fn render_ansi(&self) -> Option<String> {
        let (a, b) = self.problem;
        Some(match &self.last_completion {
            None => self.prompt.clone(),
            Some(c) => format!("{}{c}  (answer {})", self.prompt, self.answer(a, b)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_env;
    use crate::space::Space;

    fn env(config: ArithmeticConfig) -> Arithmetic {
        Arithmetic::new(config).unwrap()
    }

    /// Runs one episode on a chosen problem and returns the step.
    fn answer_with(env: &mut Arithmetic, (a, b): (u64, u64), completion: &str) -> Step<String> {
        env.reset_to_problem(a, b).unwrap();
        env.step(completion.to_string()).unwrap()
    }

    #[test]
    fn the_default_config_is_three_digit_addition() {
        let e = env(ArithmeticConfig::default());
        assert_eq!(e.config().completion_limit(), 7);
        assert_eq!(
            e.observation_space().to_string(),
            "Text(4, 8, charset=0123456789+*=)"
        );
        assert_eq!(
            e.action_space().to_string(),
            "Text(0, 7, charset=0123456789+*= )"
        );
        assert_eq!(e.test_problems().len(), 500);
        assert_eq!(e.prompt_of(123, 456), "123+456=");
        assert_eq!(e.answer(123, 456), 579);
        let m = env(ArithmeticConfig {
            op: Op::Mul,
            ..Default::default()
        });
        assert_eq!(m.prompt_of(12, 5), "12*5=");
        assert_eq!(m.answer(999, 999), 998_001);
    }

    #[test]
    fn bad_configs_are_refused_with_a_clear_message() {
        let bad = |config: ArithmeticConfig, needle: &str| {
            let err = Arithmetic::new(config).unwrap_err();
            assert!(matches!(err, EnvError::InvalidConfig(_)), "{err}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
        };
        let d = ArithmeticConfig::default;
        bad(
            ArithmeticConfig { digits: 0, ..d() },
            "digits must be 1 to 9",
        );
        bad(
            ArithmeticConfig { digits: 10, ..d() },
            "digits must be 1 to 9",
        );
        bad(
            ArithmeticConfig {
                test_size: 0,
                ..d()
            },
            "test_size",
        );
        // One digit: 100 problems, so the test set must have fewer than 50.
        bad(
            ArithmeticConfig {
                digits: 1,
                test_size: 50,
                ..d()
            },
            "below half of the 100 distinct",
        );
        assert!(Arithmetic::new(ArithmeticConfig {
            digits: 1,
            test_size: 49,
            ..d()
        })
        .is_ok());
        bad(
            ArithmeticConfig {
                correct_reward: f64::NAN,
                ..d()
            },
            "correct_reward must be finite",
        );
        bad(
            ArithmeticConfig {
                format_reward: f64::INFINITY,
                ..d()
            },
            "format_reward must be finite",
        );
        // Three-digit products have up to 6 digits.
        bad(
            ArithmeticConfig {
                op: Op::Mul,
                max_completion_length: Some(5),
                ..d()
            },
            "max_completion_length must be from 6",
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_problems() {
        for split in [Split::Train, Split::Test] {
            let config = ArithmeticConfig {
                split,
                ..Default::default()
            };
            let (mut e1, mut e2) = (env(config.clone()), env(config));
            let run = |e: &mut Arithmetic, seed| -> Vec<String> {
                let mut prompts = vec![e.reset(Some(seed)).0];
                for _ in 0..20 {
                    prompts.push(e.reset(None).0);
                }
                prompts
            };
            assert_eq!(run(&mut e1, 7), run(&mut e2, 7), "{split:?}");
            assert_eq!(run(&mut e1, 7), run(&mut e1, 7), "{split:?}");
            assert_ne!(run(&mut e1, 7), run(&mut e1, 8), "{split:?}");
        }
    }

    #[test]
    fn the_test_set_is_fixed_by_split_seed_and_its_problems_are_distinct() {
        let a = env(ArithmeticConfig::default());
        let b = env(ArithmeticConfig {
            split: Split::Test,
            ..Default::default()
        });
        assert_eq!(a.test_problems(), b.test_problems());
        let c = env(ArithmeticConfig {
            split_seed: 1,
            ..Default::default()
        });
        assert_ne!(a.test_problems(), c.test_problems());
        let mut sorted = a.test_problems().to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 500);
        assert!(a
            .test_problems()
            .iter()
            .all(|&(x, y)| x < 1000 && y < 1000 && a.is_test_problem(x, y)));
    }

    #[test]
    fn train_never_draws_a_test_problem_and_test_draws_only_test_problems() {
        // One digit and 49 of 100 problems held out: a leak would show at once.
        let config = ArithmeticConfig {
            digits: 1,
            test_size: 49,
            ..Default::default()
        };
        let mut train = env(config.clone());
        let mut test = env(ArithmeticConfig {
            split: Split::Test,
            ..config
        });
        train.reset(Some(0));
        test.reset(Some(0));
        let mut train_seen = std::collections::HashSet::new();
        let mut test_seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            train.reset(None);
            let (a, b) = train.problem();
            assert!(
                !train.is_test_problem(a, b),
                "train drew test problem {a},{b}"
            );
            assert_eq!(train.prompt(), train.prompt_of(a, b));
            train_seen.insert((a, b));
            test.reset(None);
            let (a, b) = test.problem();
            assert!(test.is_test_problem(a, b));
            test_seen.insert((a, b));
        }
        // Every train problem and every test problem shows up.
        assert_eq!(train_seen.len(), 51);
        assert_eq!(test_seen.len(), 49);
        // Demonstrations come from the train split too, whatever the env's split.
        let mut rng = EnvRng::seed_from_u64(3);
        for _ in 0..2000 {
            let (prompt, completion) = test.demonstration(&mut rng);
            let (a, b) = prompt
                .trim_end_matches('=')
                .split_once('+')
                .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
                .unwrap();
            assert!(!test.is_test_problem(a, b), "{prompt}");
            assert_eq!(completion, (a + b).to_string());
        }
    }

    #[test]
    fn rewards_follow_the_rules() {
        let mut e = env(ArithmeticConfig::default());
        let p = (123, 456);
        let cases: &[(&str, f64, f64, f64)] = &[
            // completion, reward, correct, format
            ("579", 1.1, 1.0, 1.0),
            ("579  ", 1.1, 1.0, 1.0), // trailing spaces are trimmed
            ("0579", 1.1, 1.0, 1.0),  // leading zeros parse
            ("578", 0.1, 0.0, 1.0),   // wrong but well formed
            ("9999999", 0.1, 0.0, 1.0),
            ("", 0.0, 0.0, 0.0),     // nothing written
            ("   ", 0.0, 0.0, 0.0),  // only spaces
            (" 579", 0.0, 0.0, 0.0), // a leading space is not trimmed
            ("+579", 0.0, 0.0, 0.0), // u64::from_str would accept this one
            ("57 9", 0.0, 0.0, 0.0),
            ("=579", 0.0, 0.0, 0.0),
            ("5*79", 0.0, 0.0, 0.0),
        ];
        for &(completion, reward, correct, format) in cases {
            let step = answer_with(&mut e, p, completion);
            assert!(
                (step.reward - reward).abs() < 1e-12,
                "{completion:?}: reward {} != {reward}",
                step.reward
            );
            assert_eq!(step.info.get("correct"), Some(correct), "{completion:?}");
            assert_eq!(step.info.get("format"), Some(format), "{completion:?}");
            assert_eq!(
                step.info.get("completion_length"),
                Some(completion.len() as f64)
            );
            assert_eq!(step.info.get("answer_length"), Some(3.0));
            assert!(step.terminated && !step.truncated);
            assert_eq!(step.obs, "123+456=");
        }
        // Rewards come from the config; exact values with exactly representable numbers.
        let mut e = env(ArithmeticConfig {
            op: Op::Mul,
            correct_reward: 2.0,
            format_reward: 0.5,
            ..Default::default()
        });
        assert_eq!(answer_with(&mut e, (999, 999), "998001").reward, 2.5);
        assert_eq!(answer_with(&mut e, (999, 999), "998002").reward, 0.5);
        assert_eq!(answer_with(&mut e, (999, 999), "99*8001").reward, 0.0);
        let step = answer_with(&mut e, (0, 7), "0");
        assert_eq!(step.reward, 2.5);
        assert_eq!(step.info.get("answer_length"), Some(1.0));
    }

    #[test]
    fn a_completion_outside_the_action_space_is_the_typed_error() {
        let mut e = env(ArithmeticConfig::default());
        // Seven characters fit; eight do not, nor do characters outside the charset.
        e.reset(Some(0));
        assert!(e.step("5790000".into()).is_ok());
        for bad in ["57x", "12345678", "579\n", "\u{665}", "-5"] {
            e.reset(Some(0));
            match e.step(bad.to_string()) {
                Err(EnvError::InvalidAction { action, space }) => {
                    assert_eq!(action, format!("{bad:?}"));
                    assert_eq!(space, "Text(0, 7, charset=0123456789+*= )");
                }
                other => panic!("{bad:?}: expected InvalidAction, got {other:?}"),
            }
            // A refused action does not end the episode.
            assert!(e.step("1".into()).is_ok());
        }
    }

    #[test]
    fn step_before_reset_and_after_done_is_the_typed_error() {
        let mut e = env(ArithmeticConfig::default());
        assert_eq!(e.step("1".into()), Err(EnvError::BEFORE_RESET));
        e.reset(Some(1));
        assert!(e.step("1".into()).unwrap().terminated);
        assert_eq!(e.step("1".into()), Err(EnvError::AFTER_DONE));
        e.reset(None);
        assert!(e.step("1".into()).is_ok());
    }

    #[test]
    fn reset_to_problem_checks_the_operands() {
        let mut e = env(ArithmeticConfig::default());
        assert_eq!(e.reset_to_problem(999, 0).unwrap().0, "999+0=".to_string());
        let err = e.reset_to_problem(1000, 0).unwrap_err();
        assert!(err.to_string().contains("below 10^3 = 1000"), "{err}");
    }

    #[test]
    fn observations_lie_in_the_observation_space() {
        for (op, digits) in [(Op::Add, 1), (Op::Mul, 3), (Op::Mul, 9)] {
            let mut e = env(ArithmeticConfig {
                op,
                digits,
                test_size: 10,
                ..Default::default()
            });
            let mut longest = 0;
            for seed in 0..500 {
                let (prompt, _) = e.reset(Some(seed));
                assert!(e.observation_space().contains(&prompt), "{prompt}");
                longest = longest.max(prompt.len());
                // The right answer always fits the action space.
                let (a, b) = e.problem();
                assert!(e.action_space().contains(&e.answer(a, b).to_string()));
            }
            assert_eq!(longest, e.observation_space().max_length, "{op} {digits}");
        }
    }

    #[test]
    fn check_env_passes() {
        for split in [Split::Train, Split::Test] {
            for op in [Op::Add, Op::Mul] {
                let mut e = env(ArithmeticConfig {
                    op,
                    split,
                    ..Default::default()
                });
                check_env(&mut e, 0, 300).unwrap();
            }
        }
    }

    #[test]
    fn the_config_reads_from_lowercase_names_and_refuses_unknown_keys() {
        // No TOML or JSON crate here: serde's own value deserializer is enough to check
        // the names (the root crate's tests read it from JSON).
        use serde::de::value::{Error, MapDeserializer};
        use serde::Deserialize;
        let read = |pairs: Vec<(&'static str, &'static str)>| {
            ArithmeticConfig::deserialize(MapDeserializer::<_, Error>::new(pairs.into_iter()))
        };
        let c = read(vec![("op", "mul"), ("split", "test")]).unwrap();
        assert_eq!((c.op, c.split, c.digits), (Op::Mul, Split::Test, 3));
        let err = read(vec![("opp", "mul")]).unwrap_err();
        assert!(err.to_string().contains("unknown field `opp`"), "{err}");
        assert!(read(vec![("op", "Add")]).is_err());
    }

    #[test]
    fn render_shows_the_prompt_then_the_completion() {
        let mut e = env(ArithmeticConfig::default());
        e.reset_to_problem(1, 2).unwrap();
        assert_eq!(e.render_ansi().unwrap(), "1+2=");
        e.step("4".into()).unwrap();
        assert_eq!(e.render_ansi().unwrap(), "1+2=4  (answer 3)");
    }
}
