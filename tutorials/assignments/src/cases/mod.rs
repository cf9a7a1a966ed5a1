//! The graders' cases: inputs drawn from a seed and the values the instructor's build of
//! policy-lab computes for them, one JSON file per assignment. The public cases (seed 0) ship
//! in `cases/`; an instructor keeps held-out ones, drawn from a seed of their own, outside
//! the handout:
//!
//! ```bash
//! cargo run -p policy-lab-assignments --bin cases                                  # cases/ (public)
//! cargo run -p policy-lab-assignments --bin cases -- --seed 90210 --out ~/heldout  # held-out
//! ```
//!
//! Run it in the instructor's repository: in a handout, the library's code for each
//! assignment is a `todo!()`.

pub mod grpo;
pub mod lm;
pub mod ppo_clip;
pub mod reinforce;
pub mod returns_gae;
pub mod trpo_cg;

use std::path::Path;

pub use returns_gae::{returns_gae, ReturnsGaeCases, Rollout, RETURNS_GAE};

use burn::tensor::{Tensor, TensorData};
use policy_lab::backend::Inference;

/// A `[rows, cols]` tensor of values stored row-major in a case file.
pub fn matrix(rows: usize, cols: usize, values: &[f32]) -> Tensor<Inference, 2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [rows, cols]),
        &Default::default(),
    )
}

/// A tensor's values, row-major.
pub fn values<const D: usize>(x: Tensor<Inference, D>) -> Vec<f32> {
    x.into_data().to_vec().expect("f32 values")
}

/// Every case file, by name, with what writes it for a seed.
pub fn files(seed: u64) -> Vec<(&'static str, String)> {
    let json = |v: serde_json::Result<String>| v.expect("plain data") + "\n";
    vec![
        (RETURNS_GAE, json(serde_json::to_string(&returns_gae(seed)))),
        (
            ppo_clip::FILE,
            json(serde_json::to_string(&ppo_clip::cases(seed))),
        ),
        (
            trpo_cg::FILE,
            json(serde_json::to_string(&trpo_cg::cases(seed))),
        ),
        (grpo::FILE, json(serde_json::to_string(&grpo::cases(seed)))),
        (
            reinforce::FILE,
            json(serde_json::to_string(&reinforce::cases(seed))),
        ),
        (lm::FILE, json(serde_json::to_string(&lm::cases(seed)))),
    ]
}

/// Writes every case file for `seed` into `dir`.
pub fn write_all(seed: u64, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in files(seed) {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    /// The shipped public cases are what this library computes for seed 0: a change to the
    /// library's assignment code (or to the draws) must come with `--bin cases` run again.
    #[test]
    fn the_public_cases_are_what_the_library_computes() {
        for (name, now) in super::files(0) {
            let path = crate::grade::public_cases().join(name);
            let shipped = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                shipped == now,
                "{} is stale: run `cargo run -p policy-lab-assignments --bin cases`",
                path.display()
            );
        }
    }

    /// A held-out seed draws other cases in every file.
    #[test]
    fn another_seed_draws_other_cases() {
        for ((name, public), (_, heldout)) in super::files(0).into_iter().zip(super::files(1)) {
            assert_ne!(public, heldout, "{name}");
        }
    }
}
