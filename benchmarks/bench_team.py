"""The team history and named budgets: PostgreSQL against SQLite.

    python benchmarks/bench_team.py [--agents 10000] [--runs 8] [--calls 500] [--url URL]

Starts a PostgreSQL server of its own (as the tests do: the Debian package's binaries, in a
temporary directory, on 127.0.0.1) unless ``--url`` names an empty database. It prints:

- recording: agents per second recorded by a ``RunRecorder`` (1,000 settling per loop turn)
  into each store, for one run of ``--agents`` agents and for ``--runs`` processes recording
  ``--agents / --runs`` agents each at once, and the client CPU per agent (this process's
  CPU time, the server's not included) with PostgreSQL against SQLite; opening the store
  (once per process: the driver's import, the connection) is reported on its own line;
- model calls: client CPU per call of a workflow of ``--call-agents`` independent agents
  against the test server (another process, as ``bench_fan_out.py`` serves it), recorded into
  each store, each run in a fresh process with the store's driver imported before the clock:
  the whole client's work per call (the SDK, the engine and recording), as a user pays it;
- budget: the reserve + settle round trip of a named budget (median and p99, 2,000 of
  them), and ``--runs`` processes × ``--calls`` calls under one budget: whether spend stayed
  within it, lock errors, and calls per second against the same calls with no budget.

Nothing here asserts a time; the figures go into the issue's closing note.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_fan_out

from agentops.runtime.events import AgentFinished, AgentStarted, RunStatus
from agentops.store import RunRecorder
from agentops.store.budgets import StoreBudget, set_budget
from agentops.store.stores import open_database
from tests.support.budget import draw
from tests.support.store import finished, started, succeeded, workflow_of

WAVE = 1000


def record(db: str, name: str, agents: int) -> tuple[float, float, float]:
    """One run of ``agents`` agents recorded into ``db``: (wall seconds, CPU seconds recording,
    CPU seconds opening the store). Opening is timed apart: in a new process it imports the
    driver (psycopg: about 60 ms of CPU, once per process, whatever the agents) and connects;
    the events are built before the clock too (the workflow's YAML is the test's, not the
    recorder's work), so the CPU per agent is what recording itself costs."""
    names = [f"agent{n}" for n in range(agents)]
    workflow = workflow_of(name, names)
    results = {n: succeeded(n, f"output of {n}") for n in names}
    begin, end = started(workflow), finished(workflow, results, RunStatus.SUCCEEDED)
    starts = {n: AgentStarted(n, "gpt-4o-mini", "openai", f"[user]\ndo {n}", 0.0) for n in names}
    ends = {n: AgentFinished(results[n]) for n in names}
    opening = time.process_time()
    store = open_database(db)
    opening = time.process_time() - opening

    async def drive() -> None:
        recorder = RunRecorder(store)
        recorder(begin)
        for first in range(0, agents, WAVE):
            wave = names[first : first + WAVE]
            for n in wave:
                recorder(starts[n])
            await asyncio.sleep(0)
            for n in wave:
                recorder(ends[n])
            await asyncio.sleep(0)
        recorder(end)

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        asyncio.run(drive())
    finally:
        store.close()
    return time.perf_counter() - wall, time.process_time() - cpu, opening


def recording(db: str, agents: int, runs: int) -> dict[str, float]:
    wall, cpu, _ = record(db, "one", agents)
    context = multiprocessing.get_context("spawn")
    each = agents // runs
    with ProcessPoolExecutor(runs, mp_context=context) as pool:
        pool.submit(time.sleep, 0).result()  # a worker started before the clock
        clock = time.perf_counter()
        parts = list(pool.map(record, [db] * runs, [f"run{n}" for n in range(runs)], [each] * runs))
        together = time.perf_counter() - clock
    return {
        "one_run_agents_per_s": agents / wall,
        "cpu_us_per_agent": cpu / agents * 1e6,
        "concurrent_agents_per_s": each * runs / together,
        "concurrent_cpu_us_per_agent": sum(c for _, c, _ in parts) / (each * runs) * 1e6,
        # once per process: the driver imported, connected, the schema checked
        "open_cpu_ms_per_process": statistics.median(o for _, _, o in parts) * 1e3,
    }


def call_cpu(db: str, base_url: str, agents: int) -> float:
    """Client CPU (ms) per model call of ``agents`` independent agents recorded into ``db``."""
    import bench_fan_out

    import agentops
    from agentops.cli.launch import tune_gc_for_run

    with open_database(db):
        pass  # the driver imported and the tables made: once per process, not per call
    loaded = bench_fan_out.workflow("plain", agents, base_url)
    tune_gc_for_run()
    cpu = time.process_time()
    result = asyncio.run(_status_of(agentops.arun(loaded, db=db)))
    cpu = time.process_time() - cpu
    if result != "succeeded":
        raise SystemExit(f"the {agents}-agent run into {db.split(':')[0]} ended {result}")
    return cpu / agents * 1000


async def _status_of(run: Any) -> str:
    return str((await run).status.value)  # not the result: asyncio.run would format its repr


def model_calls(databases: dict[str, str], agents: int) -> dict[str, float]:
    """CPU per call into each store, each in a fresh process, the test server in another."""
    import subprocess

    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / "bench_fan_out.py"), "serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        figures = {}
        for kind, db in databases.items():
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                figures[f"{kind}_cpu_ms_per_call"] = pool.submit(
                    call_cpu, db, base_url, agents
                ).result()
    finally:
        server.terminate()
        server.wait()
    figures["postgresql_vs_sqlite"] = (
        figures["postgresql_cpu_ms_per_call"] / figures["sqlite_cpu_ms_per_call"]
    )
    return figures


def round_trips(db: str, count: int = 2000) -> dict[str, float]:
    async def measure() -> list[float]:
        with open_database(db) as store:
            set_budget(store, "latency", 1e9)
            budget = StoreBudget(store, "latency")
            times = []
            for _ in range(count):
                clock = time.perf_counter()
                hold = await budget.reserve(0.01)
                assert hold is not None
                await budget.settle(hold, 0.005)
                times.append(time.perf_counter() - clock)
            budget.close()
            return times

    times = sorted(asyncio.run(measure()))
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p99_ms": times[int(len(times) * 0.99)] * 1e3,
    }


def unbudgeted(calls: int, seed: int) -> dict[str, Any]:
    """The same calls as ``draw`` with no budget: the in-process cap of an uncapped run."""
    import random

    from agentops.runtime.budget import InProcessBudget

    rng = random.Random(seed)

    async def main() -> None:
        budget, slots = InProcessBudget(None), asyncio.Semaphore(8)

        async def attempt() -> None:
            async with slots:
                hold = await budget.reserve(0.05)
                assert hold is not None
                await asyncio.sleep(rng.uniform(0, 0.002))  # as draw's "call"
                await budget.settle(hold, 0.01)

        await asyncio.gather(*(attempt() for _ in range(calls)))

    asyncio.run(main())
    return {"granted": calls}


def shared_budget(db: str, runs: int, calls: int) -> dict[str, Any]:
    cap = runs * calls * 0.03 * 0.5  # about half of the worst cases fit
    with open_database(db) as store:
        set_budget(store, "shared", cap)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(runs, mp_context=context) as pool:
        pool.submit(unbudgeted, 1, 0).result()  # workers started before the clocks
        clock = time.perf_counter()
        list(pool.map(unbudgeted, [calls] * runs, range(runs)))
        free = time.perf_counter() - clock
        clock = time.perf_counter()
        errors, outcomes = 0, []
        for future in [pool.submit(draw, db, "shared", calls, seed) for seed in range(runs)]:
            try:
                outcomes.append(future.result())
            except Exception:  # a lock error would land here
                errors += 1
        held = time.perf_counter() - clock
    spent = sum(o["spent"] for o in outcomes)
    return {
        "cap": cap,
        "spent": spent,
        "within": spent <= cap,
        "lock_errors": errors,
        "granted": sum(o["granted"] for o in outcomes),
        "refused": sum(o["refused"] for o in outcomes),
        "calls_per_s": runs * calls / held,
        "calls_per_s_without_budget": runs * calls / free,
    }


def fresh(kind: str, folder: str, server: Any, url: str | None) -> str:
    """A new SQLite file, a new database of our server, or the one ``--url`` named."""
    if kind == "sqlite":
        return str(Path(folder) / f"{time.monotonic_ns()}.db")
    return server.url(server.create_database()) if server is not None else str(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--call-agents", type=int, default=2000)
    parser.add_argument("--url", help="an empty PostgreSQL database (default: start a server)")
    options = parser.parse_args()
    server = None
    if options.url is None:
        from tests.support.postgres import start_server

        server = start_server()
    try:
        figures: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as folder:
            figures["model_calls"] = model_calls(
                {
                    kind: fresh(kind, folder, server, options.url)
                    for kind in ("sqlite", "postgresql")
                },
                options.call_agents,
            )
            for kind in ("sqlite", "postgresql"):
                databases = [fresh(kind, folder, server, options.url) for _ in range(3)]
                figures[kind] = {
                    "recording": recording(databases[0], options.agents, options.runs),
                    "round_trip": round_trips(databases[1]),
                    "shared_budget": shared_budget(databases[2], options.runs, options.calls),
                }
        sqlite, postgres = figures["sqlite"]["recording"], figures["postgresql"]["recording"]
        figures["cpu_per_agent_postgresql_vs_sqlite"] = (
            postgres["cpu_us_per_agent"] / sqlite["cpu_us_per_agent"]
        )
        figures["concurrent_cpu_per_agent_postgresql_vs_sqlite"] = (
            postgres["concurrent_cpu_us_per_agent"] / sqlite["concurrent_cpu_us_per_agent"]
        )
        print(json.dumps(figures, indent=2))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
