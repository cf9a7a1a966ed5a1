#!/usr/bin/env bash
# CartPole-v1 steps per second: policy-lab against Gymnasium (from PyPI), in one run on
# this machine, same protocol (random actions, reset on done). Prints both and the ratio.
#
#   bash scripts/bench_envs_vs_gymnasium.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import gymnasium" 2>/dev/null || python3 -m pip install --quiet "gymnasium==1.4.0"
cargo build --release --quiet -p policy-lab-envs --example cartpole_sps
ours=$(./target/release/examples/cartpole_sps 20000000 | awk '/steps_per_second/ {print $2}')
theirs=$(python3 scripts/gymnasium_cartpole_sps.py 300000 | awk '/steps_per_second/ {print $2}')
python3 - "$ours" "$theirs" <<'PY'
import sys, platform, gymnasium
ours, theirs = float(sys.argv[1]), float(sys.argv[2])
print(f"CartPole-v1 single env, random actions ({platform.processor() or platform.machine()})")
print(f"  policy-lab  {ours:>14,.0f} steps/s")
print(f"  gymnasium   {theirs:>14,.0f} steps/s   (gymnasium {gymnasium.__version__})")
print(f"  ratio       {ours / theirs:>14.1f}x")
PY
