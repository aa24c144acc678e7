"""Agent runs on Ray: ``.venv/bin/python benchmarks/bench_ray.py [--quick]`` (the ``[ray]`` extra).

Every Ray node runs on this machine, bound to 127.0.0.1 (``tests.support.ray_cluster``); the
test server runs in a process of its own; each ``agentops`` command is a fresh driver process
connected with ``--ray-address``, so ``wait4`` gives the driver's own CPU (the cluster's
processes are not its children).

- **Overhead**: 2,000 rows × 1 agent (50 ms per call, history on), in-process against Ray on
  a head and a worker node of one CPU each; on Ray once with the default resources (an agent
  run holds a CPU: two at once) and once with ``resources: {num_cpus: 0.125}`` (eight per CPU,
  as for agents that only wait on an API). Wall time against in-process, driver CPU per call.
- **The ledger**: round trips to the actor from a worker-like caller, one after another, and
  the actor's own CPU per call: a reserve and a settle (read from ``/proc``).
- **Scale**: 200 rows whose Python tool burns 50 ms of CPU per call, on a head that runs no
  agent (the driver and the ledger's node) and 1, then 2 worker nodes of one CPU each: rows per
  second, and the ratio.

"steady rows/s" counts rows from the tenth of them to the last, from the history: Ray starts
each job's worker processes afresh (about a second of CPU each, on this 2-core machine), which
the wall time includes.

Nothing here asserts a time (this machine is shared and noisy: compare within one run).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from agentops.store.timestamps import from_iso  # noqa: E402
from tests.support.ray_cluster import RAY_ENV, local_cluster  # noqa: E402

PYTHON = sys.executable
LATENCY = 0.05
BURN = '''
import time

def burn(seconds: float = 0.05) -> str:
    """Keep a CPU busy for a while (the server asks with no arguments: 50 ms)."""
    end = time.process_time() + seconds
    spins = 0
    while time.process_time() < end:
        spins += 1
    return f"{spins} spins"
'''


def start_server(*args: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [PYTHON, "-m", "agentops.testing.server", "--port", "0", "--reply-tokens", "8", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    return server, line.split()[-1]


def write_flow(folder: Path, base_url: str, agent: dict[str, Any], tools: str = "") -> Path:
    lines = [
        "name: bench_ray",
        "inputs: {topic: }",
        "policies: {max_concurrency: 1000, max_tokens: 16, retries: 0, cost_cap: 1000}",
        "prices: {gpt-4o-mini: {input: 0.15, output: 0.6}}",
        f"providers: {{bench: {{base_url: '{base_url}'}}}}",
        "agents:",
        "  - " + json.dumps({"name": "a", "provider": "bench", "model": "gpt-4o-mini", **agent}),
    ]
    path = folder / "flow.yaml"
    path.write_text("\n".join(lines) + "\n" + tools)
    return path


def write_rows(folder: Path, rows: int) -> Path:
    path = folder / f"rows{rows}.jsonl"
    path.write_text("".join(json.dumps({"topic": f"ticket {n}"}) + "\n" for n in range(rows)))
    return path


def driver(arguments: list[str | Path], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``agentops`` process (its own CPU: ``wait4``)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [PYTHON, "-m", "agentops", *map(str, arguments)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        assert child.stderr is not None
        raise SystemExit(f"agentops {arguments[:2]} failed: {child.stderr.read().decode()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def batch(
    folder: Path, flow: Path, rows: int, env: dict[str, str], *extra: str
) -> tuple[float, float, float]:
    """Wall and driver CPU seconds of one batch, and its steady rate: rows per second from the
    tenth of the rows to the last, read from the history (a job's start-up left out: Ray
    starts each job's worker processes afresh)."""
    db = folder / f"history-{time.monotonic_ns()}.db"
    wall, cpu = driver(["batch", flow, "--data", write_rows(folder, rows), "--db", db, *extra], env)
    with sqlite3.connect(db) as history:
        ends = sorted(
            from_iso(t) or 0.0 for (t,) in history.execute("SELECT finished_at FROM workflow_runs")
        )
    first = len(ends) // 10
    steady = (len(ends) - 1 - first) / (ends[-1] - ends[first]) if len(ends) > 10 else 0.0
    return wall, cpu, steady


def overhead(folder: Path, rows: int, env: dict[str, str]) -> None:
    server, base_url = start_server("--latency", str(LATENCY))
    print(f"\noverhead: {rows} rows x 1 agent, {LATENCY * 1000:.0f} ms per call, history on")
    print(
        f"{'executor':44} {'wall s':>7} {'÷ local':>8} {'steady rows/s':>14} "
        f"{'driver CPU ms/call':>19}"
    )
    try:
        task = {"task": "about {{ inputs.topic }}"}
        local_flow = write_flow(folder, base_url, task)
        one = batch(folder, local_flow, 1, env)[1]
        local_wall, cpu, steady = batch(folder, local_flow, rows, env)
        label = "in-process (1000 calls in flight)"
        print(
            f"{label:44} {local_wall:7.2f} {1.0:8.2f} {steady:14.0f} {1000 * (cpu - one) / rows:19.2f}"
        )
        with local_cluster(workers=1, cpus=1) as cluster:
            ray_env = {**env, **RAY_ENV}
            address = ["--executor", "ray", "--ray-address", cluster.address]
            for label, resources in (
                ("ray, 2 nodes x 1 CPU, 1 CPU per agent run", None),
                ("ray, 2 nodes x 1 CPU, num_cpus: 0.125", {"num_cpus": 0.125}),
            ):
                agent = {**task, **({"resources": resources} if resources else {})}
                flow = write_flow(folder, base_url, agent)
                one = batch(folder, flow, 1, ray_env, *address)[1]
                wall, cpu, steady = batch(folder, flow, rows, ray_env, *address)
                print(
                    f"{label:44} {wall:7.2f} {wall / local_wall:8.2f} {steady:14.0f} "
                    f"{1000 * (cpu - one) / rows:19.2f}"
                )
            ledger(cluster.address)
    finally:
        server.kill()
        server.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ledger_pid() -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ray::Ledger" in command:
                return int(entry.name)
    raise SystemExit("the ledger actor's process was not found")


def ledger(address: str, calls: int = 2000) -> None:
    """Round trips to the ledger actor, and its CPU per call (four messages each)."""
    import logging

    import ray

    from agentops.cluster.ledger import LedgerLimits, start_ledger

    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        actor = start_ledger(ray, cap=1e9, spent=0.0)
        limits = LedgerLimits(actor, "bench", 1e9)

        async def one_call() -> float:
            start = time.perf_counter()
            reservation = await limits.budget.reserve(0.001)
            assert reservation is not None
            await limits.budget.settle(reservation, 0.0005)
            return time.perf_counter() - start

        async def measure() -> tuple[list[float], float]:
            await one_call()
            pid = _ledger_pid()
            before = _cpu_seconds(pid)
            times = [await one_call() for _ in range(calls)]
            return times, _cpu_seconds(pid) - before

        times, cpu = asyncio.run(measure())
        median = statistics.median(times) * 1000
        print(
            f"\nledger: a call's reserve + settle, {calls} in a row: {median:.2f} ms median "
            f"(two round trips, {median / 2:.2f} ms each); the actor's CPU "
            f"{1000 * cpu / calls:.2f} ms per call"
        )
    finally:
        ray.shutdown()


def scale(folder: Path, rows: int, env: dict[str, str]) -> None:
    server, base_url = start_server("--latency", "0.01", "--call-tool", "burn")
    (folder / "heavy.py").write_text(BURN)
    flow = write_flow(
        folder,
        base_url,
        {"task": "about {{ inputs.topic }}", "tools": ["burn"]},
        "tools:\n  burn: {python: 'heavy:burn'}\n",
    )
    print(f"\nscale: {rows} rows, a Python tool burning 50 ms of CPU per row")
    print(
        f"{'worker nodes (1 CPU each; the head runs none)':46} {'wall s':>7} {'rows/s':>7} "
        f"{'steady rows/s':>14} {'÷ 1 node':>9}"
    )
    try:
        first = 0.0
        for workers in (1, 2):
            with local_cluster(workers=workers, cpus=1, head_cpus=0) as cluster:
                ray_env = {**env, **RAY_ENV}
                address = ["--executor", "ray", "--ray-address", cluster.address]
                wall, _, steady = batch(folder, flow, rows, ray_env, *address)
                first = first or steady
                print(
                    f"{workers:<46} {wall:7.2f} {rows / wall:7.1f} {steady:14.1f} "
                    f"{steady / first:9.2f}"
                )
    finally:
        server.kill()
        server.wait()


def main() -> None:
    quick = "--quick" in sys.argv
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        overhead(folder, 400 if quick else 2000, env)
        scale(folder, 60 if quick else 200, env)


if __name__ == "__main__":
    main()
