"""Batches at scale: ``.venv/bin/python benchmarks/bench_batch.py [--quick]``.

Client CPU per model call (user + system time of the batch's own process, from
``wait4``), calls per second and peak RSS, each run a fresh process against the test
server in another process (50 ms per call), 1,000 calls in flight, history on:

- ``agentops batch``: 10,000 rows × 1 agent, and 1,000 rows × 3 agents (a chain);
- the reference: a bare ``openai`` SDK loop, not streaming, 1,000 in flight, no history;
- memory: 10,000 and 100,000 rows × 1 agent, to show that the peak does not grow with rows.

CPU per call is shown twice: over the whole process, and with the process's fixed start-up
(imports, opening the history; measured by the same command on one row, or one call) taken out,
which is what a long batch pays per call. The target is ≤ 1.5 ms of CPU per call. Nothing here
asserts a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
IN_FLIGHT = 1000
LATENCY = 0.05

REFERENCE = """
import asyncio, sys
import httpx2, openai

async def main(base_url: str, calls: int) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0,
        http_client=openai.DefaultAioHttpClient(limits=httpx2.Limits(max_connections={n}, max_keepalive_connections={n})))
    slots = asyncio.Semaphore({n})
    async def one(i: int) -> None:
        async with slots:
            await client.chat.completions.create(model="gpt-4o-mini", max_tokens=16,
                messages=[{{"role": "user", "content": f"row {{i}} [latency={latency}]"}}])
    await asyncio.gather(*(one(i) for i in range(calls)))
    await client.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def workflow(base_url: str, agents: int) -> str:
    lines = [
        "name: bench_batch",
        "inputs: {topic: }",
        f"policies: {{max_concurrency: {IN_FLIGHT}, max_tokens: 16, retries: 0}}",
        f"providers: {{bench: {{base_url: '{base_url}'}}}}",
        "agents:",
    ]
    for index in range(agents):
        after = f", depends_on: a{index - 1}" if index else ""
        lines.append(
            f"  - {{name: a{index}, provider: bench, model: gpt-4o-mini{after}, "
            f"task: 'about {{{{ inputs.topic }}}} [latency={LATENCY}]'}}"
        )
    return "\n".join(lines) + "\n"


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process."""
    import time

    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        assert child.stderr is not None
        raise SystemExit(f"{command[:4]} failed: {child.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def batch(folder: Path, base_url: str, rows: int, agents: int) -> tuple[float, float, float]:
    flow = folder / f"flow{agents}.yaml"
    flow.write_text(workflow(base_url, agents))
    data = folder / f"rows{rows}.jsonl"
    if not data.exists():
        with data.open("w") as stream:
            for row in range(rows):
                stream.write(json.dumps({"topic": f"ticket {row}"}) + "\n")
    db = folder / f"history-{rows}-{agents}.db"
    env = {**os.environ, "COLUMNS": "120"}
    return measured(
        [PYTHON, "-m", "agentops", "batch", str(flow), "--data", str(data), "--db", str(db)], env
    )


def main() -> None:
    quick = "--quick" in sys.argv
    server = subprocess.Popen(
        [PYTHON, str(HERE / "bench_server.py")], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()

    def reference(calls: int) -> tuple[float, float, float]:
        return measured(
            [PYTHON, "-c", REFERENCE.format(n=IN_FLIGHT, latency=LATENCY), base_url, str(calls)]
        )

    def show(name: str, calls: int, figures: tuple[float, float, float], fixed_cpu: float) -> None:
        wall, cpu, peak = figures
        print(
            f"{name:38} {calls:7d} {wall:7.2f} {calls / wall:8.0f} {1000 * cpu / calls:9.2f} "
            f"{1000 * (cpu - fixed_cpu) / calls:14.2f} {peak:8.0f}"
        )

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder)
            shapes = [(2_000, 1), (500, 3)] if quick else [(10_000, 1), (1_000, 3)]
            print(
                f"{'run':38} {'calls':>7} {'wall s':>7} {'calls/s':>8} {'CPU ms':>9} {'w/o start-up':>14} {'peak MB':>8}"
            )
            calls = shapes[0][0]
            show("bare openai SDK loop (reference)", calls, reference(calls), reference(1)[1])
            for rows, agents in shapes:
                fixed = batch(path, base_url, 1, agents)[1]
                name = f"agentops batch {rows} rows x {agents} agent(s)"
                show(name, rows * agents, batch(path, base_url, rows, agents), fixed)
            if not quick:
                fixed = batch(path, base_url, 1, 1)[1]
                for rows in (10_000, 100_000):
                    show(
                        f"memory: {rows} rows x 1 agent",
                        rows,
                        batch(path, base_url, rows, 1),
                        fixed,
                    )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
