#!/usr/bin/env bash
# Create .venv (once) and install AgentOps with the given extras, e.g. `scripts/setup.sh local,test`.
# The first install compiles llama-cpp-python (about 5 minutes on 2 cores); pip caches the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: AgentOps needs Python 3.11 or newer (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  echo "Installing agentops[$extras] into .venv (the first time compiles llama-cpp-python: ~5 min)..." >&2
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
