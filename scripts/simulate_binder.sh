#!/usr/bin/env bash
# What repo2docker does for this repository, without Docker, then the browser tests against it:
#   1. a fresh virtual environment built only from binder/ (runtime.txt's Python, binder/requirements.txt,
#      binder/postBuild if present), in the repository root as repo2docker does;
#   2. JupyterLab started from that environment, on one CPU core (taskset) with one thread, as on Binder;
#   3. tests/test_browser.py against it, run by $TEST_PYTHON (default: python; it needs pytest and playwright:
#      requirements-dev.txt) with Debian's Chromium.
# Usage: scripts/simulate_binder.sh [NOTEBOOK-FILTER]   e.g. 00_why_lora (a pytest -k expression); default: all.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
filter=${1:-ipynb}
runtime=$(cat "$repo/binder/runtime.txt")            # e.g. python-3.11
python=${BINDER_PYTHON:-python${runtime#python-}}
command -v "$python" >/dev/null || { echo "binder/runtime.txt asks for $runtime; $python not found" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/lora-mini-binder.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== build: $python venv from binder/ only, in $work/env"
start=$(date +%s)
"$python" -m venv "$work/env"
# The PyTorch CPU index in binder/requirements.txt may be unreachable (as on a machine with only PyPI):
# one quick try each, then pip takes torch 2.13.0+cpu from whatever else it is configured to search.
export PIP_RETRIES=${PIP_RETRIES:-0}
# repo2docker's environment brings a current pip (24.0 in its Python 3.11 lock of 2024-03-28), not the one this
# Python's venv bundles (23.2.1 for 3.11.7). A recent pip also resolves faster: binder/requirements.txt here
# took 54.8 s of CPU with pip 23.2.1, 44.2 s with 24.0, 23.8 s with 26.3.
"$work/env/bin/pip" install --quiet --disable-pip-version-check pip==26.3
(cd "$repo" && "$work/env/bin/pip" install --quiet --disable-pip-version-check -r binder/requirements.txt)
if [ -f "$repo/binder/postBuild" ]; then
    (cd "$repo" && PATH="$work/env/bin:$PATH" bash binder/postBuild)
fi
built=$(date +%s)
"$work/env/bin/python" -c "import lora_mini, pip, torch
print('torch', torch.__version__, '| pip', pip.__version__, '| lora_mini from', lora_mini.__file__)"
echo "== built in $((built - start)) s ($(du -sm "$work/env" | cut -f1) MB)"

pin=""
command -v taskset >/dev/null && pin="taskset -c 0 "   # one CPU core, like Binder
echo "== browser tests against ${pin}$work/env/bin/jupyter (filter: $filter)"
LORA_MINI_JUPYTER="${pin}$work/env/bin/jupyter" LORA_MINI_REQUIRE_BROWSER=1 \
    "${TEST_PYTHON:-python}" -m pytest -p no:cacheprovider -q -s -m browser "$repo/tests/test_browser.py" -k "$filter"
echo "== done: build $((built - start)) s, browser tests $(($(date +%s) - built)) s"
