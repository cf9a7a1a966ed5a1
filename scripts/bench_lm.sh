#!/usr/bin/env bash
# The language-model benchmarks of BENCHMARKS.md, side by side in one run on the CPU:
#   generation tokens/s of policy-lab against Hugging Face transformers' `generate`, and the
#   GRPO step time of policy-lab against TRL's GRPOTrainer, on the same GPT-2-like shape;
#   then GRPO against PPO with a value head (step time and peak memory) in policy-lab.
# Installs torch, transformers, trl and datasets with pip when they are missing.
#
#   bash scripts/bench_lm.sh          # the default shape (0.8M parameters)
#   bash scripts/bench_lm.sh sweep    # the same on 4 sizes, 0.8M to GPT-2 small's 124M
#
# The sweep (about 20 minutes on 2 cores) runs both sides on each shape (layers, width, heads,
# vocabulary; MLP 4 x width, context 32): generation tokens/s (64 rows x 8 new tokens), the
# GRPO step (8 prompts x 8 generations x 8 new tokens) and each process's peak resident memory
# (GNU time's maximum RSS, the same measure for both), into runs/bench/lm_sweep.csv, a
# markdown table on stdout, and runs/bench/lm_sweep.{png,svg}.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch, transformers, trl, datasets" 2>/dev/null ||
  pip install --quiet torch transformers trl datasets
cargo bench --no-run --bench lm_bench
bin() { cargo bench --quiet --bench lm_bench -- "$@"; }
export PYTHONWARNINGS=ignore TRANSFORMERS_VERBOSITY=error

if [ "${1:-}" = sweep ]; then
    exe=$(cargo bench --no-run --bench lm_bench 2>&1 | grep -o 'target/release/deps/lm_bench-[0-9a-f]*' | head -n 1)
    mkdir -p runs/bench
    csv=runs/bench/lm_sweep.csv
    echo "shape,parameters,ours_tokens_per_second,hf_tokens_per_second,ours_step_seconds,trl_step_seconds,ours_generate_KiB,hf_generate_KiB,ours_grpo_KiB,trl_grpo_KiB,ours_unfused_step_seconds" >"$csv"
    # name, LM_BENCH_SHAPE, generation repetitions, GRPO steps
    for size in "0.8M 4,128,4,17 20 10" "7M 6,256,4,17 10 5" "30M 8,512,8,17 5 3" "124M 12,768,12,50257 2 2"; do
        set -- $size
        export LM_BENCH_SHAPE=$2
        # Runs "$@" under GNU time: its output, then "peak_KiB=N" (the maximum resident set).
        measured() { /usr/bin/time -f "peak_KiB=%M" "$@" 2>&1; }
        get() { grep -o "$1=[0-9.]*" | tail -n 1 | cut -d= -f2; }
        og=$(measured "$exe" generate 64 "$3"); hg=$(measured python3 scripts/hf_lm_bench.py generate 64 "$3")
        os=$(measured "$exe" grpo "$4"); ts=$(measured python3 scripts/hf_lm_bench.py grpo "$4")
        # policy-lab's step again without its fused kernels (core::fused), for their effect.
        us=$(LM_BENCH_FUSED=0 "$exe" grpo "$4" 2>&1)
        echo "$1,$(echo "$og" | get parameters),$(echo "$og" | get tokens_per_second),$(echo "$hg" | get tokens_per_second),$(echo "$os" | get step_seconds),$(echo "$ts" | get step_seconds),$(echo "$og" | get peak_KiB),$(echo "$hg" | get peak_KiB),$(echo "$os" | get peak_KiB),$(echo "$ts" | get peak_KiB),$(echo "$us" | get step_seconds)" >>"$csv"
        tail -n 1 "$csv"
    done
    unset LM_BENCH_SHAPE
    python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| size (parameters) | generation tokens/s: policy-lab / transformers (ratio) | GRPO step s: policy-lab / TRL (ratio) | GRPO step s without the fused kernels | peak RSS MiB, generation: policy-lab / transformers | peak RSS MiB, GRPO: policy-lab / TRL |")
print("|---|---:|---:|---:|---:|---:|")
f = float
mib = lambda kib: f"{int(kib) / 1024:,.0f}"
for r in rows:
    print(f"| {r['shape']} ({int(r['parameters']):,}) | {f(r['ours_tokens_per_second']):,.0f} / {f(r['hf_tokens_per_second']):,.0f} ({f(r['ours_tokens_per_second'])/f(r['hf_tokens_per_second']):.2f}x) "
          f"| {f(r['ours_step_seconds']):.3f} / {f(r['trl_step_seconds']):.3f} ({f(r['ours_step_seconds'])/f(r['trl_step_seconds']):.2f}x the time) "
          f"| {f(r['ours_unfused_step_seconds']):.3f} "
          f"| {mib(r['ours_generate_KiB'])} / {mib(r['hf_generate_KiB'])} | {mib(r['ours_grpo_KiB'])} / {mib(r['trl_grpo_KiB'])} |")
PY
    "$exe" plot-sweep
    exit 0
fi

ours=$(bin generate 64 20 | grep -o 'tokens_per_second=[0-9]*' | cut -d= -f2)
theirs=$(python3 scripts/hf_lm_bench.py generate 64 20 2>/dev/null | grep -o 'tokens_per_second=[0-9]*' | cut -d= -f2)
echo "generate, 64 rows x 8 new tokens: policy-lab ${ours} tokens/s, transformers ${theirs} tokens/s, ratio $(python3 -c "print(f'{$ours/$theirs:.2f}')")"

ours=$(bin grpo 10 | grep -o 'step_seconds=[0-9.]*' | cut -d= -f2)
theirs=$(python3 scripts/hf_lm_bench.py grpo 10 2>/dev/null | grep -o 'step_seconds=[0-9.]*' | cut -d= -f2)
echo "GRPO step, 8 prompts x 8 generations x 8 new tokens: policy-lab ${ours} s, TRL ${theirs} s, ratio $(python3 -c "print(f'{$ours/$theirs:.2f}')")"

bin grpo-vs-ppo 5
