#!/usr/bin/env bash
# Quick start, command 1: set up, then run a sample workflow end to end on the bundled
# local model (no API key), with the live view; its history lands in ./agentops.db.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh local
.venv/bin/agentops run examples/local_workflow.yaml "$@"
echo
echo "Next: .venv/bin/agentops list-workflow-runs    (history in ./agentops.db)"
