#!/usr/bin/env bash
# SmolLM2-135M-Instruct generating on the CPU, side by side in one run (BENCHMARKS.md):
# policy-lab (release build), transformers (float32, as policy-lab) and llama.cpp (the file's
# quantized weights, batch 1), each in its own process, with its peak resident memory.
#
#   bash scripts/bench_smollm2.sh [reps]
#   bash scripts/bench_smollm2.sh grpo [steps]   # the GRPO step against TRL's GRPOTrainer
#
# Run it on an idle machine: torch's threads slow down badly when another process holds a core.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/get_smollm2.sh >/dev/null
cargo bench --no-run --bench lm_bench 2>/dev/null
rss() { /usr/bin/time -f "  peak resident memory: %M KB" "$@"; }
if [ "${1:-}" = grpo ]; then
    steps=${2:-2}
    rss cargo bench --quiet --bench lm_bench -- smollm2-grpo "$steps"
    rss bash scripts/pyref.sh scripts/smollm2_bench.py trl "$steps"
    exit
fi
reps=${1:-3}
for rows in 1 64; do
    rss cargo bench --quiet --bench lm_bench -- smollm2 "$rows" "$reps"
    rss bash scripts/pyref.sh scripts/smollm2_bench.py transformers "$rows" "$reps"
done
rss bash scripts/pyref.sh scripts/smollm2_bench.py llama.cpp "$reps"
