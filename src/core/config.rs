//! Reading and writing the TOML settings of every run (toy and language model), so that a
//! mistake is named as a student would look for it, and a file reads as the user wrote it.
//!
//! * [`parse_toml`]: a syntax error, an unknown key or a value of the wrong type is reported
//!   with its line and its dotted key (`line 3, key ppo.learning_rate: invalid type: ...`);
//! * [`to_toml`]: numbers held as `f32` are written as the user wrote them (`0.99`, not the
//!   `0.9900000095367432` that widening to `f64` prints).

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Parses TOML into `T`; an error names the line and the key.
///
/// Unknown keys are found here rather than by serde's `deny_unknown_fields`, which does not
/// work with `#[serde(flatten)]` (the algorithms' settings flatten their shared part into
/// each learner's table): every key of the file must come back when `T` is written out.
pub fn parse_toml<T: DeserializeOwned + Serialize>(text: &str) -> Result<T> {
    let value: T = toml::from_str(text).map_err(|e| match culprit::<T>(text, &e) {
        Some(line) => at_line(text, line, e.message()),
        None => located(text, &e),
    })?;
    let file: toml::Value = toml::from_str(text).map_err(|e| located(text, &e))?;
    let read = toml::Value::try_from(&value).map_err(|e| anyhow!("invalid config: {e}"))?;
    unknown_key(&file, &read, &mut Vec::new()).map_or(Ok(value), |e| Err(e.at(text)))
}

/// The line to blame for `e` when its span covers several lines. serde reports a bad value
/// inside a flattened struct at the whole table; the culprit is the `key = value` line
/// without which the file parses (every setting has a default, so leaving one out is fine).
fn culprit<T: DeserializeOwned>(text: &str, e: &toml::de::Error) -> Option<usize> {
    let span = e.span()?;
    let first = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let last = text[..span.end.min(text.len())].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    (first..=last.min(lines.len()))
        .filter(|&l| last > first && key_at(text, l).is_some())
        .find(|&l| {
            let kept = lines.iter().enumerate().filter(|(i, _)| i + 1 != l);
            let without: Vec<&str> = kept.map(|(_, line)| *line).collect();
            toml::from_str::<T>(&without.join("\n")).is_ok()
        })
}

/// A key of the file that the settings do not have.
struct UnknownKey {
    path: Vec<String>,
    expected: Vec<String>,
}

impl UnknownKey {
    /// The error, at the key's line when it can be found.
    fn at(self, text: &str) -> anyhow::Error {
        let name = self.path.last().cloned().unwrap_or_default();
        let message = format!(
            "unknown field `{name}`, expected one of {}",
            self.expected
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let dotted = self.path.join(".");
        match (1..=text.lines().count()).find(|&l| key_at(text, l).as_deref() == Some(&dotted)) {
            Some(line) => anyhow!("invalid config: line {line}, key `{dotted}`: {message}"),
            None => anyhow!("invalid config: key `{dotted}`: {message}"),
        }
    }
}

/// The first key of `file` (at `path`) missing from `read`, the settings written back.
fn unknown_key(
    file: &toml::Value,
    read: &toml::Value,
    path: &mut Vec<String>,
) -> Option<UnknownKey> {
    let (toml::Value::Table(file), toml::Value::Table(read)) = (file, read) else {
        return None;
    };
    for (key, value) in file {
        path.push(key.clone());
        match read.get(key) {
            None => {
                return Some(UnknownKey {
                    path: path.clone(),
                    expected: read.keys().cloned().collect(),
                })
            }
            Some(known) => {
                if let Some(e) = unknown_key(value, known, path) {
                    return Some(e);
                }
            }
        }
        path.pop();
    }
    None
}

/// A TOML error as "line N, key K: message".
pub fn located(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let Some(span) = e.span() else {
        return anyhow!("invalid config: {}", e.message().trim_end());
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    at_line(text, line, e.message())
}

/// "invalid config: line N, key K: message", with the key assigned on that line if any.
fn at_line(text: &str, line: usize, message: &str) -> anyhow::Error {
    let message = message.trim_end();
    match key_at(text, line) {
        Some(key) => anyhow!("invalid config: line {line}, key `{key}`: {message}"),
        None => anyhow!("invalid config: line {line}: {message}"),
    }
}

/// The dotted key assigned on line `line` (1-based): the `[table]` above it and the name
/// before `=`.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line - 1)?.trim();
    let (name, _) = here.split_once('=')?;
    let name = name.trim().trim_matches('"');
    let table = lines[..line - 1].iter().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l.trim_matches(['[', ']']).trim())
    });
    Some(match table {
        Some(t) => format!("{t}.{name}"),
        None => name.to_string(),
    })
}

/// `value` as TOML, with `f32` numbers written as the user wrote them.
pub fn to_toml<T: Serialize>(value: &T) -> String {
    to_toml_without(value, &[])
}

/// `value` as TOML without its top-level keys (tables) named in `unused`: a run's file holds
/// only the settings that run reads.
pub fn to_toml_without<T: Serialize>(value: &T, unused: &[&str]) -> String {
    let mut v = toml::Value::try_from(value).expect("a run's settings always serialize");
    if let toml::Value::Table(t) = &mut v {
        t.retain(|key, _| !unused.contains(&key));
    }
    shorten_floats(&mut v);
    toml::to_string(&v).expect("a TOML value always prints")
}

/// Refuses a file that sets any of the top-level keys or tables in `unused` (settings this
/// run would not read), at the line that sets it; `why(name)` says why it does nothing.
pub fn refuse_unused(text: &str, unused: &[&str], why: impl Fn(&str) -> String) -> Result<()> {
    let file: toml::Value = toml::from_str(text).map_err(|e| located(text, &e))?;
    let Some(file) = file.as_table() else {
        return Ok(());
    };
    let Some(name) = unused.iter().find(|name| file.contains_key(**name)) else {
        return Ok(());
    };
    let sets = |l: &str| {
        let l = l.trim();
        let header = l.trim_start_matches('[').trim_start();
        let key = l.split(['=', '.', ']']).next().unwrap_or("").trim();
        (l.starts_with('[') && header.split(['.', ']']).next().map(str::trim) == Some(*name))
            || (!l.starts_with('[') && key == *name)
    };
    // Only lines above the first table header can set a top-level key.
    let mut in_table = false;
    let line = text.lines().position(|l| {
        let found = sets(l) && (l.trim().starts_with('[') || !in_table);
        in_table |= l.trim().starts_with('[');
        found
    });
    let what = match file[*name].is_table() {
        true => format!("table [{name}]"),
        false => format!("key `{name}`"),
    };
    match line {
        Some(i) => Err(anyhow!(
            "invalid config: line {}: {what} {}",
            i + 1,
            why(name)
        )),
        None => Err(anyhow!("invalid config: {what} {}", why(name))),
    }
}

/// Writes every float that is exactly an `f32` as the shortest decimal of that `f32` (what
/// the user typed, e.g. `0.99`); reading it back into an `f32` field gives the same bits.
/// A float that is not exactly an `f32` (an `f64` setting such as `learning_rate = 3e-4`)
/// is left as it is.
fn shorten_floats(v: &mut toml::Value) {
    match v {
        toml::Value::Float(x) => {
            let single = *x as f32;
            if f64::from(single) == *x && single.is_finite() {
                *x = format!("{single}").parse().unwrap_or(*x);
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(shorten_floats),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| shorten_floats(v)),
        _ => {}
    }
}

/// `over`'s keys written into `base`, tables merged key by key (a file's values over the
/// defaults).
pub fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(b) if b.is_table() && value.is_table() => merge(b, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// Refuses networks too large for this machine's memory before they are allocated (a
/// `hidden = [100000, 100000]` otherwise aborts the process): weights, gradients and Adam's
/// two moments, 4 bytes each, must fit in half the memory available now.
pub fn check_network_fits(what: &str, parameters: u128) -> Result<(), crate::ConfigError> {
    let bytes = parameters.saturating_mul(16);
    let available = available_memory().unwrap_or(u64::MAX / 2) as u128;
    if bytes > available / 2 {
        return Err(crate::ConfigError(format!(
            "{what}: {parameters} parameters need about {} MiB for weights, gradients and \
             optimizer state, more than half of the {} MiB of memory available; use smaller \
             layers",
            bytes >> 20,
            available >> 20
        )));
    }
    Ok(())
}

/// The memory available now, in bytes (Linux's `MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
