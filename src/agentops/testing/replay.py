"""Testing a workflow against a recorded run: record once against a real model, commit the
history file, replay it in CI with no network and no key.

The recipe (pytest)::

    # 1. Once, against the real model (the run is recorded in tests/recordings/flow.db):
    #    agentops run flow.yaml --db tests/recordings/flow.db
    #    git add tests/recordings/flow.db
    #
    # 2. In the test suite:
    from agentops.testing.replay import replay

    def test_flow_still_answers(tmp_path):
        result = replay("flow.yaml", "tests/recordings/flow.db", scratch=tmp_path)
        assert result.ok, {name: agent.error for name, agent in result.agents.items()}
        assert "refund" in result.agents["reply"].output

Every model call is answered from the recording's attempts with the same agent and request key
(``agentops run --replay``); a call it has no answer for (a prompt, the model, a parameter, a
tool or the schema changed) fails that agent with a message naming what differs, and the test
fails instead of calling a model. Tools run for real. The recording is copied into ``scratch``
first, so the committed file never changes. A provider key variable the workflow names must be
set (to anything: no call is made), as for any run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentops.errors import RunNotFoundError
from agentops.runtime.events import WorkflowResult

__all__ = ["latest_run", "replay"]


def latest_run(recording: str | Path, workflow: str) -> int:
    """The newest recorded run of ``workflow`` in ``recording``; ``RunNotFoundError`` if none."""
    from agentops.store.opening import open_reader
    from agentops.store.sqlite_reader import SqliteHistoryReader

    reader = SqliteHistoryReader(open_reader(recording))
    try:
        runs = reader.workflow_runs(workflow=workflow, limit=1)
    finally:
        reader.close()
    if not runs:
        raise RunNotFoundError(
            f"{recording} has no recorded run of workflow {workflow!r}; record one with "
            f"agentops run FILE --db {recording}"
        )
    return runs[0].id


def replay(
    source: str | Path,
    recording: str | Path,
    *,
    run_id: int | None = None,
    scratch: str | Path | None = None,
    inputs: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> WorkflowResult:
    """Run the workflow ``source`` answered from run ``run_id`` of ``recording`` (default: the
    newest run of that workflow), on a copy of it in ``scratch`` (default: a temporary folder).
    The other options are ``agentops.run``'s."""
    from agentops.api import arun
    from agentops.assembly import load, open_history

    loaded = load(source)
    with tempfile.TemporaryDirectory() as spare:
        folder = Path(scratch) if scratch is not None else Path(spare)
        copy = folder / f"replay-of-{Path(recording).name}"
        shutil.copyfile(recording, copy)
        if run_id is None:
            # Read from the copy, upgraded first: a recording made by an older agentops is read
            # too, and the committed file is never migrated in place.
            with open_history(copy):
                pass
            run_id = latest_run(copy, loaded.workflow.name)
        return asyncio.run(arun(loaded, db=copy, replay=run_id, inputs=inputs, env=env, **options))
