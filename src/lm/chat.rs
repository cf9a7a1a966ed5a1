//! Chat templates: how an instruct model expects a conversation to be written.
//!
//! A checkpoint made for chat ships a Jinja template (`chat_template` in
//! `tokenizer_config.json`, or `chat_template.jinja` beside it) that turns a list of messages
//! into the exact text the model was fine-tuned on: role markers, special tokens, newlines.
//! TRL formats a conversational prompt with it (`apply_chat_template(messages,
//! add_generation_prompt=True)`: the text ends where the assistant's answer begins), then
//! tokenizes that text without adding special tokens. This module renders the same template
//! the way transformers does:
//!
//! * Jinja with `trim_blocks` and `lstrip_blocks`, and `break`/`continue` in loops
//!   ([minijinja](https://docs.rs/minijinja), a Rust implementation of Jinja2);
//! * the variables `messages`, `add_generation_prompt` and the tokenizer's special tokens
//!   (`bos_token`, `eos_token`, ...);
//! * `raise_exception(message)`, which templates call to reject a conversation (a bad role,
//!   roles out of order): rendering fails with that message;
//! * Python's string methods (`content.strip()`, `.startswith(...)`, ...), which templates
//!   use freely.
//!
//! `strftime_now` (the date, in some Llama 3 templates) is not defined: templates that test
//! `strftime_now is defined` fall back to their fixed date, so their text differs from
//! transformers' only in that date.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant` (what a template accepts is up to it).
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A checkpoint's chat template and the special tokens it may refer to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatTemplate {
    /// The Jinja source.
    pub source: String,
    /// `bos_token`, `eos_token`, `pad_token`, `unk_token` as text, where the checkpoint names
    /// them.
    pub special_tokens: BTreeMap<String, String>,
}

impl ChatTemplate {
    /// The template of the checkpoint in `dir`: `chat_template.jinja` (transformers 4.50 and
    /// later save it there), else `chat_template` in `tokenizer_config.json` (a string, or a
    /// list of named templates, of which the one named `default`); `None` when it has none.
    pub fn from_dir(dir: &Path, tokenizer_config: &serde_json::Value) -> Result<Option<Self>> {
        let jinja = dir.join("chat_template.jinja");
        let source = if jinja.exists() {
            Some(
                std::fs::read_to_string(&jinja)
                    .with_context(|| format!("reading {}", jinja.display()))?,
            )
        } else {
            match tokenizer_config.get("chat_template") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Array(named)) => {
                    let default = named
                        .iter()
                        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"));
                    match default.and_then(|t| t.get("template")).and_then(|t| t.as_str()) {
                        Some(s) => Some(s.to_string()),
                        None => bail!(
                            "tokenizer_config.json has a list of chat templates but none named \"default\""
                        ),
                    }
                }
                Some(other) => {
                    bail!("chat_template in tokenizer_config.json is {other}, not a string")
                }
            }
        };
        let Some(source) = source else {
            return Ok(None);
        };
        let mut special_tokens = BTreeMap::new();
        for key in ["bos_token", "eos_token", "pad_token", "unk_token"] {
            let token = tokenizer_config.get(key);
            let text = token.and_then(|t| t.as_str().or_else(|| t.get("content")?.as_str()));
            if let Some(text) = text {
                special_tokens.insert(key.to_string(), text.to_string());
            }
        }
        Self::new(source, special_tokens).map(Some)
    }

    /// The template `source`, with the special tokens it may name (`bos_token`, ...): an
    /// error now, not at the first prompt, if it does not parse.
    pub fn new(source: String, special_tokens: BTreeMap<String, String>) -> Result<Self> {
        let template = Self {
            source,
            special_tokens,
        };
        template.environment()?;
        Ok(template)
    }

    fn environment(&self) -> Result<Environment<'_>> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<(), minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template("chat", &self.source)
            .context("the chat template does not parse")?;
        Ok(env)
    }

    /// The text of `messages`, and with `add_generation_prompt` the start of the assistant's
    /// turn after them (transformers' `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=...)`).
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let env = self.environment()?;
        let mut context: BTreeMap<&str, minijinja::Value> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.as_str(), minijinja::Value::from(v.as_str())))
            .collect();
        let messages: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                let fields = BTreeMap::from([
                    ("role", minijinja::Value::from(m.role.as_str())),
                    ("content", minijinja::Value::from(m.content.as_str())),
                ]);
                minijinja::Value::from(fields)
            })
            .collect();
        context.insert("messages", minijinja::Value::from(messages));
        context.insert(
            "add_generation_prompt",
            minijinja::Value::from(add_generation_prompt),
        );
        let template = env.get_template("chat").expect("added above");
        template.render(context).map_err(|e| {
            // raise_exception's message, as transformers shows it (TemplateError: ...).
            match e.kind() {
                ErrorKind::InvalidOperation => anyhow::anyhow!(
                    "the chat template rejected the conversation: {}",
                    e.detail().unwrap_or("no reason given")
                ),
                _ => anyhow::anyhow!("rendering the chat template: {e:#}"),
            }
        })
    }
}

/// A task's prompts written as a conversation (TRL's conversational prompts): an optional
/// system message, then the prompt as the user's message, then the start of the assistant's
/// turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatPrompt {
    pub template: ChatTemplate,
    pub system: Option<String>,
}

impl ChatPrompt {
    /// The text the model reads for the task's prompt `prompt`.
    pub fn render(&self, prompt: &str) -> Result<String> {
        let mut messages: Vec<Message> = self
            .system
            .iter()
            .map(|s| Message::new("system", s))
            .collect();
        messages.push(Message::new("user", prompt));
        self.template.render(&messages, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chatml() -> ChatTemplate {
        ChatTemplate {
            source: "{% for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content.strip() + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}".into(),
            special_tokens: BTreeMap::new(),
        }
    }

    #[test]
    fn a_conversation_ends_where_the_assistant_begins() {
        let text = chatml()
            .render(&[Message::new("user", " 2+2= ")], true)
            .unwrap();
        assert_eq!(
            text,
            "<|im_start|>user\n2+2=<|im_end|>\n<|im_start|>assistant\n"
        );
        let text = chatml()
            .render(&[Message::new("user", "hi")], false)
            .unwrap();
        assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n");
    }

    #[test]
    fn raise_exception_is_an_error_with_its_message() {
        let t = ChatTemplate {
            source: "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}ok".into(),
            special_tokens: BTreeMap::new(),
        };
        let e = t.render(&[Message::new("tool", "x")], true).unwrap_err();
        assert!(
            e.to_string()
                .contains("Conversations must start with the user"),
            "{e}"
        );
        assert_eq!(t.render(&[Message::new("user", "x")], true).unwrap(), "ok");
    }
}
