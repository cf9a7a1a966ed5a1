//! The small transformer: the KV cache and left padding change nothing, generation records
//! the log-probabilities that scoring recomputes, and bad input is a clear error.

use burn::tensor::Tensor;
use policy_lab::lm::generate::{completion_log_probs, generate, sample_token, SamplingConfig};
use policy_lab::lm::model::{Batch, KvCache, ModelError, Transformer, TransformerConfig};
use policy_lab::lm::tokenizer::{CharTokenizer, Tokenizer};
use rand::SeedableRng;

type B = burn::backend::NdArray;

fn model(seed: u64) -> Transformer<B> {
    // Seeded under policy-lab's lock: tests run in parallel, and burn's generator is global.
    policy_lab::backend::seeded::<B, _>(&Default::default(), seed, || {
        TransformerConfig::new(16)
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(24)
            .init(&Default::default())
    })
}

fn values(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

#[test]
fn the_kv_cache_gives_the_logits_of_a_full_pass() {
    let m = model(1);
    let rows = vec![vec![1, 5, 6, 7, 8, 9, 10]];
    let full = values(m.forward(&Batch::left_padded(&rows, 0)).unwrap());
    // The first four tokens at once, then one at a time.
    let mut cache = KvCache::new(m.n_layers(), 1);
    let mut pieces = values(
        m.forward_cached(&Batch::left_padded(&[rows[0][..4].to_vec()], 0), &mut cache)
            .unwrap(),
    );
    for &t in &rows[0][4..] {
        pieces.extend(values(
            m.forward_cached(&Batch::left_padded(&[vec![t]], 0), &mut cache)
                .unwrap(),
        ));
    }
    assert!(close(&full, &pieces, 1e-5));
}

#[test]
fn left_padding_does_not_change_a_row() {
    let m = model(2);
    let short = vec![1, 5, 6];
    let long = vec![1, 9, 8, 7, 6, 5];
    let alone = values(
        m.forward(&Batch::left_padded(std::slice::from_ref(&short), 0))
            .unwrap(),
    );
    let batched = m
        .forward(&Batch::left_padded(&[long, short], 0))
        .unwrap()
        .narrow(0, 1, 1) // the short row
        .narrow(1, 3, 3); // its real positions, after three pads
    assert!(close(&alone, &values(batched), 1e-5));
}

#[test]
fn generation_records_the_log_probs_that_scoring_recomputes() {
    let m = model(3);
    let prompts = vec![vec![1, 5, 6, 7], vec![1, 8], vec![1, 9, 9]];
    let config = SamplingConfig {
        temperature: 0.7,
        max_new_tokens: 6,
        ..SamplingConfig::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let out = generate(&m, &prompts, 0, 2, &config, &mut rng, None).unwrap();
    let (logp, mask) = completion_log_probs(&m, &prompts, &out.tokens, 0, 0.7).unwrap();
    let (logp, mask): (Vec<f32>, Vec<f32>) = (
        logp.into_data().to_vec().unwrap(),
        mask.into_data().to_vec().unwrap(),
    );
    let width = out.tokens.iter().map(Vec::len).max().unwrap();
    for (r, (tokens, lp)) in out.tokens.iter().zip(&out.logp).enumerate() {
        assert!(tokens.len() == 6 || out.finished[r] && tokens.last() == Some(&2));
        for j in 0..width {
            let k = r * width + j;
            if let Some(recorded) = lp.get(j) {
                assert_eq!(mask[k], 1.0);
                assert!(
                    (logp[k] - recorded).abs() < 1e-4,
                    "row {r} token {j}: {} vs {}",
                    logp[k],
                    recorded
                );
            } else {
                assert_eq!(mask[k], 0.0);
            }
        }
    }
    // Same seed, same completions.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    assert_eq!(
        generate(&m, &prompts, 0, 2, &config, &mut rng, None).unwrap(),
        out
    );
}

#[test]
fn top_k_and_top_p_restrict_sampling() {
    let logits = [0.0f32, 2.0, 1.0, -1.0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let greedy = SamplingConfig::greedy(1);
    for _ in 0..20 {
        assert_eq!(sample_token(&logits, &greedy, &mut rng).0, 1);
    }
    // p(1) = 0.64, p(2) = 0.24: top_p 0.8 keeps exactly those two.
    let top_p = SamplingConfig {
        top_p: Some(0.8),
        ..SamplingConfig::default()
    };
    let mut seen = [0; 4];
    for _ in 0..2000 {
        let (t, logp) = sample_token(&logits, &top_p, &mut rng);
        seen[t as usize] += 1;
        let z: f32 = logits.iter().map(|x| x.exp()).sum();
        assert!((logp - (logits[t as usize].exp() / z).ln()).abs() < 1e-5);
    }
    assert_eq!(seen[0] + seen[3], 0);
    let frac = seen[1] as f64 / 2000.0;
    assert!((frac - 0.64 / 0.88).abs() < 0.05, "{seen:?}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let m = model(4);
    let too_long = vec![vec![3u32; 25]];
    assert_eq!(
        m.forward(&Batch::left_padded(&too_long, 0)).unwrap_err(),
        ModelError::TooLong { len: 25, max: 24 }
    );
    assert_eq!(
        m.forward(&Batch::left_padded(&[vec![1, 16]], 0))
            .unwrap_err()
            .to_string(),
        "token id 16 is outside the model's vocabulary of 16"
    );
    let tok = CharTokenizer::new("0123456789+=");
    assert!(tok.encode("1*2").is_err());
    assert!(SamplingConfig {
        temperature: 0.0,
        ..Default::default()
    }
    .validate()
    .is_err());
}

#[test]
fn scoring_many_rows_in_chunks_matches_scoring_each_row_alone() {
    use policy_lab::lm::generate::LOGIT_CHUNK_POSITIONS;
    let m = model(5);
    // More rows than one chunk of logits holds, prompts of different lengths.
    let rows = 2 * LOGIT_CHUNK_POSITIONS / 8 + 5;
    let prompts: Vec<Vec<u32>> = (0..rows)
        .map(|r| (0..3 + r % 4).map(|i| 3 + ((r + i) % 12) as u32).collect())
        .collect();
    let completions: Vec<Vec<u32>> = (0..rows)
        .map(|r| (0..8).map(|i| 3 + ((r * 5 + i * 3) % 13) as u32).collect())
        .collect();
    let (all, _) = completion_log_probs(&m, &prompts, &completions, 0, 0.9).unwrap();
    let all: Vec<f32> = all.into_data().to_vec().unwrap();
    for r in [0, LOGIT_CHUNK_POSITIONS / 8, rows - 1] {
        let (one, _) =
            completion_log_probs(&m, &prompts[r..=r], &completions[r..=r], 0, 0.9).unwrap();
        let one: Vec<f32> = one.into_data().to_vec().unwrap();
        assert!(close(&all[r * 8..(r + 1) * 8], &one, 1e-5), "row {r}");
    }
}

#[test]
fn selective_log_softmax_is_log_softmax_at_the_targets() {
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Distribution, Int, TensorData};
    use policy_lab::lm::generate::selective_log_softmax;
    let device = Default::default();
    let logits = Tensor::<B, 3>::random([3, 4, 50], Distribution::Normal(0.0, 5.0), &device);
    let targets: Vec<i64> = (0..12).map(|i| (i * 7 % 50) as i64).collect();
    let targets = Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [3, 4, 1]), &device);
    let ours = selective_log_softmax(logits.clone(), targets.clone());
    let reference = log_softmax(logits, 2).gather(2, targets);
    assert!(close(&values(ours), &values(reference), 1e-5));
}

/// GRPO's G completions of a prompt share the prompt's positions in `completion_log_probs`
/// (run once per distinct prompt, its keys and values copied per row): the log-probabilities
/// and the gradients must be those of the whole batch run row by row, prompt included, as the
/// definition reads: `log_softmax(forward(prompt ++ completion))` at each completion token.
#[test]
fn shared_prompts_give_the_log_probs_and_gradients_of_the_whole_batch() {
    shared_prompts_match_the_whole_batch::<burn::backend::Autodiff<B>>();
}

/// The same on burn's Flex CPU backend (`cargo test --features flex --test lm_model`, as CI
/// runs it): its `select` and the backward pass of a row selected several times are its own.
#[cfg(feature = "flex")]
#[test]
fn shared_prompts_give_the_whole_batch_on_flex() {
    shared_prompts_match_the_whole_batch::<policy_lab::backend::Flex>();
}

fn shared_prompts_match_the_whole_batch<A: burn::tensor::backend::AutodiffBackend>() {
    use burn::module::Module;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Int, TensorData};
    use policy_lab::lm::generate::completion_batch;
    use policy_lab::lm::model::Architecture;
    for architecture in [Architecture::Gpt2, Architecture::Llama] {
        let m: Transformer<A> = policy_lab::backend::seeded::<A, _>(&Default::default(), 3, || {
            TransformerConfig::new(16)
                .with_d_model(32)
                .with_n_layers(2)
                .with_n_heads(4)
                .with_n_kv_heads(Some(2))
                .with_d_ff(64)
                .with_max_seq_len(24)
                .with_architecture(architecture)
                .init(&Default::default())
        });
        // Three prompts of different lengths, four completions each (one of a single token,
        // one empty), and a prompt that comes back later, apart from its group.
        let groups: [Vec<u32>; 3] = [vec![1, 5, 6], vec![2, 7, 8, 9, 10], vec![3, 4]];
        let mut prompts = Vec::new();
        let mut completions = Vec::new();
        for (g, prompt) in groups.iter().enumerate() {
            for c in 0..4 {
                prompts.push(prompt.clone());
                let len = [5, 1, 3, 0][c] + g % 2;
                completions.push(
                    (0..len)
                        .map(|i| 3 + ((g * 7 + c * 3 + i) % 12) as u32)
                        .collect(),
                );
            }
        }
        prompts.push(groups[0].clone());
        completions.push(vec![11, 12]);
        let (logp, mask) = completion_log_probs(&m, &prompts, &completions, 0, 0.9).unwrap();
        // The definition, on the whole batch.
        let p_len = 5;
        let c_len = completions.iter().map(Vec::len).max().unwrap();
        let (batch, targets, _) =
            completion_batch(Batch::left_padded(&prompts, 0), &completions, 0);
        let rows = prompts.len();
        let targets = Tensor::<A, 3, Int>::from_data(
            TensorData::new(targets, [rows, c_len, 1]),
            &Default::default(),
        );
        let logits = m.forward(&batch).unwrap().narrow(1, p_len - 1, c_len) / 0.9;
        let want = log_softmax(logits, 2)
            .gather(2, targets)
            .reshape([rows, c_len]);
        let (ours, theirs): (Vec<f32>, Vec<f32>) = (
            (logp.clone() * mask.clone()).into_data().to_vec().unwrap(),
            (want.clone() * mask.clone()).into_data().to_vec().unwrap(),
        );
        assert!(
            close(&ours, &theirs, 1e-5),
            "{architecture:?}: {ours:?}\n{theirs:?}"
        );
        // The gradients of a loss over both: every weight's.
        let grads = |loss: Tensor<A, 2>| {
            let g = (loss * mask.clone()).sum().backward();
            let mut out = Vec::new();
            m.visit(&mut GradsOf::<A>(&g, &mut out));
            out
        };
        let (ours, theirs) = (grads(logp), grads(want));
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            let scale = b.iter().fold(1e-3f32, |m, x| m.max(x.abs()));
            assert!(
                close(a, b, 1e-4 * scale),
                "{architecture:?}: a gradient differs"
            );
        }
    }
}

/// Every float parameter's gradient in `grads`, flattened, in the module's order.
struct GradsOf<'a, A: burn::tensor::backend::AutodiffBackend>(
    &'a A::Gradients,
    &'a mut Vec<Vec<f32>>,
);

impl<A: burn::tensor::backend::AutodiffBackend> burn::module::ModuleVisitor<A> for GradsOf<'_, A> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<A, D>>) {
        if let Some(g) = param.val().grad(self.0) {
            self.1.push(g.into_data().to_vec().unwrap());
        }
    }
}
