"""The local model's isolation, measured: ``.venv/bin/python benchmarks/bench_local.py``.

Wall time of the quick-start demo (``examples/local_workflow.yaml``: 4 calls on SmolLM2, two of
them in parallel), each way in a fresh process through ``agentops.run``, best of 3:

- **in-process** (the reference: how 0.1 ran it): the model loaded in the run's own process,
  a crash in llama.cpp takes the run down;
- **worker process** (shipped): ``providers/local_worker.py``, reached over a pipe;
- **llama_cpp.server** (the design not taken): llama-cpp-python's OpenAI-compatible server
  started by the run on a free port, reached through the ``openai`` provider.

The target is worker ≤ 1.5 × in-process. Nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "local_workflow.yaml"
REPEATS = 3
WAYS = ("in-process", "worker process", "llama_cpp.server")


class InProcessLocal:
    """The worker's own model code, run on a thread of the run's process (no isolation)."""

    name = "local"
    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.model: Any = None
        self.lock = threading.Lock()

    async def complete(self, request: Any, on_text: Any) -> Any:
        from agentops.providers.local import SEED
        from agentops.providers.local_worker import _Model
        from agentops.runtime.events import Usage
        from agentops.runtime.provider import ChatResponse

        loop = asyncio.get_running_loop()
        pieces: list[str] = []
        done: dict[str, Any] = {}

        def send(message: dict[str, Any]) -> None:
            if "text" in message:
                pieces.append(message["text"])
                loop.call_soon_threadsafe(on_text, message["text"])
            else:
                done.update(message)

        def generate() -> None:
            with self.lock:
                if self.model is None:
                    self.model = _Model(str(self.path))
                messages = [{"role": m.role, "content": m.content} for m in request.messages]
                self.model.answer(
                    {
                        "id": 1,
                        "messages": messages,
                        "max_tokens": request.max_tokens,
                        "temperature": request.temperature,
                        "seed": SEED,
                    },
                    set(),
                    send,
                )

        await asyncio.to_thread(generate)
        return ChatResponse(
            "".join(pieces),
            Usage(done["input_tokens"], done["output_tokens"]),
            done["finish_reason"],
        )

    async def aclose(self) -> None:
        pass


def run_once(way: str) -> None:
    """One demo run, the ``way`` named; called in a fresh process."""
    import agentops
    from agentops.providers.local import bundled_model_path

    model = bundled_model_path()
    assert model is not None, "the [local] extra is not installed: scripts/setup.sh local,test"
    if way == "in-process":
        result = agentops.run(DEMO, provider={"local": InProcessLocal(model)})
    elif way == "worker process":
        result = agentops.run(DEMO)
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--verbose",
                "False",
                "--interrupt_requests",
                "False",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            while True:
                try:
                    urllib.request.urlopen(f"{base_url}/models", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            text = DEMO.read_text().replace("provider: local", "provider: llamacpp")
            text += f"\nproviders:\n  llamacpp: {{base_url: '{base_url}'}}\n"
            result = agentops.run(agentops.load_workflow_text(text))
        finally:
            server.terminate()
            server.wait()
    assert result.ok, {name: agent.error for name, agent in result.agents.items()}


def best_of(way: str) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, way], check=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    figures = {way: best_of(way) for way in WAYS}
    reference = figures["in-process"]
    print(f"{'the demo (4 calls on SmolLM2), fresh process':46} {'wall s':>7} {'÷ in-process':>13}")
    for way, seconds in figures.items():
        print(f"{way:46} {seconds:7.2f} {seconds / reference:13.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_once(sys.argv[1])
    else:
        main()
