#!/usr/bin/env bash
# Builds the book and checks in headless Chromium that its math renders offline.
#
#   bash scripts/check_book.sh
#
# Needs mdbook and mdbook-katex (cargo install --locked mdbook@0.5.4 mdbook-katex@0.10.0),
# Debian's chromium, and Node with npm (for playwright-core, which drives Chromium);
# .ci/run installs them. Every listing in the book is included from examples/ and src/,
# which `cargo test` builds, so a listing cannot drift from compiled code; mdbook fails on an
# include whose file or anchor is missing (checked below too).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf book/book
build_log=$(mktemp)
mdbook build book 2>&1 | tee "$build_log"
# Errors and warnings fail the check (except mdbook-katex's note that it was built against an
# earlier mdbook 0.5).
if grep -E "ERROR|WARN" "$build_log" | grep -v "was built against mdbook"; then
    echo "the book built with errors or warnings (above)"
    exit 1
fi
# mdbook says nothing about an include anchor that is not in the file: check every one.
python3 - <<'PY'
import pathlib, re, sys
src = pathlib.Path("book/src")
bad = []
for md in sorted(src.glob("*.md")):
    for path, anchor in re.findall(r"\{\{#(?:include|rustdoc_include) ([^:}]+)(?::([A-Za-z0-9_-]+))?\}\}", md.read_text()):
        target = (src / path).resolve()
        if not target.is_file():
            bad.append(f"{md.name}: {path} does not exist")
        elif anchor and not re.search(rf"ANCHOR: {re.escape(anchor)}\b", target.read_text()):
            bad.append(f"{md.name}: {path} has no anchor {anchor}")
        elif anchor and not re.search(rf"ANCHOR_END: {re.escape(anchor)}\b", target.read_text()):
            bad.append(f"{md.name}: {path} has no ANCHOR_END for {anchor}")
print("\n".join(bad) or "every include of the book names a file and anchor that exist")
sys.exit(1 if bad else 0)
PY
(cd book/check && npm ci --silent --no-audit --no-fund)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory book/book >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
# Every chapter with math.
pages=$(cd book/book && grep -l 'class="katex' -- *.html | grep -v print.html || true)
if [ -z "$pages" ]; then
    echo "no page of the book has math: nothing rendered it"
    exit 1
fi
node book/check/check.mjs "$port" $pages
