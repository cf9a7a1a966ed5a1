#!/usr/bin/env bash
# The student handout: it builds; assignment (a)'s grader scores 0 in it; with the library's
# code put back it gives full marks; and a class of three fake submissions of (a) (right,
# wrong, and one that loops forever) grades to a CSV and three results.json in bounded time.
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
grep -q 'todo!("assignment (a)")' "$work/handout/src/core/advantage.rs" || fail "no stub in advantage.rs"
# The notebooks carry the book's listings as text: they show the stub, not the answer.
! grep -rq 'next_adv\[i\] = adv\[k\]' "$work/handout/notebooks" || fail "a notebook shows (a)'s answer"
grep -q 'todo!(\\"assignment (a)' "$work/handout/notebooks/actor-critic.ipynb" || fail "the notebook lacks the stub"
heldout=$work/heldout
"$tools/cases" --seed 4242 --out "$heldout"

# The handout builds in a copy of this repository's build folder, so burn is not compiled again.
mkdir -p "$work/target"
cp -a "$repo/target/debug" "$work/target/debug"
export CARGO_TARGET_DIR=$work/target
cd "$work/handout"
cargo build --quiet -p policy-lab-assignments --bins
if cargo run --quiet -p policy-lab-assignments --bin a_returns_gae >"$work/a.txt" 2>&1; then
    cat "$work/a.txt"; fail "(a)'s grader passed the handout's todo!()"
fi
grep -q '^score: 0/' "$work/a.txt" || { cat "$work/a.txt"; fail "(a) should score 0 in the handout"; }
echo "handout: (a) $(grep '^score' "$work/a.txt")"

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
"$tools/class" --handout "$work/handout" \
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

# The library's code put back: full marks, public and held-out.
cp "$repo/src/core/advantage.rs" "$work/handout/src/core/advantage.rs"
cd "$work/handout"
cargo run --quiet -p policy-lab-assignments --bin a_returns_gae -- --heldout "$heldout" | tail -n 1
rm -rf "$work"
