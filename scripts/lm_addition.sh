#!/usr/bin/env bash
# The language-model result of the README, with one command, on the CPU:
#   SFT warm start on 3-digit addition (stopped at >= 50% held-out accuracy), then GRPO and
#   PPO with a value head from that checkpoint, then the learning curves (held-out accuracy
#   against completions and against wall time).
#
#   bash scripts/lm_addition.sh [GRPO_ITERATIONS] [PPO_ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
bin=target/release/policy-lab
$bin lm sft --task add:3 --out runs/lm-sft-add3
$bin lm grpo --task add:3 --init runs/lm-sft-add3 --out runs/lm-grpo-add3 --iterations "${1:-1000}"
$bin lm ppo --task add:3 --init runs/lm-sft-add3 --out runs/lm-ppo-add3 --iterations "${2:-400}"
$bin plot runs/lm-grpo-add3 runs/lm-ppo-add3 --out runs/lm-add3-curves
$bin plot runs/lm-grpo-add3 runs/lm-ppo-add3 --x time --out runs/lm-add3-curves-time
