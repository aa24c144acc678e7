"""The response cache: ``.venv/bin/python benchmarks/bench_cache.py``.

    bench_cache.py                  # every figure: a table, then one JSON line
    bench_cache.py one MODE BASE    # one 100-agent run in this fresh process (used by the above)

Three figures, none asserted (these machines are noisy):

- **client CPU per hit**: computing a request's key (a 2 KB prompt, a tool and a schema) and
  reading its entry by primary key from a history holding 10,000 entries, then decoding it:
  what a hit costs before the answer is recorded (target ≤ 0.3 ms);
- **a 100-agent workflow** (10 layers of 10, each agent fed its layer's upstream outputs) run
  against the test server in another process (50 ms per call): uncached (``--cache off``), the
  first run that fills the cache (``read_write``), and a run answered wholly from it; wall time
  and the process's CPU, each in a fresh process;
- **the key on misses**: what computing keys costs a run whose cache is on but never hits
  (per call), against the same call's whole client CPU.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measured import figures_of

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
LATENCY = 0.05
LAYERS, WIDTH = 10, 10
ENTRIES = 10_000
LOOKUPS = 5_000
KEY_ENV = "AGENTOPS_BENCH_KEY"


def workflow(base_url: str, db: str) -> Any:
    import yaml

    from agentops.workflow.loader import load_workflow_text

    agents: list[dict[str, Any]] = []
    for layer in range(LAYERS):
        for index in range(WIDTH):
            agent: dict[str, Any] = {
                "name": f"a{layer}_{index}",
                "model": "gpt-4o-mini",
                "provider": "bench",
                "task": f"[latency={LATENCY}] Part {index} of layer {layer}.",
            }
            if layer:
                agent["depends_on"] = [f"a{layer - 1}_{i}" for i in range(WIDTH)]
            agents.append(agent)
    document = {
        "name": "bench_cache",
        "policies": {"retries": 0, "max_concurrency": 100, "max_tokens": 32},
        "providers": {"bench": {"base_url": base_url, "api_key_env": KEY_ENV}},
        "agents": agents,
    }
    del db
    return load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="bench.yaml")


def one(mode: str, base_url: str, db: str) -> dict[str, float]:
    """One run in this process: wall and CPU (user + system) of the run alone."""
    import asyncio

    import agentops

    os.environ[KEY_ENV] = "bench"
    loaded = workflow(base_url, db)
    # Imports (the SDK, prices, the store) and the first connection are paid once per process:
    # a one-agent run on a file of its own pays them before the measured run.
    warm = workflow(base_url, db)
    warm = type(warm)(
        warm.workflow.model_copy(update={"agents": warm.workflow.agents[:1]}), warm.source, None
    )
    asyncio.run(agentops.arun(warm, db=db + ".warm", cache="off"))
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    result = asyncio.run(agentops.arun(loaded, db=db, cache=mode))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    if not result.ok:
        raise SystemExit(f"the {mode} run did not succeed")
    cached = sum(a.cached for r in result.agents.values() for a in r.attempts)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "cached": cached, "calls": len(result.agents)}


def hit_cost() -> dict[str, float]:
    """Key + indexed read + decode per hit, and the key alone, over a 10,000-entry history."""
    from agentops.assembly import open_history
    from agentops.runtime.cache import RequestKey, response_json
    from agentops.runtime.messages import (
        ChatRequest,
        ChatResponse,
        ResponseFormat,
        ToolDefinition,
        system,
        user,
    )
    from agentops.runtime.usage import Usage
    from agentops.store.cache import HistoryCache
    from agentops.workflow.spec import Workflow

    endpoint = {"kind": "openai", "url": "https://api.openai.com/v1", "form": "auto"}
    tool = ToolDefinition("search", "Search the web.", {"type": "object", "properties": {}})
    schema = ResponseFormat("answer", {"type": "object", "properties": {"x": {"type": "string"}}})

    def request(n: int) -> ChatRequest:
        return ChatRequest(
            model="gpt-4o-mini",
            messages=(system("You are careful. " * 20), user(f"question {n}: " + "words " * 300)),
            max_tokens=256,
            temperature=0.0,
            tools=(tool,),
            response_format=schema,
        )

    workflow = Workflow.model_validate(
        {"name": "bench", "agents": [{"name": "a", "model": "m", "task": "t"}]}
    )
    with tempfile.TemporaryDirectory() as folder, open_history(Path(folder) / "h.db") as (r, w):
        cache = HistoryCache(r, w, workflow=workflow.name, mode="read_write")
        answer = ChatResponse("an answer of some length " * 10, Usage(600, 60))
        requests = [request(n) for n in range(ENTRIES)]
        keys = [RequestKey.of(endpoint, req) for req in requests]
        from agentops.store.records import CacheEntry

        for key in keys:  # one transaction each, as runs write them
            assert key is not None
            w.put_cache_entry(
                CacheEntry(
                    key.key,
                    "bench",
                    "a",
                    "gpt-4o-mini",
                    response_json(answer),
                    600,
                    60,
                    False,
                    0.001,
                    time.time(),
                )
            )
        picks = requests[:: ENTRIES // LOOKUPS][:LOOKUPS]
        started = time.process_time()
        for req in picks:
            key = RequestKey.of(endpoint, req)
            assert key is not None and cache.lookup("a", key) is not None
        per_hit = (time.process_time() - started) / len(picks)
        started = time.process_time()
        for req in picks:
            RequestKey.of(endpoint, req)
        per_key = (time.process_time() - started) / len(picks)
        missing = [request(ENTRIES + n) for n in range(LOOKUPS)]
        started = time.process_time()
        for req in missing:
            key = RequestKey.of(endpoint, req)
            assert key is not None and cache.lookup("a", key) is None
        per_miss = (time.process_time() - started) / len(missing)
    return {"hit_ms": per_hit * 1000, "key_ms": per_key * 1000, "miss_ms": per_miss * 1000}


def run_one(mode: str, base_url: str, db: str) -> dict[str, Any]:
    return figures_of(
        [PYTHON, __file__, "one", mode, base_url, db],
        mode,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def main() -> None:
    figures: dict[str, Any] = {"hit": hit_cost()}
    server = subprocess.Popen(
        [PYTHON, "-m", "agentops.testing.server", "--port", "0", "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as folder:
            db = str(Path(folder) / "history.db")
            figures["off"] = run_one("off", base_url, db)
            figures["filling"] = run_one("read_write", base_url, db)
            figures["cached"] = run_one("read_write", base_url, db)
            empty = str(Path(folder) / "empty.db")
            figures["missing"] = run_one("read", base_url, empty)  # on, never a hit
    finally:
        server.terminate()
        server.wait()
    hit = figures["hit"]
    print(f"per hit (key + indexed read + decode, {ENTRIES:,} entries): {hit['hit_ms']:.3f} ms CPU")
    print(f"per miss (key + indexed read):                   {hit['miss_ms']:.3f} ms CPU")
    print(f"the key alone (2 KB prompt, a tool, a schema):     {hit['key_ms']:.3f} ms CPU")
    print(f"{'100 agents, 50 ms calls':<26}{'wall':>8}{'CPU':>8}{'hits':>6}")
    for name in ("off", "filling", "cached", "missing"):
        row = figures[name]
        print(f"{name:<26}{row['wall']:>7.2f}s{row['cpu']:>7.2f}s{int(row['cached']):>6}")
    off, missing = figures["off"], figures["missing"]
    figures["miss_overhead_ms_per_call"] = (missing["cpu"] - off["cpu"]) / off["calls"] * 1000
    print(
        "cache on, never a hit, against off: "
        f"{figures['miss_overhead_ms_per_call']:+.3f} ms CPU per call"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "one":
        print(json.dumps(one(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        main()
