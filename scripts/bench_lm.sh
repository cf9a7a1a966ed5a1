#!/usr/bin/env bash
# The language-model benchmarks of BENCHMARKS.md, side by side in one run on the CPU:
#   generation tokens/s of policy-lab against Hugging Face transformers' `generate`, and the
#   GRPO step time of policy-lab against TRL's GRPOTrainer, on the same GPT-2-like shape;
#   then GRPO against PPO with a value head (step time and peak memory) in policy-lab.
# Installs torch, transformers, trl and datasets with pip when they are missing.
#
#   bash scripts/bench_lm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch, transformers, trl, datasets" 2>/dev/null ||
  pip install --quiet torch transformers trl datasets
cargo bench --no-run --bench lm_bench
bin() { cargo bench --quiet --bench lm_bench -- "$@"; }
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error

ours=$(bin generate 64 20 | grep -o 'tokens_per_second=[0-9]*' | cut -d= -f2)
theirs=$(python3 scripts/hf_lm_bench.py generate 64 20 2>/dev/null | grep -o 'tokens_per_second=[0-9]*' | cut -d= -f2)
echo "generate, 64 rows x 8 new tokens: policy-lab ${ours} tokens/s, transformers ${theirs} tokens/s, ratio $(python3 -c "print(f'{$ours/$theirs:.2f}')")"

ours=$(bin grpo 10 | grep -o 'step_seconds=[0-9.]*' | cut -d= -f2)
theirs=$(python3 scripts/hf_lm_bench.py grpo 10 2>/dev/null | grep -o 'step_seconds=[0-9.]*' | cut -d= -f2)
echo "GRPO step, 8 prompts x 8 generations x 8 new tokens: policy-lab ${ours} s, TRL ${theirs} s, ratio $(python3 -c "print(f'{$ours/$theirs:.2f}')")"

bin grpo-vs-ppo 5
