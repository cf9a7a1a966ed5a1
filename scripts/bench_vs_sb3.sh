#!/usr/bin/env bash
# PPO (CleanRL's hyperparameters) or TRPO (sb3-contrib's) on CartPole-v1: policy-lab against
# Stable-Baselines3 / sb3-contrib (from PyPI), one after the other in one run on this
# machine. Prints both and the ratios.
#
#   bash scripts/bench_vs_sb3.sh [ppo|trpo] [total_steps] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
algo=${1:-ppo}
total=${2:-500000}
seed=${3:-1}
python3 -c "import stable_baselines3, sb3_contrib" 2>/dev/null \
  || python3 -m pip install --quiet "stable-baselines3==2.*" "sb3-contrib==2.*"
cargo bench --no-run --quiet --bench cartpole_bench
ours=$(cargo bench --quiet --bench cartpole_bench -- "$algo" "$total" "$seed")
theirs=$(python3 scripts/sb3_cartpole.py "$algo" "$total" "$seed")
python3 - "$algo" "$ours" "$theirs" <<'PY'
import sys
def parse(text):
    return dict(line.split() for line in text.strip().splitlines())
algo, ours, theirs = sys.argv[1], parse(sys.argv[2]), parse(sys.argv[3])
def num(d, k):
    return float(d[k]) if d[k] != "never" else float("nan")
setup = {
    "ppo": "PPO, CleanRL hyperparameters (4 envs x 128 steps, 4 epochs x 4 minibatches)",
    "trpo": "TRPO, sb3-contrib hyperparameters (4 envs x 256 steps, 15 CG steps, 10 critic epochs)",
}[algo]
print(f"{setup}, CartPole-v1")
print(f"{'':26}{'policy-lab':>14}{'SB3':>14}{'ratio':>10}")
for key, label in [("steps_per_second", "env steps / s"), ("reached_475_s", "wall s to mean 475"), ("reached_475_steps", "env steps to mean 475")]:
    a, b = num(ours, key), num(theirs, key)
    ratio = a / b if key == "steps_per_second" else b / a
    print(f"{label:26}{a:>14.1f}{b:>14.1f}{ratio:>9.2f}x")
print("(ratios: ours/theirs for steps per second, theirs/ours for time and steps: above 1 is better for policy-lab)")
PY
