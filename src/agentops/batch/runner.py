"""Batches: one workflow over every row of a JSONL or CSV file, under one cost cap.

``arun_batch`` checks every row before the first call, records a ``batches`` row,
then runs each row as a workflow run of its own (recorded by ``RunRecorder``, linked
to the batch by ``batch_id`` and ``batch_row``). Rows run concurrently with no
barrier between them: every row's engine shares one ``CallLimits``, so
``policies.max_concurrency`` caps the calls in flight for the whole batch, the cost
cap holds for the whole batch (reserve before spend, as in a run), and a 429 with
Retry-After pauses that provider for every row. At most ``max_concurrency`` rows are
open at once, so memory stays flat however long the file is; results are read back
from the history, never held.

``aresume_batch`` runs the rows that did not succeed (a failed or interrupted row
resumes its own workflow run, reusing its succeeded agents) under the same cap,
counting what the batch already spent. Both take the same ``BatchOptions`` (as
keywords, or as ``options=``). Each row's workflow run is put together by
``assembly.RunAssembly``, as a single run is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agentops.assembly import (
    PreparedRun,
    ProviderOverride,
    RunAssembly,
    WorkflowSource,
    check_cache_placement,
    enter_cluster,
    enter_tracing,
    load,
    open_budget,
    open_cache,
    open_history,
    open_replay,
    prepare,
    start_tools,
)
from agentops.batch.datasets import (
    DataFileError,
    InputMapping,
    Row,
    check_rows,
    file_sha256,
    read_rows,
)
from agentops.errors import AgentOpsError, StoreError, UsageError
from agentops.runtime.budget import Budget, check_cap
from agentops.runtime.cache import ResponseCache
from agentops.runtime.engine import COST_CAP_REASON, Engine
from agentops.runtime.events import (
    AgentResult,
    Approval,
    Decision,
    RunStatus,
    SkipCause,
    Subscriber,
    WorkflowResult,
)
from agentops.runtime.executor import Executor
from agentops.runtime.limits import CallLimits, InProcessCallLimits
from agentops.store.batches import RowState
from agentops.store.reader import HistoryReader
from agentops.store.writer import HistoryWriter
from agentops.workflow.files import file_kind
from agentops.workflow.inputs import resolve_inputs
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text
from agentops.workflow.spec import CacheMode

if TYPE_CHECKING:
    from agentops.cluster.ledger import LedgerLimits
    from agentops.runtime.agent_run import AgentRunner, RunTools
    from agentops.store.location import DbLocation
    from agentops.tracing.session import TracingSession

RowStatus = str  # "succeeded" | "failed" | "skipped" | "waiting" | "interrupted"

# `agentops` raises the collector's young threshold for speed (launch.tune_gc_for_run), which
# leaves the cycles each row makes to the oldest generation: its garbage grew with the row
# count (191 MB peak at 30,000 rows). A full collection every so many rows keeps it flat.
FULL_COLLECTION_EVERY = 5_000


class BatchObserver(Protocol):
    """Sees a batch's progress (the CLI's progress bar); every method is quick."""

    def batch_started(self, batch_id: int, rows: int, done: int, limits: CallLimits) -> None: ...

    def row_finished(self, row: int, status: RowStatus, result: WorkflowResult) -> None: ...

    def batch_finished(self, summary: BatchSummary) -> None: ...


@dataclass
class BatchSummary:
    batch_id: int
    workflow: str
    status: RunStatus
    rows: int
    succeeded: int = 0  # in this batch so far, reused rows included
    failed: int = 0
    skipped: int = 0  # by the cost cap or the named budget
    skipped_by: str = f"the {COST_CAP_REASON}"  # what could skip them: "budget research", …
    reused: int = 0  # succeeded in an earlier run of the batch, not called again
    not_run: int = 0  # interrupted before they started
    waiting: int = 0  # waiting for an approval: resume-batch continues them once decided
    cost: float = 0.0  # this invocation's spend
    spent_before: float = 0.0  # what earlier runs of the batch spent (resume)
    cost_cap: float | None = None
    pauses: int = 0
    paused_seconds: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    out: Path | None = None

    @property
    def exit_code(self) -> int:
        return {RunStatus.SUCCEEDED: 0, RunStatus.FAILED: 1, RunStatus.WAITING: 3}.get(
            self.status, 130
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "status": self.status.value,
            "out": str(self.out) if self.out else None,
            "exit_code": self.exit_code,
        }


def row_status(result: WorkflowResult) -> RowStatus:
    """A row the cost cap or a named budget left no room for before its first call is
    *skipped*, not failed (``store.batches.ROW_STATUS`` reads a recorded row the same way)."""
    if result.status is RunStatus.FAILED:
        agents = list(result.agents.values())
        if not any(a.attempts for a in agents) and any(
            a.skip_cause is SkipCause.COST_CAP for a in agents
        ):
            return "skipped"
    return result.status.value


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs, whether new (``arun_batch``) or resumed (``aresume_batch``); each
    field can also be given to either function as a keyword of the same name."""

    db: str | Path | DbLocation | None = (
        None  # the history (None: $AGENTOPS_DB or the default file)
    )
    out: str | Path | None = None  # every row's result as JSONL, in input order
    cost_cap: float | None = None  # for the whole batch; see arun_batch and aresume_batch
    budget: str | None = None  # a named budget every row draws on (None: policies.budget)
    provider: ProviderOverride = None  # a Provider for every agent, or one per provider name
    env: Mapping[str, str] | None = None  # instead of the process environment
    subscribers: Sequence[Subscriber] = ()  # every row's events
    observer: BatchObserver | None = None  # the batch's progress
    control: Control | None = None  # receives the runner before any row runs (Ctrl-C)
    otel: bool | None = None  # as in agentops.run
    cache: CacheMode | None = None  # as in agentops.run: over the workflow's policies.cache
    replay: int | None = None  # answer every call from the runs of this recorded batch
    executor: str | None = None  # "ray": rows' agent runs on a Ray cluster; None: policies.executor
    ray_address: str | None = None  # with executor ray: the cluster (None: RAY_ADDRESS, else local)

    @classmethod
    def of(cls, options: BatchOptions | None, keywords: Mapping[str, Any]) -> BatchOptions:
        """``options`` (or the defaults) with ``keywords`` over them; a keyword that is no
        field is a ``TypeError`` naming it, as for any function."""
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r} (see BatchOptions)")
        return replace(options or cls(), **keywords)


@dataclass
class _Batch:
    """Everything one invocation of a batch needs, settled before any row runs."""

    loaded: LoadedWorkflow
    data: Path
    mapping: InputMapping
    row_count: int
    store: HistoryReader  # what is read back: earlier rows, resumed agents, the results
    writer: HistoryWriter  # what is written: the batch and its rows' workflow runs
    batch_id: int
    cost_cap: float | None
    spent_before: float = 0.0
    earlier: dict[int, RowState] = field(default_factory=dict)

    def first_inputs(self) -> dict[str, Any]:
        first = next(read_rows(self.data))
        return self.mapping.inputs_of(first, self.data)


class BatchRunner:
    """Runs the rows of one batch; ``stop()`` ends it early (Ctrl-C), keeping what finished.

    Its caller opened (and closes) the providers in ``prepared``, the tools and tracing;
    the runner checks, on construction, what can be checked before the batch is recorded."""

    def __init__(
        self,
        job: _Batch,
        prepared: PreparedRun,
        *,
        subscribers: Sequence[Subscriber] = (),
        observer: BatchObserver | None = None,
        tracing: TracingSession | None = None,
        shared_budget: Budget | None = None,
        cache: ResponseCache | None = None,
        executor: Executor | None = None,
        limits: LedgerLimits | None = None,
        agent_runner: AgentRunner | None = None,
    ) -> None:
        self.job = job
        self.prepared = prepared
        workflow = job.loaded.workflow
        # The calls of every row share these (a cluster's ledger, when the rows run on Ray).
        self.limits: InProcessCallLimits | LedgerLimits = limits or InProcessCallLimits.create(
            workflow.policies.max_concurrency, job.cost_cap, job.spent_before, shared_budget
        )
        self.observer = observer
        self.shared_budget = shared_budget
        # Every row's workflow run is assembled from this, on the batch's limits and history.
        self.assembly = RunAssembly(
            prepared,
            cost_cap=job.cost_cap,
            subscribers=list(subscribers),
            history=job.writer,
            tracing=tracing,
            close_tools=False,  # every row shares them; the batch closes them
            limits=self.limits,
            history_failed=self._history_failed,
            cache=cache,
            executor=executor,
            agent_runner=agent_runner,
        )
        self._engines: set[Engine] = set()
        self._stop: tuple[str, RunStatus] | None = None
        self._rows_open = asyncio.Semaphore(workflow.policies.max_concurrency)
        self._rows_run = 0
        self._history_failure: StoreError | None = None
        # Everything that can be checked is checked before the batch is recorded or any row runs.
        for route in set(prepared.routes.values()):
            prepared.registry.get(route)  # configuration errors
        self.assembly.check_prices()  # under a cap every model needs a price

    def stop(self, reason: str, status: RunStatus = RunStatus.INTERRUPTED) -> None:
        if self._stop is None:
            self._stop = (reason, status)
        for engine in list(self._engines):
            engine.stop(reason, status)

    def _history_failed(self, error: StoreError) -> None:
        """A row could not be recorded: no row goes on, nothing more is spent unrecorded."""
        if self._history_failure is None:
            self._history_failure = error
            self.stop("the history could not be written", RunStatus.FAILED)

    async def run(self, tools: RunTools | None = None) -> BatchSummary:
        """Run the rows (on ``tools``, started and closed by the caller) and record the end."""
        job = self.job
        summary = BatchSummary(
            job.batch_id,
            job.loaded.workflow.name,
            RunStatus.RUNNING,
            job.row_count,
            cost_cap=job.cost_cap,
            spent_before=job.spent_before,
            started_at=time.time(),
        )
        if self.shared_budget is not None:
            own = [f"the {COST_CAP_REASON}"] if job.cost_cap is not None else []
            summary.skipped_by = " or ".join([*own, self.shared_budget.refusal])
        done = sum(1 for state in job.earlier.values() if state.status == "succeeded")
        batch_span = None
        tracing = self.assembly.tracing
        if tracing is not None:
            from agentops.tracing.spans import BatchSpan

            batch_span = BatchSpan(
                tracing.tracer, job.loaded.workflow.name, job.batch_id, job.row_count
            )
        # One trace per row, linked to the batch's span.
        self.assembly = replace(
            self.assembly,
            tools=tools,
            batch_id=job.batch_id,
            links=[batch_span.ref] if batch_span is not None else [],
        )
        if self.observer is not None:
            self.observer.batch_started(job.batch_id, job.row_count, done, self.limits)
        await self._run_rows(summary)
        if self._history_failure is not None:
            # The batch stays "running": it reads as interrupted once this process is gone.
            raise StoreError(f"batch stopped: {self._history_failure}")
        summary.not_run = job.row_count - summary.succeeded - summary.failed - summary.skipped
        summary.status = self._final_status(summary)
        summary.cost = self.limits.budget.spent - job.spent_before
        summary.pauses = self.limits.pauses.count
        summary.paused_seconds = self.limits.pauses.seconds
        summary.finished_at = time.time()
        job.writer.finish_batch(
            job.batch_id,
            status=summary.status.value,
            finished_at=summary.finished_at,
            pauses=summary.pauses,
            paused=summary.paused_seconds,
        )
        if batch_span is not None:
            batch_span.end(summary.status.value, summary.cost, summary.succeeded)
        return summary

    async def _run_rows(self, summary: BatchSummary) -> None:
        """Start each row as a row slot frees; a row already succeeded is counted, not run."""
        job = self.job
        try:
            async with asyncio.TaskGroup() as group:
                for row in read_rows(job.data):
                    if row.number > job.row_count:
                        break
                    earlier = job.earlier.get(row.number)
                    if earlier is not None and earlier.status == "succeeded":
                        summary.succeeded += 1
                        summary.reused += 1
                        continue
                    await self._rows_open.acquire()
                    if self._stop is not None:
                        self._rows_open.release()
                        break
                    group.create_task(
                        self._run_row(row, earlier, summary), name=f"row:{row.number}"
                    )
        except* (
            AgentOpsError
        ) as failures:  # e.g. the history cannot be written: one line, not a group
            raise failures.exceptions[0] from None

    def _final_status(self, summary: BatchSummary) -> RunStatus:
        if self._stop is not None:
            return self._stop[1]
        if summary.succeeded == summary.rows:
            return RunStatus.SUCCEEDED
        if summary.waiting and summary.succeeded + summary.waiting == summary.rows:
            return RunStatus.WAITING
        return RunStatus.FAILED

    async def _run_row(self, row: Row, earlier: RowState | None, summary: BatchSummary) -> None:
        try:
            result = await self._run_workflow(row, earlier)
        finally:
            self._rows_open.release()
        status = row_status(result)
        self._rows_run += 1
        if self._rows_run % FULL_COLLECTION_EVERY == 0:
            gc.collect()
        if status == "succeeded":
            summary.succeeded += 1
        elif status == "skipped":
            summary.skipped += 1
        elif status == "failed":
            summary.failed += 1
        elif status == "waiting":
            summary.waiting += 1
        if self.observer is not None:
            self.observer.row_finished(row.number, status, result)

    async def _run_workflow(self, row: Row, earlier: RowState | None) -> WorkflowResult:
        """The row's workflow run; a row that failed or was interrupted resumes its own."""
        job = self.job
        reused: dict[str, AgentResult] = {}
        decisions: dict[str, Decision] = {}
        approvals: dict[str, Approval] = {}
        if earlier is not None:  # its succeeded agents, routing decisions and approvals
            state = job.store.resume_state(earlier.workflow_run_id)
            reused, decisions = dict(state.succeeded), dict(state.decisions)
            approvals = dict(state.approvals)
        run = self.assembly.workflow_run(
            inputs=resolve_inputs(job.loaded.workflow, job.mapping.inputs_of(row, job.data)),
            reused=reused,
            decisions=decisions,
            approvals=approvals,
            resumed_from=earlier.workflow_run_id if earlier is not None else None,
            batch_row=row.number,
        )
        engine = run.engine
        self._engines.add(engine)
        try:
            if self._stop is not None:
                engine.stop(*self._stop)
            return await engine.run()
        finally:
            self._engines.discard(engine)
            failure = run.recorder.failure if run.recorder is not None else None
            if failure is not None:  # its end could not be written: it stopped nothing yet
                self._history_failed(failure)


Control = Callable[[BatchRunner], None]


async def arun_batch(
    source: WorkflowSource,
    *,
    data: str | Path,
    input_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    options: BatchOptions | None = None,
    **keywords: Any,
) -> BatchSummary:
    """Run ``source`` once per row of ``data``; the batch is recorded in ``db`` (None: the default file).

    ``input_map``: input name to the column that feeds it; ``max_rows``: only the first rows.
    The rest are ``BatchOptions``, given as ``options`` or as keywords (``db``, ``out``,
    ``cost_cap``, ``provider``, ``env``, ``subscribers``, ``observer``, ``control``, ``otel``,
    ``executor``, ``ray_address``).
    ``cost_cap`` caps the whole batch; without it the workflow's ``policies.cost_cap`` does
    (for the whole batch, not per row). Every row is checked before the first call.
    """
    settings = BatchOptions.of(options, keywords)
    check_cap(settings.cost_cap)
    loaded = load(source)
    path = Path(data)
    mapping = InputMapping(loaded.workflow, input_map or {})
    checked = check_rows(path, mapping, max_rows)
    cost_cap = settings.cost_cap
    cap = cost_cap if cost_cap is not None else loaded.workflow.policies.cost_cap
    with open_history(settings.db) as (store, writer):
        job = _Batch(loaded, path, mapping, checked.rows, store, writer, 0, cap)

        def record() -> int:
            return job.writer.create_batch(
                workflow=loaded.workflow.name,
                definition=loaded.source,
                source_path=loaded.path,
                data_path=str(path.resolve()),
                data_sha256=checked.sha256,
                row_count=checked.rows,
                input_map=mapping.renames,
                cost_cap=cap,
                started_at=time.time(),
            )

        return await _run(job, settings, record)


async def aresume_batch(
    batch_id: int, *, options: BatchOptions | None = None, **keywords: Any
) -> BatchSummary:
    """Run the rows of batch ``batch_id`` that did not succeed, under the batch's cap, or under
    ``cost_cap`` (which then becomes the batch's cap): what the batch spent counts against it.

    The options are ``BatchOptions``, given as ``options`` or as keywords, as for ``arun_batch``.
    """
    settings = BatchOptions.of(options, keywords)
    cost_cap = settings.cost_cap
    check_cap(cost_cap)
    with open_history(settings.db) as (store, writer):
        record = store.batch(batch_id)  # raises RunNotFoundError
        if record.status == "running":
            raise UsageError(
                f"batch {batch_id} is still running in another process; wait for it or stop it first"
            )
        path = Path(record.data_path)
        if not path.is_file():
            raise DataFileError(
                f"{path}: the data file of batch {batch_id} is gone; put it back to resume"
            )
        if file_sha256(path) != record.data_sha256:
            raise DataFileError(
                f"{path} changed since batch {batch_id} started (its sha256 differs); restore it, "
                "or start a new batch with agentops batch"
            )
        loaded = load_workflow_text(
            record.definition, filename=record.source_path or f"<batch {batch_id}>"
        )
        loaded = LoadedWorkflow(loaded.workflow, loaded.source, record.source_path)
        mapping = InputMapping(loaded.workflow, record.input_map)
        cap = record.cost_cap if cost_cap is None else cost_cap
        job = _Batch(
            loaded,
            path,
            mapping,
            record.row_count,
            store,
            writer,
            batch_id,
            cap,
            spent_before=store.batch_spend(batch_id),
            earlier=store.batch_row_states(batch_id),
        )

        def take_over() -> int:
            job.writer.take_over_batch(batch_id, cost_cap=cap)
            return batch_id

        return await _run(job, settings, take_over)


async def _run(job: _Batch, options: BatchOptions, record: Callable[[], int]) -> BatchSummary:
    """Check (``out``, the history, then ``BatchRunner``), then ``record`` the batch (its id), run it, write ``out``."""
    out = options.out
    if out is not None:
        keep = {
            "data file": job.data,
            "workflow file": job.loaded.path,
            "history database": Path(job.store.location),
        }
        check_out(Path(out), keep)
    job.writer.check_recordable(job.loaded.workflow.name)
    cache: ResponseCache | None
    executor: Executor | None = None
    if options.replay is not None:
        if options.cache not in (None, "off"):
            raise UsageError("--replay answers every call from the recording: leave --cache out")
        cache, executor = open_replay(job.store, batch=options.replay)
    else:
        cache = open_cache(job.store, job.writer, job.loaded.workflow, options.cache)
    # Whatever was opened is closed on every way out, in reverse: the tools, the providers,
    # then tracing.
    async with contextlib.AsyncExitStack() as opened:
        tracing = enter_tracing(opened, options.otel)
        prepared = prepare(
            job.loaded, inputs=job.first_inputs(), provider=options.provider, env=options.env
        )
        opened.push_async_callback(prepared.registry.aclose)
        shared = open_budget(
            opened, options.db, options.budget or job.loaded.workflow.policies.budget
        )
        check_cache_placement(job.loaded.workflow, options.executor, cache)
        # On Ray: every row's agent runs Ray tasks, every call on one ledger.
        limits, agent_runner = enter_cluster(
            opened,
            prepared,
            options.executor,
            options.ray_address,
            cap=job.cost_cap,
            spent=job.spent_before,
            exclude=[job.data, job.store.location],  # never sent with the workflow's folder
        ) or (None, None)
        if limits is not None and shared is not None:
            raise UsageError(
                "a named budget is not drawn on by agents running on Ray yet; "
                "run with the executor local, or without the budget"
            )
        runner = BatchRunner(
            job,
            prepared,
            subscribers=options.subscribers,
            observer=options.observer,
            tracing=tracing,
            shared_budget=shared,
            cache=cache,
            executor=executor,
            limits=limits,
            agent_runner=agent_runner,
        )
        job.batch_id = record()
        if options.control is not None:
            options.control(runner)
        # MCP servers start once, for every row: one that cannot is exit 2, before any call.
        tools = await start_tools(opened, prepared, [a.name for a in job.loaded.workflow.agents])
        if tools is not None and options.replay is None:  # tools that say cache: true share it
            tools.cache = cache
        summary = await runner.run(tools)
    if out is not None and summary.status is not RunStatus.INTERRUPTED:
        summary.out = Path(out)
        write_results(job.store, job.batch_id, summary.out)
    if options.observer is not None:
        options.observer.batch_finished(summary)
    return summary


def check_out(out: Path, keep: Mapping[str, str | Path | None]) -> None:
    """Refuse an ``out`` that ``write_results`` could not write, or that would replace one of the
    files in ``keep`` (what it is called: its path), before the batch is recorded or any row runs:
    the results are written after every row has been paid for."""
    try:
        mode: int | None = out.stat().st_mode
    except OSError:  # not there yet (or a file stands where a folder should: reported below)
        mode = None
    if mode is not None:
        if stat.S_ISDIR(mode):
            raise UsageError(
                f"--out {out} is a directory; give the path of a file, such as {out / 'results.jsonl'}"
            )
        if not stat.S_ISREG(mode):
            raise UsageError(
                f"--out {out} is {file_kind(mode)}, not a regular file; give the path of a file"
            )
        for what, path in keep.items():
            if path is not None and Path(path).exists() and out.samefile(path):
                raise UsageError(
                    f"--out {out} is the {what}, which the results would replace; choose another path"
                )
    folder = out.resolve().parent
    if not folder.is_dir():
        raise UsageError(
            f"--out {out}: {folder} is not an existing folder; create it or choose another path"
        )
    try:  # what write_results does first; a read-only place fails here, not after the last row
        descriptor, probe = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as error:
        raise UsageError(
            f"--out {out}: cannot write in {folder} ({error.strerror or error}); choose a folder you can write to"
        ) from None
    os.close(descriptor)
    os.unlink(probe)


def write_results(store: HistoryReader, batch_id: int, out: Path) -> None:
    """Every row's result as JSONL, in input order, replacing ``out`` in one step."""
    import json

    folder = out.resolve().parent
    descriptor, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            for outcome in store.batch_row_outcomes(batch_id):
                stream.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        os.replace(temporary, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def run_batch(source: WorkflowSource, **options: Any) -> BatchSummary:
    """Blocking twin of ``arun_batch``."""
    return asyncio.run(arun_batch(source, **options))


def resume_batch(batch_id: int, **options: Any) -> BatchSummary:
    """Blocking twin of ``aresume_batch``."""
    return asyncio.run(aresume_batch(batch_id, **options))


__all__ = [
    "BatchObserver",
    "BatchOptions",
    "BatchRunner",
    "BatchSummary",
    "aresume_batch",
    "arun_batch",
    "check_out",
    "resume_batch",
    "row_status",
    "run_batch",
    "write_results",
]
