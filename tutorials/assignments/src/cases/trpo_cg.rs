//! Assignment (c)'s cases: linear systems for conjugate gradient (eq. TRPO-5), the Fisher's
//! middle matrix applied to random logit moves, and whole Fisher-vector products (eq.
//! TRPO-4) of a small policy network.

use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData};
use policy_lab::algos::trpo::{
    categorical_fisher_middle, conjugate_gradient, fisher_vector_product,
};
use policy_lab::backend::Cpu;
use policy_lab::core::flat::{flat_params, set_flat_params};
use policy_lab::core::nn::Mlp;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{matrix, values};

/// The file that holds assignment (c)'s cases in a case folder.
pub const FILE: &str = "c_trpo_cg.json";

/// `A x = b` with `A` symmetric positive definite (`n x n`, row-major), solved by
/// conjugate gradient in at most `steps` iterations or until `r.r < tol`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CgCase {
    pub n: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub steps: usize,
    pub tol: f32,
    pub x: Vec<f32>,
}

impl CgCase {
    /// `A v`.
    pub fn times(&self, v: &[f32]) -> Vec<f32> {
        self.a
            .chunks(self.n)
            .map(|row| row.iter().zip(v).map(|(a, v)| a * v).sum())
            .collect()
    }

    /// policy-lab's `conjugate_gradient` on this case (the student's, in a handout).
    pub fn solve(&self) -> Vec<f32> {
        conjugate_gradient(|v| self.times(v), &self.b, self.steps, self.tol)
    }
}

/// `M (J v)` for `rows` states of a policy over `actions` actions: `p` the action
/// probabilities, `jv` how the logits move, `u` the product (all `[rows, actions]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MiddleCase {
    pub rows: usize,
    pub actions: usize,
    pub p: Vec<f32>,
    pub jv: Vec<f32>,
    pub u: Vec<f32>,
}

impl MiddleCase {
    /// policy-lab's `categorical_fisher_middle` on this case.
    pub fn middle(&self) -> Vec<f32> {
        let (r, a) = (self.rows, self.actions);
        values(categorical_fisher_middle(
            matrix(r, a, &self.p),
            matrix(r, a, &self.jv),
        ))
    }
}

/// A whole `(F + damping I) v` for a policy `obs_dim -> hidden -> actions` (tanh) whose
/// parameters, in policy-lab's flat order, are `params`, on the states `obs`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FvpCase {
    pub obs_dim: usize,
    pub hidden: Vec<usize>,
    pub actions: usize,
    pub params: Vec<f32>,
    pub obs: Vec<f32>,
    pub v: Vec<f32>,
    pub damping: f32,
    pub fv: Vec<f32>,
}

impl FvpCase {
    /// policy-lab's `fisher_vector_product` on this case.
    pub fn product(&self) -> Vec<f32> {
        let device = Default::default();
        // Made under policy-lab's seeding lock: its initial weights (replaced at once) are
        // drawn from burn's one generator, which another thread may have just seeded for a
        // learner whose weights a case records (the f cases), and would then draw from.
        let actor = policy_lab::backend::seeded::<Cpu, _>(&device, 0, || {
            Mlp::new(self.obs_dim, &self.hidden, self.actions, 1.0, &device)
        });
        let actor = set_flat_params(actor, &self.params);
        let rows = self.obs.len() / self.obs_dim;
        let obs = Tensor::<Cpu, 2>::from_data(
            TensorData::new(self.obs.clone(), [rows, self.obs_dim]),
            &device,
        );
        fisher_vector_product(&actor, &obs, &self.v, self.damping)
    }
}

/// Assignment (c)'s cases for `seed`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TrpoCases {
    pub seed: u64,
    pub cg: Vec<CgCase>,
    pub middle: Vec<MiddleCase>,
    pub fvp: Vec<FvpCase>,
}

fn uniform(rng: &mut StdRng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

/// A well-conditioned symmetric positive definite matrix: `G G^T / n + I / 2`.
fn spd(rng: &mut StdRng, n: usize) -> Vec<f32> {
    let g = uniform(rng, n * n, 1.0);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let dot: f32 = (0..n).map(|k| g[i * n + k] * g[j * n + k]).sum();
            a[i * n + j] = dot / n as f32 + if i == j { 0.5 } else { 0.0 };
        }
    }
    a
}

/// 8 linear systems of 2 to 12 unknowns: half solved to a tight tolerance, half stopped
/// early by `steps` (3) or by `tol` (1e-2); 6 middle-matrix cases; 3 Fisher-vector products
/// of a `3 -> 5 -> 4` policy on 6 states.
pub fn cases(seed: u64) -> TrpoCases {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc);
    let cg = (0..8)
        .map(|i| {
            let n = rng.random_range(2..=12usize);
            let (steps, tol) = match i % 4 {
                0 | 1 => (2 * n, 1e-10),
                2 => (3, 1e-10),
                _ => (2 * n, 1e-2),
            };
            let mut case = CgCase {
                n,
                a: spd(&mut rng, n),
                b: uniform(&mut rng, n, 1.0),
                steps,
                tol,
                x: vec![],
            };
            case.x = case.solve();
            case
        })
        .collect();
    let middle = (0..6)
        .map(|_| {
            let (rows, actions) = (rng.random_range(1..=6usize), rng.random_range(2..=6usize));
            let logits = uniform(&mut rng, rows * actions, 2.0);
            let p = values(softmax(matrix(rows, actions, &logits), 1));
            let mut case = MiddleCase {
                rows,
                actions,
                p,
                jv: uniform(&mut rng, rows * actions, 1.0),
                u: vec![],
            };
            case.u = case.middle();
            case
        })
        .collect();
    let fvp = (0..3)
        .map(|_| {
            let (obs_dim, hidden, actions, rows) = (3, vec![5], 4, 6);
            let device = Default::default();
            let probe = policy_lab::backend::seeded::<Cpu, _>(&device, 0, || {
                Mlp::new(obs_dim, &hidden, actions, 1.0, &device)
            });
            let n = flat_params(&probe).len();
            let mut case = FvpCase {
                obs_dim,
                hidden,
                actions,
                params: uniform(&mut rng, n, 0.8),
                obs: uniform(&mut rng, rows * obs_dim, 1.0),
                v: uniform(&mut rng, n, 1.0),
                damping: 0.1,
                fv: vec![],
            };
            case.fv = case.product();
            case
        })
        .collect();
    TrpoCases {
        seed,
        cg,
        middle,
        fvp,
    }
}
