//! A module's parameters as one flat vector, for the second-order step of TRPO (the book's
//! TRPO chapter): read them, write them back, and read a gradient in the same order.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

/// All float parameters of `module`, concatenated in visiting order.
pub fn flat_params<B: Backend, M: Module<B>>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.extend(
                param
                    .val()
                    .into_data()
                    .to_vec::<f32>()
                    .expect("f32 parameters"),
            );
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// `module` with its parameters replaced by `flat` (in [`flat_params`]'s order).
pub fn set_flat_params<B: Backend, M: Module<B>>(module: M, flat: &[f32]) -> M {
    struct Write<'a> {
        flat: &'a [f32],
        at: usize,
    }
    impl<B: Backend> ModuleMapper<B> for Write<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, old, mapper) = param.consume();
            let shape = old.shape();
            let n = shape.num_elements();
            let values = self.flat[self.at..self.at + n].to_vec();
            self.at += n;
            let mut new = Tensor::from_data(TensorData::new(values, shape), &old.device());
            // A fresh tensor does not track gradients; keep the parameter trainable.
            if old.is_require_grad() {
                new = new.require_grad();
            }
            Param::from_mapped_value(id, new, mapper)
        }
    }
    let mut w = Write { flat, at: 0 };
    let module = module.map(&mut w);
    assert_eq!(
        w.at,
        flat.len(),
        "the flat vector has {} values, the module {}",
        flat.len(),
        w.at
    );
    module
}

/// The gradient of `module`'s parameters, flattened in [`flat_params`]'s order (zeros for
/// parameters the loss does not touch).
pub fn flat_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<f32> {
    struct Collect<'a>(&'a GradientsParams, Vec<f32>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            match self.0.get::<B::InnerBackend, D>(param.id) {
                Some(g) => self
                    .1
                    .extend(g.into_data().to_vec::<f32>().expect("f32 gradients")),
                None => self
                    .1
                    .extend(std::iter::repeat_n(0.0, param.val().shape().num_elements())),
            }
        }
    }
    let mut c = Collect(grads, Vec::new());
    module.visit(&mut c);
    c.1
}

/// The dot product of two flat vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
