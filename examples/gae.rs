//! Tutorial for the book's chapter "Actor-critic and GAE": generalized advantage estimation
//! on a hand-made rollout, for several lambdas, and what an episode end does to it.
//!
//! ```text
//! cargo run --release --example gae
//! ```

use policy_lab::core::advantage::gae;

fn show(name: &str, xs: &[f32]) {
    let shown: Vec<String> = xs.iter().map(|x| format!("{x:6.3}")).collect();
    println!("{name:<22} [{}]", shown.join(" "));
}

fn main() {
    // ANCHOR: run
    // One environment, six steps. The episode ends after step 3 (`episode_ends[2]`): the
    // steps after it belong to a new episode, so no advantage flows back across the end.
    let rewards = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    let values = [0.5, 0.6, 0.8, 0.4, 0.5, 0.6]; // V(s_t), the critic's guesses
                                                 // V(s_{t+1}) as the rollout stores it: 0 after a terminal state (there is no future),
                                                 // and the critic's value of the last observation where the rollout was cut (step 6).
    let next_values = [0.6, 0.8, 0.0, 0.5, 0.6, 0.7];
    let episode_ends = [false, false, true, false, false, false];
    let gamma = 0.99;
    show("rewards", &rewards);
    show("values V(s_t)", &values);
    for lambda in [0.0, 0.95, 1.0] {
        let (advantages, returns) = gae(
            &rewards,
            &values,
            &next_values,
            &episode_ends,
            1,
            gamma,
            lambda,
        );
        println!("lambda = {lambda}");
        show("  advantages A_t", &advantages);
        show("  critic targets A+V", &returns);
    }
    // lambda = 0 is the one-step TD error (low variance, biased by the critic);
    // lambda = 1 is the Monte-Carlo return minus the baseline (unbiased, high variance).
    // ANCHOR_END: run
}
