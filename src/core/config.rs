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
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| located(text, &e))
}

/// A TOML error as "line N, key K: message".
pub fn located(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return anyhow!("invalid config: {message}");
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
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
    let mut v = toml::Value::try_from(value).expect("a run's settings always serialize");
    shorten_floats(&mut v);
    toml::to_string(&v).expect("a TOML value always prints")
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
