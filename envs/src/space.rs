//! Spaces: the sets that observations and actions live in (Gymnasium's `gymnasium.spaces`).
//!
//! * [`Discrete`]: the integers `0..n` (an action index, a grid cell, a context id).
//! * [`BoxSpace`]: real vectors with per-coordinate bounds and a shape (CartPole's state).
//! * [`Text`]: strings of bounded length over a character set (a prompt, a model's answer).
//!
//! Every space can `sample` a random element, check that a value is `contains`-ed, and
//! `flatten` a value into `f32` features for a neural network. As in Gymnasium's
//! `spaces.utils.flatten`, a discrete value flattens to a one-hot vector, and a text to the
//! index of each of its characters in the character set, padded to the maximum length.

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

// ANCHOR: env_discrete_space
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
// ANCHOR_END: env_discrete_space

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

/// Strings of `min_length..=max_length` characters, each from `charset` (Gymnasium's
/// `gymnasium.spaces.Text`).
///
/// Lengths count characters (`char`s), not bytes. The character set is kept in order, and a
/// character's position in it is its index: `flatten` writes these indices, one per
/// character, and pads the rest of the `max_length` slots with `charset.len()`, exactly as
/// Gymnasium's `flatten` does for `Text`. So `Text(0, 4, charset=abc)` flattens `"ca"` to
/// `[2, 0, 3, 3]`.
///
/// Build it with [`Text::new`], which checks the fields; a `Text` built by hand with
/// `min_length > max_length` or an empty `charset` contains nothing, and `sample` then
/// returns the nearest string it can (never panicking).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Text {
    /// The fewest characters a string may have.
    pub min_length: usize,
    /// The most characters a string may have (and the length of the flattened features).
    pub max_length: usize,
    /// The allowed characters, without duplicates, in index order.
    pub charset: Vec<char>,
}

impl Text {
    /// Strings of `min_length..=max_length` characters from `charset`. Duplicate characters
    /// in `charset` are dropped (the first one keeps its index), as Gymnasium's set does.
    /// Refuses `min_length > max_length` and an empty `charset`.
    pub fn new(min_length: usize, max_length: usize, charset: &str) -> Result<Self> {
        if min_length > max_length {
            return Err(EnvError::config(format!(
                "a Text space needs min_length <= max_length, got {min_length} > {max_length}"
            )));
        }
        let mut chars: Vec<char> = Vec::new();
        for c in charset.chars() {
            if !chars.contains(&c) {
                chars.push(c);
            }
        }
        if chars.is_empty() {
            return Err(EnvError::config(
                "a Text space needs at least one character in its charset",
            ));
        }
        Ok(Self {
            min_length,
            max_length,
            charset: chars,
        })
    }

    /// The index of `c` in the character set (Gymnasium's `character_index`), or `None` if
    /// `c` is not allowed.
    pub fn character_index(&self, c: char) -> Option<usize> {
        self.charset.iter().position(|&x| x == c)
    }

    /// The character set as a string.
    pub fn charset_str(&self) -> String {
        self.charset.iter().collect()
    }
}

impl fmt::Display for Text {
    /// `Text(min_length, max_length, charset=...)`, as Gymnasium prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Text({}, {}, charset={})",
            self.min_length,
            self.max_length,
            self.charset_str()
        )
    }
}

impl Space for Text {
    type Item = String;

    /// A length uniform in `min_length..=max_length`, then characters uniform over the
    /// charset, independently.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        if self.charset.is_empty() {
            // Only the empty string can be written without characters.
            return String::new();
        }
        let len = if self.min_length < self.max_length {
            rng.random_range(self.min_length..=self.max_length)
        } else {
            self.min_length
        };
        (0..len)
            .map(|_| self.charset[rng.random_range(0..self.charset.len())])
            .collect()
    }
    fn contains(&self, x: &String) -> bool {
        let len = x.chars().count();
        self.min_length <= len
            && len <= self.max_length
            && x.chars().all(|c| self.charset.contains(&c))
    }
    fn flat_dim(&self) -> usize {
        self.max_length
    }
    /// Each character's index in the charset, then `charset.len()` as padding. Meant for
    /// elements of the space: characters past `max_length` are dropped, and a character
    /// outside the charset is written as padding.
    fn flatten_into(&self, x: &String, out: &mut [f32]) {
        let pad = self.charset.len() as f32;
        out.fill(pad);
        for (slot, c) in out.iter_mut().zip(x.chars()) {
            *slot = self.character_index(c).map_or(pad, |i| i as f32);
        }
    }
    /// `Box(0, charset.len(), [max_length])`: indices and the padding value.
    fn flatten_space(&self) -> BoxSpace<Vec<f32>> {
        BoxSpace::uniform(0.0, self.charset.len() as f32, vec![self.max_length])
            .expect("0 <= charset.len() is a valid box")
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::env::EnvRng;

    #[test]
    fn text_new_refuses_bad_bounds_and_an_empty_charset() {
        let err = Text::new(3, 2, "ab").unwrap_err();
        assert!(
            err.to_string().contains("min_length <= max_length"),
            "{err}"
        );
        let err = Text::new(0, 2, "").unwrap_err();
        assert!(err.to_string().contains("at least one character"), "{err}");
        assert!(matches!(err, EnvError::InvalidConfig(_)));
        // Duplicates are dropped; the first occurrence keeps its index.
        let t = Text::new(0, 2, "abca").unwrap();
        assert_eq!(t.charset, vec!['a', 'b', 'c']);
        assert_eq!(t.character_index('c'), Some(2));
        assert_eq!(t.character_index('z'), None);
    }

    #[test]
    fn text_displays_like_gymnasium() {
        let t = Text::new(1, 8, "0123456789").unwrap();
        assert_eq!(t.to_string(), "Text(1, 8, charset=0123456789)");
    }

    #[test]
    fn text_samples_lie_in_the_space_and_cover_every_length_and_character() {
        let t = Text::new(2, 5, "xyz").unwrap();
        let mut rng = EnvRng::seed_from_u64(0);
        let mut lengths = [0usize; 6];
        let mut chars = [0usize; 3];
        for _ in 0..3000 {
            let s = t.sample(&mut rng);
            assert!(t.contains(&s), "{s:?}");
            lengths[s.chars().count()] += 1;
            for c in s.chars() {
                chars[t.character_index(c).unwrap()] += 1;
            }
        }
        assert_eq!(lengths[..2], [0, 0]);
        // Uniform over 4 lengths: about 750 each.
        assert!(
            lengths[2..].iter().all(|&n| (600..900).contains(&n)),
            "{lengths:?}"
        );
        let total: usize = chars.iter().sum();
        assert!(
            chars
                .iter()
                .all(|&n| (n as f64 / total as f64 - 1.0 / 3.0).abs() < 0.03),
            "{chars:?}"
        );
        // The same seed gives the same samples.
        let a: Vec<String> = {
            let mut r = EnvRng::seed_from_u64(9);
            (0..20).map(|_| t.sample(&mut r)).collect()
        };
        let b: Vec<String> = {
            let mut r = EnvRng::seed_from_u64(9);
            (0..20).map(|_| t.sample(&mut r)).collect()
        };
        assert_eq!(a, b);
        // A fixed length, and a space of only the empty string.
        let fixed = Text::new(3, 3, "q").unwrap();
        assert_eq!(fixed.sample(&mut rng), "qqq");
        let empty = Text::new(0, 0, "q").unwrap();
        assert_eq!(empty.sample(&mut rng), "");
        assert!(empty.contains(&String::new()));
    }

    #[test]
    fn text_contains_checks_length_in_characters_and_the_charset() {
        let t = Text::new(1, 3, "ab\u{e9}").unwrap();
        assert!(t.contains(&"a".to_string()));
        assert!(t.contains(&"ab\u{e9}".to_string())); // 3 characters, 4 bytes
        assert!(!t.contains(&String::new())); // too short
        assert!(!t.contains(&"abab".to_string())); // too long
        assert!(!t.contains(&"ac".to_string())); // 'c' is not allowed
        assert!(!t.contains(&"a ".to_string())); // nor is a space
    }

    #[test]
    fn text_flattens_to_charset_indices_padded_with_the_charset_size() {
        let t = Text::new(0, 4, "abc").unwrap();
        assert_eq!(t.flat_dim(), 4);
        assert_eq!(t.flatten(&"ca".to_string()), vec![2.0, 0.0, 3.0, 3.0]);
        assert_eq!(t.flatten(&String::new()), vec![3.0; 4]);
        assert_eq!(t.flatten(&"abca".to_string()), vec![0.0, 1.0, 2.0, 0.0]);
        let fs = t.flatten_space();
        assert_eq!(fs.shape, vec![4]);
        assert_eq!((fs.low[0], fs.high[0]), (0.0, 3.0));
        let mut rng = EnvRng::seed_from_u64(1);
        for _ in 0..100 {
            let s = t.sample(&mut rng);
            assert!(fs.contains(&t.flatten(&s)));
        }
        // Outside the space, flatten still does not panic.
        assert_eq!(t.flatten(&"zzzzzz".to_string()), vec![3.0; 4]);
    }
}
