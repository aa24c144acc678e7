"""Recording a run as it happens: an events subscriber that turns the engine's events
into ``HistoryWriter`` calls (``store.writer``); it holds no SQL of its own.

Each write is one short transaction: the workflow run row when the run starts
(with the agents a resume reuses), agent starts (``agent_starts``, what a live
view shows as running), tool calls as they finish, agent runs with their attempts
as they settle (linking their tool calls), the MCP servers with their stderr as
they close, the totals and final status when the run ends. A row in ``runs`` is
only ever a settled agent: a start is a row of its own, deleted when the agent
settles, and the run's end deletes any left, so nothing that reads ``runs``
mistakes a running agent for a finished one.

A fan-out agent's ``FanOutStarted`` is its start row; each instance starts, calls tools
and settles under its key (``writer[2]``) like any agent, and its row names its agent
and item (see ``HistoryWriter.record_agents``); the fan-out agent settles after them.

Agents that start or settle in the same turn of the event loop are committed
together, by a callback queued when the first of them does: one commit instead
of one each, or on wide workflows the history would cost more than the scheduling.
The engine emits ``AgentFinished`` before it starts any dependent, and the loop
runs callbacks in order, so that commit lands before a dependent's first step:
no output reaches a prompt before it is on disk, and a crash loses at most
agents whose results nothing had used yet. The last agents of a run without
tools wait for the run's end (a turn or two later), which writes them in its
own commit.

A write that fails (a read-only, damaged or full file) never escapes into the
engine: the recorder keeps the error as ``failure``, asks its owner to stop the run
(``stop``) while there is still something to stop, and writes nothing more but the
run's end, in case the file came back. ``check_recordable`` makes the same writes
before a run, rolled back, so that most such files stop it before its first call.

The workflow run's id is the engine's: it calls ``start_workflow_run`` (given as
``RunOptions.start_workflow_run``) before it emits ``WorkflowStarted`` and puts the
answer on its result, so no subscriber changes an event and their order does not matter.

Nothing here sees an API key: the events carry outputs, prompts and error
messages, never request headers or provider configuration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agentops.errors import StoreError
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    Event,
    FanOutStarted,
    ToolCallFinished,
    ToolCallRecord,
    ToolServerStopped,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store.database import Database
from agentops.store.liveness import HEARTBEAT_SECONDS
from agentops.store.writer import AgentChanges, HistoryWriter, every_agent_run

__all__ = ["RunRecorder", "check_recordable"]

logger = logging.getLogger(__name__)


def _writer_of(history: HistoryWriter | Database) -> HistoryWriter:
    """An open ``Database`` is written through the SQL writer; any other writer is used as given."""
    if isinstance(history, Database):
        from agentops.store.sqlite_writer import SqliteHistoryWriter

        return SqliteHistoryWriter(history)
    return history


class RunRecorder:
    """Records one workflow run through ``history`` (a ``HistoryWriter``, or an open
    ``Database``); pass it to the engine as a subscriber, and ``start_workflow_run`` as
    ``RunOptions.start_workflow_run``.

    ``workflow_run_id`` is set once the run's start has been recorded. ``failure`` is
    the first write that failed; after it only the run's end is tried. ``stop`` (if given)
    is called with it while the run can still be stopped, and ``stopped`` says it was;
    without ``stop``, the failure is logged in one line.
    """

    wants_tokens = False  # outputs are recorded whole, when an agent settles

    def __init__(
        self,
        history: HistoryWriter | Database,
        *,
        stop: Callable[[StoreError], None] | None = None,
    ) -> None:
        self.writer = _writer_of(history)
        self.stop = stop
        self.workflow_run_id: int | None = None
        self.failure: StoreError | None = None
        self.stopped = False
        self._workflow: str = ""
        self._recorded: set[str] = set()
        self._agents = 0
        self._agents_recorded = 0  # of the workflow's agents (not instances), those in _recorded
        self._ends_with_last_agent = False
        self._started: set[str] = set()  # agents whose start row was committed
        # started or settled, to be committed at the end of this loop turn
        self._pending: list[AgentStarted | FanOutStarted | AgentResult] = []
        # of _pending, the workflow's agents settled (counted as they come: a scan of _pending
        # per result was quadratic in a loop turn's agents)
        self._pending_settled = 0
        self._pending_calls: list[tuple[str, ToolCallRecord]] = []  # finished tool calls, likewise
        # agents with tool calls whose run row does not exist yet
        self._with_calls: set[str] = set()
        self._heartbeat: asyncio.TimerHandle | None = None
        self._last_write = 0.0  # time.monotonic() of the last write (each one is a heartbeat)

    def start_workflow_run(self, event: WorkflowStarted) -> int | None:
        """Record the run's start (the engine calls this before it emits ``event``); its id,
        or None when it could not be written (``failure`` says why, and the run is stopped)."""
        if self.workflow_run_id is None and self.failure is None:
            try:
                self._record_start(event)
            except StoreError as error:
                self._failed(error, stop=True)
        return self.workflow_run_id

    def __call__(self, event: Event) -> None:
        if self.failure is not None and not isinstance(event, WorkflowFinished):
            return  # the run is stopping; its end still tries to write what it can
        try:
            if isinstance(event, WorkflowStarted):
                if self.workflow_run_id is None:  # an engine not given start_workflow_run
                    self._record_start(event)
            elif isinstance(event, AgentStarted | FanOutStarted):
                self._record_agent(event)
            elif isinstance(event, AgentFinished):
                self._record_agent(event.result)
            elif isinstance(event, ToolCallFinished):
                self._record_tool_call(event.name, event.call)
            elif isinstance(event, ToolServerStopped):
                self.writer.record_tool_server(self._require_started(), event)
            elif isinstance(event, WorkflowFinished):
                self._record_finish(event.result)
        except StoreError as error:
            # Servers stop and the end is written once the run is over: nothing left to stop.
            self._failed(error, stop=not isinstance(event, (ToolServerStopped, WorkflowFinished)))

    def _failed(self, error: StoreError, *, stop: bool) -> None:
        if self.failure is not None:
            return
        self.failure = error
        if self.stop is None:
            logger.error("%s", error)  # one line: no owner reports it
        elif stop:
            self.stopped = True
            self.stop(error)

    # --- the writes ------------------------------------------------------------------

    def _record_start(self, event: WorkflowStarted) -> None:
        self.workflow_run_id = self.writer.start_workflow_run(event)
        self._last_write = time.monotonic()
        self._schedule_heartbeat()
        self._workflow = event.workflow.name
        self._recorded = set(event.reused)
        self._agents_recorded = sum(not r.is_instance for r in event.reused.values())
        # Without tools, the run ends within a loop turn or two of its last agent settling.
        self._agents = len(event.workflow.agents)
        self._ends_with_last_agent = not event.workflow.tools

    def _record_agent(self, change: AgentStarted | FanOutStarted | AgentResult) -> None:
        self._require_started()
        self._pending.append(change)
        settles = isinstance(change, AgentResult)
        if isinstance(change, AgentResult) and not change.is_instance:  # not a fan-out's items
            self._pending_settled += 1
        if settles and self._ends_with_last_agent and self._all_settled():
            # Nothing can depend on the last agents: the run's end, a turn or two away, writes
            # them with the totals. One commit less per run (a 1-agent batch row makes three).
            return
        self._queue_flush()

    def _all_settled(self) -> bool:
        return self._agents_recorded + self._pending_settled >= self._agents

    def _record_tool_call(self, agent: str, call: ToolCallRecord) -> None:
        self._require_started()
        self._pending_calls.append((agent, call))
        self._with_calls.add(agent)
        self._queue_flush()

    def _queue_flush(self) -> None:
        if len(self._pending) + len(self._pending_calls) > 1:
            return  # the commit is already queued
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop: commit now
            self._flush_pending()
            return
        loop.call_soon(self._flush_safely)

    def _flush_safely(self) -> None:
        try:
            self._flush_pending()
        except StoreError as error:  # what is not written now, the run's end tries again
            self._failed(error, stop=True)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        self._pending_settled = 0
        calls, self._pending_calls = self._pending_calls, []
        if not pending and not calls:
            return
        workflow_run_id = self._require_started()
        settled = [change for change in pending if isinstance(change, AgentResult)]
        names = {result.name for result in settled}
        started = [
            c
            for c in pending
            if isinstance(c, AgentStarted | FanOutStarted) and c.name not in names
        ]
        linked = {name for name in names if name in self._with_calls}
        changes = AgentChanges(
            started=started,
            tool_calls=calls,
            settled=settled,
            linked=linked,
            # Agents whose start row is on disk: their outcome replaces it.
            ended=[r.name for r in settled if r.name in self._started],
        )
        self.writer.record_agents(workflow_run_id, self._workflow, changes)
        self._last_write = time.monotonic()
        self._note_recorded(settled)
        self._started.difference_update(names)
        self._started.update(c.name for c in started)
        self._with_calls.difference_update(linked)

    def _schedule_heartbeat(self) -> None:
        """While the run goes on, a heartbeat whenever nothing was written for a while
        (``liveness``: how another host tells this process is alive)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # recorded outside an event loop: no timer to run it
            return
        self._heartbeat = loop.call_later(HEARTBEAT_SECONDS / 2, self._beat)

    def _beat(self) -> None:
        if self.failure is not None or self.workflow_run_id is None:
            return
        if time.monotonic() - self._last_write >= HEARTBEAT_SECONDS / 2:
            try:
                self.writer.heartbeat(self.workflow_run_id)
            except StoreError as error:
                self._failed(error, stop=True)
                return
            self._last_write = time.monotonic()
        self._schedule_heartbeat()

    def _record_finish(self, result: WorkflowResult) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        workflow_run_id = self._require_started()
        # Tool calls not yet written are written now; every agent is in result.agents, and
        # those not yet written are written below.
        if self._pending_calls:
            self._pending = []
            self._flush_pending()
        self._pending, self._pending_settled = [], 0
        self._started = set()  # the run's end deletes every start row of the run
        # Agents the engine settled without an AgentFinished we recorded (a failed write,
        # say) are recorded now, so the run is complete in the history.
        # A fan-out agent's instances too, whether or not they are also listed under their keys.
        missing = [
            r for r in every_agent_run(result.agents.values()) if r.name not in self._recorded
        ]
        self.writer.finish_workflow_run(
            workflow_run_id, self._workflow, result, missing=missing, linked=self._with_calls
        )
        self._note_recorded(missing)

    def _note_recorded(self, results: list[AgentResult]) -> None:
        new = [r for r in results if r.name not in self._recorded]
        self._recorded.update(r.name for r in new)
        self._agents_recorded += sum(not r.is_instance for r in new)

    def _require_started(self) -> int:
        if self.workflow_run_id is None:
            raise StoreError(
                "the run was not recorded: WorkflowStarted was not received or not written"
            )
        return self.workflow_run_id


def check_recordable(history: HistoryWriter | Database, workflow: str) -> None:
    """Can a run of ``workflow`` be recorded here? ``StoreError`` (one line) if not, before
    the run calls anything; the history is never changed (see ``HistoryWriter``)."""
    _writer_of(history).check_recordable(workflow)
