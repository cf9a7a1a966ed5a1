#!/usr/bin/env bash
# Runs a reference script (the Python that makes expected values from transformers and the
# gguf package) in a virtual environment it creates once, with pinned versions. The project
# itself never needs Python: only these scripts, which write the committed fixtures, do.
#
#   bash scripts/pyref.sh tests/fixtures/gguf/make_gguf_fixtures.py
#   bash scripts/pyref.sh scripts/smollm2_expected.py
#   bash scripts/pyref.sh tests/fixtures/grpo-trl/make_grpo_trl_fixture.py
#
# The environment lives in $POLICY_LAB_CACHE/pyref (default ~/.cache/policy-lab/pyref).
set -euo pipefail
venv="${POLICY_LAB_CACHE:-$HOME/.cache/policy-lab}/pyref"
if ! "$venv/bin/python" -c "import torch, transformers, gguf, accelerate, llama_cpp, trl, datasets" 2>/dev/null; then
    python3 -m venv "$venv"
    # llama-cpp-python builds llama.cpp from source (a few minutes).
    "$venv/bin/pip" install --quiet torch==2.15.0 transformers==5.25.0 gguf==0.19.0 accelerate numpy \
        sentencepiece llama-cpp-python==0.3.36 trl==1.16.0 datasets==5.2.0
fi
exec "$venv/bin/python" "$@"
