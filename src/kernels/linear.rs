//! A linear layer with its activation, and the matrix product under it, as one operation.

use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::ndarray::NdArrayTensor;
use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use ndarray::{ArcArray, IxDyn};
use rayon::prelude::*;

use super::host::*;
use super::scalar::*;

// ANCHOR: fused_linear
/// What follows a [`linear`] layer's product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// `tanh` as [`crate::core::nn::tanh`] builds it ([`tanh`]), the MLPs' hidden layers.
    Tanh,
    /// GPT-2's tanh GELU ([`gelu`]).
    GeluTanh,
}

/// A linear layer with its activation, `y = act(x W + b)` for `x: [m, k]`, `W: [k, n]` (burn's
/// layout) and an optional `b: [n]`, as one operation: the bias written into the output first
/// and the product added to it, the activation applied in place. Under autodiff one node whose
/// backward is, with `dz = dy * act'(z)` (`z = x W + b`),
///
/// ```text
/// dx = dz Wᵀ,    dW = xᵀ dz,    db = the column sums of dz
/// ```
///
/// The three products are matrixmultiply's `sgemm` (the kernel under burn's CPU backend), cut
/// by rows of their result over the machine's cores when they are large enough ([`gemm`]);
/// each result element is computed by the same arithmetic however the rows are cut, so a run
/// gives the same numbers on any number of cores.
///
/// Definition: burn's `Linear`, then the activation (`core::nn::tanh`, `lm::model::gelu_tanh`).
/// Held to it by `tests/fused.rs`, `fused_linear_gives_the_definitions_values_and_gradients_within_1e_6`
/// and, for the MLPs' tanh layer to the bit,
/// `an_mlp_gives_the_same_values_and_gradients_to_the_bit_with_the_kernels_on_and_off`.
pub fn linear<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Option<Tensor<B, 2>> {
    product(x, weight, false, bias, activation)
}

/// `x Wᵀ` for `W: [n, k]`, as [`linear`] without a bias or an activation (`dW = dzᵀ x`): the
/// tied output layer, `hidden · wteᵀ`.
///
/// Definition: burn's `matmul` with the transposed weight. Held to it by `tests/fused.rs`,
/// `fused_products_without_a_bias_and_with_a_transposed_weight_match_burns`.
pub fn matmul_transposed<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
) -> Option<Tensor<B, 2>> {
    product(x, weight, true, None, Activation::Identity)
}

/// [`linear`] and [`matmul_transposed`]: `act(x W + b)`, `W` read transposed when `transposed`.
fn product<B: Backend>(
    x: &Tensor<B, 2>,
    weight: &Tensor<B, 2>,
    transposed: bool,
    bias: Option<&Tensor<B, 1>>,
    activation: Activation,
) -> Option<Tensor<B, 2>> {
    let [m, k] = x.dims();
    let n = weight.dims()[if transposed { 0 } else { 1 }];
    let shape = LinearShape {
        m,
        k,
        n,
        transposed,
    };
    assert_eq!(shape.weight_dims(), weight.dims(), "x is [{m}, {k}]");
    let forward = |x: &NdArrayTensor, w: &NdArrayTensor, b: Option<&NdArrayTensor>| {
        let (x, w) = (values(x), values(w));
        let (mut z, beta) = match b {
            Some(b) => (slice(&values(b)).repeat(m), 1.0),
            None => (vec![0.0; m * n], 0.0),
        };
        gemm(Matrix::of(&x, m, k), shape.weight(&w), beta, &mut z);
        match activation {
            Activation::Identity => (array(&[m, n], z), None),
            Activation::Tanh => {
                // The library's `exp` one value at a time, then the rest in a loop that
                // vectorizes; `z`'s buffer then keeps what the backward step needs.
                let e: Vec<f32> = z.iter().map(|&z| tanh_exp(z)).collect();
                let y = e.iter().map(|&e| tanh_of_exp(e)).collect();
                z.iter_mut()
                    .zip(&e)
                    .for_each(|(z, &e)| *z = saved_exp(*z, e));
                (array(&[m, n], y), Some(array(&[m, n], z)))
            }
            Activation::GeluTanh => {
                let y = z.iter().map(|&v| gelu(v)).collect();
                (array(&[m, n], y), Some(array(&[m, n], z)))
            }
        }
    };
    let (x, w) = (on_host(x)?, on_host(weight)?);
    let b = match bias {
        Some(b) => Some(on_host(b)?),
        None => None,
    };
    Some(match (x, w, b) {
        (Host::Plain(x), Host::Plain(w), b) => {
            let b = b.map(|b| match b {
                Host::Plain(b) => b,
                Host::Tracked(_) => unreachable!("one backend for the three tensors"),
            });
            from_host(forward(&x, &w, b.as_ref()).0)
        }
        (Host::Tracked(x), Host::Tracked(w), b) => {
            let b = b.map(|b| match b {
                Host::Tracked(b) => b,
                Host::Plain(_) => unreachable!("one backend for the three tensors"),
            });
            let (y, z) = forward(&x.primitive, &w.primitive, b.as_ref().map(|b| &b.primitive));
            let state = LinearState {
                x: x.primitive,
                w: w.primitive,
                z,
                shape,
                activation,
            };
            let (x_node, w_node) = (x.node, w.node);
            let backward = NodeBackward::<LinearState>::new();
            from_host(match b {
                Some(b) => finish(
                    backward.prepare::<NoCheckpointing>([x_node, w_node, b.node]),
                    || state,
                    y,
                ),
                None => finish(
                    backward.prepare::<NoCheckpointing>([x_node, w_node]),
                    || state,
                    y,
                ),
            })
        }
        _ => unreachable!("one backend for the three tensors"),
    })
}

/// The sizes of a [`product`]: `x: [m, k]`, `W: [k, n]`, or `[n, k]` read transposed.
#[derive(Clone, Copy, Debug)]
struct LinearShape {
    m: usize,
    k: usize,
    n: usize,
    transposed: bool,
}

impl LinearShape {
    fn weight_dims(&self) -> [usize; 2] {
        if self.transposed {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        }
    }

    /// The stored weight as the `[k, n]` matrix of the product.
    fn weight<'a>(&self, w: &'a ArcArray<f32, IxDyn>) -> Matrix<'a> {
        let [rows, cols] = self.weight_dims();
        let stored = Matrix::of(w, rows, cols);
        if self.transposed {
            stored.transposed()
        } else {
            stored
        }
    }
}

/// What the backward step of [`product`] needs: its inputs, and what the activation's
/// derivative is computed from (GELU: the pre-activation `z`; tanh: `e^{2z}`, see
/// [`saved_exp`]).
#[derive(Clone, Debug)]
struct LinearState {
    x: NdArrayTensor,
    w: NdArrayTensor,
    z: Option<NdArrayTensor>,
    shape: LinearShape,
    activation: Activation,
}

impl<const N: usize> NodeGrad<N> for LinearState {
    fn backward(ops: Ops<Self, N>, grads: &mut Gradients) {
        linear_backward(ops, grads);
    }
}

/// `dz = dy * act'(z)`; then `dx = dz Wᵀ`, `dW = xᵀ dz` (for a transposed weight, `dzᵀ x`) and
/// `db` the column sums of `dz`, for each parent (`x`, `W`, then `b` if any) that wants its
/// gradient.
fn linear_backward<const N: usize>(ops: Ops<LinearState, N>, grads: &mut Gradients) {
    let s = ops.state;
    let mut parents = ops.parents.into_iter();
    let (parent_x, parent_w, parent_b) = (
        parents.next().flatten(),
        parents.next().flatten(),
        parents.next().flatten(),
    );
    let node = &ops.node;
    let LinearShape {
        m,
        k,
        n,
        transposed,
    } = s.shape;
    let grad = values(&grads.consume::<NdArray>(node));
    let dz: Vec<f32> = match (&s.z, s.activation) {
        (Some(e), Activation::Tanh) => {
            let e = values(e);
            let (g, e) = (slice(&grad), slice(&e));
            g.iter()
                .zip(e)
                .map(|(&g, &e)| tanh_backward(g, e))
                .collect()
        }
        (Some(z), Activation::GeluTanh) => {
            let z = values(z);
            let (g, z) = (slice(&grad), slice(&z));
            g.iter().zip(z).map(|(&g, &z)| g * gelu_grad(z)).collect()
        }
        _ => slice(&grad).to_vec(),
    };
    let dz_matrix = Matrix::of_slice(&dz, m, n);
    if let Some(node) = parent_x {
        let w = values(&s.w);
        let mut dx = vec![0.0; m * k];
        gemm(dz_matrix, s.shape.weight(&w).transposed(), 0.0, &mut dx);
        grads.register::<NdArray>(node.id, array(&[m, k], dx));
    }
    if let Some(node) = parent_w {
        let x = values(&s.x);
        let x_matrix = Matrix::of(&x, m, k);
        let mut dw = vec![0.0; k * n];
        if transposed {
            gemm(dz_matrix.transposed(), x_matrix, 0.0, &mut dw);
        } else {
            gemm(x_matrix.transposed(), dz_matrix, 0.0, &mut dw);
        }
        grads.register::<NdArray>(node.id, array(&s.shape.weight_dims(), dw));
    }
    if let Some(node) = parent_b {
        let mut db = vec![0.0f32; n];
        for row in dz.chunks_exact(n) {
            db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
        }
        grads.register::<NdArray>(node.id, array(&[n], db));
    }
}

/// A matrix inside a slice: element `(i, j)` at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// `rows x cols`, row-major.
    pub fn of_slice(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "{} values for {rows} x {cols}",
            data.len()
        );
        Matrix {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    fn of(array: &'a ArcArray<f32, IxDyn>, rows: usize, cols: usize) -> Self {
        Self::of_slice(slice(array), rows, cols)
    }

    /// The same values read as the transpose (no copy).
    pub fn transposed(self) -> Self {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows `start..start + count`.
    fn rows(self, start: usize, count: usize) -> Self {
        Matrix {
            data: &self.data[start * self.row_stride..],
            rows: count,
            ..self
        }
    }
}

/// Products of at least this many multiply-adds are cut over the cores (below it, waking a
/// second thread costs more than it saves).
const PARALLEL_WORK: usize = 1 << 21;

/// `c = a b + beta c` with `c` row-major `[a.rows, b.cols]`, cut by rows of `c` over the cores
/// when the product is large enough ([`PARALLEL_WORK`]).
pub fn gemm(a: Matrix, b: Matrix, beta: f32, c: &mut [f32]) {
    assert_eq!(
        a.cols, b.rows,
        "a is {} x {}, b {} x {}",
        a.rows, a.cols, b.rows, b.cols
    );
    let (m, n) = (a.rows, b.cols);
    let parts = rayon::current_num_threads().min(m / 16).max(1);
    if parts == 1 || m * a.cols * n < PARALLEL_WORK {
        return gemm_one_thread(a, b, beta, c);
    }
    let per_part = m.div_ceil(parts);
    c[..m * n]
        .par_chunks_mut(per_part * n)
        .enumerate()
        .for_each(|(i, c)| gemm_one_thread(a.rows(i * per_part, c.len() / n), b, beta, c));
}

/// [`gemm`] on the calling thread: matrixmultiply's `sgemm`.
pub fn gemm_one_thread(a: Matrix, b: Matrix, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows);
    assert!(c.len() >= m * n);
    let last = |x: &Matrix| (x.rows.max(1) - 1) * x.row_stride + (x.cols.max(1) - 1) * x.col_stride;
    assert!(m == 0 || k == 0 || last(&a) < a.data.len());
    assert!(k == 0 || n == 0 || last(&b) < b.data.len());
    // SAFETY: the asserts keep every index the strides reach inside the three slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
// ANCHOR_END: fused_linear
