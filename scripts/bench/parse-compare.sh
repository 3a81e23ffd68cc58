#!/usr/bin/env bash
# Lore's parsers against the usual Python stack on the same generated corpus, in one run.
# Usage: scripts/bench/parse-compare.sh [DIR] [MB]   (needs PyPI for the throw-away virtualenv)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/lore-parse-corpus}
mb=${2:-100}
venv=${TMPDIR:-/tmp}/lore-parse-peer-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pypdf python-docx openpyxl beautifulsoup4
fi
cargo build --release -p lore --quiet
if [ ! -d "$dir" ] || [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
  ./target/release/lore bench parse --dir "$dir" --generate-mb "$mb" >/dev/null
fi
./target/release/lore bench parse --dir "$dir"
"$venv/bin/python" scripts/bench/parse_peer.py "$dir"
