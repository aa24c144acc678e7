#!/usr/bin/env bash
# Quick start, command 2: set up (with the local model, the web view and test tools) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local,test,ui
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
