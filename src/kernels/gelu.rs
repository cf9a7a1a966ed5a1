//! GPT-2's tanh GELU as one operation, with its backward step.

use burn::backend::ndarray::NdArrayTensor;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::host::*;
use super::scalar::*;

// ANCHOR: fused_gelu
/// GPT-2's tanh GELU, `0.5 x (1 + tanh(u))` with `u = sqrt(2/pi) (x + 0.044715 x^3)`, as one
/// pass ([`gelu`]); under autodiff one node whose backward is [`gelu_grad`]:
///
/// ```text
/// dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2),   t = tanh(u)
/// ```
///
/// Definition: `lm::model::gelu_tanh`. Held to it by `tests/fused.rs`,
/// `fused_gelu_gives_the_definitions_values_and_gradients_within_1e_6`.
pub fn gelu_tanh<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<Tensor<B, D>> {
    Some(match on_host(x)? {
        Host::Plain(x) => from_host(map(&x, gelu)),
        Host::Tracked(x) => {
            let y = map(&x.primitive, gelu);
            from_host(finish_unary(&x, || GeluState(x.primitive.clone()), y))
        }
    })
}

/// What the backward step of [`gelu_tanh`] keeps: the input `x`.
#[derive(Clone, Debug)]
struct GeluState(NdArrayTensor);

impl UnaryGrad for GeluState {
    fn grad(self, upstream: NdArrayTensor) -> NdArrayTensor {
        let (g, x) = (values(&upstream), values(&self.0));
        let dx = slice(&g)
            .iter()
            .zip(slice(&x))
            .map(|(&g, &x)| g * gelu_grad(x));
        array(x.shape(), dx.collect())
    }
}
// ANCHOR_END: fused_gelu
