"""Workflow shapes for the benchmarks: name -> {agent: (dependencies, latency seconds)}.

The latency travels inside the prompt as a ``[latency=0.05]`` marker that the
benchmark server reads, so both schedulers send byte-identical requests.
"""

from __future__ import annotations

import re
from typing import Any

Shape = dict[str, tuple[list[str], float]]

DEFAULT_LATENCY = 0.05
MARKER = re.compile(r"\[latency=([0-9.]+)\]")


def latency_from_prompt(body: dict[str, Any]) -> float:
    for message in body.get("messages", []):
        match = MARKER.search(str(message.get("content", "")))
        if match:
            return float(match.group(1))
    return DEFAULT_LATENCY


def fan_in(width: int) -> Shape:
    shape: Shape = {f"worker{i}": ([], DEFAULT_LATENCY) for i in range(width)}
    shape["aggregator"] = (list(shape), DEFAULT_LATENCY)
    return shape


def layers(depth: int, width: int) -> Shape:
    shape: Shape = {}
    previous: list[str] = []
    for layer in range(depth):
        current = [f"l{layer}_{i}" for i in range(width)]
        for name in current:
            shape[name] = (list(previous), DEFAULT_LATENCY)
        previous = current
    return shape


def chain(length: int) -> Shape:
    return {f"step{i}": ([f"step{i - 1}"] if i else [], DEFAULT_LATENCY) for i in range(length)}


def sketch_pipeline() -> Shape:
    gatherers = ["news_gatherer", "weather_gatherer", "market_gatherer"]
    shape: Shape = {name: ([], DEFAULT_LATENCY) for name in gatherers}
    shape["data_analyzer"] = (gatherers, DEFAULT_LATENCY)
    shape["trend_spotter"] = (gatherers, DEFAULT_LATENCY)
    shape["report_beautifier"] = (["data_analyzer", "trend_spotter"], DEFAULT_LATENCY)
    return shape


def staggered_chains(count: int = 10, slow: float = 0.2, fast: float = 0.02) -> Shape:
    """Chain i is slow only at step i: ideal 0.2 + 9 * 0.02 = 0.38 s; level barriers pay 10 * 0.2."""
    shape: Shape = {}
    for c in range(count):
        for step in range(count):
            deps = [f"c{c}_s{step - 1}"] if step else []
            shape[f"c{c}_s{step}"] = (deps, slow if step == c else fast)
    return shape


# Calls in flight at once. Unbounded for the small shapes; 10,000 sockets opened at the same
# moment overflow the server's listen backlog (connections time out), so the big shape runs
# as a real 10,000-agent workflow would: under a max_concurrency.
UNBOUNDED = 20_000
CONCURRENCY = {"fan_in_10000": 1000}

SHAPES = {
    "fan_in_1000": lambda: fan_in(1000),
    "layers_5x20": lambda: layers(5, 20),
    "chain_50": lambda: chain(50),
    "sketch_pipeline_6": sketch_pipeline,
    "staggered_10x10": staggered_chains,
    "fan_in_10000": lambda: fan_in(10_000),
}


def ideal_seconds(shape: Shape, concurrency: int = UNBOUNDED) -> float:
    """No scheduler can finish sooner: the critical path of latencies, or the total latency
    spread over ``concurrency`` call slots, whichever is longer."""
    finish: dict[str, float] = {}
    for name in topological(shape):
        deps, latency = shape[name]
        finish[name] = max((finish[d] for d in deps), default=0.0) + latency
    return max(max(finish.values()), sum(latency for _, latency in shape.values()) / concurrency)


def topological(shape: Shape) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()
    for name in shape:
        stack = [(name, False)]
        while stack:
            node, expanded = stack.pop()
            if node in seen:
                continue
            if expanded:
                seen.add(node)
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((d, False) for d in shape[node][0] if d not in seen)
    return order


def task_for(name: str, latency: float) -> str:
    return f"[latency={latency}] Step {name}: reply briefly."


def to_workflow_document(
    name: str, shape: Shape, base_url: str, api_key_env: str
) -> dict[str, Any]:
    return {
        "name": name,
        "policies": {
            "retries": 0,
            "max_concurrency": CONCURRENCY.get(name, UNBOUNDED),
            "max_tokens": 16,
        },
        "providers": {"bench": {"base_url": base_url, "api_key_env": api_key_env}},
        "agents": [
            {
                "name": agent,
                "model": "bench-model",
                "provider": "bench",
                "task": task_for(agent, latency),
                **({"depends_on": deps} if deps else {}),
            }
            for agent, (deps, latency) in shape.items()
        ],
    }
