//! Reward functions as TRL takes them: each scores a batch of completions, reading the
//! columns of each completion's dataset row, and the reward of a completion is their weighted
//! sum (TRL's `reward_funcs` and `reward_weights`).
//!
//! The built-in ones are the rewards of RL from verifiable answers (Open-R1, TinyZero):
//!
//! * [`Accuracy`]: 1 when the answer extracted from the completion equals a column of the
//!   row (the content of `<answer>`, of `\boxed{}`, what follows `####`, or the last number),
//!   compared as numbers or as text; 0 otherwise;
//! * [`Format`]: 1 when the whole completion matches a regular expression (the
//!   `<think>...</think><answer>...</answer>` format), 0 otherwise;
//! * [`Length`]: 0 at a target length in characters, down to -1 at none or twice the target.
//!
//! Any closure over a [`Sample`] is a reward function too (a notebook cell writes one), and
//! [`Command`] runs an outside program (a Python verifier) on the batch.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde_json::Value;

use super::dataset::{Dataset, DatasetTask, Row};
use super::error::LmError;

/// One completion to score, with the prompt it answers and that prompt's row.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The prompt as the model read it (the chat template applied).
    pub prompt: &'a str,
    /// The completion's text (EOS removed).
    pub completion: &'a str,
    /// The dataset row of the prompt: its columns.
    pub row: &'a Row,
}

/// A reward function: a name (for the logs, `rewards/<name>/mean`) and a score per sample.
pub trait RewardFunction: Send + Sync {
    fn name(&self) -> &str;
    /// One reward per sample, in order.
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>>;
}

/// A closure as a reward function, named.
pub struct Closure<F> {
    pub name: String,
    pub f: F,
}

impl<F: Fn(&Sample) -> f32 + Send + Sync> RewardFunction for Closure<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        Ok(batch.iter().map(&self.f).collect())
    }
}

/// Where the answer is in a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Extract {
    /// The content of the last `<answer>...</answer>`.
    AnswerTag,
    /// The content of the last `\boxed{...}` (braces inside it balanced).
    Boxed,
    /// What follows the last `####`, to the end of its line (GSM8K's answers).
    Hashes,
    /// The last number in the completion (`-1,234.5` reads as -1234.5).
    LastNumber,
}

impl Extract {
    /// The answer in `completion`, trimmed; `None` when there is none.
    pub fn answer(self, completion: &str) -> Option<String> {
        let found = match self {
            Extract::AnswerTag => {
                let end = completion.rfind("</answer>")?;
                let start = completion[..end].rfind("<answer>")? + "<answer>".len();
                completion[start..end].to_string()
            }
            Extract::Boxed => {
                let start = completion.rfind("\\boxed{")? + "\\boxed{".len();
                let mut depth = 1;
                let mut end = None;
                for (i, c) in completion[start..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(start + i);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                completion[start..end?].to_string()
            }
            Extract::Hashes => {
                let start = completion.rfind("####")? + "####".len();
                completion[start..].lines().next().unwrap_or("").to_string()
            }
            Extract::LastNumber => last_number(completion)?,
        };
        let found = found.trim();
        (!found.is_empty()).then(|| found.to_string())
    }
}

/// The last number written in `text`, commas between digits removed.
fn last_number(text: &str) -> Option<String> {
    static NUMBER: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let number = NUMBER.get_or_init(|| Regex::new(r"-?\d(?:[\d,]*\d)?(?:\.\d+)?").unwrap());
    let m = number.find_iter(text).last()?;
    Some(m.as_str().replace(',', ""))
}

/// `text` as a number: commas, spaces and a leading `$` ignored.
fn as_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .trim_start_matches('$')
        .chars()
        .filter(|c| *c != ',' && !c.is_whitespace())
        .collect();
    cleaned.parse().ok()
}

/// 1 when the extracted answer equals column `column` of the row, else 0 (also when there is
/// no answer, or the row has no such column).
#[derive(Clone, Debug)]
pub struct Accuracy {
    pub extract: Extract,
    pub column: String,
    /// Compare as numbers (`1,000`, `1000` and `1000.0` are equal) or as trimmed text.
    pub numeric: bool,
}

impl Accuracy {
    fn one(&self, s: &Sample) -> f32 {
        let (Some(answer), Some(expected)) =
            (self.extract.answer(s.completion), s.row.text(&self.column))
        else {
            return 0.0;
        };
        let equal = if self.numeric {
            match (as_number(&answer), as_number(&expected)) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                _ => false,
            }
        } else {
            answer == expected.trim()
        };
        if equal {
            1.0
        } else {
            0.0
        }
    }
}

impl RewardFunction for Accuracy {
    fn name(&self) -> &str {
        "accuracy"
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        Ok(batch.iter().map(|s| self.one(s)).collect())
    }
}

/// DeepSeek-R1's and Open-R1's format: the work in `<think>` tags, then the answer in
/// `<answer>` tags, each on lines of their own.
pub const THINK_ANSWER: &str = r"<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>";

/// 1 when the whole completion matches the pattern (`.` matches newlines too), else 0.
#[derive(Clone, Debug)]
pub struct Format {
    whole: Regex,
}

impl Format {
    /// The format `pattern` (a regular expression, [`regex`]'s syntax), anchored at both ends.
    pub fn new(pattern: &str) -> Result<Self> {
        let whole = Regex::new(&format!(r"(?s)\A(?:{pattern})\z"))
            .with_context(|| format!("the format reward's pattern {pattern:?}"))?;
        Ok(Self { whole })
    }

    /// The think-then-answer format of DeepSeek-R1 and Open-R1.
    pub fn think_answer() -> Self {
        Self::new(THINK_ANSWER).expect("a valid pattern")
    }
}

impl RewardFunction for Format {
    fn name(&self) -> &str {
        "format"
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        Ok(batch
            .iter()
            .map(|s| f32::from(u8::from(self.whole.is_match(s.completion))))
            .collect())
    }
}

/// `-|chars - target| / target`, at least -1: 0 at the target length (in characters).
#[derive(Clone, Debug)]
pub struct Length {
    pub target: usize,
}

impl RewardFunction for Length {
    fn name(&self) -> &str {
        "length"
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        let target = self.target.max(1) as f32;
        Ok(batch
            .iter()
            .map(|s| {
                let chars = s.completion.chars().count() as f32;
                (-(chars - target).abs() / target).max(-1.0)
            })
            .collect())
    }
}

/// Countdown's reward (TinyZero's): 1 when the equation in the completion's last
/// `<answer>...</answer>` uses exactly the row's numbers (column `nums`), each once, with
/// `+ - * /` and parentheses, and equals its `target`; 0 otherwise.
#[derive(Clone, Debug, Default)]
pub struct Equation;

impl Equation {
    fn one(s: &Sample) -> f32 {
        let Some(text) = Extract::AnswerTag.answer(s.completion) else {
            return 0.0;
        };
        let numbers = |v: Option<&Value>| -> Option<Vec<i64>> {
            v?.as_array()?.iter().map(Value::as_i64).collect()
        };
        let (Some(mut allowed), Some(target)) = (
            numbers(s.row.columns.get("nums")),
            s.row.columns.get("target").and_then(Value::as_f64),
        ) else {
            return 0.0;
        };
        let Some((value, mut used)) = evaluate(&text) else {
            return 0.0;
        };
        allowed.sort_unstable();
        used.sort_unstable();
        f32::from(u8::from(used == allowed && (value - target).abs() < 1e-5))
    }
}

impl RewardFunction for Equation {
    fn name(&self) -> &str {
        "equation"
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        Ok(batch.iter().map(Equation::one).collect())
    }
}

/// The value of an arithmetic expression of non-negative integers, `+ - * /` and
/// parentheses (the usual precedence, left to right), and the integers it uses; `None` if it
/// is anything else or divides by zero.
fn evaluate(text: &str) -> Option<(f64, Vec<i64>)> {
    // expr := term (('+' | '-') term)*;  term := factor (('*' | '/') factor)*;
    // factor := integer | '(' expr ')'
    struct Parser<'a> {
        chars: std::iter::Peekable<std::str::Chars<'a>>,
        used: Vec<i64>,
    }
    impl Parser<'_> {
        fn peek(&mut self) -> Option<char> {
            while self.chars.next_if(|c| c.is_whitespace()).is_some() {}
            self.chars.peek().copied()
        }
        fn expr(&mut self) -> Option<f64> {
            let mut v = self.term()?;
            while let Some(op @ ('+' | '-')) = self.peek() {
                self.chars.next();
                let r = self.term()?;
                v = if op == '+' { v + r } else { v - r };
            }
            Some(v)
        }
        fn term(&mut self) -> Option<f64> {
            let mut v = self.factor()?;
            while let Some(op @ ('*' | '/')) = self.peek() {
                self.chars.next();
                let r = self.factor()?;
                if op == '/' && r == 0.0 {
                    return None;
                }
                v = if op == '*' { v * r } else { v / r };
            }
            Some(v)
        }
        fn factor(&mut self) -> Option<f64> {
            match self.peek()? {
                '(' => {
                    self.chars.next();
                    let v = self.expr()?;
                    (self.peek()? == ')').then(|| self.chars.next())?;
                    Some(v)
                }
                c if c.is_ascii_digit() => {
                    let mut digits = String::new();
                    while let Some(d) = self.chars.next_if(char::is_ascii_digit) {
                        digits.push(d);
                    }
                    let n: i64 = digits.parse().ok()?;
                    self.used.push(n);
                    Some(n as f64)
                }
                _ => None,
            }
        }
    }
    let mut p = Parser {
        chars: text.chars().peekable(),
        used: Vec::new(),
    };
    let value = p.expr()?;
    p.peek().is_none().then_some((value, p.used))
}

/// An outside program as a reward function. It reads one JSON object per completion on its
/// standard input (`prompt`, `completion` and the row's columns), one per line, and writes one
/// number per line on its standard output, in order. It fails the batch if it exits with an
/// error, writes fewer numbers or something else, or runs past `timeout`.
#[derive(Clone, Debug)]
pub struct Command {
    /// The program and its arguments (`command:python3 verify.py` gives both).
    pub program: Vec<String>,
    pub timeout: Duration,
    name: String,
}

impl Command {
    /// `command_line` split at spaces (no quoting).
    pub fn new(command_line: &str, timeout: Duration) -> Result<Self> {
        let program: Vec<String> = command_line.split_whitespace().map(String::from).collect();
        if program.is_empty() {
            bail!("the command reward needs a program: command:PROGRAM [ARGS]");
        }
        Ok(Self {
            // Named by its last word's file name (`command:verify.py`): a metric's name
            // (`rewards/command:verify.py/mean`) without spaces or folders.
            name: format!(
                "command:{}",
                std::path::Path::new(program.last().expect("not empty"))
                    .file_name()
                    .map_or_else(|| program.join("_"), |n| n.to_string_lossy().into_owned())
            ),
            program,
            timeout,
        })
    }

    /// The batch as JSON Lines, as the program reads it.
    pub fn input(batch: &[Sample]) -> String {
        let mut text = String::new();
        for s in batch {
            let mut object = s.row.columns.clone();
            object.insert("prompt".into(), Value::String(s.prompt.into()));
            object.insert("completion".into(), Value::String(s.completion.into()));
            text.push_str(&Value::Object(object).to_string());
            text.push('\n');
        }
        text
    }
}

impl RewardFunction for Command {
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, batch: &[Sample]) -> Result<Vec<f32>> {
        let mut child = std::process::Command::new(&self.program[0])
            .args(&self.program[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("{}: cannot start it", self.name))?;
        // Written from a thread: a program that answers line by line would otherwise fill
        // its output pipe while this one still writes.
        let input = Self::input(batch);
        let mut stdin = child.stdin.take().expect("piped");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(|l| l.ok())
                .collect::<Vec<String>>()
        });
        let stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
            text
        });
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{}: did not finish within {} s",
                    self.name,
                    self.timeout.as_secs_f32()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = writer.join();
        let lines = reader.join().expect("the reader thread");
        let errors = errors.join().expect("the stderr thread");
        if !status.success() {
            bail!("{}: exited with {status}: {}", self.name, errors.trim());
        }
        let numbers: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
        if numbers.len() != batch.len() {
            bail!(
                "{}: wrote {} numbers for {} completions (one per line, in order)",
                self.name,
                numbers.len(),
                batch.len()
            );
        }
        numbers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.trim().parse::<f32>().map_err(|_| {
                    anyhow::anyhow!("{}: line {} is {l:?}, not a number", self.name, i + 1)
                })
            })
            .collect()
    }
}

/// The names of the built-in reward functions, as `reward_funcs` takes them.
pub const BUILT_IN: [&str; 4] = ["accuracy", "format", "length", "equation"];

/// Whether `name` names a reward function of the text (a built-in or a command), which
/// reads a dataset's rows, rather than the task's reward or a reward model's folder.
pub fn is_text_function(name: &str) -> bool {
    BUILT_IN.contains(&name) || name.starts_with("command:")
}

/// How the built-in reward functions read a completion: a run's `[rl.rewards]` table, and
/// `lm eval --dataset`'s flags.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardSettings {
    /// `accuracy`: the column holding the right answer.
    pub answer_column: String,
    /// `accuracy`: where the answer is in a completion: `last-number`, `answer-tag`
    /// (`<answer>...</answer>`), `boxed` (`\boxed{...}`) or `hashes` (after `####`).
    pub extract: Extract,
    /// `accuracy`: compare the answers as text, not as numbers.
    pub exact: bool,
    /// `format`: the regular expression the whole completion must match (by default the
    /// think-then-answer format, [`Format::think_answer`]).
    pub format: String,
    /// `length`: the length, in characters, that earns 0 (less or more earns down to -1).
    pub length_target: usize,
    /// `command:...`: seconds a command may take over one batch before the batch fails.
    pub command_timeout_s: u64,
}

impl Default for RewardSettings {
    fn default() -> Self {
        Self {
            answer_column: "answer".into(),
            extract: Extract::LastNumber,
            exact: false,
            format: THINK_ANSWER.into(),
            length_target: 200,
            command_timeout_s: 60,
        }
    }
}

impl RewardSettings {
    /// The reward function `name` names: a built-in ([`BUILT_IN`]) or `command:PROGRAM
    /// [ARGS]`; `None` for any other name (the task's own reward, a reward model's folder).
    pub fn function(&self, name: &str) -> Result<Option<Box<dyn RewardFunction>>> {
        Ok(Some(match name {
            "accuracy" => Box::new(Accuracy {
                extract: self.extract,
                column: self.answer_column.clone(),
                numeric: !self.exact,
            }),
            "format" => Box::new(Format::new(&self.format)?),
            "length" => Box::new(Length {
                target: self.length_target,
            }),
            "equation" => Box::new(Equation),
            _ => match name.strip_prefix("command:") {
                Some(line) => Box::new(Command::new(
                    line,
                    Duration::from_secs(self.command_timeout_s),
                )?),
                None => return Ok(None),
            },
        }))
    }
}

/// Reward functions with their weights: the reward of a completion is
/// `sum_i weight_i * reward_i` (TRL's `reward_weights`, 1 each by default).
#[derive(Default)]
pub struct Rewards {
    pub functions: Vec<(Box<dyn RewardFunction>, f32)>,
}

/// The rewards of one batch: each function's, and the weighted sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// `(name, one reward per completion)` for each function, in order.
    pub per_function: Vec<(String, Vec<f32>)>,
    /// The weighted sum per completion: the reward the advantages are computed from.
    pub total: Vec<f32>,
}

impl Rewards {
    /// Adds `function` with `weight`.
    pub fn with(mut self, function: impl RewardFunction + 'static, weight: f32) -> Self {
        self.functions.push((Box::new(function), weight));
        self
    }

    /// The functions `names` names with `weights` (1 each when `None`), as
    /// [`RewardSettings::function`] reads a name; a name it does not know is refused.
    pub fn from_names(
        names: &[String],
        weights: Option<&[f32]>,
        settings: &RewardSettings,
    ) -> Result<Self> {
        let mut out = Self::default();
        for (i, name) in names.iter().enumerate() {
            let Some(function) = settings.function(name)? else {
                bail!(
                    "unknown reward function {name:?}: the built-in ones are {}, or \
                     command:PROGRAM [ARGS]",
                    BUILT_IN.join(", ")
                );
            };
            out.functions
                .push((function, weights.map_or(1.0, |w| w[i])));
        }
        Ok(out)
    }

    /// Scores `batch` with every function.
    pub fn score(&self, batch: &[Sample]) -> Result<Scores> {
        let mut total = vec![0.0f32; batch.len()];
        let mut per_function = Vec::new();
        for (function, weight) in &self.functions {
            let r = function.score(batch)?;
            if r.len() != batch.len() {
                bail!(
                    "the reward function {} gave {} rewards for {} completions",
                    function.name(),
                    r.len(),
                    batch.len()
                );
            }
            for (t, x) in total.iter_mut().zip(&r) {
                *t += weight * x;
            }
            per_function.push((function.name().to_string(), r));
        }
        Ok(Scores {
            per_function,
            total,
        })
    }
}

impl Scores {
    /// TRL's log entries for these rewards: `rewards/<name>/mean` and `rewards/<name>/std`
    /// for each function (the standard deviation with Bessel's correction, as torch's
    /// `std`), and `reward` and `reward_std` for the weighted sum.
    pub fn log_entries(&self) -> Vec<(String, f64)> {
        let stats = |v: &[f32]| {
            let n = v.len() as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
            (mean, if v.len() > 1 { var.sqrt() } else { 0.0 })
        };
        let mut out = Vec::new();
        for (name, r) in &self.per_function {
            let (mean, std) = stats(r);
            out.push((format!("rewards/{name}/mean"), mean));
            out.push((format!("rewards/{name}/std"), std));
        }
        let (mean, std) = stats(&self.total);
        out.push(("reward".into(), mean));
        out.push(("reward_std".into(), std));
        out
    }
}

/// Reward functions of a completion's text, and the dataset its prompts come from.
pub struct TextRewards {
    pub functions: Rewards,
    /// The rows the functions read, in the dataset's order.
    pub dataset: std::sync::Arc<Dataset>,
    /// The prompts as the model reads them (the task the completions answer).
    pub task: DatasetTask,
}

impl TextRewards {
    /// Each function's rewards of `completions` (text, EOS removed) of the prompts of the
    /// dataset rows `rows`, and their weighted sum.
    pub fn score(&self, rows: &[Option<usize>], completions: &[String]) -> Result<Scores, LmError> {
        let prompts: Vec<&str> = self.task.prompts().collect();
        let mut batch = Vec::with_capacity(rows.len());
        for (row, completion) in rows.iter().zip(completions) {
            let row = row.ok_or_else(|| {
                LmError::Reward("the text's reward functions need a dataset's prompts".into())
            })?;
            batch.push(Sample {
                prompt: prompts[row],
                completion,
                row: &self.dataset.rows[row],
            });
        }
        self.functions
            .score(&batch)
            .map_err(|e| LmError::Reward(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::dataset::{Dataset, Prompt};

    fn row(answer: &str) -> Row {
        Row {
            prompt: Prompt::Text("q".into()),
            columns: serde_json::from_str(&format!("{{\"answer\": {answer}}}")).unwrap(),
        }
    }

    /// One sample of `row` per completion.
    fn samples<'a>(row: &'a Row, completions: &[&'a str]) -> Vec<Sample<'a>> {
        completions
            .iter()
            .map(|completion| Sample {
                prompt: "q",
                completion,
                row,
            })
            .collect()
    }

    #[test]
    fn each_extractor_finds_its_answer_or_none() {
        let cases = [
            (
                Extract::AnswerTag,
                "<answer>1</answer> then <answer> 42 </answer>",
                Some("42"),
            ),
            (Extract::AnswerTag, "<answer>unclosed", None),
            (
                Extract::Boxed,
                "so \\boxed{\\frac{1}{2}}.",
                Some("\\frac{1}{2}"),
            ),
            (Extract::Boxed, "\\boxed{1} and \\boxed{7}", Some("7")),
            (Extract::Boxed, "\\boxed{open", None),
            (Extract::Hashes, "work\n#### 1,234\nmore", Some("1,234")),
            (Extract::LastNumber, "15 + 43 = 58.", Some("58")),
            (Extract::LastNumber, "it is -1,234.5 or so", Some("-1234.5")),
            (Extract::LastNumber, "no digits", None),
        ];
        for (extract, text, want) in cases {
            assert_eq!(
                extract.answer(text).as_deref(),
                want,
                "{extract:?} on {text:?}"
            );
        }
    }

    #[test]
    fn accuracy_compares_numbers_or_text() {
        let numeric = Accuracy {
            extract: Extract::LastNumber,
            column: "answer".into(),
            numeric: true,
        };
        let r = row("\"1,000\"");
        let batch = samples(&r, &["It is 1000.0", "It is 999", "no idea"]);
        assert_eq!(numeric.score(&batch).unwrap(), vec![1.0, 0.0, 0.0]);
        let exact = Accuracy {
            extract: Extract::AnswerTag,
            column: "answer".into(),
            numeric: false,
        };
        let r = row("\"Paris\"");
        let batch = samples(&r, &["<answer> Paris </answer>", "<answer>paris</answer>"]);
        assert_eq!(exact.score(&batch).unwrap(), vec![1.0, 0.0]);
        // A row without the column scores 0.
        let none = Row {
            prompt: Prompt::Text("q".into()),
            columns: Default::default(),
        };
        let batch = samples(&none, &["3"]);
        assert_eq!(numeric.score(&batch).unwrap(), vec![0.0]);
    }

    #[test]
    fn format_matches_the_whole_completion_and_length_peaks_at_its_target() {
        let f = Format::think_answer();
        let r = row("1");
        let good = "<think>\n2 and 2\nmake 4\n</think>\n<answer>\n4\n</answer>";
        let extra = format!("{good} extra");
        assert_eq!(
            f.score(&samples(&r, &[good, &extra, "<answer>\n4\n</answer>"]))
                .unwrap(),
            vec![1.0, 0.0, 0.0]
        );
        assert!(Format::new("(unclosed").is_err());
        let l = Length { target: 4 };
        assert_eq!(
            l.score(&samples(&r, &["abcd", "ab", "abcdef", "", "abcdefghijkl"]))
                .unwrap(),
            vec![0.0, -0.5, -0.5, -1.0, -1.0]
        );
    }

    #[test]
    fn weighted_sum_and_trl_log_entries() {
        let r = row("5");
        let rewards = Rewards::default()
            .with(
                Accuracy {
                    extract: Extract::LastNumber,
                    column: "answer".into(),
                    numeric: true,
                },
                2.0,
            )
            .with(
                Closure {
                    name: "short".into(),
                    f: |s: &Sample| -(s.completion.len() as f32),
                },
                0.5,
            );
        let scores = rewards.score(&samples(&r, &["5", "6", "it is 5"])).unwrap();
        assert_eq!(scores.total, vec![2.0 - 0.5, -0.5, 2.0 - 3.5]);
        let log: std::collections::HashMap<String, f64> =
            scores.log_entries().into_iter().collect();
        assert!((log["rewards/accuracy/mean"] - 2.0 / 3.0).abs() < 1e-9);
        // torch.tensor([1., 0., 1.]).std() = 0.57735
        assert!((log["rewards/accuracy/std"] - 0.577_350_269).abs() < 1e-6);
        assert!((log["rewards/short/mean"] - (-3.0)).abs() < 1e-9);
        assert!((log["reward"] - (1.5 - 0.5 - 1.5) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn every_countdown_rows_own_equation_scores_1_and_a_wrong_one_0() {
        use crate::lm::dataset::{countdown, Question};
        let d = countdown(200, 4, 3, Question::Chat);
        assert_eq!(d.rows.len(), 200);
        let mut targets = std::collections::HashSet::new();
        for row in &d.rows {
            let equation = row.text("answer").unwrap();
            let right = format!("<think>\nsome work\n</think>\n<answer> {equation} </answer>");
            assert_eq!(
                Equation.score(&samples(row, &[&right])).unwrap(),
                vec![1.0],
                "{equation} on {:?}",
                row.columns
            );
            targets.insert(row.columns["target"].as_i64().unwrap());
        }
        assert!(
            targets.len() > 30,
            "targets spread over 1..=100: {targets:?}"
        );
        let row = &countdown(1, 3, 0, Question::Terse).rows[0];
        let nums: Vec<i64> = row.columns["nums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let (a, b, c) = (nums[0], nums[1], nums[2]);
        let target = row.columns["target"].as_i64().unwrap();
        let cases = [
            (format!("<answer>{a} + {b}</answer>"), "a number left out"),
            (
                format!("<answer>{a} + {b} + {c} + {a}</answer>"),
                "a number used twice",
            ),
            (
                format!("<answer>{a} + {b} + {c} + 0.5</answer>"),
                "a number not given",
            ),
            (format!("<answer>{target}</answer>"), "the target itself"),
            (
                format!("{} = {target}", row.text("answer").unwrap()),
                "no answer tags",
            ),
            (format!("<answer>({a} + {b} * {c}</answer>"), "unbalanced"),
            (
                format!("<answer>{a} / ({b} - {b}) + {c}</answer>"),
                "division by zero",
            ),
        ];
        for (completion, why) in cases {
            assert_eq!(
                Equation.score(&samples(row, &[&completion])).unwrap(),
                vec![0.0],
                "{why}: {completion}"
            );
        }
        // Precedence and parentheses as usual.
        assert_eq!(evaluate("2 + 3 * 4").unwrap().0, 14.0);
        assert_eq!(evaluate("(2 + 3) * 4").unwrap().0, 20.0);
        assert_eq!(evaluate("8 / 4 / 2").unwrap().0, 1.0);
        assert_eq!(evaluate("10 - 4 - 3").unwrap(), (3.0, vec![10, 4, 3]));
    }

    #[test]
    fn a_command_scores_the_batch_and_its_failures_are_errors() {
        let d = Dataset::parse("{\"prompt\": \"q\", \"answer\": 7}\n", "t").unwrap();
        let r = &d.rows[0];
        let batch = samples(r, &["7", "x"]);
        // Each line's length as its reward: the program saw both lines, in order.
        let wc = Command::new("awk {print(length($0))}", Duration::from_secs(30)).unwrap();
        let want: Vec<f32> = Command::input(&batch)
            .lines()
            .map(|l| l.len() as f32)
            .collect();
        assert_eq!(wc.score(&batch).unwrap(), want);
        assert!(Command::input(&batch)
            .lines()
            .next()
            .unwrap()
            .contains("\"answer\":7"));
        let fails = Command::new("false", Duration::from_secs(30)).unwrap();
        assert!(fails
            .score(&batch)
            .unwrap_err()
            .to_string()
            .contains("exited with"));
        let short = Command::new("head -n 1", Duration::from_secs(30)).unwrap();
        assert!(short.score(&batch).is_err());
        let hangs = Command::new("sleep 30", Duration::from_millis(300)).unwrap();
        let e = hangs.score(&batch).unwrap_err().to_string();
        assert!(e.contains("did not finish within 0.3 s"), "{e}");
        assert!(Command::new("  ", Duration::from_secs(1)).is_err());
    }
}
