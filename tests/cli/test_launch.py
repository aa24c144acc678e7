"""The process-level set-up `agentops run` and `resume` make before running."""

from __future__ import annotations

import subprocess
import sys


def test_a_run_process_collects_young_objects_less_often_and_freezes_what_is_loaded() -> None:
    code = (
        "import gc; from agentops.cli.launch import GC_YOUNG_THRESHOLD, tune_gc_for_run; "
        "before = gc.get_threshold(); tune_gc_for_run(); after = gc.get_threshold(); "
        "print(before[0] < after[0] == GC_YOUNG_THRESHOLD, before[1:] == after[1:], gc.get_freeze_count() > 0)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.split() == ["True", "True", "True"]
