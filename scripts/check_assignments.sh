#!/usr/bin/env bash
# Every assignment's skeleton must fail its grader, and its instructor solution must pass.
# Assignment (a) is written in the library: here, with the library's own code, its grader
# must give full marks (scripts/check_handout.sh checks that it gives 0 in the handout).
#
#   bash scripts/check_assignments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p policy-lab-assignments --bin a_returns_gae | tail -n 1
for a in b_ppo_clip c_trpo_cg d_grpo_k3 e_ppo_vs_grpo; do
    if cargo run --quiet -p policy-lab-assignments --bin "$a" >/tmp/skeleton-$a.txt 2>&1; then
        cat /tmp/skeleton-$a.txt
        echo "the skeleton of $a passed its grader: the grader checks nothing"
        exit 1
    fi
    echo "$a: the skeleton fails ($(grep '^score' /tmp/skeleton-$a.txt))"
    cargo run --quiet -p policy-lab-assignments --features solution --bin "$a" | tail -n 1
done
