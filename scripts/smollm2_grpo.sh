#!/usr/bin/env bash
# GRPO teaching SmolLM2-135M-Instruct two-digit addition on the CPU (README, "GRPO on a real
# model"; BENCHMARKS.md has the run): the datasets, the base model's evaluation, the run, the
# trained model's evaluation and the learning curve, with one command.
#
#   bash scripts/smollm2_grpo.sh [OUT]        # OUT: runs/smollm2-grpo-add2 by default
#
# The prompt is two-shot: a system message asks for the answer in <answer> </answer> tags, two
# worked additions show it, then the question. The base model keeps the format (99% of its
# greedy answers) but copies or guesses the number (5% right). The rewards are TRL's accuracy
# (the <answer> content against the `answer` column) and a format reward (the whole reply is
# one <answer>number</answer>); configs/smollm2-grpo-add2.toml has the settings.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/smollm2-grpo-add2}
mkdir -p "$(dirname "$out")"
model=$(bash scripts/get_smollm2.sh)
cargo build --release
bin=target/release/policy-lab
system="Reply with the answer only, in <answer> </answer> tags."
dataset() {
    $bin lm dataset add:2 --chat --system "$system" \
        --example "What is 12 + 7?" "<answer>19</answer>" \
        --example "What is 40 + 25?" "<answer>65</answer>" "$@"
}
dataset --rows 5000 --out data/smollm2-add2-train.jsonl
dataset --split test --rows 100 --out data/smollm2-add2-test.jsonl
# How each model is scored: greedy, the accuracy reward and the format reward, and the last
# number anywhere in the reply (whatever the format) for comparison.
evaluate() {
    $bin lm eval "$1" --dataset data/smollm2-add2-test.jsonl --reward-funcs accuracy,format \
        --extract answer-tag --format '^\s*<answer>\s*-?\d+\s*</answer>\s*$' \
        --max-new-tokens 16 --completions "$2"
    $bin lm eval "$1" --dataset data/smollm2-add2-test.jsonl --reward-funcs accuracy \
        --extract last-number --max-new-tokens 16
}
evaluate "$model" "$out-base-completions.jsonl"
/usr/bin/time -f "the run: %e s wall, peak resident memory %M KB" \
    $bin lm grpo --init "$model" --config configs/smollm2-grpo-add2.toml --out "$out" --overwrite
evaluate "$out" "$out-trained-completions.jsonl"
$bin plot "$out" --out "$out-curve"
