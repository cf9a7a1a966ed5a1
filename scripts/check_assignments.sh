#!/usr/bin/env bash
# Assignments (e) and (h), the ones with a student file: each skeleton must fail its grader, and its
# instructor solution must pass. The assignments written in the library ((a)-(d), (f), (g))
# are checked by scripts/check_handout.sh: 0 in the handout, full marks with the library's
# own code put back.
#
#   bash scripts/check_assignments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for a in e_ppo_vs_grpo h_reward; do
    if cargo run --quiet -p policy-lab-assignments --bin "$a" >/tmp/skeleton-$a.txt 2>&1; then
        cat /tmp/skeleton-$a.txt
        echo "the skeleton of $a passed its grader: the grader checks nothing"
        exit 1
    fi
    echo "$a: the skeleton fails ($(grep '^score' /tmp/skeleton-$a.txt))"
    cargo run --quiet -p policy-lab-assignments --features solution --bin "$a" | tail -n 1
done
