#!/usr/bin/env bash
# Quick start, command 2: set up (with the local model, tracing, the web view and test tools) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local,test,otel,ui
.venv/bin/python -m pip check
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
