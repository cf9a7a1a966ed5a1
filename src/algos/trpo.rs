//! Trust Region Policy Optimization (Schulman et al., 2015), as SpinningUp and sb3-contrib
//! do it.
//!
//! Read it next to the book's TRPO chapter. One iteration:
//!
//! 1. **collect** `num_steps` steps in each of `num_envs` environments;
//! 2. **advantages** by GAE (eq. GAE-1, GAE-2), normalized;
//! 3. **update** the policy by a natural-gradient step: the surrogate's gradient `g`
//!    (eq. TRPO-2), `s = (F + lambda I)^-1 g` by conjugate gradient with damping `lambda` =
//!    `cg_damping` (eq. TRPO-5), the step scaled to the KL bound,
//!    `sqrt(2 delta / s^T (F + lambda I) s) s` (eq. TRPO-6), and a backtracking
//!    line search that accepts a step only when the mean KL is at most `delta` *and* the
//!    surrogate improved (eq. TRPO-7); then regress the critic;
//! 4. **metrics**.
//!
//! burn has first-order automatic differentiation only, so the Fisher-vector product uses
//! the Gauss-Newton form of the Fisher matrix of a categorical policy (eq. TRPO-4):
//! `F v = (1/N) sum_s J_s^T M_s J_s v` with `J_s` the Jacobian of the logits and
//! `M_s = diag(p_s) - p_s p_s^T`. `J v` comes from a central difference of the logits along
//! `v`, and `J^T u` from one backward pass of `sum(logits * u)` with `u` held constant.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::GradientsParams;
use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::core::actor_critic::{self, critic_step, ActorCritic};
use crate::core::advantage::{gae, normalize};
use crate::core::flat::{dot, flat_grads, flat_params, set_flat_params};
use crate::core::metrics::explained_variance;
use crate::core::nn::{categorical, Mlp};
use crate::core::rollout::{critic_values, obs_and_actions, pick, tensor1, Collector, VecEnv};
use crate::kernels::Adam;
use crate::{scalar, ConfigError, Metrics};

/// TRPO's hyperparameters (sb3-contrib's names where it has them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrpoConfig {
    pub num_envs: usize,
    pub num_steps: usize,
    pub gamma: f32,
    pub gae_lambda: f32,
    /// The KL bound delta.
    pub target_kl: f32,
    pub cg_max_steps: usize,
    pub cg_damping: f32,
    pub line_search_shrinking_factor: f32,
    pub line_search_max_iter: usize,
    /// The critic's learning rate (Adam).
    pub learning_rate: f64,
    /// Epochs of critic regression per iteration, over minibatches of `batch_size`.
    pub n_critic_updates: usize,
    pub batch_size: usize,
    pub hidden: Vec<usize>,
}

// ANCHOR: trpo_config
impl Default for TrpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 4,
            num_steps: 256,
            gamma: 0.99,
            gae_lambda: 0.95,
            target_kl: 0.01,
            cg_max_steps: 15,
            cg_damping: 0.1,
            line_search_shrinking_factor: 0.8,
            line_search_max_iter: 10,
            learning_rate: 1e-3,
            n_critic_updates: 10,
            batch_size: 128,
            hidden: vec![64, 64],
        }
    }
}
// ANCHOR_END: trpo_config

impl TrpoConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, msg: &str| ConfigError::unless(ok, "trpo", msg);
        ConfigError::check_rollout("trpo", self.num_envs, self.num_steps, &self.hidden)?;
        check(
            self.target_kl > 0.0 && self.target_kl.is_finite(),
            "target_kl must be > 0 and finite",
        )?;
        check(
            self.cg_max_steps >= 1 && self.cg_damping >= 0.0,
            "cg_max_steps >= 1 and cg_damping >= 0",
        )?;
        check(
            (0.0..1.0).contains(&self.line_search_shrinking_factor)
                && self.line_search_shrinking_factor > 0.0,
            "line_search_shrinking_factor must be in (0, 1)",
        )?;
        check(
            self.learning_rate > 0.0 && self.learning_rate.is_finite() && self.batch_size >= 1,
            "learning_rate must be positive and batch_size at least 1",
        )?;
        check(
            (0.0..=1.0).contains(&self.gamma) && (0.0..=1.0).contains(&self.gae_lambda),
            "gamma and gae_lambda must be in [0, 1]",
        )
    }
}

// ANCHOR: trpo_fvp
/// `(F + damping I) v` for the policy `actor` on the states `obs` (eq. TRPO-4).
pub fn fisher_vector_product<B: AutodiffBackend>(
    actor: &Mlp<B>,
    obs: &Tensor<B, 2>,
    v: &[f32],
    damping: f32,
) -> Vec<f32> {
    let n = obs.dims()[0] as f32;
    let theta = flat_params(actor);
    let inner = actor.valid();
    let obs_inner = obs.clone().inner();
    // J v by a central difference, with the largest parameter change 1e-3.
    let vmax = v.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-12);
    let eps = 1e-3 / vmax;
    let shifted = |sign: f32| {
        let p: Vec<f32> = theta
            .iter()
            .zip(v)
            .map(|(t, x)| t + sign * eps * x)
            .collect();
        set_flat_params(inner.clone(), &p).forward(obs_inner.clone())
    };
    let jv = (shifted(1.0) - shifted(-1.0)) / (2.0 * eps);
    // u = M J v, with M = diag(p) - p p^T per state.
    let p = softmax(inner.forward(obs_inner), 1);
    let u = categorical_fisher_middle(p, jv);
    // J^T u by one backward pass of sum(logits * u) / N.
    let u = Tensor::<B, 2>::from_inner(u);
    let loss = (actor.forward(obs.clone()) * u).sum() / n;
    let grads = GradientsParams::from_grads(loss.backward(), actor);
    let fv = flat_grads(actor, &grads);
    fv.iter().zip(v).map(|(f, x)| f + damping * x).collect()
}
// ANCHOR_END: trpo_fvp

// ANCHOR: trpo_fisher_middle
/// The middle of a categorical policy's Fisher matrix, `F = E[J^T M J]` (eq. TRPO-4): for
/// each state (row) the action probabilities `p` and how the logits move, `jv = J v`, gives
/// `M (J v)` with `M = diag(p) - p p^T`, the Hessian of the log-partition of the softmax.
pub fn categorical_fisher_middle<B: Backend>(p: Tensor<B, 2>, jv: Tensor<B, 2>) -> Tensor<B, 2> {
    // Assignment (c) begins: M (J v) row by row, without forming M.
    let pjv = p.clone() * jv;
    pjv.clone() - p * pjv.sum_dim(1)
    // Assignment (c) ends.
}
// ANCHOR_END: trpo_fisher_middle

// ANCHOR: trpo_cg
/// Solves `A x = b` for a symmetric positive definite `A` given as `a(v) = A v`, in at most
/// `steps` conjugate-gradient iterations (eq. TRPO-5).
pub fn conjugate_gradient(
    a: impl Fn(&[f32]) -> Vec<f32>,
    b: &[f32],
    steps: usize,
    tol: f32,
) -> Vec<f32> {
    // Assignment (c) begins: conjugate gradient from x = 0, eq. (TRPO-5); stop once r.r < tol.
    let mut x = vec![0.0; b.len()];
    let mut r = b.to_vec();
    let mut p = b.to_vec();
    let mut rr = dot(&r, &r);
    for _ in 0..steps {
        if rr < tol {
            break;
        }
        let ap = a(&p);
        let alpha = rr / dot(&p, &ap).max(1e-12);
        x.iter_mut().zip(&p).for_each(|(xi, pi)| *xi += alpha * pi);
        r.iter_mut()
            .zip(&ap)
            .for_each(|(ri, api)| *ri -= alpha * api);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        p.iter_mut()
            .zip(&r)
            .for_each(|(pi, ri)| *pi = ri + beta * *pi);
        rr = rr_new;
    }
    x
    // Assignment (c) ends.
}
// ANCHOR_END: trpo_cg

// ANCHOR: trpo_kl_surrogate
/// The mean KL(pi_old || pi_new) over states and the surrogate `mean(ratio * A)`, for the
/// policy with parameters `theta` (no gradients).
fn kl_and_surrogate<B: Backend>(
    actor: &Mlp<B>,
    theta: &[f32],
    obs: &Tensor<B, 2>,
    actions: &Tensor<B, 1, Int>,
    old_log_probs: &Tensor<B, 2>,
    adv: &Tensor<B, 1>,
) -> (f64, f64) {
    let log_probs =
        categorical::log_probs(set_flat_params(actor.clone(), theta).forward(obs.clone()));
    let kl = (old_log_probs.clone().exp() * (old_log_probs.clone() - log_probs.clone()))
        .sum_dim(1)
        .mean();
    let logp = categorical::log_prob_of(log_probs, actions.clone());
    let old_logp = categorical::log_prob_of(old_log_probs.clone(), actions.clone());
    let surrogate = ((logp - old_logp).exp() * adv.clone()).mean();
    (scalar(&kl.reshape([1])), scalar(&surrogate.reshape([1])))
}
// ANCHOR_END: trpo_kl_surrogate

/// A TRPO learner.
pub struct Trpo<B: AutodiffBackend> {
    pub config: TrpoConfig,
    pub model: ActorCritic<B>,
    pub(crate) critic_optim: OptimizerAdaptor<Adam, Mlp<B>, B>,
    /// The environments, the action sampler and the step count.
    pub collector: Collector,
    device: B::Device,
    pub iteration: usize,
}

impl<B: AutodiffBackend> Trpo<B> {
    pub fn new(
        config: TrpoConfig,
        venv: VecEnv,
        seed: u64,
        device: B::Device,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (collector, model) = actor_critic::start(venv, &config.hidden, seed, &device);
        Ok(Self {
            config,
            model,
            critic_optim: Adam::new().init(),
            collector,
            device,
            iteration: 0,
        })
    }

    /// One iteration: collect, advantages, natural-gradient step, critic, metrics.
    pub fn iterate(&mut self) -> policy_lab_envs::Result<Metrics> {
        let c = self.config.clone();
        // 1. Collect.
        let inference = self.model.valid();
        let r = self.collector.collect(&inference.actor, c.num_steps)?;

        // ANCHOR: trpo_gradient
        // 2. Advantages (eq. GAE-1, GAE-2), normalized.
        let values = critic_values(&inference.critic, &r.obs, r.obs_dim);
        let next_values = r.next_values(&values, &inference.critic);
        let (mut adv, returns) = gae(
            &r.rewards,
            &values,
            &next_values,
            &r.episode_ends(),
            c.num_envs,
            c.gamma,
            c.gae_lambda,
        );
        normalize(&mut adv, 1e-8);

        // 3a. The surrogate's gradient g at the current policy (eq. TRPO-2).
        let all: Vec<usize> = (0..r.transitions()).collect();
        let (obs, actions) = obs_and_actions::<B>(&r, &all, &self.device);
        let adv_t = tensor1::<B>(adv, &self.device);
        let old_log_probs = categorical::log_probs(inference.actor.forward(obs.clone().inner()));
        let logp = categorical::log_prob_of(
            categorical::log_probs(self.model.actor.forward(obs.clone())),
            actions.clone(),
        );
        let old_logp = Tensor::<B, 1>::from_inner(categorical::log_prob_of(
            old_log_probs.clone(),
            actions.clone().inner(),
        ));
        let surrogate = ((logp - old_logp).exp() * adv_t.clone()).mean();
        let grads = GradientsParams::from_grads(surrogate.backward(), &self.model.actor);
        let g = flat_grads(&self.model.actor, &grads);
        // ANCHOR_END: trpo_gradient

        // ANCHOR: trpo_step
        // 3b. The natural-gradient direction s = (F + lambda I)^-1 g, lambda = cg_damping
        //     (eq. TRPO-5), scaled to the KL bound with the same damped product (eq. TRPO-6).
        let fvp = |v: &[f32]| fisher_vector_product(&self.model.actor, &obs, v, c.cg_damping);
        let s = conjugate_gradient(fvp, &g, c.cg_max_steps, 1e-10);
        let shs = dot(
            &s,
            &fisher_vector_product(&self.model.actor, &obs, &s, c.cg_damping),
        )
        .max(1e-12);
        let step_size = (2.0 * c.target_kl / shs).sqrt();
        // ANCHOR_END: trpo_step

        // ANCHOR: trpo_line_search
        // 3c. Backtracking line search (eq. TRPO-7).
        let theta = flat_params(&self.model.actor);
        let (obs_i, actions_i, adv_i) =
            (obs.clone().inner(), actions.clone().inner(), adv_t.inner());
        let (_, surrogate_before) = kl_and_surrogate(
            &inference.actor,
            &theta,
            &obs_i,
            &actions_i,
            &old_log_probs,
            &adv_i,
        );
        let mut accepted = None;
        let mut fraction = 1.0f32;
        for j in 0..c.line_search_max_iter {
            let candidate: Vec<f32> = theta
                .iter()
                .zip(&s)
                .map(|(t, d)| t + fraction * step_size * d)
                .collect();
            let (kl, surr) = kl_and_surrogate(
                &inference.actor,
                &candidate,
                &obs_i,
                &actions_i,
                &old_log_probs,
                &adv_i,
            );
            if kl <= f64::from(c.target_kl) && surr > surrogate_before {
                accepted = Some((j, candidate, kl, surr));
                break;
            }
            fraction *= c.line_search_shrinking_factor;
        }
        // ANCHOR_END: trpo_line_search
        // ANCHOR: trpo_accept
        let mut m = Metrics::new();
        match accepted {
            Some((j, candidate, kl, surr)) => {
                self.model.actor = set_flat_params(self.model.actor.clone(), &candidate);
                m.insert("line_search_steps", j as f64);
                m.insert("kl", kl);
                m.insert("policy_objective_improvement", surr - surrogate_before);
                m.insert("is_line_search_success", 1.0);
            }
            None => {
                m.insert("is_line_search_success", 0.0);
                m.insert("kl", 0.0);
            }
        }
        // ANCHOR_END: trpo_accept

        // ANCHOR: trpo_critic
        // 3d. The critic's regression toward the returns.
        let mut v_loss = 0.0;
        let mut idx = all.clone();
        for _ in 0..c.n_critic_updates {
            idx.shuffle(self.collector.rng());
            for mb in idx.chunks(c.batch_size) {
                let (mb_obs, _) = obs_and_actions::<B>(&r, mb, &self.device);
                let mb_returns = tensor1::<B>(pick(&returns, mb), &self.device);
                let critic = &mut self.model.critic;
                let optim = &mut self.critic_optim;
                v_loss = critic_step(critic, optim, mb_obs, mb_returns, c.learning_rate);
            }
        }
        // ANCHOR_END: trpo_critic
        self.iteration += 1;

        // 4. Metrics.
        m.insert("value_loss", v_loss);
        m.insert("explained_variance", explained_variance(&values, &returns));
        m.insert("global_step", self.global_step() as f64);
        crate::core::rollout::episode_metrics(&r, &mut m);
        Ok(m)
    }
}

// How the toy runner reads TRPO's settings and makes its learner (registered in
// `src/run/train.rs`), and the run layer's view of it: iterate, and the checkpoint (both
// networks, the critic's optimizer; the actor has none, its step is the natural gradient's).
crate::vec_env_rung!(TrpoConfig, critic: true, |config, venv, seed, _total, device| {
    Trpo::new(config, venv, seed, device)
});
crate::actor_critic_learner!(Trpo, critic_optim: "optim_critic");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::Distribution;

    /// The Fisher matrix of a categorical policy written out: `(1/N) sum_s J_s^T M_s J_s`,
    /// with each row of `J_s` from its own backward pass.
    fn explicit_fisher(actor: &Mlp<Cpu>, obs: &Tensor<Cpu, 2>) -> Vec<Vec<f32>> {
        let [n, _] = obs.dims();
        let logits = actor.valid().forward(obs.clone().inner());
        let probs: Vec<f32> = softmax(logits, 1).into_data().to_vec().unwrap();
        let a = probs.len() / n;
        let dim = flat_params(actor).len();
        let mut f = vec![vec![0.0f32; dim]; dim];
        for s in 0..n {
            let jac: Vec<Vec<f32>> = (0..a)
                .map(|k| {
                    let out = actor
                        .forward(obs.clone().slice(s..s + 1))
                        .slice([0..1, k..k + 1])
                        .sum();
                    flat_grads(actor, &GradientsParams::from_grads(out.backward(), actor))
                })
                .collect();
            let p = &probs[s * a..(s + 1) * a];
            for i in 0..a {
                for j in 0..a {
                    let m = if i == j { p[i] } else { 0.0 } - p[i] * p[j];
                    for x in 0..dim {
                        for y in 0..dim {
                            f[x][y] += m * jac[i][x] * jac[j][y] / n as f32;
                        }
                    }
                }
            }
        }
        f
    }

    #[test]
    fn fisher_vector_product_matches_the_explicit_fisher() {
        let device = Default::default();
        <Cpu as Backend>::seed(&device, 3);
        let actor = Mlp::<Cpu>::new(3, &[5], 4, 1.0, &device);
        let obs = Tensor::<Cpu, 2>::random([6, 3], Distribution::Normal(0.0, 1.0), &device);
        let f = explicit_fisher(&actor, &obs);
        let dim = f.len();
        let v: Vec<f32> = Tensor::<Cpu, 1>::random([dim], Distribution::Normal(0.0, 1.0), &device)
            .into_data()
            .to_vec()
            .unwrap();
        let fv = fisher_vector_product(&actor, &obs, &v, 0.0);
        let want: Vec<f32> = f.iter().map(|row| dot(row, &v)).collect();
        let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            scale > 1e-2,
            "a non-trivial test needs a non-zero F v, got scale {scale}"
        );
        for (i, (got, want)) in fv.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() <= 2e-3 * scale,
                "component {i}: {got} vs {want} (scale {scale})"
            );
        }
        // Damping adds lambda v.
        let damped = fisher_vector_product(&actor, &obs, &v, 0.1);
        for i in 0..dim {
            assert!((damped[i] - fv[i] - 0.1 * v[i]).abs() < 1e-3 * scale.max(1.0));
        }
    }

    #[test]
    fn conjugate_gradient_solves_a_linear_system() {
        // A = B^T B + I (symmetric positive definite), 6x6.
        let device = Default::default();
        <Cpu as Backend>::seed(&device, 5);
        let b = Tensor::<Cpu, 2>::random([6, 6], Distribution::Normal(0.0, 1.0), &device);
        let a = b.clone().transpose().matmul(b) + Tensor::eye(6, &device);
        let a_rows: Vec<f32> = a.into_data().to_vec().unwrap();
        let a_rows: Vec<Vec<f32>> = a_rows.chunks(6).map(|r| r.to_vec()).collect();
        let rhs = vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.5];
        let x = conjugate_gradient(
            |v| a_rows.iter().map(|r| dot(r, v)).collect(),
            &rhs,
            50,
            1e-12,
        );
        // Check against a direct solve by Gaussian elimination.
        let mut m: Vec<Vec<f64>> = a_rows
            .iter()
            .zip(&rhs)
            .map(|(r, b)| {
                r.iter()
                    .map(|v| f64::from(*v))
                    .chain([f64::from(*b)])
                    .collect()
            })
            .collect();
        for col in 0..6 {
            let piv = (col..6)
                .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
                .unwrap();
            m.swap(col, piv);
            for row in 0..6 {
                if row != col {
                    let f = m[row][col] / m[col][col];
                    let pivot_row = m[col].clone();
                    for (x, p) in m[row].iter_mut().zip(pivot_row).skip(col) {
                        *x -= f * p;
                    }
                }
            }
        }
        for i in 0..6 {
            let direct = m[i][6] / m[i][i];
            assert!(
                (f64::from(x[i]) - direct).abs() < 1e-3 * direct.abs().max(1.0),
                "x[{i}] = {} vs {direct}",
                x[i]
            );
        }
    }
}
