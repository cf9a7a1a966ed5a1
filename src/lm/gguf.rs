//! GGUF files, llama.cpp's format for a whole model in one file (what llama.cpp, ollama and
//! LM Studio keep on disk): the header, the metadata, the table of tensors, and each tensor's
//! values as `f32`. What the metadata and the tensors mean for a model is
//! [`super::gguf_model`]'s business.
//!
//! ```text
//! "GGUF"  version (u32: 2 or 3)  tensor count (u64)  metadata count (u64)
//! metadata: key (string), type (u32), value            e.g. llama.block_count = 30
//! tensors:  name (string), dims (u32 n, then n u64), type (u32), offset (u64)
//! padding to `general.alignment` (32 unless the metadata says otherwise)
//! data:     each tensor at its offset, its dims innermost first
//! ```
//!
//! Strings are a `u64` length and UTF-8 bytes; everything is little-endian. A matrix that
//! PyTorch holds as `[out, in]` has the dims `[in, out]` here (innermost first): the same
//! bytes. [`Gguf::tensor`] gives the PyTorch order.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::quant::GgmlType;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Every integer type, `u8` to `i64` (a `u64` above `i64::MAX` is refused).
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
        }
    }
}

/// One entry of the tensor table.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// Innermost first, as in the file.
    pub dims: Vec<usize>,
    pub kind: GgmlType,
    /// From the start of the data section.
    pub offset: usize,
}

impl TensorInfo {
    /// The shape outermost first (PyTorch's order): the dims reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A GGUF file, read whole.
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    bytes: Vec<u8>,
    data_start: usize,
}

/// Reads the file's parts in order, naming what it was reading when the bytes run out.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            bail!("the file ends inside {what} (at byte {})", self.at);
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into()?))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into()?))
    }
    /// A count or length, which must fit what is left of the file (`unit` bytes each, at least).
    fn count(&mut self, unit: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.bytes.len() - self.at) as u64;
        if n.saturating_mul(unit as u64) > left {
            bail!("{what} says {n}, more than the file holds");
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(1, what)?;
        let bytes = self.take(n, what)?;
        String::from_utf8(bytes.to_vec()).with_context(|| format!("{what} is not UTF-8"))
    }
    /// An integer of `n` bytes.
    fn int(&mut self, n: usize, signed: bool, what: &str) -> Result<Value> {
        let b = self.take(n, what)?;
        let mut wide = [0u8; 8];
        wide[..n].copy_from_slice(b);
        if signed && b[n - 1] & 0x80 != 0 {
            wide[n..].fill(0xFF);
        }
        let v = u64::from_le_bytes(wide);
        if !signed && v > i64::MAX as u64 {
            bail!("{what} is {v}, larger than this reader holds");
        }
        Ok(Value::Int(v as i64))
    }
    fn value(&mut self, kind: u32, what: &str) -> Result<Value> {
        Ok(match kind {
            0 => self.int(1, false, what)?,
            1 => self.int(1, true, what)?,
            2 => self.int(2, false, what)?,
            3 => self.int(2, true, what)?,
            4 => self.int(4, false, what)?,
            5 => self.int(4, true, what)?,
            10 => self.int(8, false, what)?,
            11 => self.int(8, true, what)?,
            6 => Value::Float(f32::from_le_bytes(self.take(4, what)?.try_into()?) as f64),
            12 => Value::Float(f64::from_le_bytes(self.take(8, what)?.try_into()?)),
            7 => Value::Bool(self.take(1, what)?[0] != 0),
            8 => Value::String(self.string(what)?),
            9 => {
                let inner = self.u32(what)?;
                let n = self.count(1, what)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(inner, what)?);
                }
                Value::Array(items)
            }
            other => bail!("{what} has the value type {other}, which GGUF does not define"),
        })
    }
}

impl Gguf {
    /// Reads the GGUF file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(bytes).with_context(|| format!("reading the GGUF file {}", path.display()))
    }

    /// Whether `path` starts like a GGUF file.
    pub fn is_gguf(path: &Path) -> bool {
        use std::io::Read;
        let mut magic = [0u8; 4];
        path.is_file()
            && std::fs::File::open(path)
                .and_then(|mut f| f.read_exact(&mut magic))
                .is_ok()
            && &magic == b"GGUF"
    }

    /// Reads a GGUF file from its bytes.
    pub fn parse(bytes: Vec<u8>) -> Result<Self> {
        let mut r = Reader {
            bytes: &bytes,
            at: 0,
        };
        if r.take(4, "the magic number")? != b"GGUF" {
            bail!("not a GGUF file (it does not start with \"GGUF\")");
        }
        let version = r.u32("the version")?;
        if !(2..=3).contains(&version) {
            bail!("GGUF version {version}: this reader reads versions 2 and 3");
        }
        let n_tensors = r.count(8, "the tensor count")?;
        let n_metadata = r.count(8, "the metadata count")?;
        let mut metadata = BTreeMap::new();
        for i in 0..n_metadata {
            let key = r.string(&format!("metadata entry {i}'s key"))?;
            let kind = r.u32(&format!("the type of {key}"))?;
            let value = r.value(kind, &key)?;
            metadata.insert(key, value);
        }
        let mut tensors = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = r.string(&format!("tensor {i}'s name"))?;
            let n_dims = r.u32(&format!("the dims of {name}"))?;
            if n_dims > 4 {
                bail!("the tensor {name} has {n_dims} dims; GGUF allows at most 4");
            }
            let dims = (0..n_dims)
                .map(|_| r.u64(&format!("the dims of {name}")).map(|d| d as usize))
                .collect::<Result<Vec<_>>>()?;
            let kind = GgmlType::from_id(r.u32(&format!("the type of {name}"))?)
                .map_err(|e| anyhow::anyhow!("the tensor {name}: {e}"))?;
            let offset = r.u64(&format!("the offset of {name}"))? as usize;
            tensors.push(TensorInfo {
                name,
                dims,
                kind,
                offset,
            });
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(Value::Int(a)) if *a > 0 => *a as usize,
            Some(other) => bail!("general.alignment is {other:?}, not a positive integer"),
        };
        let data_start = r.at.div_ceil(alignment) * alignment;
        let data_len = bytes.len().saturating_sub(data_start);
        for t in &tensors {
            let n: usize = t.len();
            let size = t.kind.bytes_of(n).with_context(|| {
                format!(
                    "the tensor {} has {n} values, not a whole number of {} blocks",
                    t.name,
                    t.kind.name()
                )
            })?;
            if t.offset.checked_add(size).is_none_or(|end| end > data_len) {
                bail!(
                    "the tensor {} ({} bytes at offset {}) runs past the end of the file",
                    t.name,
                    size,
                    t.offset
                );
            }
        }
        Ok(Self {
            version,
            metadata,
            tensors,
            bytes,
            data_start,
        })
    }

    /// The metadata value `key`, or an error naming it.
    pub fn get(&self, key: &str) -> Result<&Value> {
        self.metadata
            .get(key)
            .with_context(|| format!("the GGUF metadata has no {key}"))
    }

    /// The integer `key` as a count, or an error naming it.
    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.get(key)? {
            Value::Int(v) if *v >= 0 => Ok(*v as usize),
            other => bail!("{key} is {}, not a count", other.kind()),
        }
    }

    /// The number `key` (an integer or a float), or an error naming it.
    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.get(key)? {
            Value::Float(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => bail!("{key} is {}, not a number", other.kind()),
        }
    }

    /// The string `key`, or an error naming it.
    pub fn str(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            other => bail!("{key} is {}, not a string", other.kind()),
        }
    }

    /// The array `key`, or an error naming it.
    pub fn array(&self, key: &str) -> Result<&[Value]> {
        match self.get(key)? {
            Value::Array(items) => Ok(items),
            other => bail!("{key} is {}, not an array", other.kind()),
        }
    }

    /// The array of strings `key`.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        self.array(key)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.as_str()),
                other => bail!("{key} holds {}, not strings", other.kind()),
            })
            .collect()
    }

    /// The array of integers `key`.
    pub fn ints(&self, key: &str) -> Result<Vec<i64>> {
        self.array(key)?
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => bail!("{key} holds {}, not integers", other.kind()),
            })
            .collect()
    }

    /// The entry of the tensor `name`.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor `name`: its shape outermost first and its values as `f32`.
    pub fn tensor(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self
            .info(name)
            .with_context(|| format!("the GGUF file has no tensor {name}"))?;
        let size = t.kind.bytes_of(t.len()).expect("checked when read");
        let start = self.data_start + t.offset;
        let values = t.kind.dequantize(&self.bytes[start..start + size]);
        Ok((t.shape(), values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 file: one metadata entry and one F32 tensor of `[2, 3]` (dims `[3, 2]`).
    fn tiny() -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // tensors
        b.extend(1u64.to_le_bytes()); // metadata
        let string = |b: &mut Vec<u8>, s: &str| {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        };
        string(&mut b, "llama.block_count");
        b.extend(4u32.to_le_bytes()); // u32
        b.extend(30u32.to_le_bytes());
        string(&mut b, "w");
        b.extend(2u32.to_le_bytes());
        b.extend(3u64.to_le_bytes());
        b.extend(2u64.to_le_bytes());
        b.extend(0u32.to_le_bytes()); // F32
        b.extend(0u64.to_le_bytes());
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        for v in 0..6 {
            b.extend((v as f32).to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_metadata_and_a_tensor_in_pytorch_order() {
        let g = Gguf::parse(tiny()).unwrap();
        assert_eq!(g.usize("llama.block_count").unwrap(), 30);
        let (shape, values) = g.tensor("w").unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn a_cut_file_is_an_error_naming_what_was_cut() {
        let mut bytes = tiny();
        bytes.truncate(bytes.len() - 4);
        let e = Gguf::parse(bytes).err().unwrap().to_string();
        assert!(
            e.contains("the tensor w") && e.contains("past the end"),
            "{e}"
        );
        // The first key's length (bytes 24 to 32) says 17 bytes; 8 are left.
        let e = Gguf::parse(tiny()[..40].to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("metadata entry 0's key says 17"), "{e}");
        // Inside the tensor count (bytes 8 to 16).
        let e = Gguf::parse(tiny()[..12].to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("the file ends inside the tensor count"), "{e}");
        // A count larger than what is left.
        let e = Gguf::parse(tiny()[..30].to_vec())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("the metadata count says 1, more than the file holds"),
            "{e}"
        );
    }

    #[test]
    fn version_2_reads_as_version_3() {
        let mut v2 = tiny();
        v2[4] = 2;
        let g = Gguf::parse(v2).unwrap();
        assert_eq!((g.version, g.usize("llama.block_count").unwrap()), (2, 30));
    }

    #[test]
    fn another_format_or_version_is_refused() {
        let e = Gguf::parse(b"GGML....".to_vec()).err().unwrap().to_string();
        assert!(e.contains("not a GGUF file"), "{e}");
        let mut v1 = tiny();
        v1[4] = 1;
        let e = Gguf::parse(v1).err().unwrap().to_string();
        assert!(e.contains("version 1"), "{e}");
    }

    #[test]
    fn missing_or_mistyped_metadata_names_the_key() {
        let g = Gguf::parse(tiny()).unwrap();
        let e = g.usize("llama.embedding_length").unwrap_err().to_string();
        assert!(e.contains("llama.embedding_length"), "{e}");
        let e = g.str("llama.block_count").unwrap_err().to_string();
        assert!(
            e.contains("llama.block_count is an integer, not a string"),
            "{e}"
        );
    }
}
