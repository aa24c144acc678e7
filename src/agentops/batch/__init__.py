"""Batches: one workflow over every row of a data file (``datasets``), under one set of call
limits, recorded and resumable (``runner``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.lazy import lazy_getattr as _lazy_getattr

if TYPE_CHECKING:
    from agentops.batch.runner import aresume_batch, arun_batch, resume_batch, run_batch

_LAZY = {name: ".runner" for name in ("arun_batch", "aresume_batch", "run_batch", "resume_batch")}
__all__ = ["aresume_batch", "arun_batch", "resume_batch", "run_batch"]
__getattr__ = _lazy_getattr(__name__, _LAZY)
