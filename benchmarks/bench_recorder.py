"""What recording costs the event loop, with and without agent starts (migration 6).

    python benchmarks/bench_recorder.py [--agents 10000] [--wave 1000] [--repeat 3]

Drives a ``RunRecorder`` on a fresh SQLite file with the events of a run of
``--agents`` agents that start and settle ``--wave`` at a time (one loop turn
each, as under ``max_concurrency``), and prints the time spent in the recorder
and its commits, best of ``--repeat``: once recording starts and outcomes, once
outcomes only (what the recorder did before it wrote starts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from agentops.runtime.events import AgentFinished, AgentStarted, RunStatus
from agentops.store import RunRecorder, open_store
from tests.support.store import finished, started, succeeded, workflow_of


async def drive(db: Path, agents: int, wave: int, with_starts: bool) -> float:
    names = [f"agent{n}" for n in range(agents)]
    workflow = workflow_of("bench", names)
    results = {name: succeeded(name, f"output of {name}") for name in names}
    spent = 0.0
    with open_store(db) as store:
        recorder = RunRecorder(store)

        def timed(event: object) -> None:
            nonlocal spent
            clock = time.perf_counter()
            recorder(event)  # type: ignore[arg-type]
            spent += time.perf_counter() - clock

        timed(started(workflow))
        original = recorder._flush_safely

        def flush() -> None:  # the batched commit is the recorder's time too
            nonlocal spent
            clock = time.perf_counter()
            original()
            spent += time.perf_counter() - clock

        recorder._flush_safely = flush  # type: ignore[method-assign]
        for first in range(0, agents, wave):
            batch = names[first : first + wave]
            if with_starts:
                for name in batch:
                    timed(AgentStarted(name, "gpt-4o-mini", "openai", f"[user]\ndo {name}", 0.0))
                await asyncio.sleep(0)
            for name in batch:
                timed(AgentFinished(results[name]))
            await asyncio.sleep(0)
        timed(finished(workflow, results, RunStatus.SUCCEEDED))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--wave", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    figures = {}
    for with_starts in (False, True):
        best = float("inf")
        for _ in range(options.repeat):
            db = Path(tempfile.mkdtemp(prefix="agentops-bench-")) / "recorder.db"
            best = min(best, asyncio.run(drive(db, options.agents, options.wave, with_starts)))
        figures[with_starts] = best
    before, after = figures[False], figures[True]
    print(
        f"recording {options.agents:,} agents in waves of {options.wave}: outcomes only {before:.3f} s, "
        f"starts and outcomes {after:.3f} s (+{after - before:.3f} s, "
        f"{(after - before) / options.agents * 1e6:.0f} µs per agent)"
    )


if __name__ == "__main__":
    main()
