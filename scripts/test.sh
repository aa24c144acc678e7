#!/usr/bin/env bash
# Quick start, command 2: set up (with the local model, tracing, the web view, test tools, the
# manual's tools and Ray) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local,test,otel,ui,docs,ray
.venv/bin/python -m pip check
.venv/bin/ruff format --check src tests benchmarks scripts
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/mypy
# The manual: a broken link or anchor fails the build. Built into a temporary directory, never kept.
site_dir="$(mktemp -d)"
trap 'rm -rf "$site_dir"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site_dir"
.venv/bin/python -m pytest "$@"
