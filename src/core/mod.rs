//! The core every rung is built from, with no rung's name in it: rollouts and batches
//! ([`rollout`]), advantage estimators ([`advantage`]), objective pieces ([`objective`]),
//! networks ([`nn`], [`actor_critic`]), metrics ([`metrics`]), flat parameter vectors for
//! TRPO ([`flat`]), and what the run layer needs of a learner ([`learner`], [`checkpoint`],
//! [`config`], [`files`]).

pub mod actor_critic;
pub mod advantage;
pub mod checkpoint;
pub mod config;
pub mod files;
pub mod flat;
pub mod learner;
pub mod metrics;
pub mod nn;
pub mod objective;
pub mod rollout;
