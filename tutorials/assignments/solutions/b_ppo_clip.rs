//! Assignment (b), instructor solution.

pub fn ratios(logp: &[f32], old_logp: &[f32]) -> Vec<f32> {
    logp.iter()
        .zip(old_logp)
        .map(|(l, o)| (l - o).exp())
        .collect()
}

pub fn clipped_loss(logp: &[f32], old_logp: &[f32], adv: &[f32], eps: f32) -> f32 {
    let r = ratios(logp, old_logp);
    let total: f32 = r
        .iter()
        .zip(adv)
        .map(|(r, a)| -(r * a).min(r.clamp(1.0 - eps, 1.0 + eps) * a))
        .sum();
    total / r.len() as f32
}

pub fn clip_fraction(logp: &[f32], old_logp: &[f32], eps: f32) -> f32 {
    let r = ratios(logp, old_logp);
    r.iter().filter(|r| (*r - 1.0).abs() > eps).count() as f32 / r.len() as f32
}
