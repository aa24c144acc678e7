"""Hostile output schemas: ``$ref``s that would fetch a URL, read a file, point at nothing or
loop back on themselves are load-time errors at the ``$ref`` (``validate`` and ``plan``, exit 2);
an ``OutputContract`` built around the load check still fetches and reads nothing; schemas that
refer only inside themselves (pydantic's recursive ``$defs`` among them) keep working in a run.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentops.errors import WorkflowError
from agentops.runtime.messages import ChatResponse
from agentops.runtime.structured import OutputContract, Verdict
from agentops.testing.server import OpenAITestServer
from agentops.workflow.loader import resolve_schema_files
from agentops.workflow.spec import Workflow
from tests.support.reliability import invoke, run_agentops, workflow_document

pytestmark = pytest.mark.usefixtures("provider_key")

NEVER_FETCHED = (
    "is not defined inside the schema, and schemas are never fetched or read from elsewhere; "
    "copy what it names under $defs and write $ref: '#/$defs/NAME'"
)
ENDLESS = "without descending into a property or an item, so checking an answer would never end; refer to it from inside properties or items instead"


def write_flow(folder: Path, schema: Any, base_url: str = "http://127.0.0.1:9/v1") -> Path:
    """One agent 'a' whose output schema is ``schema`` (inline, or the path of a file)."""
    document = workflow_document(base_url, [{"name": "a", "output": {"schema": schema}}])
    path = folder / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def position_of(path: Path, text: str) -> str:
    """``LINE:COL`` of the first occurrence of ``text`` in the file."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return f"{number}:{line.index(text) + 1}"
    raise AssertionError(f"{text!r} is not in {path}")


def error_lines(output: str) -> list[str]:
    return [line.removeprefix("error: ") for line in output.splitlines() if line.strip()]


# --- load time: validate and plan -----------------------------------------------------------

HOSTILE = {
    "http": (
        {"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/x.json"}}},
        "http://127.0.0.1:9/x.json",
        f"at properties.x: $ref 'http://127.0.0.1:9/x.json' {NEVER_FETCHED}",
    ),
    "file": (
        {"type": "object", "properties": {"x": {"$ref": "file:///etc/passwd"}}},
        "file:///etc/passwd",
        f"at properties.x: $ref 'file:///etc/passwd' {NEVER_FETCHED}",
    ),
    "urn": (
        {"$defs": {"y": {"$id": "urn:example:y"}}, "properties": {"x": {"$ref": "urn:example:x"}}},
        "urn:example:x",
        f"at properties.x: $ref 'urn:example:x' {NEVER_FETCHED}",
    ),
    "pointer": (
        {
            "$defs": {"Step": {"type": "string"}},
            "properties": {"x": {"items": {"$ref": "#/$defs/Stpe"}}},
        },
        "'#/$defs/Stpe'",
        "at properties.x.items: $ref '#/$defs/Stpe' points at nothing in the schema; did you mean 'Step'?",
    ),
    "root": (
        {"$ref": "#", "type": "object"},
        "'#'",
        f"at $: the schema refers to itself through $ref '#' {ENDLESS}",
    ),
    "loop": (
        {
            "$defs": {
                "a": {"$ref": "#/$defs/b"},
                "b": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/a"}]},
            },
            "properties": {"x": {"$ref": "#/$defs/a"}},
        },
        "'#/$defs/b'",
        f"at $defs.a: the schema refers to itself through $ref '#/$defs/b' -> '#/$defs/a' {ENDLESS}",
    ),
}


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_validate_and_plan_reject_a_ref_that_leaves_the_schema_or_loops_at_the_ref(
    tmp_path: Path, command: str, case: str
) -> None:
    schema, ref_text, message = HOSTILE[case]
    flow = write_flow(tmp_path, schema)
    outcome = invoke(command, flow)
    assert outcome.code == 2, outcome
    assert error_lines(outcome.output) == [
        f"{flow}:{position_of(flow, ref_text)}: agent 'a': output.schema {message}"
    ]


def test_a_schema_file_with_a_url_ref_is_rejected_at_the_ref_in_that_file(tmp_path: Path) -> None:
    schema_file = tmp_path / "answer.json"
    schema_file.write_text(
        '{\n  "type": "object",\n  "properties": {\n    "x": {"$ref": "https://example.com/x.json"}\n  }\n}\n',
        encoding="utf-8",
    )
    flow = write_flow(tmp_path, "answer.json")
    checked = run_agentops("validate", flow)
    assert checked.returncode == 2, checked
    where = position_of(schema_file, '"https')
    assert error_lines(checked.stdout + checked.stderr) == [
        f"{schema_file}:{where}: output schema of agent 'a' at properties.x: $ref 'https://example.com/x.json' {NEVER_FETCHED}"
    ]


def test_a_workflow_built_in_python_with_a_schema_file_that_reads_a_file_is_refused(
    tmp_path: Path,
) -> None:
    schema_file = tmp_path / "answer.yaml"
    schema_file.write_text(
        "type: object\nproperties:\n  x:\n    $ref: file:///etc/passwd\n", encoding="utf-8"
    )
    workflow = Workflow.model_validate(
        {
            "name": "py",
            "agents": [
                {
                    "name": "a",
                    "model": "gpt-4o-mini",
                    "task": "t",
                    "output": {"schema": "answer.yaml"},
                }
            ],
        }
    )
    with pytest.raises(WorkflowError) as raised:
        resolve_schema_files(workflow, tmp_path)
    assert str(raised.value) == (
        f"{schema_file}:4:11: output schema of agent 'a' at properties.x: $ref 'file:///etc/passwd' {NEVER_FETCHED}"
    )


def test_a_ref_to_a_schema_file_next_to_the_workflow_is_rejected_with_the_fix(
    tmp_path: Path,
) -> None:
    (tmp_path / "common.json").write_text('{"type": "string"}', encoding="utf-8")
    flow = write_flow(tmp_path, {"type": "object", "properties": {"x": {"$ref": "common.json"}}})
    outcome = invoke("validate", flow)
    assert outcome.code == 2, outcome
    assert error_lines(outcome.output) == [
        f"{flow}:{position_of(flow, 'common.json')}: agent 'a': output.schema at properties.x: $ref 'common.json' {NEVER_FETCHED}"
    ]


ACCEPTED = {
    "an $id inside the schema": {
        "$defs": {"y": {"$id": "urn:example:y", "type": "string"}},
        "properties": {"x": {"$ref": "urn:example:y"}},
    },
    "an $anchor": {
        "$defs": {"y": {"$anchor": "item", "type": "string"}},
        "items": {"$ref": "#item"},
    },
    "a recursive tree through items": {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            }
        },
        "$ref": "#/$defs/Node",
    },
    "the whole schema again under a property": {
        "type": "object",
        "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
    },
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_refs_that_stay_inside_the_schema_and_descend_are_accepted(
    tmp_path: Path, case: str
) -> None:
    outcome = invoke("validate", write_flow(tmp_path, ACCEPTED[case]))
    assert outcome.code == 0, outcome


# --- run time: the contract itself never fetches or reads --------------------------------------


def check_in_thread(contract: OutputContract, answer: str) -> Verdict | None:
    """The verdict, or None if checking did not end within 10 s (it hung on a fetch)."""
    verdicts: list[Verdict] = []
    worker = threading.Thread(
        target=lambda: verdicts.append(contract.check(ChatResponse(text=answer), 100)), daemon=True
    )
    worker.start()
    worker.join(10)
    return verdicts[0] if verdicts else None


def test_an_output_contract_built_around_the_load_check_never_connects_to_a_ref_url() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (the kernel completes them) but never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/answer.json"
        contract = OutputContract({"type": "object", "properties": {"x": {"$ref": url}}}, retries=0)
        verdict = check_in_thread(contract, '{"x": 1}')
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection was ever made
    message = f"the output schema's $ref '{url}' is not defined inside the schema; nothing is fetched or read to resolve it"
    assert verdict == Verdict(error=message, errors=(message,))


def test_an_output_contract_never_reads_a_file_a_ref_names(tmp_path: Path) -> None:
    named = tmp_path / "anything.json"
    named.write_text('{"type": "object"}', encoding="utf-8")  # had it been read, {} would be valid
    contract = OutputContract({"$ref": named.as_uri()}, retries=0)
    message = f"the output schema's $ref '{named.as_uri()}' is not defined inside the schema; nothing is fetched or read to resolve it"
    assert check_in_thread(contract, "{}") == Verdict(error=message, errors=(message,))


# --- run time: recursive schemas keep working ---------------------------------------------------

TREE = {
    "$defs": {
        "Node": {
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "children": {
                    "default": [],
                    "items": {"$ref": "#/$defs/Node"},
                    "title": "Children",
                    "type": "array",
                },
            },
            "required": ["name"],
            "title": "Node",
            "type": "object",
        }
    },
    "$ref": "#/$defs/Node",
}  # pydantic's model_json_schema() of ``class Node(BaseModel): name: str; children: list[Node] = []``


def test_a_recursive_pydantic_schema_validates_answers_deep_down_in_a_run(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    answers = iter(
        [
            {"name": "root", "children": [{"name": "left", "children": [{"children": []}]}]},
            {"name": "root", "children": [{"name": "left", "children": [{"name": "leaf"}]}]},
        ]
    )
    server.reply = lambda body: json.dumps(next(answers))
    flow, db = write_flow(tmp_path, TREE, server.base_url), tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db, "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["status"] == "succeeded"
    assert len(server.requests) == 2  # the answer missing a name deep down, and its re-ask
    reask = server.requests[1].body["messages"][-1]["content"]
    assert reask.startswith(
        "Your answer does not follow the required JSON Schema:\n- at children[0].children[0]: 'name' is a required property\n"
    )
