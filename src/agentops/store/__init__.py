"""Run history in SQLite: where it lives, its schema, recording runs, reading them back.

    with open_store("agentops.db") as store:        # migrates the file on open
        recorder = RunRecorder(SqliteHistoryWriter(store))
        engine = Engine(..., options=RunOptions(start_workflow_run=recorder.start_workflow_run),
                        subscribers=[recorder])
        ...
        state = load_resume_state(store, 12)

    reader = SqliteHistoryReader.open("agentops.db")  # read-only, typed records
    reader.workflow_runs(limit=20); reader.workflow_run(12); reader.spend()

Modules: ``sqlite`` (the connection and write transactions with retry; a leaf),
``opening`` (opening a file for writing, migrated, or read-only), ``migrations``
(numbered schema changes), ``liveness`` (is a ``running`` run's process still
there), ``writer`` (the write interface, a Protocol) and ``sqlite_writer`` (its
SQLite implementation), ``recorder`` (an events subscriber that turns events into
writer calls), ``records`` (the typed records every reader returns, and the one
mapping from each kind of row), ``reader`` (the read interface the history
commands and the web view use, a Protocol), ``sqlite_reader`` (its SQLite
implementation, over ``queries`` for the history commands, ``browse`` for the
web view and ``batches`` for batch reads), ``resume`` (what resume reads).
``RunRecorder``, the writers, ``check_recordable`` (can a run be recorded here:
asked before it starts) and ``ResumeState`` need the engine's event types, so
they are imported on first use: the history commands never load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.lazy import lazy_getattr as _lazy_getattr
from agentops.store.liveness import effective_status
from agentops.store.opening import open_reader, open_store
from agentops.store.sqlite import DEFAULT_DB_NAME, Store, default_db_path

if TYPE_CHECKING:
    from agentops.store.reader import HistoryReader
    from agentops.store.recorder import RunRecorder, check_recordable
    from agentops.store.resume import ResumeState, load_resume_state
    from agentops.store.sqlite_reader import SqliteHistoryReader
    from agentops.store.sqlite_writer import SqliteHistoryWriter
    from agentops.store.writer import HistoryWriter

__all__ = [
    "DEFAULT_DB_NAME",
    "HistoryReader",
    "HistoryWriter",
    "ResumeState",
    "RunRecorder",
    "SqliteHistoryReader",
    "SqliteHistoryWriter",
    "Store",
    "check_recordable",
    "default_db_path",
    "effective_status",
    "load_resume_state",
    "open_reader",
    "open_store",
]

_LAZY = {
    "HistoryReader": ".reader",
    "RunRecorder": ".recorder",
    "check_recordable": ".recorder",
    "ResumeState": ".resume",
    "load_resume_state": ".resume",
    "SqliteHistoryReader": ".sqlite_reader",
    "HistoryWriter": ".writer",
    "SqliteHistoryWriter": ".sqlite_writer",
}


__getattr__ = _lazy_getattr(__name__, _LAZY)
