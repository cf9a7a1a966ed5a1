//! What several test files share: a free port on loopback, and the tiny transformer and
//! addition task of the data-parallel tests.
#![allow(dead_code)] // each test file uses part of it

use policy_lab::envs::{Arithmetic, ArithmeticConfig};
use policy_lab::lm::model::{Transformer, TransformerConfig};
use policy_lab::lm::task::task_tokenizer;
use policy_lab::lm::tokenizer::Tokenizer;

pub type B = policy_lab::backend::Cpu;

/// A free TCP port on loopback (bound, then released for the process that will use it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// 2-digit addition (10 held-out sums) and a 2-layer transformer of width 32, seeded: the
/// same in every process.
pub fn tiny_addition() -> (Arithmetic, Transformer<B>) {
    let env = Arithmetic::new(ArithmeticConfig {
        digits: 2,
        test_size: 10,
        ..ArithmeticConfig::default()
    })
    .unwrap();
    let tok = task_tokenizer();
    let model = policy_lab::backend::seeded::<B, _>(&Default::default(), 3, || {
        TransformerConfig::new(tok.vocab_size())
            .with_d_model(32)
            .with_n_layers(2)
            .with_n_heads(4)
            .with_d_ff(64)
            .with_max_seq_len(16)
            .init(&Default::default())
    });
    (env, model)
}
