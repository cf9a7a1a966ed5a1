//! Assignment (a), instructor solution.

pub fn discounted_returns(
    rewards: &[f32],
    dones: &[bool],
    last_value: f32,
    gamma: f32,
) -> Vec<f32> {
    let mut out = vec![0.0; rewards.len()];
    let mut next = last_value;
    for t in (0..rewards.len()).rev() {
        if dones[t] {
            next = 0.0;
        }
        out[t] = rewards[t] + gamma * next;
        next = out[t];
    }
    out
}

pub fn gae(
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last_value: f32,
    gamma: f32,
    lambda: f32,
) -> (Vec<f32>, Vec<f32>) {
    let n = rewards.len();
    let mut adv = vec![0.0; n];
    let mut next_adv = 0.0;
    for t in (0..n).rev() {
        let next_value = if dones[t] {
            0.0
        } else if t + 1 < n {
            values[t + 1]
        } else {
            last_value
        };
        let keep = if dones[t] { 0.0 } else { 1.0 };
        let delta = rewards[t] + gamma * next_value - values[t];
        adv[t] = delta + gamma * lambda * keep * next_adv;
        next_adv = adv[t];
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}
