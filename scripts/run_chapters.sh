#!/usr/bin/env bash
# Writes every chapter's notebook from its one source (book/src/<chapter>.md) and executes it
# through the real evcxr kernel, in place: notebooks/<chapter>.ipynb then holds the outputs
# that the book shows beneath each cell. Fails on any cell error.
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
failed=()
for name in "${names[@]}"; do
    start=$(date +%s)
    # --allow-errors: the executed notebook keeps each error, and the check below prints it.
    if ! jupyter nbconvert --to notebook --execute --inplace --allow-errors \
        --ExecutePreprocessor.kernel_name=rust --ExecutePreprocessor.timeout=1200 \
        "notebooks/$name.ipynb" >"$log/$name.log" 2>&1; then
        tail -n 60 "$log/$name.log"
        echo "notebooks/$name.ipynb: nbconvert failed (above)"
        exit 1
    fi
    # Every chapter runs, even after one fails; the check fails at the end.
    python3 - "notebooks/$name.ipynb" <<'PY' || failed+=("$name")
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
    echo "$name: $(( $(date +%s) - start )) s"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "chapters with a failing cell: ${failed[*]}"
    exit 1
fi
