#!/usr/bin/env bash
# Create .venv (once) and install AgentOps with the given extras, e.g. `scripts/setup.sh local,test`.
# With the `local` extra, llama-cpp-python is built once for a portable CPU baseline
# (scripts/llama_wheel.sh, about 5 minutes on 2 cores) and installed from that wheel.
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
if [[ ",$extras," == *",local,"* ]]; then
  llama_version="$(sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)"
  wheel="$(scripts/llama_wheel.sh .venv/bin/python "$llama_version")"
  # Reinstall whenever the venv holds another build (e.g. a native one pip compiled earlier).
  if [ "$(cat .venv/.llama-wheel 2>/dev/null || true)" != "$wheel" ]; then
    .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$wheel"
    printf '%s\n' "$wheel" >.venv/.llama-wheel
  fi
fi
stamp=".venv/.installed-$extras-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  echo "Installing agentops[$extras] into .venv..." >&2
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
