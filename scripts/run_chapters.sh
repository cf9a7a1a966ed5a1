#!/usr/bin/env bash
# Writes every chapter's notebook from its one source (book/src/<chapter>.md) and executes it
# through the real evcxr kernel, in place: notebooks/<chapter>.ipynb then holds the outputs
# that the book shows beneath each cell. Fails on any cell error. After the first chapter,
# the others run side by side, one per core (see "lanes" below).
#
#   bash scripts/run_chapters.sh [CHAPTER ...]      e.g. actor-critic ppo
#
# Needs evcxr_jupyter (cargo install --locked evcxr_jupyter@0.22.0) and Jupyter's nbconvert
# (pip install jupyter); .ci/run installs them. evcxr's cache is turned on (`:cache` in its
# init.evcxr), so policy-lab and burn are compiled once for all the chapters.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p policy-lab-cells -- notebooks >/dev/null
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    mapfile -t names < <(cd notebooks && ls -- *.ipynb | sed 's/\.ipynb$//')
fi

jupyter kernelspec list | grep '^ *rust ' >/dev/null || evcxr_jupyter --install
config_dir=$(python3 -c 'import os; print(os.environ.get("EVCXR_CONFIG_DIR") or os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")), "evcxr"))')
mkdir -p "$config_dir"
grep -qs '^:cache' "$config_dir/init.evcxr" || echo ':cache 4000' >> "$config_dir/init.evcxr"

# One build folder for every chapter's kernel, kept between runs: evcxr compiles policy-lab
# and burn into it once, and each later kernel finds them built (with evcxr's default, a
# temporary folder per kernel, every chapter linked them again: about 60 s each).
# Outside the repository (a folder under the workspace would be taken for one of its
# crates) and under /tmp (with one under /root the kernel failed to load its first cell:
# "dlopen failed", evcxr 0.22 here).
export EVCXR_TMPDIR="${EVCXR_TMPDIR:-${TMPDIR:-/tmp}/policy-lab-evcxr}"
mkdir -p "$EVCXR_TMPDIR"

log=$(mktemp -d)
# Checks one executed notebook: no cell failed, every cell ran; prints its seconds per cell.
cat >"$log/check.py" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
code = [c for c in nb["cells"] if c["cell_type"] == "code"]
outputs = [o for c in code for o in c.get("outputs", [])]
errors = [o for o in outputs if o.get("output_type") == "error"]
# evcxr reports a compile error of a cell as text on stderr, not as an error output.
stderr = "".join("".join(o.get("text", "")) for o in outputs if o.get("name") == "stderr")
if errors or "error" in stderr.lower():
    for e in errors:
        print(f"{e.get('ename')}: {e.get('evalue')}")
    if not errors:
        print(stderr)
    sys.exit(f"{sys.argv[1]}: a cell failed")
unrun = [i for i, c in enumerate(code) if c.get("execution_count") is None]
if unrun:
    sys.exit(f"{sys.argv[1]}: code cells {unrun} did not run")
svg = sum("image/svg+xml" in o.get("data", {}) for o in outputs)
print(f"{sys.argv[1]}: {len(code)} code cells, {len(outputs)} outputs, {svg} figures")
# Where the time went: nbconvert records when each cell started and finished.
from datetime import datetime
def seconds(c):
    t = c.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(t["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(t["shell.execute_reply"].replace("Z", "+00:00"))
    except KeyError:
        return None
    return (end - start).total_seconds()
times = [seconds(c) for c in code]
print("  seconds per cell: " + " ".join("?" if t is None else f"{t:.0f}" for t in times))
PY

# Executes one chapter's notebook with its kernel building in folder $2; its report goes to
# $log/<chapter>.report, and a failure is listed in $log/failed.
run_one() {
    local name=$1 start
    start=$(date +%s)
    # --allow-errors: the executed notebook keeps each error, and the check prints it.
    if ! EVCXR_TMPDIR=$2 jupyter nbconvert --to notebook --execute --inplace --allow-errors \
        --ExecutePreprocessor.kernel_name=rust --ExecutePreprocessor.timeout=1200 \
        "notebooks/$name.ipynb" >"$log/$name.log" 2>&1; then
        { tail -n 60 "$log/$name.log"; echo "notebooks/$name.ipynb: nbconvert failed (above)"; } >"$log/$name.report"
        echo "$name" >>"$log/failed"
    elif ! python3 "$log/check.py" "notebooks/$name.ipynb" >"$log/$name.report" 2>&1; then
        echo "$name" >>"$log/failed"
    fi
    echo "$name: $(( $(date +%s) - start )) s" >>"$log/$name.report"
    cat "$log/$name.report"
}

# The first chapter runs alone: its kernel compiles policy-lab and burn into $EVCXR_TMPDIR.
# Then the others run in lanes, `lanes` at a time (one per core, at most 4; POLICY_LAB_LANES
# sets it), each lane's kernel in its own copy of that folder (two kernels in one folder
# would write the same crate). Most cells keep one core busy: on 2 cores, trpo and ppo took
# 124 s in two lanes against 187 s one after the other. Longest first, so that no lane is
# left with a long chapter at the end.
lanes=${POLICY_LAB_LANES:-$(nproc)}
[ "$lanes" -gt 4 ] && lanes=4
order=(setup grpo-lm lm-policies trpo grpo actor-critic reinforce ppo gpus environments)
queue=()
for name in "${order[@]}"; do
    [[ " ${names[*]} " == *" $name "* ]] && queue+=("$name")
done
for name in "${names[@]}"; do
    [[ " ${queue[*]} " == *" $name "* ]] || queue+=("$name")
done
run_one "${queue[0]}" "$EVCXR_TMPDIR"
printf '%s\n' "${queue[@]:1}" | sed '/^$/d' >"$log/queue"
rest=$(wc -l <"$log/queue")
[ "$lanes" -gt "$rest" ] && lanes=$rest
# The next chapter of the queue, taken by one lane only.
next() {
    flock "$log/queue.lock" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' sh "$log/queue"
}
lane() {
    local name
    while name=$(next) && [ -n "$name" ]; do
        run_one "$name" "$1"
    done
}
for ((i = 1; i < lanes; i++)); do
    rm -rf "$EVCXR_TMPDIR-lane$i"
    cp -a "$EVCXR_TMPDIR" "$EVCXR_TMPDIR-lane$i"
    lane "$EVCXR_TMPDIR-lane$i" &
done
lane "$EVCXR_TMPDIR"
wait
if [ -s "$log/failed" ]; then
    echo "chapters with a failing cell: $(tr '\n' ' ' <"$log/failed")"
    exit 1
fi
