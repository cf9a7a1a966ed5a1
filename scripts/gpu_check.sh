#!/usr/bin/env bash
# The GPU check: on whatever NVIDIA GPUs this machine has, in one run, BENCHMARKS.md's GPU
# table (examples/gpu_check.rs: CUDA against CPU logits on the Hugging Face fixtures; SFT, then
# GRPO and PPO with a value head from it on add:3, with time per iteration, completion tokens/s
# and each phase's peak GPU memory; the GRPO run again in bf16 with f32 master weights; GRPO
# data-parallel over every GPU), and TRL's GRPO step on
# the same GPU when torch and trl are installed. Writes the table to stdout and to
# gpu_check.md (or --out FILE).
#
#   bash scripts/gpu_check.sh             # builds with --features cuda, runs on the GPUs
#   bash scripts/gpu_check.sh --dry-run   # the same code on the CPU backend, short (CI)
#
# On a machine without a Rust toolchain, build here and carry the binary:
#   cargo build --release --features cuda --example gpu_check
#   GPU_CHECK_BIN=target/release/examples/gpu_check bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
out=gpu_check.md
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) dry=1 ;;
        --out) out=$2; shift ;;
        *) echo "usage: gpu_check.sh [--dry-run] [--out FILE]"; exit 2 ;;
    esac
    shift
done
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

if [ $dry = 1 ]; then
    device=cpu; devices=2; features=""
    gpu="none (dry run on the CPU backend)"
else
    command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi; use --dry-run"; exit 1; }
    device=cuda; features="--features cuda"
    devices=$(nvidia-smi -L | wc -l)
    gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | sed 's/^ *//' | paste -sd, -)"
fi
bin=${GPU_CHECK_BIN:-}
if [ -z "$bin" ]; then
    # shellcheck disable=SC2086
    cargo build --quiet --release $features --example gpu_check
    bin=target/release/examples/gpu_check
fi

# Every GPU's memory in use, sampled every 100 ms beside the check.
if [ $dry = 0 ]; then
    nvidia-smi --query-gpu=timestamp,index,memory.used --format=csv,noheader,nounits -lms 100 \
        >"$work/memory.csv" &
fi
start=$(date +%s)
"$bin" --device $device --devices "$devices" --phases "$work/phases.txt" \
    $([ $dry = 1 ] && echo --dry-run) --out "$work/runs" >"$work/table.md"

# TRL's GRPO step on the same device and batch (8 prompts x 8 generations, the same model shape).
trl="not run: torch or trl is not installed"
if python3 -c "import torch, trl" 2>/dev/null; then
    if [ $dry = 1 ]; then
        trl=$(HF_BENCH_DEVICE=cpu python3 scripts/hf_lm_bench.py grpo 3 2>/dev/null | tail -n 1)
    elif python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        trl=$(HF_BENCH_DEVICE=cuda python3 scripts/hf_lm_bench.py grpo 10 2>/dev/null | tail -n 1)
    else
        trl="not run: torch has no CUDA"
    fi
fi
echo "| TRL GRPOTrainer, 8 prompts x 8 generations, same model shape | $device | $trl |" >>"$work/table.md"
seconds=$(( $(date +%s) - start ))

# Each phase's peak GPU memory (all GPUs added up), from the samples within it.
python3 - "$work" "$dry" >"$work/memory.md" <<'PY'
import datetime, sys
work, dry = sys.argv[1], sys.argv[2] == "1"
phases = [l.split() for l in open(f"{work}/phases.txt")]
print("| phase | peak GPU memory (MiB, all GPUs) |\n|---|---|")
if dry:
    for name, *_ in phases:
        print(f"| {name} | n/a (CPU) |")
    sys.exit()
samples = {}
for line in open(f"{work}/memory.csv"):
    stamp, index, used = [x.strip() for x in line.split(",")]
    t = datetime.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp() * 1000
    samples.setdefault(round(t / 100), {})[index] = int(used)
for name, start, end in phases:
    inside = [sum(v.values()) for k, v in samples.items() if int(start) <= k * 100 <= int(end)]
    print(f"| {name} | {max(inside) if inside else 'no sample'} |")
PY
{
    echo "GPU check of $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%d), GPUs: $gpu, $seconds s"
    echo
    cat "$work/table.md"
    echo
    cat "$work/memory.md"
} | tee "$out"
