#!/usr/bin/env bash
# Reproduces the ladder's results tables in the README (CPU, fixed seeds): the main job's
# table, copied into the README between its ladder-table markers, and the rest. About 5 minutes
# on 2 cores after the release build.
#
#   bash scripts/reproduce_ladder_results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=./target/release/policy-lab
# The main job (4 rungs x 3 seeds on the maze); its table goes into the README as printed.
$bin >/dev/null 2>&1
python3 - <<'PY'
table = open("runs/ladder/table.md").read().split("\n", 2)[2].strip()
readme = open("README.md").read()
begin = readme.index("<!-- ladder-table: begin")
begin = readme.index("\n", begin) + 1
end = readme.index("<!-- ladder-table: end -->")
open("README.md", "w").write(readme[:begin] + table + "\n" + readme[end:])
PY
echo "README.md: the main job's table, from runs/ladder/table.md"
for algo in reinforce grpo; do
    $bin train --config "configs/bandit_$algo.toml" --out "runs/results/bandit-$algo" 2>/dev/null | head -1
done
for algo in ppo trpo grpo; do
    $bin train --algo $algo --config configs/frozenlake.toml --out "runs/results/frozenlake-$algo" 2>/dev/null | head -1
done
for seed in 1 2 3; do
    for algo in ppo trpo reinforce grpo; do
        $bin train --algo $algo --env CartPole-v1 --total-timesteps 200000 --seed $seed \
            --out "runs/results/cartpole-$algo-$seed" 2>/dev/null | head -1
    done
done
for algo in ppo trpo reinforce grpo; do
    $bin plot runs/results/cartpole-$algo-{1,2,3} --out "runs/results/cartpole-$algo" >/dev/null
done
$bin plot runs/results/cartpole-*-[123] --out runs/results/cartpole
echo "curves: runs/results/cartpole.png (mean and one std over 3 seeds per algorithm)"
