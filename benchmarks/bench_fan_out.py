"""A fan-out of N items (``for_each``) against the test server in another process:
``.venv/bin/python benchmarks/bench_fan_out.py``.

    bench_fan_out.py                      # every figure: a table, then one JSON line
    bench_fan_out.py --latency 1          # the makespan and CPU figures at 1 s per call instead
    bench_fan_out.py one MODE N BASE_URL [LATENCY]  # one measurement in this fresh process
    bench_fan_out.py serve                # the server: prints its base URL, serves until killed

MODE is ``fan_out`` (a planner whose answer lists N items, then one writer call per item),
``reference`` (the same calls from a hand-written asyncio loop over the same SDK client
configuration as ``bench_one``'s reference, a semaphore of max_concurrency, each call posted
as AgentOps posts it), or ``plain`` (a
workflow of N independent agents making the writer's calls, without the planner). Each
runs in a fresh process; every call takes 50 ms on the server (``--latency``: as long as
asked, the peak RSS runs still at 50 ms). The figures: makespan ÷ the
reference (target ≤ 1.10), client CPU per call against the plain workflow (target within
10 %), and peak RSS of the fan-out at 1,000 / 10,000 / 50,000 items (``VmHWM`` of the
measuring process). Nothing asserts a time: these machines are noisy.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measured import figures_of  # noqa: E402
from shapes import latency_from_prompt  # noqa: E402

RATIO_ITEMS = 10_000
RSS_ITEMS = (1_000, 10_000, 50_000)
SMOKE_ITEMS = (3, 100)  # for a quick look: bench_fan_out.py one fan_out 100 URL
CONCURRENCY = 1000  # as the 10,000-agent shape of run_all.py: calls in flight at once
LATENCY = 0.05
MAX_TOKENS = 16
PLANNER_MAX_TOKENS = 1_000_000  # the list of 50,000 items is one answer
REPEATS = 5  # best of N: the least disturbed run (this machine drifts by ±10 % from run to run)
API_KEY_ENV = "AGENTOPS_BENCH_KEY"
LIST_SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "string"}}},
    "required": ["items"],
    "additionalProperties": False,
}


def planner_task(count: int, latency: float = LATENCY) -> str:
    return f"[latency={latency}] {list_marker(count)}"


def list_marker(count: int) -> str:
    """What the server answers with the list of ``count`` items, whatever the latency; no
    marker is part of another ("List 1000 items." is not part of "List 10000 items.")."""
    return f"List {count} items."


def item_of(index: int) -> str:
    return f"topic {index}"


def writer_task(item: str, latency: float = LATENCY) -> str:
    """The writer's prompt for one item, as ``[latency=0.05] Write about {{ item }}.`` renders."""
    return f"[latency={latency}] Write about {item}."


# --- the three sides ------------------------------------------------------------------------


def workflow(mode: str, count: int, base_url: str, latency: float = LATENCY) -> Any:
    """The fan-out or the plain workflow, loaded (before timing, as ``bench_one`` does)."""
    import os

    import yaml

    from agentops.workflow.loader import load_workflow_text

    os.environ[API_KEY_ENV] = "bench"
    common = {"model": "bench-model", "provider": "bench"}
    if mode == "fan_out":
        agents: list[dict[str, Any]] = [
            {
                **common,
                "name": "planner",
                "max_tokens": PLANNER_MAX_TOKENS,
                "output": {"schema": LIST_SCHEMA, "retries": 0},
                "task": planner_task(count, latency),
            },
            {
                **common,
                "name": "writer",
                "for_each": "planner.output.items",
                "max_items": count,
                "task": f"[latency={latency}] Write about {{{{ item }}}}.",
            },
        ]
    else:
        agents = [
            {**common, "name": f"writer{i}", "task": writer_task(item_of(i), latency)}
            for i in range(count)
        ]
    document = {
        "name": f"bench_{mode}",
        "policies": {"retries": 0, "max_concurrency": CONCURRENCY, "max_tokens": MAX_TOKENS},
        "providers": {"bench": {"base_url": base_url, "api_key_env": API_KEY_ENV}},
        "agents": agents,
    }
    return load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="bench.yaml")


async def with_agentops(loaded: Any) -> Any:
    import agentops

    return await agentops.arun(loaded)


def calls_made(result: Any) -> int:
    """The calls a finished AgentOps run made, once it is known that every one succeeded
    (checked after timing: the reference checks nothing)."""
    runs = [
        run
        for agent in result.agents.values()
        for run in (agent.instances if agent.instances is not None else [agent])
    ]
    failed = [run for run in runs if run.status.value != "succeeded"]
    if failed or result.status.value != "succeeded":
        first = failed[0] if failed else next(iter(result.agents.values()))
        raise SystemExit(f"{len(failed)} runs did not succeed, e.g. {first.name}: {first.error}")
    return sum(len(run.attempts) for run in runs)


async def reference(count: int, base_url: str, latency: float = LATENCY) -> int:
    """The planner's call, then one call per item of its list, at most CONCURRENCY at once.

    The same calls as AgentOps makes, byte for byte and through the same SDK path: not
    streamed (nobody watches tokens) and posted as a plain JSON body with ``client.post``,
    as its provider does, so the SDK's typed request transformation (which costs more client
    CPU than the scheduling measured here) is paid by neither side."""
    import httpx2
    from openai import AsyncOpenAI, DefaultAioHttpClient

    from agentops.providers.openai import CONNECT_TIMEOUT, DEFAULT_TIMEOUT

    # bench_one's reference client, with the timeouts AgentOps's client has too.
    limits = httpx2.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    timeout = httpx2.Timeout(DEFAULT_TIMEOUT, connect=CONNECT_TIMEOUT)
    client = AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=DefaultAioHttpClient(limits=limits, timeout=timeout),
    )

    async def call(body: dict[str, Any]) -> str:
        answer = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
        return str(json.loads(answer.content)["choices"][0]["message"]["content"] or "")

    async with client:
        plan = await call(
            {
                "model": "bench-model",
                "messages": [{"role": "user", "content": planner_task(count, latency)}],
                "max_tokens": PLANNER_MAX_TOKENS,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "planner", "schema": LIST_SCHEMA, "strict": True},
                },
            }
        )
        items = json.loads(plan)["items"]
        slots = asyncio.Semaphore(CONCURRENCY)
        outputs: list[str | None] = [None] * len(items)

        async def write(index: int, item: str) -> None:
            async with slots:
                outputs[index] = await call(
                    {
                        "model": "bench-model",
                        "messages": [{"role": "user", "content": writer_task(item, latency)}],
                        "max_tokens": MAX_TOKENS,
                    }
                )

        await asyncio.gather(*(write(i, item) for i, item in enumerate(items)))
    return 1 + len(items)


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``): unlike ``ru_maxrss``, not inherited
    across ``exec`` from the process that started it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status")


def one(mode: str, count: int, base_url: str, latency: float = LATENCY) -> None:
    # Imported and loaded before timing, for every side: start-up is not orchestration.
    import openai  # noqa: F401

    import agentops.api  # what ``agentops.arun`` imports on first use
    import agentops.providers.openai  # noqa: F401
    from agentops.cli.launch import tune_gc_for_run
    from agentops.runtime.events import Usage
    from agentops.runtime.pricing import PriceBook
    from agentops.runtime.provider import Route

    PriceBook().cost(Route("openai", "openai", "gpt-4o"), Usage(1, 1))
    loaded = workflow(mode, count, base_url, latency) if mode != "reference" else None
    tune_gc_for_run()  # as `agentops run` does; for the reference too
    wall = time.perf_counter()
    cpu = time.process_time()
    outcome = asyncio.run(
        with_agentops(loaded) if loaded is not None else reference(count, base_url, latency)
    )
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    calls = outcome if isinstance(outcome, int) else calls_made(outcome)
    print(
        json.dumps(
            {
                "mode": mode,
                "items": count,
                "wall": wall,
                "calls": calls,
                "cpu_per_call_ms": cpu / calls * 1000,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


# --- the server and the figures ---------------------------------------------------------------


def serve() -> None:
    from agentops.testing.server import OpenAITestServer

    # The planner's answer for each size; every call waits as long as its prompt asks.
    with OpenAITestServer(
        latency=latency_from_prompt, reply_tokens=8, keep_requests=False
    ) as server:
        for count in sorted({RATIO_ITEMS, *RSS_ITEMS, *SMOKE_ITEMS}):
            server.answer_when(list_marker(count), {"items": [item_of(i) for i in range(count)]})
        print(server.base_url, flush=True)
        while True:
            time.sleep(3600)


def measure_once(mode: str, count: int, base_url: str, latency: float = LATENCY) -> dict[str, Any]:
    argv = [sys.executable, __file__, "one", mode, str(count), base_url, str(latency)]
    return figures_of(argv, f"{mode}/{count}", timeout=1800)


def measure(
    modes: tuple[str, ...], count: int, base_url: str, latency: float
) -> dict[str, dict[str, Any]]:
    """The least disturbed of REPEATS runs of each mode, the modes taken in turn (``reference``,
    ``fan_out``, ``plain``, ``reference``, ...) so that a machine slowing down or speeding up
    part way through weighs on every side alike."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(REPEATS):
        for mode in modes:
            runs[mode].append(measure_once(mode, count, base_url, latency))
    return {mode: min(found, key=lambda r: float(r["wall"])) for mode, found in runs.items()}


def main(latency: float) -> None:
    server = subprocess.Popen(
        [sys.executable, __file__, "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        best = measure(("reference", "fan_out", "plain"), RATIO_ITEMS, base_url, latency)
        reference_run, fan_out, plain = best["reference"], best["fan_out"], best["plain"]
        rss = {
            count: fan_out
            if count == RATIO_ITEMS and latency == LATENCY
            else measure_once("fan_out", count, base_url)
            for count in RSS_ITEMS
        }
    finally:
        server.terminate()
        server.wait()
    # The planner's call, then the items in waves of CONCURRENCY.
    ideal = latency + RATIO_ITEMS * latency / CONCURRENCY
    ratio = fan_out["wall"] / reference_run["wall"]
    cpu_ratio = fan_out["cpu_per_call_ms"] / plain["cpu_per_call_ms"]
    print(
        f"fan-out of {RATIO_ITEMS:,} items, max_concurrency {CONCURRENCY}, {latency * 1000:g} ms per call"
    )
    print(f"{'':<28}{'makespan s':>11}{'CPU/call ms':>12}{'peak MB':>9}")
    for label, run in (
        ("agentops fan-out", fan_out),
        ("asyncio reference", reference_run),
        (f"plain {RATIO_ITEMS:,}-agent workflow", plain),
    ):
        print(
            f"{label:<28}{run['wall']:>11.2f}{run['cpu_per_call_ms']:>12.3f}{run['peak_rss_mb']:>9.0f}"
        )
    print(
        f"makespan ÷ reference {ratio:.3f} (target ≤ 1.10; ideal {ideal:.2f} s); "
        f"CPU per call ÷ plain workflow {cpu_ratio:.3f} (target within 10 %)"
    )
    print(
        f"peak RSS of the fan-out ({LATENCY * 1000:g} ms per call): "
        + ", ".join(f"{count:,} items {rss[count]['peak_rss_mb']:.0f} MB" for count in RSS_ITEMS)
    )
    print(
        json.dumps(
            {
                "items": RATIO_ITEMS,
                "max_concurrency": CONCURRENCY,
                "latency": latency,
                "makespan_ratio": ratio,
                "cpu_per_call_ratio": cpu_ratio,
                "fan_out": fan_out,
                "reference": reference_run,
                "plain": plain,
                "peak_rss_mb": {str(count): rss[count]["peak_rss_mb"] for count in RSS_ITEMS},
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "one":
        one(sys.argv[2], int(sys.argv[3]), sys.argv[4], *map(float, sys.argv[5:6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve()
    else:
        import argparse

        parser = argparse.ArgumentParser(description="A fan-out against the test server.")
        parser.add_argument(
            "--latency",
            type=float,
            default=LATENCY,
            help=f"seconds each call takes on the server (default {LATENCY})",
        )
        main(parser.parse_args().latency)
