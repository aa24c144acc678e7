"""Run every benchmark and print one table: ``.venv/bin/python benchmarks/run_all.py``.

Each (shape, scheduler) pair runs in a fresh process against a server in
another process, so peak memory and client CPU are the scheduler's own.
Figures are ratios against an ideal measured in the same run; nothing here
asserts a time (these machines are noisy).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measured import figures_of  # noqa: E402
from shapes import CONCURRENCY, SHAPES, ideal_seconds  # noqa: E402

PYTHON = sys.executable
CORE_SHAPES = ["fan_in_1000", "layers_5x20", "chain_50", "sketch_pipeline_6", "staggered_10x10"]
REPEATS = 3  # best of N: the least disturbed run


def start_server() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [PYTHON, str(HERE / "bench_server.py")], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def measure(shape: str, implementation: str, base_url: str) -> dict[str, float]:
    argv = [PYTHON, str(HERE / "bench_one.py"), shape, implementation, base_url]
    runs = [
        figures_of(argv, f"{shape}/{implementation}", timeout=600)
        for _ in range(REPEATS if shape != "fan_in_10000" else 2)
    ]
    return min(runs, key=lambda r: float(r["wall"]))


def cold_start(arguments: list[str], env: dict[str, str]) -> float:
    agentops = str(Path(PYTHON).parent / "agentops")
    times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([agentops, *arguments], capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


STARTUP_PROBE = """
import time
start = time.perf_counter(); import openai; after_openai = time.perf_counter()
from agentops.runtime.events import Usage
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Route
PriceBook().cost(Route("openai", "openai", "gpt-4o"), Usage(1, 1))
print(after_openai - start, time.perf_counter() - after_openai)
"""


def startup_imports() -> str:
    """Median seconds to import openai and to load the pricing data, in fresh processes."""
    samples = [
        [
            float(x)
            for x in subprocess.run(
                [PYTHON, "-c", STARTUP_PROBE], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(5)
    ]
    openai_s, prices_s = (statistics.median(column) for column in zip(*samples, strict=True))
    return f"import openai {openai_s:.3f} s, pricing data (genai-prices) {prices_s:.3f} s"


def main() -> None:
    server, base_url = start_server()
    rows = []
    try:
        for shape in CORE_SHAPES:
            ideal = ideal_seconds(SHAPES[shape]())
            reference = measure(shape, "reference", base_url)
            ours = measure(shape, "agentops", base_url)
            rows.append((shape, ideal, reference, ours))
        big_ideal = ideal_seconds(SHAPES["fan_in_10000"](), CONCURRENCY["fan_in_10000"])
        big_reference = measure("fan_in_10000", "reference", base_url)
        big = measure("fan_in_10000", "agentops", base_url)
        big_db = measure("fan_in_10000", "agentops_db", base_url)
        big_default_gc = measure("fan_in_10000", "agentops_default_gc", base_url)
    finally:
        server.terminate()

    print(
        f"{'shape':<20}{'agentops s':>11}{'reference s':>12}{'÷ reference':>12}{'÷ ideal':>9}"
        f"{'CPU/call ms':>12}{'ref CPU/call':>13}{'peak MB':>9}"
    )
    for shape, ideal, reference, ours in rows:
        print(
            f"{shape:<20}{ours['wall']:>11.3f}{reference['wall']:>12.3f}"
            f"{ours['wall'] / reference['wall']:>12.3f}{ours['wall'] / ideal:>9.3f}"
            f"{ours['cpu_per_call_ms']:>12.2f}{reference['cpu_per_call_ms']:>13.2f}{ours['peak_mb']:>9.0f}"
        )
    print()
    print(
        f"10,000 agents (max_concurrency {CONCURRENCY['fan_in_10000']}): {big['wall']:.2f} s without history, "
        f"{big_db['wall']:.2f} s recording every run ({(big_db['wall'] / big['wall'] - 1) * 100:+.1f} %, target ≤ 5 %); "
        f"reference {big_reference['wall']:.2f} s (÷ reference {big['wall'] / big_reference['wall']:.3f}), "
        f"ideal {big_ideal:.2f} s; peak memory {big['peak_mb']:.0f} MB / {big_db['peak_mb']:.0f} MB "
        f"(reference {big_reference['peak_mb']:.0f} MB; target ≤ 300 MB)"
    )
    print(
        f"the collector tuning of `agentops run` (gc.freeze, young threshold 50,000; applied to the "
        f"reference too above): 10,000 agents take {big_default_gc['wall']:.2f} s with CPython's defaults, "
        f"{big['wall']:.2f} s tuned"
    )

    with_db = dict(os.environ, AGENTOPS_DB=str(HERE / ".bench-cold.db"))
    print(
        f"cold start: agentops --help {cold_start(['--help'], with_db):.3f} s, "
        f"agentops list-runs {cold_start(['list-runs'], with_db):.3f} s (target ≤ 0.3 s)"
    )
    print(f"one-time start-up of a run, not counted above: {startup_imports()}")
    history = subprocess.run(
        [PYTHON, str(HERE / "bench_history.py")], capture_output=True, text=True
    )
    print(history.stdout.strip() or history.stderr.strip()[-500:])
    tools = subprocess.run([PYTHON, str(HERE / "bench_tools.py")], capture_output=True, text=True)
    print(tools.stdout.strip() or tools.stderr.strip()[-500:])


if __name__ == "__main__":
    main()
