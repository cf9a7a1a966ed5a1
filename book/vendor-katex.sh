#!/usr/bin/env bash
# Puts KaTeX's stylesheet and fonts into book/src/katex/, so that the book's math renders
# with no CDN (mdbook-katex renders the math at build time and, with `no-css`, links no
# stylesheet of its own). The version must be the KaTeX that mdbook-katex 0.10 renders with:
# 0.16.4. Only the woff2 fonts are kept (every browser in use reads woff2).
#
#   bash book/vendor-katex.sh      # needs npm (the npm registry)
set -euo pipefail
cd "$(dirname "$0")"
version=0.16.4
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent "katex@$version" >/dev/null && tar xzf "katex-$version.tgz")
rm -rf src/katex
mkdir -p src/katex/fonts
cp "$tmp/package/dist/katex.min.css" src/katex/
cp "$tmp"/package/dist/fonts/*.woff2 src/katex/fonts/
cp "$tmp/package/LICENSE" src/katex/LICENSE
echo "KaTeX $version from the npm registry (npm pack katex@$version), MIT license" > src/katex/README.md
rm -rf "$tmp"
echo "KaTeX $version stylesheet and fonts in book/src/katex/"
