#!/usr/bin/env bash
# The student handout: it builds; every grader of an assignment written in the library scores
# 0 in it; with the library's code put back each gives full marks, held-out cases included;
# and a class of three fake submissions of (a) (right, wrong, and one that loops forever),
# on a handout of (a) alone, grades to a CSV and three results.json in bounded time.
#
#   bash scripts/check_handout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
fail() { echo "check_handout: $1"; exit 1; }

# The instructor's tools, built here first: after this, nothing below builds in this
# repository's target folder (the handout's crates are the same crates to cargo, told apart
# only by their files' times, so one folder for both would mix them up).
cargo build --quiet -p policy-lab-assignments --bin handout --bin cases --bin class
tools=$repo/target/debug
"$tools/handout" "$work/handout"
[ ! -e "$work/handout/tutorials/assignments/solutions" ] || fail "the handout holds the solutions"
[ ! -e "$work/handout/book/book" ] || fail "the handout holds the built book (the library's listings)"
# The assignments written in the library, and the files they are in.
graders=(a_returns_gae b_ppo_clip c_trpo_cg d_grpo_k3 f_reinforce_loop g_lm_loss)
marked=$(grep -rl '// Assignment ([a-g]) begins' src | sort)
for letter in a b c d f g; do
    grep -rq "todo!(\"assignment ($letter)\")" "$work/handout/src" || fail "no stub of ($letter) in the handout's library"
done
# The notebooks carry the book's listings as text: they show the stub, not the answer.
! grep -rq 'next_adv\[i\] = adv\[k\]' "$work/handout/notebooks" || fail "a notebook shows (a)'s answer"
grep -q 'todo!(\\"assignment (a)' "$work/handout/notebooks/actor-critic.ipynb" || fail "the notebook lacks the stub"
heldout=$work/heldout
"$tools/cases" --seed 4242 --out "$heldout" >/dev/null

# The handout builds in a copy of this repository's build folder, so burn is not compiled again.
mkdir -p "$work/target"
cp -a "$repo/target/debug" "$work/target/debug"
export CARGO_TARGET_DIR=$work/target
cd "$work/handout"
cargo build --quiet -p policy-lab-assignments --bins
for g in "${graders[@]}" e_ppo_vs_grpo h_reward; do
    if "$CARGO_TARGET_DIR/debug/$g" >"$work/$g.txt" 2>&1; then
        cat "$work/$g.txt"; fail "$g passed the handout's todo!()"
    fi
    grep -q '^score: 0/' "$work/$g.txt" || { cat "$work/$g.txt"; fail "$g should score 0 in the handout"; }
    echo "handout: $g $(grep '^score' "$work/$g.txt")"
done

# The library's code put back: full marks from every grader, public and held-out cases.
# ((e)'s student file is no library code: scripts/check_assignments.sh grades its solution.)
for f in $marked; do cp "$repo/$f" "$work/handout/$f"; done
cargo build --quiet -p policy-lab-assignments --bins
for g in "${graders[@]}"; do
    "$CARGO_TARGET_DIR/debug/$g" --heldout "$heldout" >"$work/$g.txt" 2>&1 || { cat "$work/$g.txt"; fail "$g: the library's own code lost points"; }
    echo "restored: $g $(grep '^score' "$work/$g.txt")"
done

# A class of assignment (a), handed out alone (the rest of the library is its own code).
cd "$repo"
"$tools/handout" "$work/handout-a" --assignments a >/dev/null
! grep -rq 'todo!("assignment ([b-g])")' "$work/handout-a/src" || fail "--assignments a stubbed another assignment"
# Three submissions of (a), made from the library's own file.
subs=$work/submissions
mkdir -p "$subs"/{right,wrong,loops}/src/core
cp "$repo/src/core/advantage.rs" "$subs/right/src/core/"
# Wrong: GAE forgets lambda (every lambda acts as 1), returns right.
sed 's/adv\[k\] = delta + gamma \* lambda \* carry;/adv[k] = delta + gamma * carry;/' \
    "$repo/src/core/advantage.rs" >"$subs/wrong/src/core/advantage.rs"
! cmp -s "$subs/wrong/src/core/advantage.rs" "$repo/src/core/advantage.rs" || fail "the wrong submission is not wrong"
# Loops: GAE never returns.
sed 's|// Assignment (a) begins: one backward pass|loop {}\n    // Assignment (a) begins: one backward pass|' \
    "$repo/src/core/advantage.rs" >"$subs/loops/src/core/advantage.rs"
# A submission may not replace the grader.
mkdir -p "$subs/wrong/tutorials/assignments/src/bin"
echo 'fn main() { println!("score: 100/100") }' >"$subs/wrong/tutorials/assignments/src/bin/a_returns_gae.rs"

cd "$repo"
start=$(date +%s)
"$tools/class" --handout "$work/handout-a" \
    --submissions "$subs" --assignment a_returns_gae --heldout "$heldout" --timeout 20 \
    --out "$work/grades"
echo "class: $(( $(date +%s) - start )) s"
cat "$work/grades/class.csv"
python3 - "$work/grades" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = {r["student"]: r for r in csv.DictReader(open(f"{out}/class.csv"))}
res = {s: json.load(open(f"{out}/{s}/results.json")) for s in ["right", "wrong", "loops"]}
for s, r in res.items():
    assert {"score", "max_score", "tests"} <= r.keys(), s
    for t in r["tests"]:
        assert {"name", "score", "max_score", "output"} <= t.keys(), (s, t)
right, wrong, loops = (res[s] for s in ["right", "wrong", "loops"])
assert right["score"] == right["max_score"] > 0, right
assert 0 < wrong["score"] < wrong["max_score"], wrong
assert "not graded from your submission" in wrong["output"], wrong["output"]
assert any("held-out" in t["name"] and t["score"] == 0 for t in wrong["tests"]), "held-out GAE cases catch the wrong one"
assert any("did not finish within 20 s" in t["output"] for t in loops["tests"]), loops
assert any(t["score"] > 0 for t in loops["tests"]), "the looping one keeps its returns checks"
assert int(rows["right"]["score"]) == right["score"] and int(rows["loops"]["score"]) == loops["score"]
print(f"class: right {right['score']}/{right['max_score']}, wrong {wrong['score']}, loops {loops['score']}: ok")
PY

rm -rf "$work"
