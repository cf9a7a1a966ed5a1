//! Spaces: the sets that observations and actions live in (Gymnasium's `gymnasium.spaces`).
//!
//! * [`Discrete`]: the integers `0..n` (an action index, a grid cell, a context id).
//! * [`BoxSpace`]: real vectors with per-coordinate bounds and a shape (CartPole's state).
//!
//! Every space can `sample` a random element, check that a value is `contains`-ed, and
//! `flatten` a value into `f32` features for a neural network. As in Gymnasium's
//! `spaces.utils.flatten`, a discrete value flattens to a one-hot vector.

use std::fmt;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, StandardNormal};

use crate::error::{EnvError, Result};

/// A set of observations or actions.
pub trait Space: Clone + fmt::Debug + fmt::Display {
    /// The type of one element.
    type Item: Clone + fmt::Debug + PartialEq;

    /// A random element (uniform where the space is bounded).
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Self::Item;

    /// Whether `x` is an element of this space.
    fn contains(&self, x: &Self::Item) -> bool;

    /// The number of `f32` features of a flattened element.
    fn flat_dim(&self) -> usize;

    /// Writes the features of `x` into `out` (`out.len() == self.flat_dim()`).
    fn flatten_into(&self, x: &Self::Item, out: &mut [f32]);

    /// The space of the flattened features (Gymnasium's `flatten_space`): a one-hot
    /// vector lies in `[0, 1]^n`, a box keeps its bounds.
    fn flatten_space(&self) -> BoxSpace<Vec<f32>>;

    /// The features of `x` as a new vector.
    fn flatten(&self, x: &Self::Item) -> Vec<f32> {
        let mut out = vec![0.0; self.flat_dim()];
        self.flatten_into(x, &mut out);
        out
    }
}

/// The integers `0..n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Discrete {
    pub n: usize,
}

impl Discrete {
    /// The space `{0, 1, ..., n-1}`; `n` must be at least 1.
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(EnvError::config("a Discrete space needs n >= 1"));
        }
        Ok(Self { n })
    }
}

impl fmt::Display for Discrete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Discrete({})", self.n)
    }
}

impl Space for Discrete {
    type Item = usize;

    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        rng.random_range(0..self.n)
    }
    fn contains(&self, x: &usize) -> bool {
        *x < self.n
    }
    fn flat_dim(&self) -> usize {
        self.n
    }
    fn flatten_into(&self, x: &usize, out: &mut [f32]) {
        out.fill(0.0);
        out[*x] = 1.0;
    }
    fn flatten_space(&self) -> BoxSpace<Vec<f32>> {
        BoxSpace::uniform(0.0, 1.0, vec![self.n]).expect("a valid unit box")
    }
}

/// Storage for a real-valued observation: a `Vec<f32>` or, without allocation, `[f32; N]`.
pub trait FloatObs: AsRef<[f32]> + AsMut<[f32]> + Clone + fmt::Debug + PartialEq {
    /// The fixed length of this storage, if it has one.
    const FIXED_LEN: Option<usize>;
    /// A value of `len` zeros. For `[f32; N]`, `len` is always `N`: [`BoxSpace::new`] checks it.
    fn zeros(len: usize) -> Self;
}

impl FloatObs for Vec<f32> {
    const FIXED_LEN: Option<usize> = None;
    fn zeros(len: usize) -> Self {
        vec![0.0; len]
    }
}

impl<const N: usize> FloatObs for [f32; N] {
    const FIXED_LEN: Option<usize> = Some(N);
    fn zeros(_len: usize) -> Self {
        [0.0; N]
    }
}

/// Real vectors `x` with `low[i] <= x[i] <= high[i]` (bounds may be infinite) and a shape.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoxSpace<O = Vec<f32>> {
    pub low: Vec<f32>,
    pub high: Vec<f32>,
    pub shape: Vec<usize>,
    _storage: std::marker::PhantomData<O>,
}

impl<O: FloatObs> BoxSpace<O> {
    /// A box with the given bounds; `low`, `high` and the product of `shape` must agree.
    pub fn new(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        let len: usize = shape.iter().product();
        if low.len() != len || high.len() != len {
            return Err(EnvError::config(format!(
                "Box bounds have {} and {} values but the shape {shape:?} holds {len}",
                low.len(),
                high.len()
            )));
        }
        if let Some(n) = O::FIXED_LEN.filter(|n| *n != len) {
            return Err(EnvError::config(format!(
                "a Box stored as [f32; {n}] cannot have the shape {shape:?}"
            )));
        }
        if let Some(i) = (0..len).find(|&i| low[i].is_nan() || high[i].is_nan() || low[i] > high[i])
        {
            return Err(EnvError::config(format!(
                "Box bound {i}: low {} > high {}",
                low[i], high[i]
            )));
        }
        Ok(Self {
            low,
            high,
            shape,
            _storage: std::marker::PhantomData,
        })
    }

    /// A box with the same bounds `[low, high]` in every coordinate.
    pub fn uniform(low: f32, high: f32, shape: Vec<usize>) -> Result<Self> {
        let len = shape.iter().product();
        Self::new(vec![low; len], vec![high; len], shape)
    }

    /// The number of coordinates.
    pub fn len(&self) -> usize {
        self.low.len()
    }

    /// Whether the box has no coordinates.
    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }
}

impl<O> fmt::Display for BoxSpace<O> {
    /// `Box(low, high, shape)`, with one bound when every coordinate shares it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let same = |v: &[f32]| v.iter().all(|x| x.to_bits() == v[0].to_bits());
        if !self.low.is_empty() && same(&self.low) && same(&self.high) {
            write!(
                f,
                "Box({:?}, {:?}, {:?})",
                self.low[0], self.high[0], self.shape
            )
        } else {
            write!(f, "Box({:?}, {:?}, {:?})", self.low, self.high, self.shape)
        }
    }
}

impl<O: FloatObs> Space for BoxSpace<O> {
    type Item = O;

    /// As Gymnasium does: uniform on bounded coordinates, a standard normal on unbounded
    /// ones, a shifted exponential on half-bounded ones.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> O {
        let mut x = O::zeros(self.len());
        for (i, v) in x.as_mut().iter_mut().enumerate() {
            let (lo, hi) = (self.low[i], self.high[i]);
            *v = match (lo.is_finite(), hi.is_finite()) {
                (true, true) => lo + (hi - lo) * rng.random::<f32>(),
                (false, false) => StandardNormal.sample(rng),
                (true, false) => lo + Distribution::<f32>::sample(&Exp1, rng),
                (false, true) => hi - Distribution::<f32>::sample(&Exp1, rng),
            };
        }
        x
    }
    fn contains(&self, x: &O) -> bool {
        let x = x.as_ref();
        x.len() == self.len()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(v, (lo, hi))| *lo <= *v && *v <= *hi)
    }
    fn flat_dim(&self) -> usize {
        self.len()
    }
    fn flatten_into(&self, x: &O, out: &mut [f32]) {
        out.copy_from_slice(x.as_ref());
    }
    fn flatten_space(&self) -> BoxSpace<Vec<f32>> {
        BoxSpace::new(self.low.clone(), self.high.clone(), vec![self.len()])
            .expect("the same bounds")
    }
}
