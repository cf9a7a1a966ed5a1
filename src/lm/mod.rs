//! Language models as policies: tokens are actions, a prompt is the state, the reward comes
//! at the end of the completion.
//!
//! * [`tokenizer`]: text to token ids and back;
//! * [`model`]: a small GPT-style transformer with a padding mask and a KV cache;
//! * [`infer`]: the forward pass of generation without autodiff, fused on the CPU, with a
//!   preallocated KV cache;
//! * [`sft`]: supervised fine-tuning on demonstrations, the warm start before RL;
//! * [`generate`]: batched sampling (temperature, top-k, top-p, EOS) that records each
//!   token's log-probability, and the per-token log-probabilities of given completions, the
//!   `[sequences, tokens]` batch that `objective` and `algos::grpo` consume;
//! * [`rollout`]: completions of a text task's prompts, scored by the task (GRPO's and PPO's
//!   collection step);
//! * [`task`]: the arithmetic task's tokenizer, names (`add:3`) and accuracy evaluation;
//! * [`dataset`]: prompts from a JSON Lines file in TRL's standard and conversational
//!   formats, with the columns the reward functions read, and two tasks written as such
//!   files (the arithmetic task, TinyZero's Countdown);
//! * [`rewards`]: reward functions as TRL takes them (accuracy, format, length, Countdown's
//!   equation, an outside command, any closure) and their weighted sum;
//! * [`checkpoint`]: a model, its shape and its tokenizer in one folder;
//! * [`hf`]: Hugging Face Llama, Qwen2 and Qwen3 checkpoints (safetensors, tokenizer.json)
//!   into the same [`model::Transformer`];
//! * [`gguf`], [`quant`], [`gguf_model`]: GGUF files (llama.cpp's format), their quantized
//!   tensor types as `f32`, and a Llama model in one (SmolLM2) as the same model and tokenizer;
//! * [`chat`]: a checkpoint's chat template, rendered as transformers renders it;
//! * [`trainer`]: the one learner of those stages, AdamW steps on fresh batches of a lesson;
//! * [`stage`]: what the run layer needs of a stage that trains a fresh model (SFT, the
//!   reward model);
//! * [`reward`]: a learned reward model (a transformer with a scalar head) trained on
//!   preference pairs with the Bradley-Terry loss, and a task that makes such pairs;
//!
//! The learners on top of these are `algos::grpo_lm` and `algos::ppo_lm`; data-parallel GRPO
//! and `policy-lab lm sft | grpo | ppo | reward | eval` are the run layer's (`run::lm`).

pub mod chat;
pub mod checkpoint;
pub mod dataset;
pub mod dataset_eval;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod gguf_model;
pub mod hf;
pub mod infer;
pub mod model;
pub mod quant;
pub mod reward;
pub mod rewards;
pub mod rollout;
pub mod sft;
pub mod stage;
pub mod task;
pub mod tokenizer;
pub mod trainer;
