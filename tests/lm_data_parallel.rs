//! Data-parallel GRPO (burn's collective all-reduce) on two CPU "devices": two peers, each
//! with half of the groups, get the gradient one device gets from the whole batch (within
//! 1e-6), for a sequence-mean (`grpo`) and a token-mean (`dapo`) loss; and a run of a few
//! iterations works end to end. (The gradient, not the updated weights, is compared: Adam's
//! first step is nearly `lr * sign(g)`, which would hide a wrongly scaled gradient.)
//!
//! One test function: burn's collective server is one per process and backend, and the
//! parts must not overlap (the library also serializes sessions).

use burn::module::Module;
use policy_lab::algos::grpo::{GrpoUpdate, LossType};
use policy_lab::algos::grpo_lm::{GrpoLm, GrpoLmConfig};
use policy_lab::algos::grpo_parallel::{grpo_data_parallel, DataParallel, Peers};
use policy_lab::core::flat::flat_grads;
use policy_lab::lm::task::task_tokenizer;

mod common;
use common::{batch_and_gradient, config, largest_difference, setup, B};

#[test]
fn two_peers_take_the_single_device_step_and_a_run_works() {
    let s = setup();
    let (env, model, max_len) = (s.env.clone(), s.model.clone(), s.max_len);
    let tok = task_tokenizer();

    for loss_type in [LossType::Grpo, LossType::Dapo] {
        // One batch of 4 groups, sampled once; its gradient on one device.
        let (rollout, want) = batch_and_gradient(&s, loss_type);

        // The same batch split over two peers, 2 groups each: the averaged gradient.
        let peers = DataParallel::<B>::new(vec![Default::default(); 2]).unwrap();
        let got = peers
            .run(|peer, device| {
                let k = peer.0 as usize;
                let learner = GrpoLm::new(
                    config(loss_type, 2),
                    max_len,
                    model.clone().fork(&device),
                    env.clone(),
                    tok.clone(),
                    1,
                )?
                .with_peer(peer);
                let (grads, _) = learner.gradients(&rollout.rows(k * 8..(k + 1) * 8))?;
                Ok(flat_grads(&learner.model, &grads))
            })
            .unwrap();
        for (k, peer) in got.iter().enumerate() {
            let (worst, size) = largest_difference(peer, &want);
            println!(
                "{loss_type:?} peer {k}: largest gradient difference {worst:e} (largest gradient {size:e})"
            );
            assert!(size > 1e-3, "the loss must have a gradient");
            assert!(worst <= 1e-6, "{loss_type:?} peer {k}: {worst}");
        }
    }

    // A short run: 8 groups over two peers, metrics averaged, completions summed.
    let config = GrpoLmConfig {
        update: GrpoUpdate {
            num_groups: 8,
            num_generations: 4,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    };
    let mut seen = Vec::new();
    let peers = |config| Peers {
        config,
        max_completion_length: max_len,
        model: model.clone(),
        env: env.clone(),
        tokenizer: tok.clone(),
        seed: 1,
        devices: vec![Default::default(); 2],
        nodes: None,
    };
    grpo_data_parallel(peers(config), 3, |it, m, _| {
        assert!(m["reward"].is_finite() && m["loss"].is_finite());
        seen.push((it, m["completions_seen"]));
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, vec![(1, 32.0), (2, 64.0), (3, 96.0)]);

    // A batch that does not split evenly is refused.
    let uneven = GrpoLmConfig {
        update: GrpoUpdate {
            num_groups: 3,
            ..GrpoUpdate::default()
        },
        ..GrpoLmConfig::default()
    };
    let err = grpo_data_parallel(peers(uneven), 1, |_, _, _| Ok(()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("num_groups (3) must be a multiple of the number of devices (2)"),
        "{err}"
    );
}

#[test]
fn lm_grpo_with_two_devices_runs_and_saves() {
    use policy_lab::run::lm::{run_rl, LmAlgo, LmRunConfig};
    // What `policy-lab lm grpo --task add:2 --init tests/fixtures/hf-tiny-qwen2 --devices 2`
    // does, on a tiny budget.
    let mut config = LmRunConfig {
        algo: LmAlgo::Grpo,
        ..LmRunConfig::default()
    };
    config.task.digits = 2;
    config.task.test_size = 8;
    config.rl.iterations = 2;
    config.rl.devices = 2;
    config.grpo.update.num_groups = 4;
    config.grpo.update.num_generations = 2;
    config.grpo.update.dynamic_sampling = false;
    let init =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny-qwen2");
    let out = std::env::temp_dir().join(format!("policy-lab-dp-{}", std::process::id()));
    let summary = run_rl::<B>(
        &config,
        &init,
        &out,
        policy_lab::run::Start::New,
        &mut std::io::sink(),
    )
    .unwrap();
    assert_eq!(summary.iterations, 2);
    assert!(summary.model.join("model.mpk").exists());
    let rows = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    // The start row and one row per iteration, 8 completions each.
    assert_eq!(rows.lines().count(), 3);
    assert!(rows
        .lines()
        .last()
        .unwrap()
        .contains("\"completions_seen\":16.0"));
    std::fs::remove_dir_all(&out).unwrap();
}
