"""How fast the web view answers: its run-list queries and pages on a history of
1,000,000 agent runs, and a 1,000-agent run's page loaded in headless Chromium.

    python benchmarks/bench_ui.py [--runs 1000000] [--db PATH] [--repeat 20] [--agents 1000]

The large history is built as ``bench_history.py`` builds it (pass the same
``--db`` to reuse it). Query figures are the median and worst of ``--repeat``
calls through the read interface; page figures are whole HTTP requests to a real
``agentops ui`` server; the browser figure is navigation start to the load event
(HTML, stylesheet, script, layout and paint of the whole SVG), as Chromium reports
it (median of 5 loads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from bench_history import build, timed

from agentops.runtime.events import RunStatus
from agentops.store import SqliteHistoryReader, open_store
from agentops.workflow.spec import Agent, Workflow

ROOT = Path(__file__).resolve().parent.parent


def large_run(db: Path, agents: int) -> None:
    """One recorded run of ``agents`` agents: 10 layers, each agent needing two of the layer before."""
    from tests.support.store import record, succeeded

    width = max(1, agents // 10)
    spec: list[Agent] = []
    for layer in range(10):
        for n in range(width):
            needs = (
                [f"stage{layer - 1}_{n}", f"stage{layer - 1}_{(n + 1) % width}"] if layer else None
            )
            spec.append(
                Agent(name=f"stage{layer}_{n}", model="gpt-4o-mini", task="t", depends_on=needs)
            )
    workflow = Workflow(name="wide", agents=spec)
    with open_store(db) as store:
        record(
            store,
            workflow,
            [succeeded(a.name, f"output of {a.name}") for a in spec],
            RunStatus.SUCCEEDED,
        )


def http_timed(url: str, repeat: int) -> tuple[float, float]:
    return timed(lambda: urllib.request.urlopen(url, timeout=60).read(), repeat)


def start_ui(db: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentops", "ui", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, "http://" + line.split("http://", 1)[1].split()[0].rstrip("/")


def browser_load(url: str, loads: int = 5) -> tuple[float, int]:
    from tests.support.web import chromium

    seconds = []
    boxes = 0
    with chromium() as driver:
        for _ in range(loads):
            driver.get("about:blank")
            driver.get(url)
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0];"
                "return [t.loadEventEnd - t.startTime,"
                " document.querySelectorAll('svg [data-agent], svg [data-group]').length];"
            )
            seconds.append(timing[0] / 1000)
            boxes = timing[1]
    return statistics.median(seconds), boxes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="default: a temporary file")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--agents", type=int, default=1000)
    options = parser.parse_args()
    db = options.db or Path(tempfile.mkdtemp(prefix="agentops-bench-")) / "history.db"

    with open_store(db) as store:
        existing = store.read("SELECT count(*) FROM runs")[0][0]
        if existing < options.runs:
            started = time.perf_counter()
            build(store, options.runs)
            print(
                f"built {options.runs:,} agent runs in {db} in {time.perf_counter() - started:.1f}s"
            )
    big = db.with_name("wide-run.db")
    if not big.exists():
        large_run(big, options.agents)

    reader = SqliteHistoryReader.open(db)
    queries: dict[str, Callable[[], object]] = {
        "first page (50)": lambda: reader.workflow_run_page(limit=50),
        "page deep in the history (before=60)": lambda: reader.workflow_run_page(
            before=60, limit=50
        ),
        "page before the middle id": lambda: reader.workflow_run_page(before=50_000, limit=50),
        "newer page (after=50000)": lambda: reader.workflow_run_page(after=50_000, limit=50),
        "workflow=workflow7": lambda: reader.workflow_run_page(workflow="workflow7", limit=50),
        "status=failed (none recorded)": lambda: reader.workflow_run_page(
            status="failed", limit=50
        ),
        "workflow=workflow7 status=succeeded": lambda: reader.workflow_run_page(
            workflow="workflow7", status="succeeded", limit=50
        ),
        "workflow names (skip scan)": lambda: reader.workflow_names(),
    }
    print(
        f"{'run list query (1,000,000 agent runs)':45} {'median':>10} {'worst':>10}   ({options.repeat} calls each)"
    )
    for label, call in queries.items():
        median, worst = timed(call, options.repeat)
        print(f"{label:45} {median * 1000:8.2f}ms {worst * 1000:8.2f}ms")
    reader.close()

    for path, pages in (
        (
            db,
            [
                "/",
                "/?workflow=workflow7&status=succeeded",
                "/?before=50000",
                "/runs/100000",
                "/runs/100000/agents/agent3",
            ],
        ),
        (big, ["/runs/1", "/runs/1?expand=all", "/runs/1/agents/stage5_7"]),
    ):
        process, url = start_ui(path)
        try:
            print(f"{'page over HTTP (' + path.name + ')':45} {'median':>10} {'worst':>10}")
            for page in pages:
                median, worst = http_timed(url + page, min(options.repeat, 10))
                print(f"{page:45} {median * 1000:8.2f}ms {worst * 1000:8.2f}ms")
            if path == big:
                for page in ("/runs/1", "/runs/1?expand=all"):
                    load, boxes = browser_load(url + page)
                    print(
                        f"Chromium, {options.agents}-agent run {page}: page loaded in {load:.3f}s "
                        f"({boxes} boxes; target < 2 s)"
                    )
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
