//! The plumbing every kernel shares: from a burn tensor to its `f32` values on the host and
//! back, and a kernel's node in the autodiff graph.

use std::any::Any;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind, OpsPrep};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};
use ndarray::{ArcArray, IxDyn};

use super::enabled;

/// Registers a kernel's node in the graph with its backward step (prepared with its `N`
/// parents) and its output `y`; `state`, what the backward step keeps, is made only when a
/// parent wants a gradient.
pub(super) fn finish<BO, const N: usize>(
    prep: OpsPrep<BO, NdArray, BO::State, NoCheckpointing, N>,
    state: impl FnOnce() -> BO::State,
    y: NdArrayTensor,
) -> FloatTensor<Autodiff<NdArray>>
where
    BO: Backward<NdArray, N>,
{
    match prep.compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// What a one-input kernel keeps for its backward step, and that step: the input's gradient
/// from the output's (`upstream`).
pub(super) trait UnaryGrad: Clone + std::fmt::Debug + Send + 'static {
    fn grad(self, upstream: NdArrayTensor) -> NdArrayTensor;
}

/// The backward step of a one-input kernel whose state is `S` ([`UnaryGrad`]).
#[derive(Debug)]
pub(super) struct UnaryBackward<S>(std::marker::PhantomData<S>);

impl<S: UnaryGrad> Backward<NdArray, 1> for UnaryBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<S, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let state = ops.state;
        unary::<NdArray, _>(ops.parents, ops.node, grads, |upstream| {
            state.grad(upstream)
        });
    }
}

/// A one-input kernel's output `y` of the tracked input `x`, as a node of the graph whose
/// backward step is `S`'s ([`UnaryGrad`]); `state` is made only when `x` wants a gradient.
pub(super) fn finish_unary<S: UnaryGrad>(
    x: &FloatTensor<Autodiff<NdArray>>,
    state: impl FnOnce() -> S,
    y: NdArrayTensor,
) -> FloatTensor<Autodiff<NdArray>> {
    let backward = UnaryBackward::<S>(std::marker::PhantomData);
    finish(
        backward.prepare::<NoCheckpointing>([x.node.clone()]),
        state,
        y,
    )
}

/// What a kernel with `N` inputs keeps for its backward step, and that step: from the
/// output's gradient in `grads`, it registers the gradient of each input that wants one.
pub(super) trait NodeGrad<const N: usize>: Clone + std::fmt::Debug + Send + 'static {
    fn backward(ops: Ops<Self, N>, grads: &mut Gradients);
}

/// The backward step of a kernel with `N` inputs whose state is `S` ([`NodeGrad`]).
#[derive(Debug)]
pub(super) struct NodeBackward<S>(std::marker::PhantomData<S>);

impl<S> NodeBackward<S> {
    pub(super) fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<S: NodeGrad<N>, const N: usize> Backward<NdArray, N> for NodeBackward<S> {
    type State = S;

    fn backward(self, ops: Ops<S, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        S::backward(ops, grads);
    }
}

/// A tensor's primitive when its backend is burn-ndarray, with or without autodiff.
pub(super) enum Host {
    Plain(NdArrayTensor),
    Tracked(FloatTensor<Autodiff<NdArray>>),
}

/// `x`'s primitive as a [`Host`] when the kernels are on and `B` is `NdArray` or
/// `Autodiff<NdArray>` (a type check at run time: the functions stay generic over `B`).
pub(super) fn on_host<B: Backend, const D: usize>(x: &Tensor<B, D>) -> Option<Host> {
    if !enabled() {
        return None;
    }
    let primitive: Box<dyn Any> = Box::new(x.clone().into_primitive().tensor());
    match primitive.downcast::<NdArrayTensor>() {
        Ok(plain) => Some(Host::Plain(*plain)),
        Err(other) => other.downcast().ok().map(|tracked| Host::Tracked(*tracked)),
    }
}

/// The values of a tensor the gradient does not flow into (`None` when it is tracked).
pub(super) fn constant(t: Host) -> Option<ArcArray<f32, IxDyn>> {
    match t {
        Host::Plain(t) => Some(values(&t)),
        Host::Tracked(t) => (!t.is_tracked()).then(|| values(&t.primitive)),
    }
}

/// Back from a kernel's result to `Tensor<B, D>`; `P` is `B`'s float primitive (what
/// [`on_host`] found).
pub(super) fn from_host<B: Backend, const D: usize, P: 'static>(primitive: P) -> Tensor<B, D> {
    let primitive: Box<dyn Any> = Box::new(primitive);
    let primitive = primitive
        .downcast::<B::FloatTensorPrimitive>()
        .expect("the backend on_host found");
    Tensor::from_primitive(TensorPrimitive::Float(*primitive))
}

/// An f32 tensor's values in row-major order (shared with the tensor when it is laid out so).
pub(super) fn values(t: &NdArrayTensor) -> ArcArray<f32, IxDyn> {
    match t.clone() {
        NdArrayTensor::F32(storage) => {
            let a = storage.into_shared();
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned().into_shared()
            }
        }
        other => panic!(
            "the fused kernels take f32 tensors, not {:?}",
            other.dtype()
        ),
    }
}

pub(super) fn slice(a: &ArcArray<f32, IxDyn>) -> &[f32] {
    a.as_slice().expect("row-major")
}

pub(super) fn array(shape: &[usize], data: Vec<f32>) -> NdArrayTensor {
    NdArrayTensor::from(ArcArray::from_shape_vec(IxDyn(shape), data).expect("shape of the data"))
}

pub(super) fn map(t: &NdArrayTensor, f: impl Fn(f32) -> f32) -> NdArrayTensor {
    let x = values(t);
    let y = slice(&x).iter().map(|&v| f(v));
    array(x.shape(), y.collect())
}
