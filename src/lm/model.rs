//! A small decoder-only transformer, GPT-2 style: token and learned position embeddings,
//! pre-norm blocks of causal self-attention and a GELU MLP (GPT-2's tanh form), a final LayerNorm, and an output
//! layer tied to the token embedding. Read it next to the book's language-model chapter.
//!
//! ```text
//! tokens [batch, seq] → wte + wpe → n_layers × (x + attn(ln1(x)); x + mlp(ln2(x))) → ln_f → · wteᵀ → logits
//! ```
//!
//! Two things make it a policy that can be sampled from quickly and trained on batches:
//!
//! * a **padding mask**: prompts of different lengths are padded on the left, and every row
//!   says which of its positions are real ([`Batch::valid`]); positions count real tokens only,
//!   as Hugging Face does with `position_ids = cumsum(attention_mask) - 1`;
//! * a **KV cache** ([`KvCache`]): during generation each new token attends to the keys and
//!   values of all earlier positions without recomputing them.
//!
//! From about 1M parameters (`d_model = 128, n_layers = 4`, a CPU) to 100M+ (`d_model = 768,
//! n_layers = 12`, a GPU), with no change to the code.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};

/// The shape of a [`Transformer`].
#[derive(Config, Debug, PartialEq)]
pub struct TransformerConfig {
    pub vocab_size: usize,
    /// The longest sequence (prompt and completion) the model can see.
    #[config(default = 64)]
    pub max_seq_len: usize,
    #[config(default = 128)]
    pub d_model: usize,
    #[config(default = 4)]
    pub n_layers: usize,
    #[config(default = 4)]
    pub n_heads: usize,
    /// The MLP's hidden width (GPT-2: 4 × d_model).
    #[config(default = 512)]
    pub d_ff: usize,
}

impl TransformerConfig {
    /// A model with GPT-2's initialization (normal, std 0.02).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Transformer<B> {
        assert!(
            self.d_model % self.n_heads == 0,
            "d_model must be a multiple of n_heads"
        );
        let init = burn::nn::Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(init.clone())
                .init(device)
        };
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                ln1: LayerNormConfig::new(self.d_model).init(device),
                qkv: linear(self.d_model, 3 * self.d_model),
                proj: linear(self.d_model, self.d_model),
                ln2: LayerNormConfig::new(self.d_model).init(device),
                fc: linear(self.d_model, self.d_ff),
                fc_out: linear(self.d_ff, self.d_model),
                n_heads: self.n_heads,
            })
            .collect();
        Transformer {
            wte: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(init.clone())
                .init(device),
            wpe: EmbeddingConfig::new(self.max_seq_len, self.d_model)
                .with_initializer(init)
                .init(device),
            blocks,
            ln_f: LayerNormConfig::new(self.d_model).init(device),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    ln1: LayerNorm<B>,
    /// Queries, keys and values in one matrix: `[d_model, 3 d_model]`.
    qkv: Linear<B>,
    proj: Linear<B>,
    ln2: LayerNorm<B>,
    fc: Linear<B>,
    fc_out: Linear<B>,
    n_heads: usize,
}

/// The decoder-only transformer; see the module docs.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    wte: Embedding<B>,
    wpe: Embedding<B>,
    blocks: Vec<Block<B>>,
    ln_f: LayerNorm<B>,
    max_seq_len: usize,
}

/// A batch of token rows, left-padded to one length.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[rows][len]` token ids (pads included).
    pub tokens: Vec<Vec<u32>>,
    /// `[rows][len]`: whether each position holds a real token.
    pub valid: Vec<Vec<bool>>,
}

impl Batch {
    /// Left-pads `rows` with `pad` to the longest row.
    pub fn left_padded(rows: &[Vec<u32>], pad: u32) -> Self {
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut tokens = Vec::with_capacity(rows.len());
        let mut valid = Vec::with_capacity(rows.len());
        for row in rows {
            let n = len - row.len();
            tokens.push(
                std::iter::repeat_n(pad, n)
                    .chain(row.iter().copied())
                    .collect(),
            );
            valid.push(
                std::iter::repeat_n(false, n)
                    .chain(std::iter::repeat_n(true, row.len()))
                    .collect(),
            );
        }
        Self { tokens, valid }
    }
    pub fn rows(&self) -> usize {
        self.tokens.len()
    }
    pub fn len(&self) -> usize {
        self.tokens.first().map_or(0, Vec::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys and values of every layer for the positions seen so far, and which of those
/// positions are real tokens: what generation reuses at each new token.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    /// Per layer, `[batch, heads, positions, d_head]` keys and values.
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// `[rows][positions]`: whether each cached position is a real token.
    valid: Vec<Vec<bool>>,
    /// `[rows]`: the position id the next real token of each row gets.
    next_position: Vec<usize>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(n_layers: usize, rows: usize) -> Self {
        Self {
            layers: vec![None; n_layers],
            valid: vec![Vec::new(); rows],
            next_position: vec![0; rows],
        }
    }
    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What goes wrong when a batch does not fit the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error(
        "a sequence of {len} tokens is longer than the model's context of {max} (max_seq_len)"
    )]
    TooLong { len: usize, max: usize },
    #[error("token id {id} is outside the model's vocabulary of {vocab}")]
    UnknownToken { id: u32, vocab: usize },
}

impl<B: Backend> Transformer<B> {
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }
    pub fn vocab_size(&self) -> usize {
        self.wte.weight.dims()[0]
    }
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
    pub fn d_model(&self) -> usize {
        self.wte.weight.dims()[1]
    }

    /// Logits `[rows, len, vocab]` for every position of `batch`, without a cache (training
    /// and scoring).
    pub fn forward(&self, batch: &Batch) -> Result<Tensor<B, 3>, ModelError> {
        let mut cache = KvCache::new(self.n_layers(), batch.rows());
        self.forward_cached(batch, &mut cache)
    }

    /// Logits for the new positions in `batch`, appended after the positions already in
    /// `cache` (which this call extends).
    pub fn forward_cached(
        &self,
        batch: &Batch,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let hidden = self.hidden_cached(batch, cache)?;
        Ok(self.logits(hidden))
    }

    /// The last hidden states `[rows, len, d_model]` (after the final layer norm) of every
    /// position of `batch`: what the output layer reads, and what a value head reads.
    pub fn hidden(&self, batch: &Batch) -> Result<Tensor<B, 3>, ModelError> {
        let mut cache = KvCache::new(self.n_layers(), batch.rows());
        self.hidden_cached(batch, &mut cache)
    }

    /// The output layer: the token embedding, transposed (weight tying, as GPT-2).
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [rows, len, d] = hidden.dims();
        let wte_t = self.wte.weight.val().transpose();
        hidden
            .reshape([rows * len, d])
            .matmul(wte_t)
            .reshape([rows, len, self.vocab_size()])
    }

    /// [`Transformer::hidden`] for the new positions, extending `cache`.
    pub fn hidden_cached(
        &self,
        batch: &Batch,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>, ModelError> {
        let (rows, len) = (batch.rows(), batch.len());
        let total = cache.len() + len;
        if total > self.max_seq_len {
            return Err(ModelError::TooLong {
                len: total,
                max: self.max_seq_len,
            });
        }
        let vocab = self.vocab_size();
        if let Some(&id) = batch
            .tokens
            .iter()
            .flatten()
            .find(|&&t| t as usize >= vocab)
        {
            return Err(ModelError::UnknownToken { id, vocab });
        }
        let device = self.wte.weight.device();

        // Position ids count real tokens only; pads get position 0 (they are masked anyway).
        let mut positions = Vec::with_capacity(rows * len);
        for r in 0..rows {
            for p in 0..len {
                if batch.valid[r][p] {
                    positions.push(cache.next_position[r] as i64);
                    cache.next_position[r] += 1;
                } else {
                    positions.push(0);
                }
            }
            cache.valid[r].extend_from_slice(&batch.valid[r]);
        }
        // The attention mask `[rows, 1, len, total]`: true where a query may NOT look: a
        // later position (causality) or a pad.
        let mut masked = Vec::with_capacity(rows * len * total);
        for r in 0..rows {
            for q in 0..len {
                let q_abs = total - len + q;
                for k in 0..total {
                    masked.push(k > q_abs || !cache.valid[r][k]);
                }
            }
        }
        let mask = Tensor::<B, 4, Bool>::from_data(
            TensorData::new(masked, [rows, 1, len, total]),
            &device,
        );
        let ids: Vec<i64> = batch.tokens.iter().flatten().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, len]), &device);
        let positions =
            Tensor::<B, 2, Int>::from_data(TensorData::new(positions, [rows, len]), &device);

        let mut x = self.wte.forward(ids) + self.wpe.forward(positions);
        for (block, layer_cache) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            x = block.forward(x, &mask, layer_cache);
        }
        Ok(self.ln_f.forward(x))
    }
}

impl<B: Backend> Block<B> {
    fn forward(
        &self,
        x: Tensor<B, 3>,
        mask: &Tensor<B, 4, Bool>,
        cache: &mut Option<(Tensor<B, 4>, Tensor<B, 4>)>,
    ) -> Tensor<B, 3> {
        let x = x.clone() + self.attention(self.ln1.forward(x), mask, cache);
        let h = gelu_tanh(rowwise(&self.fc, self.ln2.forward(x.clone())));
        x + rowwise(&self.fc_out, h)
    }

    /// Causal multi-head self-attention: `softmax(q kᵀ / sqrt(d_head) + mask) v` per head.
    fn attention(
        &self,
        x: Tensor<B, 3>,
        mask: &Tensor<B, 4, Bool>,
        cache: &mut Option<(Tensor<B, 4>, Tensor<B, 4>)>,
    ) -> Tensor<B, 3> {
        let [rows, len, d_model] = x.dims();
        let d_head = d_model / self.n_heads;
        // [rows, len, 3 d_model] → three [rows, heads, len, d_head].
        let qkv = rowwise(&self.qkv, x).reshape([rows, len, 3, self.n_heads, d_head]);
        let part = |i: usize| {
            qkv.clone()
                .narrow(2, i, 1)
                .reshape([rows, len, self.n_heads, d_head])
                .swap_dims(1, 2)
        };
        let (q, mut k, mut v) = (part(0), part(1), part(2));
        if let Some((k_old, v_old)) = cache.take() {
            k = Tensor::cat(vec![k_old, k], 2);
            v = Tensor::cat(vec![v_old, v], 2);
        }
        *cache = Some((k.clone(), v.clone()));
        let scores = q.matmul(k.swap_dims(2, 3)) / (d_head as f64).sqrt();
        // A large negative number, not -inf: a row that sees only pads (a pad's own query)
        // must not become NaN, or NaN would leak into real rows through 0 * NaN.
        let scores = scores.mask_fill(mask.clone().repeat_dim(1, self.n_heads), -1e9);
        let out = softmax(scores, 3).matmul(v);
        let out = out.swap_dims(1, 2).reshape([rows, len, d_model]);
        rowwise(&self.proj, out)
    }
}

/// GPT-2's GELU, the tanh approximation (Hugging Face's `gelu_new`):
///
/// ```text
/// gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
/// ```
///
/// Built from `exp` and arithmetic ([`crate::nn::tanh`]), which burn's CPU backend runs in
/// `f32`; its own `gelu` goes through `erf` in `f64` (and differentiates the tanh form).
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let inner = (x.clone() + x.clone() * x.clone() * x.clone() * 0.044715)
        * (2.0 / std::f64::consts::PI).sqrt();
    x * (crate::nn::tanh(inner) + 1.0) * 0.5
}

/// A linear layer applied to every position of `[rows, len, d_in]` as one `[rows * len,
/// d_in]` matrix product. (Given the 3-d tensor, burn's CPU backend runs one small product
/// per row and repacks the weight matrix for each: generation was 2.8x slower, measured.)
fn rowwise<B: Backend>(layer: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [rows, len, d_in] = x.dims();
    let y = layer.forward(x.reshape([rows * len, d_in]));
    let d_out = y.dims()[1];
    y.reshape([rows, len, d_out])
}
