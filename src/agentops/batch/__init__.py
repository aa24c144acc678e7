"""Batches: one workflow over every row of a data file (``datasets``), under one set of call
limits, recorded and resumable (``runner``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.lazy import lazy_getattr as _lazy_getattr

if TYPE_CHECKING:
    from agentops.batch.runner import (
        BatchOptions,
        aresume_batch,
        arun_batch,
        resume_batch,
        run_batch,
    )

__all__ = ["BatchOptions", "aresume_batch", "arun_batch", "resume_batch", "run_batch"]
_LAZY = {name: ".runner" for name in __all__}
__getattr__ = _lazy_getattr(__name__, _LAZY)
