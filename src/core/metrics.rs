//! Metrics shared by several rungs, under the names users know from CleanRL and TRL:
//! `explained_variance` (a critic's quality) and the generation metrics of a batch of
//! groups (`reward`, `reward_std`, `frac_reward_zero_std`, `completions/*`).

use crate::Metrics;

// ANCHOR: ac_explained_variance
/// `1 - Var(returns - values) / Var(returns)`: 1 is a perfect critic, 0 no better than a
/// constant, negative worse (NaN when the returns do not vary).
pub fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let var = |x: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = x.collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n
    };
    let var_y = var(&mut returns.iter().map(|r| f64::from(*r)));
    let var_diff = var(&mut returns.iter().zip(values).map(|(r, v)| f64::from(r - v)));
    if var_y == 0.0 {
        f64::NAN
    } else {
        1.0 - var_diff / var_y
    }
}
// ANCHOR_END: ac_explained_variance

/// TRL's metrics of one batch of generations: `reward` and `reward_std` over every generated
/// group, `frac_reward_zero_std`, and the length statistics of the kept episodes or
/// completions (`clipped` = cut by the length limit before they ended).
pub fn generation_metrics(
    rewards: &[f32],
    zero_std: &[bool],
    lengths: &[usize],
    clipped: &[bool],
    m: &mut Metrics,
) {
    let mean = rewards.iter().sum::<f32>() / rewards.len() as f32;
    m.insert("reward", f64::from(mean));
    m.insert(
        "reward_std",
        f64::from(crate::core::advantage::sample_std(rewards)),
    );
    m.insert(
        "frac_reward_zero_std",
        zero_std.iter().filter(|z| **z).count() as f64 / zero_std.len() as f64,
    );
    let n = lengths.len() as f64;
    m.insert(
        "completions/mean_length",
        lengths.iter().sum::<usize>() as f64 / n,
    );
    m.insert(
        "completions/clipped_ratio",
        clipped.iter().filter(|t| **t).count() as f64 / n,
    );
}

/// The mean and the (population) standard deviation of `ys`, the band drawn over seeds.
pub fn mean_sd(ys: &[f64]) -> (f64, f64) {
    let n = ys.len().max(1) as f64;
    let mean = ys.iter().sum::<f64>() / n;
    (
        mean,
        (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt(),
    )
}
