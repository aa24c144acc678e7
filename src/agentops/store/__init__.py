"""Run history in SQLite: where it lives, its schema, recording runs, reading them back.

    with open_store("agentops.db") as store:        # migrates the file on open
        engine = Engine(..., subscribers=[RunRecorder(store)])
        ...
        state = store.load_run_for_resume(12)

Modules: ``sqlite`` (the file, its pragmas, write transactions with retry),
``migrations`` (numbered schema changes), ``liveness`` (is a ``running`` run's
process still there), ``recorder`` (an events subscriber that writes),
``queries`` (what the history commands read), ``resume`` (what resume reads).
``RunRecorder`` and ``ResumeState`` need the engine's event types, so they are
imported on first use: the history commands never load them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .liveness import effective_status
from .sqlite import DEFAULT_DB_NAME, Store, default_db_path, open_store

if TYPE_CHECKING:
    from .recorder import RunRecorder
    from .resume import ResumeState

__all__ = [
    "DEFAULT_DB_NAME",
    "ResumeState",
    "RunRecorder",
    "Store",
    "default_db_path",
    "effective_status",
    "open_store",
]

_LAZY = {"RunRecorder": ".recorder", "ResumeState": ".resume"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
