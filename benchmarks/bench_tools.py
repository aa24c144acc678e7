"""Tool loops: 100 agents, each making 3 tool calls (4 model calls), against the test server in
another process, AgentOps against a hand-written asyncio loop with the same client.

    .venv/bin/python benchmarks/bench_tools.py            # prints the figures
    .venv/bin/python benchmarks/bench_tools.py one IMPL URL  # one measurement (used by the above)

Each side runs in a fresh process, best of 5; the server answers after 50 ms, asking for the
tool ``lookup`` until the conversation holds 3 tool results. The tool is an async Python
function. Nothing asserts a time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from measured import figures_of

HERE = Path(__file__).resolve().parent
AGENTS = 100
TOOL_TURNS = 3
LATENCY = 0.05
REPEATS = 5
TOOLS_MODULE = '''
async def lookup(key: str) -> str:
    """Look a key up."""
    return "value of " + key
'''


async def lookup(key: str) -> str:  # the reference's tool: the same function
    return "value of " + key


LOOKUP_SCHEMA = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a key up.",
        "parameters": {
            "type": "object",
            "properties": {"key": {"type": "string"}},
            "required": ["key"],
            "additionalProperties": False,
        },
    },
}


async def reference(base_url: str) -> int:
    """A minimal tool loop over the same SDK client configuration AgentOps builds."""
    import httpx2
    from openai import AsyncOpenAI, DefaultAioHttpClient

    limits = httpx2.Limits(max_connections=AGENTS, max_keepalive_connections=AGENTS)
    client = AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=DefaultAioHttpClient(limits=limits),
    )
    calls = 0

    async def agent(n: int) -> None:
        nonlocal calls
        messages: list[Any] = [{"role": "user", "content": f"agent {n}: look things up"}]
        while True:
            stream = await client.chat.completions.create(
                model="bench-model",
                messages=messages,
                max_tokens=16,
                tools=[LOOKUP_SCHEMA],  # type: ignore[list-item]
                stream=True,
                stream_options={"include_usage": True},
            )
            text: list[str] = []
            pending: dict[int, dict[str, Any]] = {}
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        text.append(choice.delta.content)
                    for delta in choice.delta.tool_calls or ():
                        slot = pending.setdefault(
                            delta.index, {"id": "", "name": "", "arguments": ""}
                        )
                        slot["id"] = delta.id or slot["id"]
                        if delta.function and delta.function.name:
                            slot["name"] = delta.function.name
                        if delta.function and delta.function.arguments:
                            slot["arguments"] += delta.function.arguments
            calls += 1
            if not pending:
                return
            tool_calls = [pending[i] for i in sorted(pending)]
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for c in tool_calls
                    ],
                }
            )
            for c in tool_calls:
                result = await lookup(**json.loads(c["arguments"]))
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": result})

    async with client:
        await asyncio.gather(*(agent(n) for n in range(AGENTS)))
    return calls


def load_flow(base_url: str) -> Any:
    """The workflow, loaded before timing (as ``bench_one`` does): orchestration is what is measured."""
    import yaml

    import agentops

    folder = Path(tempfile.mkdtemp())
    (folder / "bench_tools_lib.py").write_text(TOOLS_MODULE)
    document = {
        "name": "bench_tools",
        "policies": {"max_concurrency": AGENTS, "max_tokens": 16, "retries": 0},
        "providers": {"bench": {"base_url": base_url}},
        "tools": {"lookup": {"python": "bench_tools_lib:lookup"}},
        "agents": [
            {
                "name": f"agent{n}",
                "model": "bench-model",
                "provider": "bench",
                "task": f"agent {n}: look things up",
                "tools": ["lookup"],
            }
            for n in range(AGENTS)
        ],
    }
    path = folder / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return agentops.load_workflow(path)


async def with_agentops(loaded: Any) -> int:
    import agentops

    result = await agentops.arun(loaded)
    failed = [a for a in result.agents.values() if a.status.value != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} agents failed, e.g. {failed[0].name}: {failed[0].error}")
    return sum(len(a.attempts) for a in result.agents.values())


def one(implementation: str, base_url: str) -> None:
    # Imported before timing, for both sides: start-up is not orchestration (run_all.py reports it).
    import aiohttp  # noqa: F401
    import openai  # noqa: F401

    import agentops.providers.openai
    import agentops.tools.runtime  # noqa: F401
    from agentops.cli.launch import tune_gc_for_run
    from agentops.runtime.events import Usage
    from agentops.runtime.pricing import PriceBook
    from agentops.runtime.provider import Route

    PriceBook().cost(
        Route("openai", "openai", "gpt-4o"), Usage(1, 1)
    )  # one-time start-up, not timed
    loaded = load_flow(base_url) if implementation == "agentops" else None
    tune_gc_for_run()
    wall = time.perf_counter()
    cpu = time.process_time()
    calls = asyncio.run(with_agentops(loaded) if loaded is not None else reference(base_url))
    print(
        json.dumps(
            {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "calls": calls}
        )
    )


def main() -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentops.testing.server",
            "--port",
            "0",
            "--latency",
            str(LATENCY),
            "--reply-tokens",
            "8",
            "--call-tool",
            "lookup",
            "--tool-turns",
            str(TOOL_TURNS),
            "--tool-arguments",
            '{"key": "alpha"}',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    base_url = server.stdout.readline().strip()
    results: dict[str, dict[str, float]] = {}
    try:
        for implementation in ("reference", "agentops"):
            argv = [sys.executable, __file__, "one", implementation, base_url]
            runs = [figures_of(argv, implementation, timeout=600, cwd=HERE) for _ in range(REPEATS)]
            results[implementation] = min(runs, key=lambda r: float(r["wall"]))
    finally:
        server.terminate()
        server.wait(10)
    ours, ref = results["agentops"], results["reference"]
    ideal = (TOOL_TURNS + 1) * LATENCY
    print(
        f"tool loops: {AGENTS} agents × {TOOL_TURNS} tool turns ({int(ours['calls'])} model calls, "
        f"{AGENTS * TOOL_TURNS} tool calls, {LATENCY * 1000:.0f} ms per call): agentops {ours['wall']:.3f} s, "
        f"reference {ref['wall']:.3f} s (÷ reference {ours['wall'] / ref['wall']:.3f}, target ≤ 1.1), "
        f"ideal {ideal:.2f} s; CPU per model call {ours['cpu'] / ours['calls'] * 1000:.2f} ms "
        f"(reference {ref['cpu'] / ref['calls'] * 1000:.2f} ms)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "one":
        one(sys.argv[2], sys.argv[3])
    else:
        main()
