"""Running a workflow from the command line: live view, Ctrl-C / SIGTERM, exit code.

The first Ctrl-C (or SIGTERM) asks the engine to stop: in-flight calls are
cancelled and recorded, finished work is kept, the run is recorded as
interrupted and the exit code is 130. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from agentops.runtime.events import AgentResult, RunStatus, WorkflowResult
from agentops.store.records import decision_json

EXIT_INTERRUPTED = 130

# A run allocates heavily (every streamed chunk becomes SDK objects), yet little of it forms
# cycles: at CPython's default young-generation threshold (700) the collector took about 30 %
# of a 10,000-agent run's wall time. Measured by benchmarks/run_all.py.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc_for_run() -> None:
    """Freeze what is loaded so far (modules, the workflow) out of the collector's scans, and
    collect young objects less often. For a process that is about to run a workflow."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)


class Stoppable(Protocol):
    """What a signal stops: an ``Engine``, or a ``BatchRunner`` (every row's engine)."""

    def stop(self, reason: str, status: RunStatus = ...) -> None: ...


Outcome = TypeVar("Outcome")


def run_with_signals(start: Callable[[Callable[[Any], None]], Awaitable[Outcome]]) -> Outcome:
    """Run ``start(control)`` on a fresh loop; ``control`` receives the ``Stoppable`` that
    SIGINT/SIGTERM stop (the engine of a run, the runner of a batch)."""

    tune_gc_for_run()

    async def main() -> Outcome:
        loop = asyncio.get_running_loop()
        engines: list[Stoppable] = []
        interrupts = 0

        def on_signal(signum: int) -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts > 1 or not engines:
                os.write(2, b"\ninterrupted again: exiting now\n")
                os._exit(EXIT_INTERRUPTED)
            name = signal.Signals(signum).name
            os.write(
                2,
                f"\n{name}: stopping (finished work is kept; press Ctrl-C again to exit now)\n".encode(),
            )
            engines[0].stop(f"interrupted by {name}", RunStatus.INTERRUPTED)

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            return await start(engines.append)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    return asyncio.run(main())


def result_json(result: WorkflowResult) -> dict[str, Any]:
    """A run's result as JSON-ready data (``agentops run --json``)."""
    return {
        "workflow": result.workflow,
        "workflow_run_id": result.workflow_run_id,
        "status": result.status.value,
        "cost": result.cost,
        "cost_cap": result.cost_cap,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "duration": result.finished_at - result.started_at,
        "agents": {name: _agent_json(agent) for name, agent in result.agents.items()},
    }


def _agent_json(agent: AgentResult) -> dict[str, Any]:
    """One agent of ``result_json``; a fan-out agent has its items, a loop's member its
    iterations (``iteration``: how many ran; ``loop_end``: why they stopped), each in this
    form too."""
    data: dict[str, Any] = {
        "status": agent.status.value,
        "model": agent.model,
        "provider": agent.provider,
        "output": agent.output,
        "error": agent.error,
        "attempts": len(agent.attempts),
        "input_tokens": agent.usage.input_tokens,
        "output_tokens": agent.usage.output_tokens,
        "tokens_estimated": agent.usage.estimated,
        "cost": agent.cost,
        "reused": agent.reused,
        # Why it was skipped (routed, dependency, cost_cap), and its ``when`` as evaluated.
        "skip_cause": agent.skip_cause.value if agent.skip_cause is not None else None,
        "decision": decision_json(agent.decision),
        "node": agent.node,  # executor ray: the Ray node id that ran it; None in this process
    }
    if agent.item_index is not None:
        data.update(name=agent.name, item_index=agent.item_index, item=agent.item)
    if agent.instances is not None:
        data["item_count"] = agent.item_count
        data["items"] = [_agent_json(instance) for instance in agent.instances]
    if agent.loop is not None:  # a loop's member, or one of its iterations
        data.update(loop=agent.loop, iteration=agent.iteration)
        if agent.is_instance:
            data["name"] = agent.name
    if agent.awaiting is not None:  # waiting_approval: what a person is asked for
        data["awaiting_approval"] = agent.awaiting.mode
    if agent.approval is not None and agent.approval.verdict is not None:
        data["approval"] = {
            "verdict": agent.approval.verdict,
            "by": agent.approval.by,
            "text": agent.approval.text,
        }
    if agent.iterations is not None:
        data["loop_end"] = agent.loop_end
        data["iterations"] = [_agent_json(iteration) for iteration in agent.iterations]
    return data


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
