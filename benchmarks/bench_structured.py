"""What structured outputs add per answer: ``.venv/bin/python benchmarks/bench_structured.py``.

Client CPU to compile an agent's schema once (``OutputContract``) and to check one
answer (parse, tolerate a fence, validate with ``jsonschema`` Draft 2020-12), for the
README's two-field plan and a nested pydantic model (``$defs`` / ``$ref``, 20 steps),
valid and invalid; and the time to import ``jsonschema`` at all (paid once, and only by
runs with a schema). Prints microseconds; nothing here asserts a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from pydantic import BaseModel

from agentops.runtime.messages import ChatResponse
from agentops.runtime.structured import OutputContract

PLAN = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "steps": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "steps"],
    "additionalProperties": False,
}


class Step(BaseModel):
    place: str
    minutes: int
    notes: list[str] = []


class Trip(BaseModel):
    title: str
    steps: list[Step]
    budget: float | None = None


def per_call(work: Callable[[], object], repeat: int) -> float:
    """Best of 5 rounds, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def main() -> None:
    probe = (
        "import time; t = time.perf_counter(); import jsonschema; print(time.perf_counter() - t)"
    )
    imported = float(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    print(
        f"import jsonschema: {imported * 1000:.1f} ms (once per process, only when a schema is checked)"
    )
    trip = Trip.model_json_schema()
    cases = {
        "plan, valid": (PLAN, json.dumps({"title": "Paris", "steps": ["Louvre", "Seine"]})),
        "plan, fenced": (
            PLAN,
            "```json\n" + json.dumps({"title": "Paris", "steps": ["Louvre"]}) + "\n```",
        ),
        "plan, wrong shape": (PLAN, json.dumps({"title": 3, "steps": [1, 2, 3]})),
        "plan, not JSON": (PLAN, "Sure! {title: Paris"),
        "trip (20 steps), valid": (
            trip,
            json.dumps(
                {
                    "title": "Rome",
                    "steps": [
                        {"place": f"p{i}", "minutes": i, "notes": ["a", "b"]} for i in range(20)
                    ],
                }
            ),
        ),
        "trip (20 steps), 20 errors": (
            trip,
            json.dumps({"title": "Rome", "steps": [{"place": i} for i in range(20)]}),
        ),
    }
    print(f"{'case':<28} {'compile µs':>11} {'check µs':>9}")
    for name, (schema, text) in cases.items():
        compile_us = per_call(lambda schema=schema: OutputContract(schema, 1), 200)  # type: ignore[misc]
        contract = OutputContract(schema, 1)
        response = ChatResponse(text, finish_reason="stop")
        check_us = per_call(
            lambda contract=contract, response=response: contract.check(response, 1024), 2000
        )  # type: ignore[misc]
        print(f"{name:<28} {compile_us:>11.1f} {check_us:>9.1f}")


if __name__ == "__main__":
    main()
