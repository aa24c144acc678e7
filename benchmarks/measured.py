"""One measurement in a fresh process: the benchmarks each run their sides this way, so that
no side inherits another's imports, caches or heap."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def figures_of(argv: list[str], what: str, timeout: float, **options: Any) -> dict[str, Any]:
    """Run ``argv``; its figures are the JSON object on the last line it prints. A failure
    stops the benchmark naming ``what`` failed, with the end of its standard error."""
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=timeout, **options
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
