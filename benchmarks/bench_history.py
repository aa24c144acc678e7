"""How fast the history commands answer on a large database.

    python benchmarks/bench_history.py [--runs 1000000] [--db PATH] [--repeat 20]

Builds (once; reused when PATH already holds enough rows) a history file with
``--runs`` agent runs — ten per workflow run, over twenty workflows and 90
days, each with one attempt — by bulk ``executemany`` in one transaction, then
times the queries behind each history command through the reader the CLI
calls (``HistoryReader`` over SQLite), and prints the median and worst query time of ``--repeat`` calls.
Query time only: no process start, no rendering.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from agentops.store import Store, open_store
from agentops.store.records import CostGrouping
from agentops.store.sqlite_reader import SqliteHistoryReader
from agentops.store.timestamps import to_iso

AGENTS_PER_RUN = 10
WORKFLOWS = 20
DAYS = 90
START = 1_714_564_800.0  # 2024-05-01T00:00:00Z
BATCH = 50_000


def build(store: Store, runs: int) -> None:
    """``runs`` agent runs (and their workflow runs and attempts) in one transaction."""
    workflow_count = runs // AGENTS_PER_RUN
    spacing = DAYS * 86_400 / max(workflow_count, 1)

    def workflow_rows() -> Iterator[tuple[object, ...]]:
        for n in range(workflow_count):
            at = START + n * spacing
            yield (
                n + 1,
                f"workflow{n % WORKFLOWS}",
                to_iso(at),
                to_iso(at + 30),
                "succeeded",
                AGENTS_PER_RUN * 100,
                AGENTS_PER_RUN * 50,
                AGENTS_PER_RUN * 0.001,
            )

    def agent_rows() -> Iterator[tuple[object, ...]]:
        for n in range(workflow_count * AGENTS_PER_RUN):
            workflow_run_id, agent = divmod(n, AGENTS_PER_RUN)
            at = START + workflow_run_id * spacing + agent
            yield (
                n + 1,
                workflow_run_id + 1,
                f"workflow{workflow_run_id % WORKFLOWS}",
                f"agent{agent}",
                "succeeded",
                0.001,
                f"output of agent {agent} in run {workflow_run_id + 1}",
                0,
                "gpt-4o-mini",
                "openai",
                100,
                50,
                to_iso(at),
                to_iso(at + 1),
                1.0,
            )

    def attempt_rows() -> Iterator[tuple[object, ...]]:
        for n in range(workflow_count * AGENTS_PER_RUN):
            yield (n + 1, 1, "succeeded", 1.0, 100, 50, 0.001)

    def work(connection: object) -> None:
        execute = store.connection.executemany
        execute(
            """INSERT INTO workflow_runs (id, workflow, started_at, finished_at, status, input_tokens,
            output_tokens, cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            workflow_rows(),
        )
        execute(
            """INSERT INTO runs (id, workflow_run_id, workflow, agent, status, cost, output, retries, model,
            provider, input_tokens, output_tokens, started_at, finished_at, duration)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            agent_rows(),
        )
        execute(
            """INSERT INTO attempts (run_id, number, status, duration, input_tokens, output_tokens, cost)
            VALUES (?, ?, ?, ?, ?, ?, ?)""",
            attempt_rows(),
        )

    store.write(work)
    store.connection.execute("ANALYZE")


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    call()  # warm the page cache: the figures are for a database in use, not a cold disk
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary file")
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    db = options.db or Path(tempfile.mkdtemp(prefix="agentops-bench-")) / "history.db"

    with open_store(db) as store:
        existing = store.read("SELECT count(*) FROM runs")[0][0]
        if existing < options.runs:
            if existing:
                sys.exit(
                    f"{db} holds {existing} runs, fewer than --runs {options.runs}: use a new file"
                )
            started = time.perf_counter()
            build(store, options.runs)
            print(
                f"built {options.runs:,} agent runs in {db} in {time.perf_counter() - started:.1f}s "
                f"({db.stat().st_size / 1e6:.0f} MB)"
            )
        latest_workflow_run = store.read("SELECT max(id) FROM workflow_runs")[0][0]
        latest_run = store.read("SELECT max(id) FROM runs")[0][0]
        reader = SqliteHistoryReader(store)  # what the history commands read through
        queries: dict[str, Callable[[], object]] = {
            "list-runs": lambda: reader.agent_runs(limit=20),
            "list-runs --limit 1000": lambda: reader.agent_runs(limit=1000),
            "show-runs --workflow workflow7": lambda: reader.agent_runs(
                workflow="workflow7", limit=20
            ),
            "list-workflow-runs": lambda: reader.workflow_runs(limit=20),
            "list-workflow-runs --workflow workflow7": lambda: reader.workflow_runs(
                workflow="workflow7", limit=20
            ),
            "show-workflow-run LATEST": lambda: reader.workflow_run(latest_workflow_run),
            "show-run LATEST": lambda: reader.agent_run(latest_run),
            "show-run 1 (oldest)": lambda: reader.agent_run(1),
            "costs --by day --since (one week)": lambda: reader.spend(
                by=CostGrouping.day, since="2024-06-01", until="2024-06-08"
            ),
            "costs --by model (all time)": lambda: reader.spend(by=CostGrouping.model),
        }
        print(f"{'query':45} {'median':>10} {'worst':>10}   ({options.repeat} calls each)")
        for label, call in queries.items():
            median, worst = timed(call, options.repeat)
            print(f"{label:45} {median * 1000:8.2f}ms {worst * 1000:8.2f}ms")


if __name__ == "__main__":
    main()
