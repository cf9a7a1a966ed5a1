//! Inference without autodiff: generation's forward pass on plain `f32` arrays.
//!
//! Generation, evaluation and rollouts never need a gradient, yet on burn's CPU backend every
//! tensor operation pays a fixed cost (an allocation, a fresh array, one unfused loop), and a
//! decoding step of the [`Transformer`] is about 150 of them (BENCHMARKS.md). [`HostDecoder`]
//! runs the *same weights* (the parameters' own arrays; only a wide one is copied once into
//! blocks of 768 columns) as plain `f32` slices, the way a hand-written inference engine
//! does:
//!
//! * a **preallocated KV cache**, `[rows, kv_heads, capacity, d_head]` per layer: each new key
//!   and value is written in place (the tensor path concatenates the whole cache per token);
//! * **attention fused**: scores, mask, softmax and the weighted sum of the values in one
//!   loop per (row, head, query), reading q, k and v where the projection left them, with no
//!   reshapes or transposes;
//! * the **MLP's activation** applied in place on its product's output, and each **residual
//!   add** done by the matrix product itself (`x += h W`);
//! * a **vectorized `exp`** ([`exp`], shared with [`crate::kernels`]: a polynomial the compiler turns into SIMD code);
//! * logits only for each row's **last position**, the one sampling reads;
//! * scratch buffers sized once: **no allocation per token**;
//! * the rows split over the CPU's threads (rayon): rows never look at each other, so each
//!   part runs the whole step with its own cache and buffers; then the output layer for all
//!   rows at once, its columns (the vocabulary) split over the threads.
//!
//! [`Decoder`] is what [`crate::lm::generate::generate`] calls, so GRPO's and PPO's rollouts
//! and the held-out evaluation all use it: this path for an f32 model on burn's CPU backend
//! (unless the kernels are off: `kernels::set_enabled(false)`, `--kernels off`), and otherwise
//! the transformer's own tensor path (burn's kernels on wgpu and CUDA, or bf16 compute).
//! `tests/lm_infer.rs` checks that both give the same logits within 1e-5 on the GPT-2 model,
//! on Llama, Qwen2 and Qwen3 checkpoints, with left padding and finished rows. The book's
//! lm-policies chapter ("Generation without autodiff") walks through it.

use std::any::TypeId;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::model::{rope_tables, Batch, KvCache, ModelError, Norm, Seen};
use super::model::{Precision, Transformer};
use crate::kernels::{self, exp, gelu as gelu_tanh, silu};

/// Generation's forward pass, one call per step: the host path or the tensor path (module
/// docs).
pub enum Decoder<'a, B: Backend> {
    Host(Box<HostDecoder>),
    Tensors {
        model: &'a Transformer<B>,
        cache: KvCache<B>,
    },
}

impl<'a, B: Backend> Decoder<'a, B> {
    /// The fastest path for `model`: [`HostDecoder`] for an f32 model on the CPU backend with
    /// the kernels on ([`kernels::enabled`]), else the tensor path. `capacity` is the longest sequence it will see (prompt and new
    /// tokens); the host path allocates its cache for that many positions.
    pub fn new(model: &'a Transformer<B>, rows: usize, capacity: usize) -> Self {
        if kernels::enabled() && on_host::<B>() && model.precision == Precision::F32 {
            Decoder::Host(Box::new(HostDecoder::new(model, rows, capacity)))
        } else {
            Decoder::tensors(model, rows)
        }
    }

    /// The tensor path, whatever the backend: [`Transformer::hidden_cached`] with its cache.
    pub fn tensors(model: &'a Transformer<B>, rows: usize) -> Self {
        Decoder::Tensors {
            model,
            cache: KvCache::new(model.n_layers(), rows),
        }
    }

    /// Appends `batch`'s positions to what was seen and returns, for each row, the logits of
    /// its last new position: `[rows * vocab]`, row-major.
    pub fn last_logits(&mut self, batch: &Batch) -> Result<Vec<f32>, ModelError> {
        match self {
            Decoder::Host(host) => host.last_logits(batch),
            Decoder::Tensors { model, cache } => {
                let hidden = model.hidden_cached(batch, cache)?;
                let [rows, len, _] = hidden.dims();
                let logits = model.logits(hidden.narrow(1, len - 1, 1));
                Ok(logits
                    .reshape([rows * model.vocab_size()])
                    .into_data()
                    .convert::<f32>()
                    .to_vec()
                    .expect("f32 logits"))
            }
        }
    }
}

/// Whether `B` keeps its tensors in this process's memory: burn's CPU backends, NdArray and
/// (with the `flex` feature) Flex.
fn on_host<B: Backend>() -> bool {
    let b = TypeId::of::<B>();
    #[cfg(feature = "flex")]
    if b == TypeId::of::<burn::backend::Flex>() {
        return true;
    }
    b == TypeId::of::<burn::backend::NdArray>()
}

/// A weight's values, row-major: on burn's CPU backend the very array the parameter holds
/// (shared, not copied: burn's `into_data` copies a shared array one element at a time,
/// which took 40% of generation at 7M parameters), else a copy.
enum Values {
    Shared(ndarray::ArcArray<f32, ndarray::IxDyn>),
    Copied(Vec<f32>),
}

impl std::ops::Deref for Values {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Values::Shared(a) => a.as_slice().expect("checked standard layout"),
            Values::Copied(v) => v,
        }
    }
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Values {
    use burn::backend::ndarray::NdArrayTensor;
    let primitive: Box<dyn std::any::Any> = Box::new(t.clone().into_primitive().tensor());
    if let Ok(nd) = primitive.downcast::<NdArrayTensor>() {
        if let NdArrayTensor::F32(storage) = *nd {
            let array = storage.into_shared();
            if array.is_standard_layout() {
                return Values::Shared(array);
            }
        }
    }
    Values::Copied(
        t.into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 weights"),
    )
}

/// Columns per block of a wide weight (see [`Linear`]).
const BLOCK: usize = 768;

/// A linear layer `y = x W + b` with `W: [d_in, d_out]` (burn's layout), row-major.
///
/// A wide `W` (more than `2 BLOCK` columns: the MLP's first layer, 576 x 3,072 in SmolLM2)
/// is held as a copy in blocks of `BLOCK` consecutive columns, each block contiguous: the
/// matrix kernel reading 32 rows' product straight from `W`, whose rows are 3,072 floats
/// (12 KiB) apart, ran at half the speed it reaches on the blocks (BENCHMARKS.md, SmolLM2).
/// Narrower weights are the parameter's own array, one block.
struct Linear {
    blocks: Vec<Values>,
    b: Option<Values>,
    d_in: usize,
    d_out: usize,
}

impl Linear {
    fn new<B: Backend>(layer: &burn::nn::Linear<B>) -> Self {
        let [d_in, d_out] = layer.weight.dims();
        let w = values(layer.weight.val());
        let blocks = if d_out <= 2 * BLOCK {
            vec![w]
        } else {
            (0..d_out)
                .step_by(BLOCK)
                .map(|first| {
                    let width = BLOCK.min(d_out - first);
                    let block = w
                        .chunks_exact(d_out)
                        .flat_map(|row| &row[first..first + width])
                        .copied()
                        .collect();
                    Values::Copied(block)
                })
                .collect()
        };
        Self {
            blocks,
            b: layer.bias.as_ref().map(|b| values(b.val())),
            d_in,
            d_out,
        }
    }

    /// Each block with its first column: `(first, block, width)`.
    fn column_blocks(&self) -> impl Iterator<Item = (usize, &[f32], usize)> {
        self.blocks.iter().scan(0, |first, block| {
            let width = block.len() / self.d_in;
            *first += width;
            Some((*first - width, &block[..], width))
        })
    }

    /// `out = x W + b` (`add = false`) or `out += x W + b` (`add = true`, a residual add), for
    /// the `n` rows of `x: [n, d_in]`.
    fn forward(&self, x: &[f32], n: usize, out: &mut [f32], add: bool) {
        for (first, block, width) in self.column_blocks() {
            let c = &mut out[first..];
            matmul(x, block, c, [n, self.d_in, width], self.d_out, false, add);
        }
        self.add_bias(n, out);
    }

    fn add_bias(&self, n: usize, out: &mut [f32]) {
        if let Some(b) = &self.b {
            for row in out[..n * self.d_out].chunks_exact_mut(self.d_out) {
                row.iter_mut().zip(b.iter()).for_each(|(y, b)| *y += b);
            }
        }
    }
}

/// `c[n, m] = a[n, k] · b` (or `+=` with `add`), row-major with the rows of `c` `ldc` floats
/// apart, where `b` is `[k, m]`, or `[m, k]` read transposed (`b_transposed`, the tied output
/// layer `wteᵀ`), on the calling thread (one row: over all threads, [`vector_matmul`]).
fn matmul(
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    [n, k, m]: [usize; 3],
    ldc: usize,
    b_transposed: bool,
    add: bool,
) {
    if n == 0 || m == 0 {
        return;
    }
    assert!(m <= ldc && a.len() >= n * k && b.len() >= k * m);
    assert!(c.len() >= (n - 1) * ldc + m);
    if n == 1 && k * m >= 1 << 16 {
        return vector_matmul(&a[..k], b, &mut c[..m], k, b_transposed, add);
    }
    // SAFETY: the asserts above keep every index the strides reach inside the three slices.
    unsafe { gemm_raw(a, b, c.as_mut_ptr(), [n, k, m], ldc, b_transposed, add) }
}

/// [`matmul`]'s product without its checks, into a raw `c`: the `gemm` crates' f32 kernels
/// (the ones under burn-flex), whose AVX-512 kernels are 1.5-3x matrixmultiply's AVX2 ones at
/// 32-64 rows (BENCHMARKS.md, SmolLM2). They work on column-major matrices, so the row-major
/// `C = A B` is handed to them as its transpose `Cᵀ = Bᵀ Aᵀ` (as the `gemm` crate's own entry
/// point does; handed over as it is, SmolLM2 generated about 20% slower at batch 64).
/// Each argument is a pointer with its row and column strides; `read_dst` (`add`) makes it
/// `c += a b`.
///
/// # Safety
/// `a` holds `[n, k]`, `b` `[k, m]` (or `[m, k]`), and `c` is valid for writes of `n` rows
/// of `m` floats, `ldc` apart, that no other thread reads or writes meanwhile.
unsafe fn gemm_raw(
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    [n, k, m]: [usize; 3],
    ldc: usize,
    b_transposed: bool,
    add: bool,
) {
    // How far apart two consecutive elements of `b` are along k and along m.
    let (b_along_k, b_along_m) = if b_transposed {
        (1, k as isize)
    } else {
        (m as isize, 1)
    };
    gemm_f32::gemm::f32::get_gemm_fn()(
        m,
        n,
        k,
        c,
        ldc as isize, // Cᵀ [m, n]: its columns are the rows of `c`
        1,
        add,
        b.as_ptr(),
        b_along_k, // Bᵀ [m, k]
        b_along_m,
        a.as_ptr(),
        k as isize, // Aᵀ [k, n]
        1,
        1.0, // c = 1 c + 1 a b (c read only with `add`)
        1.0,
        false,
        false,
        false,
        gemm_common::Parallelism::None,
    );
}

/// [`matmul`] of one row (generation at batch 1), split over the CPU's threads so that each
/// streams its own contiguous part of `b` once (a matrix kernel would copy all of `b` into its
/// packed panels on one thread, for a single row): at batch 1 the weights' bytes are the cost.
fn vector_matmul(a: &[f32], b: &[f32], c: &mut [f32], k: usize, b_transposed: bool, add: bool) {
    let m = c.len();
    let threads = rayon::current_num_threads();
    if !add {
        c.fill(0.0);
    }
    if b_transposed {
        // b is [m, k]: column j of the product is the dot product of `a` and row j; each
        // thread takes a block of consecutive rows.
        let chunk = m.div_ceil(threads).max(64);
        c.par_chunks_mut(chunk).enumerate().for_each(|(part, out)| {
            let rows = b[part * chunk * k..].chunks_exact(k);
            out.iter_mut()
                .zip(rows)
                .for_each(|(y, row)| *y += dot(row, a));
        });
    } else {
        // b is [k, m]: each thread takes a block of consecutive rows i and sums a[i] times
        // row i into a partial product of its own; the partials are added at the end.
        let chunk = k.div_ceil(threads).max(1);
        let partials: Vec<Vec<f32>> = b[..k * m]
            .par_chunks(chunk * m)
            .zip(a[..k].par_chunks(chunk))
            .map(|(rows, xs)| {
                let mut partial = vec![0.0; m];
                for (row, &x) in rows.chunks_exact(m).zip(xs) {
                    axpy(&mut partial, x, row);
                }
                partial
            })
            .collect();
        for partial in partials {
            c.iter_mut().zip(&partial).for_each(|(y, p)| *y += p);
        }
    }
}

/// LayerNorm (GPT-2) or RMSNorm (Llama), as burn computes them, over rows of `gamma.len()`.
struct HostNorm {
    gamma: Values,
    beta: Option<Values>,
    rms: bool,
    eps: f32,
}

impl HostNorm {
    fn new<B: Backend>(norm: &Norm<B>, eps: f64) -> Self {
        match norm {
            Norm::Layer(n) => Self {
                gamma: values(n.gamma.val()),
                beta: n
                    .beta
                    .as_ref()
                    .map(|b: &Param<Tensor<B, 1>>| values(b.val())),
                rms: false,
                eps: eps as f32,
            },
            Norm::Rms(n) => Self::rms(n),
        }
    }
    fn rms<B: Backend>(n: &burn::nn::RmsNorm<B>) -> Self {
        Self {
            gamma: values(n.gamma.val()),
            beta: None,
            rms: true,
            eps: n.epsilon as f32,
        }
    }

    /// Normalizes each row of `x` into the same row of `out`.
    fn forward(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        out.chunks_exact_mut(self.gamma.len())
            .for_each(|row| self.in_place(row));
    }

    /// One row, in place: LayerNorm `(x - mean) / sqrt(var + eps) γ + β`, RMSNorm `x /
    /// sqrt(mean(x²) + eps) γ`.
    fn in_place(&self, x: &mut [f32]) {
        let d = x.len() as f32;
        let mean = if self.rms {
            0.0
        } else {
            x.iter().sum::<f32>() / d
        };
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d;
        let denom = (var + self.eps).sqrt();
        for (x, g) in x.iter_mut().zip(self.gamma.iter()) {
            *x = (*x - mean) / denom * g;
        }
        if let Some(beta) = &self.beta {
            x.iter_mut().zip(beta.iter()).for_each(|(x, b)| *x += b);
        }
    }
}

/// One transformer block's weights.
struct HostBlock {
    ln1: HostNorm,
    qkv: Linear,
    proj: Linear,
    q_norm: Option<HostNorm>,
    k_norm: Option<HostNorm>,
    ln2: HostNorm,
    fc: Linear,
    fc_out: Linear,
}

/// The model's shape, as the host path needs it.
#[derive(Clone, Copy)]
struct Shape {
    d_model: usize,
    heads: usize,
    kv_heads: usize,
    d_head: usize,
    d_ff: usize,
    vocab: usize,
    gated: bool,
}

impl Shape {
    fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.d_head
    }
}

/// The weights of a [`Transformer`] as plain arrays.
struct HostWeights {
    shape: Shape,
    wte: Values,
    wpe: Option<Values>,
    blocks: Vec<HostBlock>,
    ln_f: HostNorm,
    lm_head: Option<Linear>,
    rope_theta: f64,
    rope_scaling: Option<super::model::RopeScaling>,
}

/// [`Decoder`]'s host path; see the module docs.
pub struct HostDecoder {
    weights: HostWeights,
    /// Which cached positions are real tokens, and each row's next position id (the same
    /// record as [`KvCache`]'s).
    seen: Seen,
    capacity: usize,
    max_seq_len: usize,
    /// Row ranges, one per thread, each with its own cache and buffers.
    parts: Vec<Part>,
    /// Each new position's id, `[rows * len]`, and RoPE's tables `[rows * len, d_head]`.
    positions: Vec<i64>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    /// Every row's normed last position, `[rows, d_model]`, and its logits `[rows, vocab]`.
    last: Vec<f32>,
    logits: Vec<f32>,
}

/// Consecutive rows of the batch and everything their forward pass writes.
struct Part {
    first_row: usize,
    rows: usize,
    /// Per layer, keys and values: `[rows, kv_heads, capacity, d_head]`.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Scratch: the residual stream, a normed copy, q|k|v, attention output, MLP hidden,
    /// the gated MLP's product, the attention scores of one query.
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    ff: Vec<f32>,
    gated: Vec<f32>,
    scores: Vec<f32>,
    last: Vec<f32>,
}

impl HostDecoder {
    /// Copies `model`'s weights and allocates the cache for `rows` sequences of up to
    /// `capacity` positions (at most the model's context).
    pub fn new<B: Backend>(model: &Transformer<B>, rows: usize, capacity: usize) -> Self {
        let first = &model.blocks[0];
        let shape = Shape {
            d_model: model.d_model(),
            heads: first.n_heads,
            kv_heads: first.n_kv_heads,
            d_head: first.d_head,
            d_ff: first.fc_out.weight.dims()[0],
            vocab: model.vocab_size(),
            gated: first.gated_mlp,
        };
        let eps = model.norm_eps;
        let blocks = model
            .blocks
            .iter()
            .map(|b| HostBlock {
                ln1: HostNorm::new(&b.ln1, eps),
                qkv: Linear::new(&b.qkv),
                proj: Linear::new(&b.proj),
                q_norm: b.q_norm.as_ref().map(HostNorm::rms),
                k_norm: b.k_norm.as_ref().map(HostNorm::rms),
                ln2: HostNorm::new(&b.ln2, eps),
                fc: Linear::new(&b.fc),
                fc_out: Linear::new(&b.fc_out),
            })
            .collect();
        let weights = HostWeights {
            shape,
            wte: values(model.wte.weight.val()),
            wpe: model.wpe.as_ref().map(|e| values(e.weight.val())),
            blocks,
            ln_f: HostNorm::new(&model.ln_f, eps),
            lm_head: model.lm_head.as_ref().map(Linear::new),
            rope_theta: model.rope_theta,
            rope_scaling: model.rope_scaling.clone(),
        };
        let capacity = capacity.min(model.max_seq_len()).max(1);
        let threads = rayon::current_num_threads().clamp(1, rows.max(1));
        let per_part = rows.div_ceil(threads).max(1);
        let layers = model.n_layers();
        let cache =
            |n: usize| vec![vec![0.0; n * shape.kv_heads * capacity * shape.d_head]; layers];
        let parts = (0..rows)
            .step_by(per_part)
            .map(|first_row| {
                let n = per_part.min(rows - first_row);
                Part {
                    first_row,
                    rows: n,
                    k: cache(n),
                    v: cache(n),
                    x: Vec::new(),
                    h: Vec::new(),
                    qkv: Vec::new(),
                    att: Vec::new(),
                    ff: Vec::new(),
                    gated: Vec::new(),
                    scores: vec![0.0; capacity],
                    last: vec![0.0; n * shape.d_model],
                }
            })
            .collect();
        Self {
            weights,
            seen: Seen::new(rows),
            capacity,
            max_seq_len: model.max_seq_len(),
            parts,
            positions: Vec::new(),
            cos: Vec::new(),
            sin: Vec::new(),
            last: Vec::with_capacity(rows * shape.d_model),
            logits: vec![0.0; rows * shape.vocab],
        }
    }

    /// [`Decoder::last_logits`] on the host.
    pub fn last_logits(&mut self, batch: &Batch) -> Result<Vec<f32>, ModelError> {
        let (rows, len) = (batch.rows(), batch.len());
        if rows == 0 || len == 0 {
            return Ok(Vec::new());
        }
        let s = self.weights.shape;
        // The same checks, position ids and validity bookkeeping as the tensor path.
        self.positions.clear();
        let total = self
            .seen
            .advance(batch, self.max_seq_len, s.vocab, &mut self.positions)?;
        assert!(
            total <= self.capacity,
            "the host decoder was made for {} positions, not {total}",
            self.capacity
        );
        if self.weights.wpe.is_none() {
            rope_tables(
                &self.positions,
                s.d_head,
                self.weights.rope_theta,
                self.weights.rope_scaling.as_ref(),
                (&mut self.cos, &mut self.sin),
            );
        }
        let step = Step {
            w: &self.weights,
            batch,
            valid: &self.seen.valid,
            positions: &self.positions,
            cos: &self.cos,
            sin: &self.sin,
            len,
            total,
            capacity: self.capacity,
        };
        self.parts
            .par_iter_mut()
            .for_each(|part| part.forward(&step));
        // The logits of every row at once, the vocabulary's columns split over the threads:
        // each weight of the output layer is read once per step, for all rows (split by rows,
        // each thread would read all 28M of them for half the rows).
        self.last.clear();
        for part in &self.parts {
            self.last.extend_from_slice(&part.last);
        }
        self.weights.logits(&self.last, rows, &mut self.logits);
        Ok(self.logits.clone())
    }
}

impl HostWeights {
    /// `logits[rows, vocab] = last[rows, d_model] · W_out`, `W_out` the output layer or the
    /// tied embeddings `wteᵀ`.
    fn logits(&self, last: &[f32], rows: usize, logits: &mut [f32]) {
        let (d, vocab) = (self.shape.d_model, self.shape.vocab);
        if rows == 1 {
            // One row: the product itself is split over the threads ([`vector_matmul`]).
            return match &self.lm_head {
                Some(head) => head.forward(last, 1, logits, false),
                None => matmul(last, &self.wte, logits, [1, d, vocab], vocab, true, false),
            };
        }
        // Blocks of columns `(first, weights, width, transposed)`: the head's own blocks, or
        // 256 consecutive rows of `wte` (256 columns of `wteᵀ`).
        let blocks: Vec<(usize, &[f32], usize, bool)> = match &self.lm_head {
            Some(head) => head
                .column_blocks()
                .map(|(first, block, width)| (first, block, width, false))
                .collect(),
            None => self
                .wte
                .chunks(256 * d)
                .enumerate()
                .map(|(i, rows_of_wte)| (i * 256, rows_of_wte, rows_of_wte.len() / d, true))
                .collect(),
        };
        assert!(last.len() >= rows * d && logits.len() >= rows * vocab);
        let out = Columns(logits.as_mut_ptr());
        blocks
            .par_iter()
            .for_each(|&(first, w, width, transposed)| {
                // SAFETY: the blocks' columns never overlap, so no two threads write the same
                // float, and every row of `logits` holds `vocab >= first + width` of them.
                unsafe {
                    let c = out.at(first);
                    gemm_raw(last, w, c, [rows, d, width], vocab, transposed, false);
                }
            });
        if let Some(head) = &self.lm_head {
            head.add_bias(rows, logits);
        }
    }
}

/// A pointer into the logits that threads may share: each writes its own columns.
struct Columns(*mut f32);
// SAFETY: see `HostWeights::logits`: the threads write disjoint columns.
unsafe impl Sync for Columns {}

impl Columns {
    /// The address of row 0's column `first`.
    fn at(&self, first: usize) -> *mut f32 {
        // SAFETY: callers pass a column inside the first row.
        unsafe { self.0.add(first) }
    }
}

/// What every part reads during one step.
struct Step<'a> {
    w: &'a HostWeights,
    batch: &'a Batch,
    valid: &'a [Vec<bool>],
    positions: &'a [i64],
    cos: &'a [f32],
    sin: &'a [f32],
    /// New positions per row, and positions seen after them.
    len: usize,
    total: usize,
    capacity: usize,
}

impl Part {
    /// The forward pass of this part's rows over the step's new positions: writes their
    /// keys and values into the cache and each row's normed last position into `last`.
    fn forward(&mut self, step: &Step) {
        let w = step.w;
        let s = w.shape;
        let (d, len) = (s.d_model, step.len);
        let n = self.rows * len;
        let d_fc = if s.gated { 2 * s.d_ff } else { s.d_ff };
        // Buffers grow to the largest step (the prompt) once and are reused after.
        for (buf, size) in [
            (&mut self.x, n * d),
            (&mut self.h, n * d),
            (&mut self.qkv, n * s.qkv_width()),
            (&mut self.att, n * s.heads * s.d_head),
            (&mut self.ff, n * d_fc),
            (&mut self.gated, n * s.d_ff),
        ] {
            buf.resize(size, 0.0);
        }
        // Token embeddings, plus learned positions (GPT-2).
        for r in 0..self.rows {
            let row = self.first_row + r;
            for p in 0..len {
                let i = r * len + p;
                let token = step.batch.tokens[row][p] as usize;
                let x = &mut self.x[i * d..(i + 1) * d];
                x.copy_from_slice(&w.wte[token * d..(token + 1) * d]);
                if let Some(wpe) = &w.wpe {
                    let pos = step.positions[row * len + p] as usize;
                    x.iter_mut().zip(&wpe[pos * d..]).for_each(|(x, e)| *x += e);
                }
            }
        }
        for (layer, b) in w.blocks.iter().enumerate() {
            // Attention: x += proj(attend(qkv(ln1(x)))).
            b.ln1.forward(&self.x[..n * d], &mut self.h[..n * d]);
            b.qkv.forward(&self.h, n, &mut self.qkv, false);
            self.heads_in_place(step, b);
            self.store_kv(step, layer);
            self.attend(step, layer);
            b.proj.forward(&self.att, n, &mut self.x, true);
            // MLP: x += fc_out(act(fc(ln2(x)))).
            b.ln2.forward(&self.x[..n * d], &mut self.h[..n * d]);
            b.fc.forward(&self.h, n, &mut self.ff, false);
            if s.gated {
                // SwiGLU: silu(x W_gate) * (x W_up), the gate's columns first.
                for (g, f) in self
                    .gated
                    .chunks_exact_mut(s.d_ff)
                    .zip(self.ff.chunks_exact(d_fc))
                {
                    let (gate, up) = f.split_at(s.d_ff);
                    for ((g, a), u) in g.iter_mut().zip(gate).zip(up) {
                        *g = silu(*a) * u;
                    }
                }
                b.fc_out.forward(&self.gated, n, &mut self.x, true);
            } else {
                self.ff.iter_mut().for_each(|v| *v = gelu_tanh(*v));
                b.fc_out.forward(&self.ff, n, &mut self.x, true);
            }
        }
        // The final norm, only at each row's last new position (the logits read no other).
        for r in 0..self.rows {
            let i = r * len + len - 1;
            let last = &mut self.last[r * d..(r + 1) * d];
            last.copy_from_slice(&self.x[i * d..(i + 1) * d]);
            w.ln_f.in_place(last);
        }
    }

    /// Qwen3's per-head q/k norms, then the rotary embedding (Llama), on the q and k columns
    /// of `qkv`, in place.
    fn heads_in_place(&mut self, step: &Step, b: &HostBlock) {
        let s = step.w.shape;
        let (dh, width) = (s.d_head, s.qkv_width());
        let rope = step.w.wpe.is_none();
        for (i, row) in self.qkv.chunks_exact_mut(width).enumerate() {
            // Row i of this part is global row first_row + i / len.
            let g = (self.first_row + i / step.len) * step.len + i % step.len;
            for h in 0..s.heads + s.kv_heads {
                let head = &mut row[h * dh..(h + 1) * dh];
                let norm = if h < s.heads { &b.q_norm } else { &b.k_norm };
                if let Some(norm) = norm {
                    norm.in_place(head);
                }
                if rope {
                    let (cos, sin) = (
                        &step.cos[g * dh..(g + 1) * dh],
                        &step.sin[g * dh..(g + 1) * dh],
                    );
                    rotate(head, cos, sin);
                }
            }
        }
    }

    /// Copies the new positions' keys and values into layer `layer`'s cache.
    fn store_kv(&mut self, step: &Step, layer: usize) {
        let s = step.w.shape;
        let (dh, width, cap) = (s.d_head, s.qkv_width(), step.capacity);
        let first_slot = step.total - step.len;
        for r in 0..self.rows {
            for p in 0..step.len {
                let row = &self.qkv[(r * step.len + p) * width..][..width];
                for g in 0..s.kv_heads {
                    let at = ((r * s.kv_heads + g) * cap + first_slot + p) * dh;
                    let k = (s.heads + g) * dh;
                    let v = (s.heads + s.kv_heads + g) * dh;
                    self.k[layer][at..at + dh].copy_from_slice(&row[k..k + dh]);
                    self.v[layer][at..at + dh].copy_from_slice(&row[v..v + dh]);
                }
            }
        }
    }

    /// Causal attention over the cache, fused: for each row, head and new position, the
    /// scores `q·k / sqrt(d_head)` of the positions it may see (earlier or equal, real
    /// tokens), their softmax and the weighted sum of the values, into `att`.
    fn attend(&mut self, step: &Step, layer: usize) {
        let s = step.w.shape;
        let (dh, width, cap, total) = (s.d_head, s.qkv_width(), step.capacity, step.total);
        let scale = 1.0 / (dh as f32).sqrt();
        let group = s.heads / s.kv_heads;
        for r in 0..self.rows {
            let valid = &step.valid[self.first_row + r];
            for p in 0..step.len {
                let q_abs = total - step.len + p;
                let i = r * step.len + p;
                for h in 0..s.heads {
                    let q = &self.qkv[i * width + h * dh..][..dh];
                    let g = h / group;
                    let keys = &self.k[layer][(r * s.kv_heads + g) * cap * dh..];
                    let vals = &self.v[layer][(r * s.kv_heads + g) * cap * dh..];
                    let out = &mut self.att[i * s.heads * dh + h * dh..][..dh];
                    out.fill(0.0);
                    // ANCHOR: lm_host_attention
                    // Row r's query p, head h: it sees earlier or equal positions that are real.
                    let seen = |k: usize| k <= q_abs && valid[k];
                    if !(0..total).any(seen) {
                        // A pad's own query sees nothing; the tensor path's mask then gives
                        // every position the same weight. Its output is never read.
                        for k in 0..total {
                            axpy(out, 1.0 / total as f32, &vals[k * dh..(k + 1) * dh]);
                        }
                        continue;
                    }
                    let scores = &mut self.scores[..=q_abs];
                    let mut max = f32::NEG_INFINITY;
                    for (k, sc) in scores.iter_mut().enumerate() {
                        *sc = if seen(k) {
                            dot(q, &keys[k * dh..(k + 1) * dh]) * scale
                        } else {
                            f32::NEG_INFINITY
                        };
                        max = max.max(*sc);
                    }
                    let mut sum = 0.0;
                    for sc in scores.iter_mut() {
                        *sc = if *sc == f32::NEG_INFINITY {
                            0.0
                        } else {
                            exp(*sc - max)
                        };
                        sum += *sc;
                    }
                    for (k, sc) in scores.iter().enumerate() {
                        if *sc > 0.0 {
                            axpy(out, sc / sum, &vals[k * dh..(k + 1) * dh]);
                        }
                    }
                    // ANCHOR_END: lm_host_attention
                }
            }
        }
    }
}

/// Whether this CPU has AVX2 and FMA (checked once; the answer is cached): the loops below
/// then run as copies compiled for them, 8 lanes wide with fused multiply-adds.
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `a · b`, summed in 32 lanes (independent sums the compiler keeps in vector registers), then
/// across them.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has the features `dot_avx2` is compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b, |acc, a, b| acc + a * b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b, |acc, a, b| a.mul_add(b, acc))
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32], madd: impl Fn(f32, f32, f32) -> f32) -> f32 {
    const LANES: usize = 32;
    let mut lanes = [0.0f32; LANES];
    let (a_lanes, b_lanes) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut tail = 0.0;
    for (a, b) in a_lanes.remainder().iter().zip(b_lanes.remainder()) {
        tail = madd(tail, *a, *b);
    }
    for (a, b) in a_lanes.zip(b_lanes) {
        for l in 0..LANES {
            lanes[l] = madd(lanes[l], a[l], b[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y += x w`.
fn axpy(y: &mut [f32], x: f32, w: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has the features `axpy_avx2` is compiled for.
        return unsafe { axpy_avx2(y, x, w) };
    }
    y.iter_mut().zip(w).for_each(|(y, w)| *y += x * w);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn axpy_avx2(y: &mut [f32], x: f32, w: &[f32]) {
    y.iter_mut()
        .zip(w)
        .for_each(|(y, w)| *y = x.mul_add(*w, *y));
}

/// RoPE on one head: `x cos + rotate_half(x) sin`, `rotate_half([a, b]) = [-b, a]`.
fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    for i in 0..half {
        let (a, b) = (x[i], x[i + half]);
        x[i] = a * cos[i] - b * sin[i];
        x[i + half] = b * cos[i + half] + a * sin[i + half];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row through [`vector_matmul`] (threads over parts of `b`) gives what the matrix
    /// kernel gives for that row, with `b` as stored and transposed, written and added.
    #[test]
    fn one_row_split_over_threads_as_the_matrix_kernel_computes_it() {
        let (k, m) = (96, 1000); // k * m above the threshold of the one-row path
        let value = |i: usize| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5;
        let a: Vec<f32> = (0..2 * k).map(value).collect();
        let b: Vec<f32> = (0..k * m).map(|i| value(i + 17)).collect();
        for b_transposed in [false, true] {
            for add in [false, true] {
                let start: Vec<f32> = (0..2 * m).map(|i| value(i + 5)).collect();
                // Two rows take the matrix kernel; the first of them alone takes the one-row path.
                let mut two = start.clone();
                matmul(&a, &b, &mut two, [2, k, m], m, b_transposed, add);
                let mut one = start[..m].to_vec();
                matmul(&a[..k], &b, &mut one, [1, k, m], m, b_transposed, add);
                let worst = one
                    .iter()
                    .zip(&two[..m])
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-5,
                    "transposed {b_transposed}, add {add}: {worst}"
                );
            }
        }
    }
}
