//! The log-probability of each target token, `log softmax(logits)[target]`, as one operation.

use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::host::*;
use super::scalar::*;

// ANCHOR: fused_selective_log_softmax
/// `log softmax(logits * scale)[target]` for every position, as
/// [`crate::lm::generate::selective_log_softmax`] of `logits * scale` (`scale` is `1 /
/// temperature`), in one pass per row: its maximum, `log_z = max + ln sum exp(l - max)`, and
/// `l[target] - log_z`. Under autodiff one node whose backward is, for each row with upstream
/// gradient `g`,
///
/// ```text
/// d/dl_v = g * scale * ([v = target] - softmax(l * scale)_v)
/// ```
///
/// `logits: [n, t, vocab]`, `targets: [n, t, 1]` → `[n, t, 1]`.
///
/// Definition: `lm::generate::selective_log_softmax`. Held to it by `tests/fused.rs`,
/// `fused_selective_log_softmax_gives_the_definitions_values_and_gradients_within_1e_6`.
pub fn selective_log_softmax<B: Backend>(
    logits: &Tensor<B, 3>,
    targets: &Tensor<B, 3, Int>,
    scale: f32,
) -> Option<Tensor<B, 3>> {
    let host = on_host(logits)?;
    let [n, t, vocab] = logits.dims();
    let targets: Vec<i64> = targets.to_data().convert::<i64>().to_vec().ok()?;
    assert_eq!(targets.len(), n * t, "one target per position");
    let forward = |l: &NdArrayTensor| {
        let (logp, log_z) = log_softmax_at(slice(&values(l)), vocab, &targets, scale);
        (array(&[n, t, 1], logp), log_z)
    };
    Some(match host {
        Host::Plain(l) => from_host(forward(&l).0),
        Host::Tracked(l) => {
            let (logp, log_z) = forward(&l.primitive);
            let state = || SoftmaxState {
                logits: l.primitive.clone(),
                log_z,
                targets,
                scale,
            };
            from_host(finish_unary(&l, state, logp))
        }
    })
}

/// Per row of `vocab` logits: `(log p(target), log_z)`, both of `logits * scale`.
fn log_softmax_at(
    logits: &[f32],
    vocab: usize,
    targets: &[i64],
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut logp = Vec::with_capacity(targets.len());
    let mut log_z = Vec::with_capacity(targets.len());
    for (row, &target) in logits.chunks_exact(vocab).zip(targets) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l)) * scale;
        let sum: f32 = row.iter().map(|&l| exp(l * scale - max)).sum();
        let z = max + sum.ln();
        logp.push(row[target as usize] * scale - z);
        log_z.push(z);
    }
    (logp, log_z)
}

/// What the backward step of [`selective_log_softmax`] needs from its forward pass.
#[derive(Clone, Debug)]
struct SoftmaxState {
    logits: NdArrayTensor,
    log_z: Vec<f32>,
    targets: Vec<i64>,
    scale: f32,
}

impl UnaryGrad for SoftmaxState {
    fn grad(self, upstream: NdArrayTensor) -> NdArrayTensor {
        let (g, logits) = (values(&upstream), values(&self.logits));
        let (g, l) = (slice(&g), slice(&logits));
        let vocab = l.len() / self.targets.len();
        let mut dl = vec![0.0f32; l.len()];
        for (r, (out, row)) in dl
            .chunks_exact_mut(vocab)
            .zip(l.chunks_exact(vocab))
            .enumerate()
        {
            let (gs, z) = (g[r] * self.scale, self.log_z[r]);
            for (o, &l) in out.iter_mut().zip(row) {
                *o = -gs * exp(l * self.scale - z);
            }
            out[self.targets[r] as usize] += gs;
        }
        array(logits.shape(), dl)
    }
}
// ANCHOR_END: fused_selective_log_softmax
