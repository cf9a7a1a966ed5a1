#!/usr/bin/env bash
# PPO on CartPole-v1 with CleanRL's hyperparameters: policy-lab against Stable-Baselines3 (from
# PyPI), one after the other in one run on this machine. Prints both and the ratios.
#
#   bash scripts/bench_ppo_vs_sb3.sh [total_steps] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-500000}
seed=${2:-1}
python3 -c "import stable_baselines3" 2>/dev/null || python3 -m pip install --quiet "stable-baselines3==2.*"
cargo build --release --quiet --example ppo_cartpole_bench
ours=$(./target/release/examples/ppo_cartpole_bench "$total" "$seed")
theirs=$(python3 scripts/sb3_ppo_cartpole.py "$total" "$seed")
python3 - "$ours" "$theirs" <<'PY'
import sys
def parse(text):
    return dict(line.split() for line in text.strip().splitlines())
ours, theirs = parse(sys.argv[1]), parse(sys.argv[2])
def num(d, k):
    return float(d[k]) if d[k] != "never" else float("nan")
print("PPO, CartPole-v1, CleanRL hyperparameters (4 envs x 128 steps, 4 epochs x 4 minibatches)")
print(f"{'':26}{'policy-lab':>14}{'SB3':>14}{'ratio':>10}")
for key, label in [("steps_per_second", "env steps / s"), ("reached_475_s", "wall s to mean 475"), ("reached_475_steps", "env steps to mean 475")]:
    a, b = num(ours, key), num(theirs, key)
    ratio = a / b if key == "steps_per_second" else b / a
    print(f"{label:26}{a:>14.1f}{b:>14.1f}{ratio:>9.2f}x")
print("(ratios: ours/theirs for steps per second, theirs/ours for time and steps: above 1 is better for policy-lab)")
PY
