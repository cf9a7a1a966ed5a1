#!/usr/bin/env bash
# Every assignment's skeleton must fail its grader, and its instructor solution must pass.
#
#   bash scripts/check_assignments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for a in a_returns_gae b_ppo_clip c_trpo_cg d_grpo_k3 e_ppo_vs_grpo; do
    if cargo run --quiet -p policy-lab-assignments --bin "$a" >/tmp/skeleton-$a.txt 2>&1; then
        cat /tmp/skeleton-$a.txt
        echo "the skeleton of $a passed its grader: the grader checks nothing"
        exit 1
    fi
    echo "$a: the skeleton fails ($(grep '^score' /tmp/skeleton-$a.txt))"
    cargo run --quiet -p policy-lab-assignments --features solution --bin "$a" | tail -n 1
done
