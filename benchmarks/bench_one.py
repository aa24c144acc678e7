"""Run one shape with one scheduler in this (fresh) process and print a JSON line.

    python benchmarks/bench_one.py SHAPE agentops|agentops_db|agentops_default_gc|reference BASE_URL

``reference`` is a minimal hand-written asyncio scheduler (each node awaits its
dependencies, then calls) over the same SDK client AgentOps uses: the yardstick
for "orchestration costs nothing".
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai  # noqa: F401 - imported before timing, for both schedulers
import yaml
from shapes import CONCURRENCY, SHAPES, UNBOUNDED, Shape, task_for, to_workflow_document

import agentops
from agentops.cli.launch import tune_gc_for_run
from agentops.runtime.events import Usage
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Route
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text

# One-time start-up (the pricing data, ~0.2 s) is not orchestration: load it before timing,
# as openai is for both schedulers; run_all.py reports start-up costs on their own line.
PriceBook().cost(Route("openai", "openai", "gpt-4o"), Usage(1, 1))

API_KEY_ENV = "AGENTOPS_BENCH_KEY"


async def reference(shape: Shape, base_url: str, concurrency: int) -> int:
    import httpx2
    from openai import AsyncOpenAI, DefaultAioHttpClient

    # The same client configuration AgentOps builds: aiohttp transport, pool sized to the concurrency.
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=DefaultAioHttpClient(limits=limits),
    )
    slots = asyncio.Semaphore(concurrency)
    done: dict[str, asyncio.Future[str]] = {}
    loop = asyncio.get_running_loop()
    for name in shape:
        done[name] = loop.create_future()

    async def node(name: str) -> None:
        deps, latency = shape[name]
        outputs = [await done[d] for d in deps]
        prompt = task_for(name, latency)
        if outputs:
            prompt += "\n\n" + "\n\n".join(
                f"### {d}\n{o}" for d, o in zip(deps, outputs, strict=True)
            )
        text = []
        async with slots:
            stream = await client.chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=16,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text.append(chunk.choices[0].delta.content)
        done[name].set_result("".join(text))

    async with client:
        await asyncio.gather(*(node(n) for n in shape))
    return len(shape)


def load_shape(shape_name: str, shape: Shape, base_url: str) -> LoadedWorkflow:
    os.environ[API_KEY_ENV] = "bench"
    document = to_workflow_document(shape_name, shape, base_url, API_KEY_ENV)
    return load_workflow_text(
        yaml.safe_dump(document, sort_keys=False), filename=f"{shape_name}.yaml"
    )


async def with_agentops(loaded: LoadedWorkflow, db: Path | None) -> int:
    result = await agentops.arun(loaded, db=db)
    failed = [n for n, a in result.agents.items() if a.status.value != "succeeded"]
    if failed:
        raise SystemExit(
            f"{len(failed)} agents did not succeed, e.g. {failed[0]}: {result.agents[failed[0]].error}"
        )
    return len(result.agents)


def main() -> None:
    shape_name, implementation, base_url = sys.argv[1:4]
    shape = SHAPES[shape_name]()
    loaded = load_shape(shape_name, shape, base_url) if implementation != "reference" else None
    folder = tempfile.mkdtemp()
    db = Path(folder) / "bench.db" if implementation == "agentops_db" else None
    if implementation != "agentops_default_gc":
        # As `agentops run` does, for the reference too: the ratio is orchestration alone.
        tune_gc_for_run()
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    if loaded is None:
        calls = asyncio.run(reference(shape, base_url, CONCURRENCY.get(shape_name, UNBOUNDED)))
    else:
        calls = asyncio.run(with_agentops(loaded, db))
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu_per_call_ms": cpu / calls * 1000,
                "calls": calls,
                "peak_mb": peak_mb,
            }
        )
    )


if __name__ == "__main__":
    main()
