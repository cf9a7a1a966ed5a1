//! Prompts from a file: a dataset in TRL's two prompt formats, one row per line of JSON Lines.
//!
//! ```text
//! {"prompt": "What is 12 + 30?", "answer": "42"}                                   standard
//! {"prompt": [{"role": "user", "content": "What is 12 + 30?"}], "answer": "42"}    conversational
//! ```
//!
//! Every other key of a row is a column that the reward functions read (`answer` above), as
//! TRL's `GRPOTrainer` hands a dataset's extra columns to its reward functions. A
//! conversational prompt is written with the model's chat template, ending where the
//! assistant's answer begins; a standard one is read raw, or as the user's message of a
//! conversation when the run asks for the template. A row that is not a JSON object, has no
//! `prompt`, or whose prompt is neither a string nor a list of `{role, content}` messages is
//! refused with the file, the line and the column.

use std::path::Path;

use serde_json::{Map, Value};

use super::chat::{ChatTemplate, Message};

/// A row's prompt, in one of TRL's two formats.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Standard: the text itself.
    Text(String),
    /// Conversational: messages, the last one usually the user's.
    Conversation(Vec<Message>),
}

impl Prompt {
    /// The text the model reads. A conversation goes through `template` (and needs one); a
    /// text is read raw without a template, or as the user's message with one.
    pub fn render(&self, template: Option<&ChatTemplate>) -> anyhow::Result<String> {
        match (self, template) {
            (Prompt::Text(text), None) => Ok(text.clone()),
            (Prompt::Text(text), Some(t)) => t.render(&[Message::new("user", text)], true),
            (Prompt::Conversation(messages), Some(t)) => t.render(messages, true),
            (Prompt::Conversation(_), None) => anyhow::bail!(
                "a conversational prompt (or a run's chat_template) needs the model's chat \
                 template, and this model has no chat template"
            ),
        }
    }
}

/// One row: its prompt and its other columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub prompt: Prompt,
    /// Every key but `prompt`, as in the file.
    pub columns: Map<String, Value>,
}

impl Row {
    /// Column `name` as text: a string as it is, a number or a boolean as JSON writes it;
    /// `None` when the row has no such column (or it is null, an array or an object).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.columns.get(name)? {
            Value::String(s) => Some(s.clone()),
            v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
            _ => None,
        }
    }
}

/// A row the reader refused: where, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct DatasetError {
    /// The file (or what the text was called).
    pub source_name: String,
    /// 1-based line of the file.
    pub line: usize,
    /// 1-based column (in characters) of the line.
    pub column: usize,
    pub message: String,
}

/// The rows of a JSON Lines file, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub rows: Vec<Row>,
}

impl Dataset {
    /// Reads the JSON Lines file at `path`.
    pub fn read(path: &Path) -> Result<Self, DatasetError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError {
            source_name: name.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &name)
    }

    /// Reads JSON Lines text; `source_name` names it in errors. Blank lines are skipped.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, DatasetError> {
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let refuse = |column: usize, message: String| DatasetError {
                source_name: source_name.to_string(),
                line: i + 1,
                column,
                message,
            };
            // Where `"prompt"` is written on the line, to point at a bad prompt.
            let at_prompt = || {
                line.find("\"prompt\"")
                    .map_or(1, |byte| line[..byte].chars().count() + 1)
            };
            let value: Value = serde_json::from_str(line)
                .map_err(|e| refuse(e.column(), format!("not JSON: {e}")))?;
            let Value::Object(mut columns) = value else {
                return Err(refuse(1, "a row must be a JSON object".into()));
            };
            let prompt = match columns.remove("prompt") {
                None => return Err(refuse(1, "the row has no \"prompt\"".into())),
                Some(Value::String(text)) => Prompt::Text(text),
                Some(Value::Array(messages)) => {
                    Prompt::Conversation(conversation(messages).map_err(|m| refuse(at_prompt(), m))?)
                }
                Some(other) => {
                    return Err(refuse(
                        at_prompt(),
                        format!(
                            "\"prompt\" must be a string (standard) or a list of messages (conversational), not {}",
                            kind(&other)
                        ),
                    ))
                }
            };
            rows.push(Row { prompt, columns });
        }
        if rows.is_empty() {
            return Err(DatasetError {
                source_name: source_name.to_string(),
                line: 1,
                column: 1,
                message: "no rows".into(),
            });
        }
        Ok(Dataset { rows })
    }

    /// The same rows with a system message `text` before each conversational prompt (as
    /// Open-R1's recipes put their `SYSTEM_PROMPT`); a standard prompt has no messages to put it
    /// before, so it is refused.
    pub fn with_system(self, text: &str) -> anyhow::Result<Self> {
        self.edit_conversations("a system message", |messages| {
            messages.insert(0, Message::new("system", text))
        })
    }

    /// The same rows with worked examples before each question (a few-shot prompt): each
    /// `(question, answer)` becomes a user message and the assistant's reply, after the
    /// system message and before the row's last message. Conversational rows only.
    pub fn with_examples(self, examples: &[(String, String)]) -> anyhow::Result<Self> {
        if examples.is_empty() {
            return Ok(self);
        }
        self.edit_conversations("worked examples", |messages| {
            let at = messages.len().saturating_sub(1);
            let turns = examples
                .iter()
                .flat_map(|(q, a)| [Message::new("user", q), Message::new("assistant", a)]);
            messages.splice(at..at, turns);
        })
    }

    /// `edit` applied to every row's messages; `what` (the edit, for the error) needs
    /// conversational rows, so a standard row is refused.
    fn edit_conversations(
        mut self,
        what: &str,
        mut edit: impl FnMut(&mut Vec<Message>),
    ) -> anyhow::Result<Self> {
        for row in &mut self.rows {
            match &mut row.prompt {
                Prompt::Conversation(messages) => edit(messages),
                Prompt::Text(_) => {
                    anyhow::bail!("{what}: conversational rows only (`lm dataset --chat`)")
                }
            }
        }
        Ok(self)
    }

    /// The dataset as JSON Lines text, one row per line (keys in alphabetical order), as
    /// [`Self::parse`] reads it.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for row in &self.rows {
            let mut object = Map::new();
            let prompt = match &row.prompt {
                Prompt::Text(text) => Value::String(text.clone()),
                Prompt::Conversation(messages) => {
                    serde_json::to_value(messages).expect("messages are JSON")
                }
            };
            object.insert("prompt".into(), prompt);
            for (k, v) in &row.columns {
                object.insert(k.clone(), v.clone());
            }
            out.push_str(&Value::Object(object).to_string());
            out.push('\n');
        }
        out
    }
}

/// How [`arithmetic`] writes a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// Standard rows in the task's own notation: `{"prompt": "12+34=", "answer": "46"}`.
    Terse,
    /// Conversational rows asked in words, for a chat model:
    /// `{"prompt": [{"role": "user", "content": "What is 12 + 34?"}], "answer": "46"}`.
    Chat,
}

/// `rows` problems of the arithmetic task `task` as a dataset, each with its `answer` column
/// (and the operands `a` and `b`). From `Split::Test`, the held-out test problems in their fixed
/// order (at most `task.test_size`); from `Split::Train`, problems drawn with `seed` among the
/// others, as the task's episodes draw them.
pub fn arithmetic(
    task: &policy_lab_envs::ArithmeticConfig,
    split: policy_lab_envs::Split,
    rows: usize,
    seed: u64,
    question: Question,
) -> Result<Dataset, policy_lab_envs::EnvError> {
    use policy_lab_envs::{Arithmetic, ArithmeticConfig, Env, Split};
    let mut env = Arithmetic::new(ArithmeticConfig {
        split,
        ..task.clone()
    })?;
    let problems: Vec<(u64, u64)> = match split {
        Split::Test => env.test_problems().iter().take(rows).copied().collect(),
        Split::Train => (0..rows)
            .map(|i| {
                env.reset((i == 0).then_some(seed));
                env.problem()
            })
            .collect(),
    };
    let symbol = env.config().op.symbol();
    let rows = problems
        .into_iter()
        .map(|(a, b)| {
            let prompt = match question {
                Question::Terse => Prompt::Text(env.prompt_of(a, b)),
                Question::Chat => Prompt::Conversation(vec![Message::new(
                    "user",
                    &format!("What is {a} {symbol} {b}?"),
                )]),
            };
            let mut columns = Map::new();
            columns.insert("answer".into(), Value::String(env.answer(a, b).to_string()));
            columns.insert("a".into(), a.into());
            columns.insert("b".into(), b.into());
            Row { prompt, columns }
        })
        .collect();
    Ok(Dataset { rows })
}

/// Countdown (TinyZero's task): `rows` problems of `numbers` integers in 1..=99 and a target
/// in 1..=100 that some equation over all of them, each used once, with `+ - * /` and
/// parentheses, reaches. Each row holds `nums`, `target` and one such equation (`answer`);
/// [`super::rewards::Equation`] scores a completion's equation. The prompt asks for the work in
/// `<think>` tags and the equation in `<answer>` tags, as TinyZero's instruct prompt does.
pub fn countdown(rows: usize, numbers: usize, seed: u64, question: Question) -> Dataset {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(rows);
    while out.len() < rows {
        let nums: Vec<i64> = (0..numbers).map(|_| rng.random_range(1..=99)).collect();
        // A random order and random operations, left to right: `((a op b) op c) ...`.
        let mut order = nums.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut value = order[0];
        let mut equation = order[0].to_string();
        for &n in &order[1..] {
            let (next, op) = match rng.random_range(0..4) {
                0 => (value + n, '+'),
                1 => (value - n, '-'),
                2 => (value * n, '*'),
                _ if value % n == 0 => (value / n, '/'),
                _ => (value + n, '+'),
            };
            value = next;
            equation = format!("({equation} {op} {n})");
        }
        if !(1..=100).contains(&value) {
            continue;
        }
        let equation = equation[1..equation.len() - 1].to_string(); // the outer parentheses
        let list = nums
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let ask = format!(
            "Using the numbers [{list}], create an equation that equals {value}. You can use basic \
             arithmetic operations (+, -, *, /) and each number can only be used once. Show your \
             work in <think> </think> tags. And return the final answer in <answer> </answer> \
             tags, for example <answer> (1 + 2) / 3 </answer>."
        );
        let prompt = match question {
            Question::Terse => Prompt::Text(ask),
            Question::Chat => Prompt::Conversation(vec![Message::new("user", &ask)]),
        };
        let mut columns = Map::new();
        columns.insert("nums".into(), nums.into());
        columns.insert("target".into(), value.into());
        columns.insert("answer".into(), Value::String(equation));
        out.push(Row { prompt, columns });
    }
    Dataset { rows: out }
}

/// A conversational prompt's messages, each `{"role": str, "content": str}`.
fn conversation(messages: Vec<Value>) -> Result<Vec<Message>, String> {
    if messages.is_empty() {
        return Err("\"prompt\" is an empty list of messages".into());
    }
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let field = |key: &str| match m.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(format!(
                    "message {i} of \"prompt\" needs a string \"{key}\" (messages are {{\"role\": ..., \"content\": ...}})"
                )),
            };
            Ok(Message {
                role: field("role")?,
                content: field("content")?,
            })
        })
        .collect()
}

/// The kind of a JSON value, in words.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Every prompt of `dataset` as the model reads it, and whether the chat template wrote it: a
/// conversation goes through `template`, a text too when `chat_template` is set (as the user's
/// message), and is read raw otherwise. A prompt that needs a template the model lacks is
/// refused with its row.
pub fn render_prompts(
    dataset: &Dataset,
    template: Option<&ChatTemplate>,
    chat_template: bool,
) -> anyhow::Result<Vec<(String, bool)>> {
    dataset
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let templated = chat_template || matches!(row.prompt, Prompt::Conversation(_));
            let text = row
                .prompt
                .render(if templated { template } else { None })
                .map_err(|e| anyhow::anyhow!("row {}: {e}", i + 1))?;
            Ok((text, templated))
        })
        .collect()
}

/// A dataset's prompts as a text environment for the RL stages (`lm grpo --dataset`): each
/// episode draws a row with its seed (uniformly, with replacement) and shows its prompt as the
/// model reads it. The completion is not scored here: the run's reward functions score whole
/// batches, reading each completion's row ([`super::reward::RewardFuncs`]), so `reward` is 0.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DatasetTask {
    /// `(prompt as the model reads it, whether the chat template wrote it)` of each row.
    prompts: std::sync::Arc<Vec<(String, bool)>>,
    /// The row drawn last.
    row: usize,
}

impl DatasetTask {
    /// The task of `dataset`'s prompts, rendered as [`render_prompts`] does. Refuses an empty
    /// dataset.
    pub fn new(
        dataset: &Dataset,
        template: Option<&ChatTemplate>,
        chat_template: bool,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!dataset.rows.is_empty(), "the dataset has no rows");
        Ok(Self {
            prompts: std::sync::Arc::new(render_prompts(dataset, template, chat_template)?),
            row: 0,
        })
    }

    /// How many prompts (rows) the task has.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether it has none (never: [`DatasetTask::new`] refuses an empty dataset).
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// Starts an episode on row `row`: its prompt as the model reads it.
    pub fn show(&mut self, row: usize) -> String {
        self.row = row;
        self.prompts[row].0.clone()
    }

    /// Whether the chat template wrote the prompt of the row shown last.
    pub fn templated(&self) -> bool {
        self.prompts[self.row].1
    }

    /// The prompts as the model reads them, in the dataset's order.
    pub fn prompts(&self) -> impl Iterator<Item = &str> {
        self.prompts.iter().map(|(text, _)| text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn both_formats_keep_their_other_columns() {
        let text = r#"{"prompt": "What is 1+2?", "answer": "3", "level": 1}

{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "answer": 4}
"#;
        let d = Dataset::parse(text, "t.jsonl").unwrap();
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[0].prompt, Prompt::Text("What is 1+2?".into()));
        assert_eq!(d.rows[0].text("answer").as_deref(), Some("3"));
        assert_eq!(d.rows[0].text("level").as_deref(), Some("1"));
        assert_eq!(d.rows[0].text("missing"), None);
        assert_eq!(
            d.rows[1].prompt,
            Prompt::Conversation(vec![
                Message::new("system", "Be brief."),
                Message::new("user", "2+2?")
            ])
        );
        assert_eq!(d.rows[1].text("answer").as_deref(), Some("4"));
        // Written back and read again, the same rows.
        assert_eq!(Dataset::parse(&d.to_jsonl(), "again").unwrap(), d);
    }

    #[test]
    fn a_bad_row_is_refused_with_its_line_and_column() {
        let cases = [
            (
                "{\"prompt\": \"a\"}\n{\"prompt\": 3}",
                2,
                2,
                "must be a string",
            ),
            (
                "{\"prompt\": \"a\"}\n\n{\"answer\": 1}",
                3,
                1,
                "no \"prompt\"",
            ),
            ("[1, 2]", 1, 1, "JSON object"),
            ("{\"prompt\": \"a\",}", 1, 16, "not JSON"),
            (
                "{\"x\": 1, \"prompt\": [{\"role\": \"user\"}]}",
                1,
                10,
                "\"content\"",
            ),
            ("{\"prompt\": []}", 1, 2, "empty list"),
            ("\n  \n", 1, 1, "no rows"),
        ];
        for (text, line, column, says) in cases {
            let e = Dataset::parse(text, "data.jsonl").unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert!(e.message.contains(says), "{text:?}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("data.jsonl:{line}:{column}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn arithmetic_rows_hold_their_answers_and_the_splits_do_not_meet() {
        use policy_lab_envs::{ArithmeticConfig, Split};
        let task = ArithmeticConfig {
            digits: 2,
            test_size: 100,
            ..Default::default()
        };
        let test = arithmetic(&task, Split::Test, 1000, 0, Question::Chat).unwrap();
        assert_eq!(
            test.rows.len(),
            100,
            "the test split holds test_size problems"
        );
        let train = arithmetic(&task, Split::Train, 300, 7, Question::Terse).unwrap();
        assert_eq!(train.rows.len(), 300);
        let operands = |r: &Row| (r.text("a").unwrap(), r.text("b").unwrap());
        let held_out: std::collections::HashSet<_> = test.rows.iter().map(operands).collect();
        for r in &train.rows {
            let (a, b) = operands(r);
            assert!(
                !held_out.contains(&(a.clone(), b.clone())),
                "{a}+{b} is held out"
            );
            let sum: u64 = a.parse::<u64>().unwrap() + b.parse::<u64>().unwrap();
            assert_eq!(r.text("answer").unwrap(), sum.to_string());
            assert_eq!(r.prompt, Prompt::Text(format!("{a}+{b}=")));
        }
        let Prompt::Conversation(m) = &test.rows[0].prompt else {
            panic!("a chat row is a conversation")
        };
        let (a, b) = operands(&test.rows[0]);
        assert_eq!(
            m,
            &vec![Message::new("user", &format!("What is {a} + {b}?"))]
        );
        // The same seed, the same rows.
        assert_eq!(
            arithmetic(&task, Split::Train, 300, 7, Question::Terse).unwrap(),
            train
        );
        // A system message goes before each question; standard rows have none to go before.
        let with_system = test.clone().with_system("Be brief.").unwrap();
        let Prompt::Conversation(m) = &with_system.rows[0].prompt else {
            panic!("still a conversation")
        };
        assert_eq!(m[0], Message::new("system", "Be brief."));
        assert_eq!(&m[1..], &test_messages(&test)[..]);
        assert!(train.clone().with_system("Be brief.").is_err());
        // Worked examples go after the system message, before the question.
        let shots = [("1+1?".to_string(), "<answer>2</answer>".to_string())];
        let few = with_system.with_examples(&shots).unwrap();
        let Prompt::Conversation(m) = &few.rows[0].prompt else {
            panic!("still a conversation")
        };
        assert_eq!(
            m[..3],
            [
                Message::new("system", "Be brief."),
                Message::new("user", "1+1?"),
                Message::new("assistant", "<answer>2</answer>")
            ]
        );
        assert_eq!(m[3..], test_messages(&test)[..]);
        assert!(train.with_examples(&shots).is_err());
    }

    fn test_messages(d: &Dataset) -> Vec<Message> {
        match &d.rows[0].prompt {
            Prompt::Conversation(m) => m.clone(),
            Prompt::Text(_) => panic!("a conversation"),
        }
    }

    #[test]
    fn prompts_render_raw_or_through_the_template() {
        let template = ChatTemplate {
            source: "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}".into(),
            special_tokens: BTreeMap::new(),
        };
        let text = Prompt::Text("2+2=".into());
        assert_eq!(text.render(None).unwrap(), "2+2=");
        assert_eq!(
            text.render(Some(&template)).unwrap(),
            "<user>2+2=<assistant>"
        );
        let chat = Prompt::Conversation(vec![Message::new("user", "hi")]);
        assert_eq!(chat.render(Some(&template)).unwrap(), "<user>hi<assistant>");
        assert!(chat.render(None).is_err());
    }
}
