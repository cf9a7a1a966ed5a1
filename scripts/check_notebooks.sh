#!/usr/bin/env bash
# Executes every chapter notebook through the real evcxr kernel and fails on any cell error;
# checks the committed notebooks are what notebooks/make_notebooks.py writes, and that the
# plotting notebooks showed their SVG inline.
#
#   bash scripts/check_notebooks.sh [NAME ...]
#
# Needs evcxr_jupyter (cargo install --locked evcxr_jupyter; 5 to 12 minutes on 2 cores) and
# Jupyter's nbconvert (pip); .ci/run installs them. evcxr's cache is turned on (`:cache` in
# its init.evcxr), so policy-lab and burn are compiled once for all the notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    names=(environments reinforce gae trpo ppo grpo lm_sft grpo_lm data_parallel)
fi

# The committed notebooks are the script's output (no outputs kept; see notebooks/README.md).
fresh=$(mktemp -d)
cp notebooks/make_notebooks.py "$fresh/"
python3 "$fresh/make_notebooks.py" >/dev/null
for nb in "$fresh"/*.ipynb; do
    if ! cmp -s "$nb" "notebooks/$(basename "$nb")"; then
        echo "notebooks/$(basename "$nb") differs from what notebooks/make_notebooks.py writes"
        exit 1
    fi
done

jupyter kernelspec list | grep -q '^ *rust ' || evcxr_jupyter --install
config_dir=$(python3 -c 'import os; print(os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config")), "evcxr"))')
mkdir -p "$config_dir"
grep -qs '^:cache' "$config_dir/init.evcxr" || echo ':cache 4000' >> "$config_dir/init.evcxr"

out=$(mktemp -d)
failed=()
for name in "${names[@]}"; do
    start=$(date +%s)
    # --allow-errors: the executed notebook keeps each error, and the check below prints it.
    if ! jupyter nbconvert --to notebook --execute --allow-errors --ExecutePreprocessor.kernel_name=rust \
        --ExecutePreprocessor.timeout=1200 --output-dir "$out" "notebooks/$name.ipynb" \
        >"$out/$name.log" 2>&1; then
        tail -n 60 "$out/$name.log"
        echo "notebooks/$name.ipynb: nbconvert failed (above)"
        exit 1
    fi
    # Every notebook runs, even after one fails; the check fails at the end.
    python3 - "$out/$name.ipynb" <<'PY' || failed+=("$name")
import json, sys
nb = json.load(open(sys.argv[1]))
outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
errors = [o for o in outputs if o.get("output_type") == "error"]
stderr = "".join("".join(o.get("text", "")) for o in outputs if o.get("name") == "stderr")
if errors or "error" in stderr.lower():
    for e in errors:
        print(f"{e.get('ename')}: {e.get('evalue')}")
    if not errors:
        print(stderr)
    sys.exit(f"{sys.argv[1]}: a cell failed")
svg = sum("image/svg+xml" in o.get("data", {}) for o in outputs)
print(f"{sys.argv[1]}: {len(outputs)} outputs, {svg} inline SVG")
name = sys.argv[1].rsplit("/", 1)[-1]
if name in ("ppo.ipynb", "grpo.ipynb", "grpo_lm.ipynb") and svg == 0:
    sys.exit(f"{name}: its plot did not show inline")
PY
    echo "$name: $(( $(date +%s) - start )) s"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "notebooks with a failing cell: ${failed[*]}"
    exit 1
fi
