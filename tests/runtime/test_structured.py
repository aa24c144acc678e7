"""Structured outputs: schemas checked, answers validated and re-asked under the cap, fields downstream.

Parsing and validation rules are checked directly; the loop above a call runs on the fake
provider (in memory) and on the shipped test server over HTTP (both request forms, streamed
and whole); the CLI end to end is in test_structured_cli.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import agentops
from agentops.errors import WorkflowError
from agentops.providers.fake import FakeProvider
from agentops.runtime.events import AgentStatus, AnswerRejected
from agentops.runtime.messages import ChatResponse
from agentops.runtime.structured import OutputContract, unfenced
from agentops.testing.server import Fault, OpenAITestServer, example_for_schema
from agentops.workflow.loader import load_workflow, load_workflow_text
from agentops.workflow.schemas import field_problem, schema_problem, strict_mode_problem
from agentops.workflow.spec import Agent, OutputSpec, Workflow
from agentops.workflow.templates import render
from tests.support.engine import EventLog, workflow_on

PLAN = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "steps": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "steps"],
    "additionalProperties": False,
}
GOOD = '{"title": "Paris in a day", "steps": ["Louvre", "Seine"]}'


def flow(agents: list[dict[str, Any]], **extra: Any) -> str:
    document = {
        "name": "structured",
        "agents": [{"model": "m", "task": "t", **a} for a in agents],
        **extra,
    }
    return yaml.safe_dump(document, sort_keys=False)


def problems(text: str, filename: str = "flow.yaml") -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow_text(text, filename)
    return [str(d) for d in caught.value.diagnostics]


# --- answers ------------------------------------------------------------------------------


def check(text: str, finish_reason: str = "stop", refusal: str | None = None) -> Any:
    return OutputContract(PLAN, 1).check(
        ChatResponse(text, finish_reason=finish_reason, refusal=refusal), 64
    )


def test_a_valid_answer_is_parsed_and_a_json_fence_is_tolerated() -> None:
    for text in (GOOD, f"```json\n{GOOD}\n```", f"Here it is:\n```\n{GOOD}\n```\n", f"  {GOOD}\n"):
        verdict = check(text)
        assert verdict.valid, text
        assert verdict.value == {"title": "Paris in a day", "steps": ["Louvre", "Seine"]}
        assert json.loads(verdict.text) == verdict.value
    assert unfenced("```JSON\n[1, 2]\n```") == "[1, 2]"


@pytest.mark.parametrize(
    ("text", "finish_reason", "refusal", "expected"),
    [
        (
            "Sure! {title: Paris",
            "stop",
            None,
            "the answer is not JSON (Expecting value: line 1 column 1 (char 0)): 'Sure! {title: Paris'",
        ),
        ('{"title": "x"}', "stop", None, "at $: 'steps' is a required property"),
        (
            '{"title": "x", "steps": ["a", 3]}',
            "stop",
            None,
            "at steps[1]: 3 is not of type 'string'",
        ),
        (
            '{"title": "x", "steps": [], "extra": 1}',
            "stop",
            None,
            "at $: Additional properties are not allowed ('extra' was unexpected)",
        ),
        (
            '{"title": "x", "st',
            "length",
            None,
            "the answer was cut off at max_tokens (64); raise max_tokens or simplify the schema",
        ),
        ("", "stop", "I cannot help with that.", "the model refused: I cannot help with that."),
    ],
)
def test_invalid_answers_name_the_first_problem(
    text: str, finish_reason: str, refusal: str | None, expected: str
) -> None:
    verdict = check(text, finish_reason, refusal)
    assert not verdict.valid
    assert verdict.error == expected
    assert verdict.errors[0] == expected


def test_an_answer_nested_past_the_recursion_limit_is_invalid_not_a_crash() -> None:
    verdict = check("[" * 100_000 + "]" * 100_000)
    assert verdict.error == "the answer nests too deeply to read"


def test_the_first_error_is_the_shallowest_and_the_reask_lists_them_with_the_schema() -> None:
    contract = OutputContract(PLAN, 1)
    verdict = contract.check(ChatResponse('{"steps": [1, 2]}'), 64)
    assert verdict.errors == (
        "at $: 'title' is a required property",
        "at steps[0]: 1 is not of type 'string'",
        "at steps[1]: 2 is not of type 'string'",
    )
    message = contract.reask_message(verdict)
    assert "- at $: 'title' is a required property\n- at steps[0]" in message
    assert json.dumps(PLAN) in message


# --- the schema itself ------------------------------------------------------------------


def test_schema_problems_and_strict_mode_rules() -> None:
    assert schema_problem(PLAN) is None
    assert schema_problem({"type": "strng"}) is not None
    where, message = schema_problem({"properties": {"a": {"type": 3}}}) or ((), "")
    assert where == ("properties", "a", "type") and message.startswith(
        "at properties.a.type: 3 is not valid"
    )
    assert schema_problem([1]) == ((), "a JSON Schema is a mapping (or true/false), not list")
    assert strict_mode_problem(PLAN) is None
    assert (
        strict_mode_problem({"type": "array"}) == "the top level must be an object (type: object)"
    )
    open_object = {**PLAN, "additionalProperties": True}
    assert strict_mode_problem(open_object) == "$ must set additionalProperties: false"
    optional = {**PLAN, "required": ["title"]}
    assert strict_mode_problem(optional) == "$: every property must be in required (missing: steps)"
    nested = {
        **PLAN,
        "properties": {
            **PLAN["properties"],
            "steps": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
    }
    assert (
        strict_mode_problem(nested)
        == "$.steps uses 'uniqueItems', which strict mode does not support"
    )


class Step(BaseModel):
    place: str
    minutes: int


class Plan(BaseModel):
    title: str
    steps: list[Step]
    note: str | None = None


def test_field_references_are_checked_against_the_schema_including_refs_and_indexes() -> None:
    assert field_problem(PLAN, ("title",)) is None
    assert field_problem(PLAN, ("steps", 0)) is None
    assert field_problem(PLAN, ("titel",)) == "has no field 'titel'; did you mean 'title'?"
    assert (
        field_problem(PLAN, ("title", "x"))
        == "has no field 'x' at title (it is a string, not an object)"
    )
    assert (
        field_problem(PLAN, ("title", 0))
        == "has no list at title to take [0] from (it is a string)"
    )
    schema = Plan.model_json_schema()  # $defs and $ref, anyOf with null
    assert field_problem(schema, ("steps", 0, "place")) is None
    assert field_problem(schema, ("note",)) is None
    assert (
        field_problem(schema, ("steps", 0, "minuts"))
        == "has no field 'minuts' at steps[0]; did you mean 'minutes'?"
    )


def test_rendering_fields_strings_plain_and_the_rest_as_json() -> None:
    value = {"title": "Paris", "steps": ["Louvre", "Seine"], "meta": {"days": 1, "ok": True}}
    text = render(
        "{{ p.output.title }}|{{ p.output.steps[1] }}|{{ p.output.steps }}|{{ p.output.meta }}|"
        "{{ p.output.meta.days }}|{{ p.output.missing }}|{{ p.output.steps[9] }}|{{ p.output }}",
        {"p": json.dumps(value)},
        {},
        {"p": value},
    )
    assert text == (
        'Paris|Seine|["Louvre", "Seine"]|{"days": 1, "ok": true}|1|||' + json.dumps(value)
    )


def test_the_test_server_builds_a_valid_answer_from_a_schema() -> None:
    assert example_for_schema(PLAN) == {"title": "title", "steps": ["steps 1"]}
    schema = Plan.model_json_schema()
    value = example_for_schema(schema)
    assert OutputContract(schema, 0).check(ChatResponse(json.dumps(value)), 64).valid


# --- loading: YAML, files, references ----------------------------------------------------------


def test_the_yaml_form_loads_with_retries_defaulting_to_one() -> None:
    loaded = load_workflow_text(
        flow(
            [
                {"name": "planner", "output": {"schema": PLAN, "retries": 2}},
                {
                    "name": "writer",
                    "depends_on": "planner",
                    "output": {"schema": {"type": "object"}},
                    "task": "Write about {{ planner.output.title }}; start with {{ planner.output.steps[0] }}.",
                },
            ]
        )
    )
    planner, writer = loaded.workflow.agents
    assert (
        planner.output is not None
        and planner.output.json_schema == PLAN
        and planner.output.retries == 2
    )
    assert writer.output is not None and writer.output.retries == 1


def test_reference_errors_at_load_time_with_file_line_and_did_you_mean() -> None:
    text = (
        "name: refs\n"
        "agents:\n"
        "  - name: planner\n"
        "    model: m\n"
        "    task: plan\n"
        "    output:\n"
        "      schema: {type: object, properties: {title: {type: string}}, required: [title]}\n"
        "  - name: notes\n"
        "    model: m\n"
        "    task: notes\n"
        "  - name: writer\n"
        "    model: m\n"
        "    depends_on: [planner, notes]\n"
        "    task: 'About {{ planner.output.titel }} and {{ notes.output.summary }}'\n"
    )
    assert problems(text) == [
        "flow.yaml:14:18: agent 'writer': task uses {{ planner.output.titel }}, but the output schema of "
        "'planner' has no field 'titel'; did you mean 'title'?",
        "flow.yaml:14:49: agent 'writer': task uses {{ notes.output.summary }}, but 'notes' has no output schema, "
        "so its answer has no fields; add output: {schema: ...} to 'notes', or use {{ notes.output }} for its whole text",
    ]


def test_an_inline_schema_that_is_not_a_json_schema_is_a_file_line_error() -> None:
    text = (
        "name: bad\n"
        "agents:\n"
        "  - name: planner\n"
        "    model: m\n"
        "    task: plan\n"
        "    output:\n"
        "      schema:\n"
        "        type: object\n"
        "        properties:\n"
        "          title: {type: strng}\n"
    )
    [problem] = problems(text)
    assert problem.startswith(
        "flow.yaml:10:25: agent 'planner': output.schema is not a valid JSON Schema (Draft 2020-12) at "
        "properties.title.type: 'strng' is not valid under any of the given schemas"
    )


def test_a_misspelt_key_under_output_gets_a_did_you_mean() -> None:
    assert problems(flow([{"name": "a", "output": {"shema": PLAN}}])) == [
        "flow.yaml:7:5: agent 'a': output is missing 'schema'; add schema: <a JSON Schema, or the path of a .json file>",
        "flow.yaml:7:5: unknown key 'shema' in agent 'a': output; did you mean 'schema'?",
    ]


def test_a_schema_path_is_relative_to_the_workflow_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "plan.json").write_text(json.dumps(PLAN), encoding="utf-8")
    path = tmp_path / "flow.yaml"
    path.write_text(
        flow(
            [
                {"name": "planner", "output": {"schema": "schemas/plan.json"}},
                {
                    "name": "writer",
                    "depends_on": "planner",
                    "task": "{{ planner.output.steps[0] }}",
                },
            ]
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path.parent)  # not the workflow's folder
    planner = load_workflow(path).workflow.agents[0]
    assert planner.output is not None and planner.output.json_schema == PLAN


def test_schema_file_problems_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    (tmp_path / "broken.json").write_text(
        '{\n  "type": "object",\n  "properties": {,}\n}', encoding="utf-8"
    )
    (tmp_path / "wrong.json").write_text('{"type": 12}', encoding="utf-8")
    path.write_text(
        flow(
            [
                {"name": "a", "output": {"schema": "missing.json"}},
                {"name": "b", "output": {"schema": "broken.json"}},
                {"name": "c", "output": {"schema": "wrong.json"}},
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    found = [str(d) for d in caught.value.diagnostics]
    assert found[0] == (
        f"{path}:7:13: agent 'a': output.schema file 'missing.json' not found (looked in {tmp_path}; "
        "a path is relative to the workflow file)"
    )
    assert (
        found[1]
        == f"{tmp_path / 'broken.json'}:3:18: output schema of agent 'b': not valid JSON: Expecting property name enclosed in double quotes"
    )
    assert found[2].startswith(
        f"{tmp_path / 'wrong.json'}:1:1: output schema of agent 'c' is not a valid JSON Schema: at type: 12 is not valid"
    )
    assert len(found) == 3


def test_a_schema_path_that_is_not_a_regular_file_is_refused_without_reading_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flow.yaml"
    (tmp_path / "folder.json").mkdir()
    path.write_text(
        flow(
            [
                {"name": "a", "output": {"schema": "/dev/zero"}},
                {"name": "b", "output": {"schema": "folder.json"}},
            ]
        ),
        encoding="utf-8",
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert [str(d) for d in caught.value.diagnostics] == [
        "/dev/zero:1:1: output schema of agent 'a': not a regular file; give the path of a .json schema file",
        f"{tmp_path / 'folder.json'}:1:1: output schema of agent 'b': not a regular file; give the path of a .json schema file",
    ]


def test_strict_mode_warnings_name_the_rule_and_skip_the_local_model(tmp_path: Path) -> None:
    loose = {"type": "object", "properties": {"title": {"type": "string"}}}
    path = tmp_path / "flow.yaml"
    path.write_text(
        flow(
            [
                {"name": "a", "output": {"schema": loose}},
                {"name": "b", "model": "local:smollm2", "output": {"schema": loose}},
                {"name": "c", "output": {"schema": PLAN}},
            ]
        ),
        encoding="utf-8",
    )
    assert [str(w) for w in load_workflow(path).warnings()] == [
        f"{path}:7:5: warning: agent 'a': the output schema breaks a rule of OpenAI's strict mode "
        "($ must set additionalProperties: false), so it is sent with strict: false and the answer is only "
        "validated after it arrives; fix the schema to have it enforced while the model writes"
    ]


# --- the loop above a call, in memory -------------------------------------------------------------


def structured_flow(retries: int = 1, **planner: Any) -> str:
    return flow(
        [
            {"name": "planner", "output": {"schema": PLAN, "retries": retries}, **planner},
            {
                "name": "writer",
                "depends_on": "planner",
                "task": "Write about {{ planner.output.title }}; start with {{ planner.output.steps[0] }}.",
            },
        ]
    )


def test_an_invalid_answer_is_reasked_with_the_errors_and_the_fields_reach_the_next_prompt() -> (
    None
):
    fake = FakeProvider(
        {"planner": ['{"title": "Paris"}', f"```json\n{GOOD}\n```"], "writer": "done"}
    )
    log = EventLog()
    result = agentops.run(load_workflow_text(structured_flow()), provider=fake, subscribers=[log])
    assert result.ok
    planner = result.agents["planner"]
    assert planner.value == {"title": "Paris in a day", "steps": ["Louvre", "Seine"]}
    assert planner.output == GOOD  # the JSON text, fence removed
    assert [a.validation_error for a in planner.attempts] == [
        "at $: 'steps' is a required property",
        None,
    ]
    assert [a.turn for a in planner.attempts] == [1, 2]
    second = fake.requests_for("planner")[1]
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]
    assert "- at $: 'steps' is a required property" in second.messages[2].content
    assert second.response_format is not None and second.response_format.strict
    [rejected] = log.of(AnswerRejected)
    assert rejected.will_reask and rejected.attempt.validation_error
    [writer_request] = fake.requests_for("writer")
    assert writer_request.messages[-1].content == "Write about Paris in a day; start with Louvre."
    assert writer_request.response_format is None


def test_when_the_reasks_run_out_the_agent_fails_naming_the_first_error_and_dependents_are_skipped() -> (
    None
):
    fake = FakeProvider({"planner": "not json at all", "writer": "done"})
    result = agentops.run(load_workflow_text(structured_flow(retries=2)), provider=fake)
    planner, writer = result.agents["planner"], result.agents["writer"]
    assert planner.status is AgentStatus.FAILED
    assert planner.error == (
        "the answer does not follow the output schema after 2 re-asks: the answer is not JSON "
        "(Expecting value: line 1 column 1 (char 0)): 'not json at all'"
    )
    assert len(planner.attempts) == 3 and all(a.validation_error for a in planner.attempts)
    assert writer.status is AgentStatus.SKIPPED and not fake.requests_for("writer")
    assert result.exit_code == 1


def test_retries_zero_means_no_reask() -> None:
    fake = FakeProvider({"planner": '{"title": 1, "steps": []}', "writer": "done"})
    result = agentops.run(load_workflow_text(structured_flow(retries=0)), provider=fake)
    assert (
        result.agents["planner"].error
        == "the answer does not follow the output schema: at title: 1 is not of type 'string'"
    )
    assert len(fake.requests_for("planner")) == 1


def test_the_cost_cap_stops_the_reasks_each_of_which_reserves_its_own_worst_case() -> None:
    # The first call's worst case is about $0.16 (100 tokens out at $1,500 per M, a short prompt at $1,000);
    # a re-ask's prompt holds the answer, the errors and the schema, so its worst case is larger and
    # grows with each re-ask. Answers cost far less: the first re-ask fits under $0.7, the second does not.
    text = flow(
        [{"name": "planner", "output": {"schema": PLAN, "retries": 5}, "max_tokens": 100}],
        prices={"m": {"input": 1000.0, "output": 1500.0}},
        policies={"cost_cap": 0.7},
    )
    fake = FakeProvider({"planner": '{"title": "x"}'})
    result = agentops.run(load_workflow_text(text), provider=fake)
    planner = result.agents["planner"]
    assert planner.status is AgentStatus.SKIPPED
    assert (
        planner.error
        == "cost cap (before re-ask 2: the last answer did not follow the output schema)"
    )
    assert len(fake.requests) == len(planner.attempts) == 2
    assert result.cost <= 0.7
    assert (
        fake.requests[1]
        .messages[-1]
        .content.startswith("Your answer does not follow the required JSON Schema")
    )


class TripPlan(BaseModel):
    title: str
    steps: list[str]


def test_a_workflow_built_in_python_takes_a_pydantic_model_and_exposes_the_value() -> None:
    workflow = Workflow(
        name="py",
        agents=[
            Agent(name="planner", model="m", task="plan", output=OutputSpec(schema=TripPlan)),
            Agent(
                name="writer", model="m", task="{{ planner.output.title }}", depends_on="planner"
            ),
        ],
    )
    fake = FakeProvider({"planner": GOOD, "writer": "ok"})
    result = agentops.run(workflow, provider=fake)
    assert result.ok
    assert TripPlan.model_validate(result.agents["planner"].value).steps == ["Louvre", "Seine"]
    assert fake.requests_for("writer")[0].messages[-1].content == "Paris in a day"
    bad = Workflow(
        name="py",
        agents=[
            Agent(name="planner", model="m", task="plan", output=OutputSpec(schema=TripPlan)),
            Agent(
                name="writer", model="m", task="{{ planner.output.titel }}", depends_on="planner"
            ),
        ],
    )
    with pytest.raises(WorkflowError, match="has no field 'titel'; did you mean 'title'"):
        agentops.run(bad, provider=fake)


# --- over HTTP: the shipped test server ----------------------------------------------------------


class Watcher:
    """A subscriber that wants tokens: calls stream (without one, they are answered whole)."""

    def __call__(self, event: Any) -> None:
        pass


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
def test_the_openai_provider_sends_the_json_schema_form_and_reasks_over_http(
    server: OpenAITestServer, streamed: bool
) -> None:
    server.inject(Fault(kind="wrong_shape"))
    loose = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    loaded = workflow_on(
        server,
        [
            {"name": "planner", "output": {"schema": PLAN}},
            {"name": "loose", "output": {"schema": loose}},
        ],
        policies={"max_concurrency": 1},
    )
    result = agentops.run(loaded, subscribers=[Watcher()] if streamed else [])
    assert result.ok, {n: a.error for n, a in result.agents.items()}
    bodies = [r.body for r in server.requests]
    assert all(body.get("stream", False) is streamed for body in bodies)
    by_agent = {json.dumps(b["response_format"]["json_schema"]["name"]): b for b in bodies}
    assert len(bodies) == 3 and len(by_agent) == 2
    formats = {b["response_format"]["json_schema"]["name"]: b["response_format"] for b in bodies}
    assert formats["planner"] == {
        "type": "json_schema",
        "json_schema": {"name": "planner", "schema": PLAN, "strict": True},
    }
    assert formats["loose"]["json_schema"]["strict"] is False
    values = {name: agent.value for name, agent in result.agents.items()}
    assert values == {
        "planner": {"title": "title", "steps": ["steps 1"]},
        "loose": {"title": "title"},
    }
    rejected = [a for agent in result.agents.values() for a in agent.attempts if a.validation_error]
    assert len(rejected) == 1 and rejected[0].validation_error is not None
    assert "is not of type 'object'" in rejected[0].validation_error


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("invalid_json", "the answer is not JSON"),
        ("length", "the answer was cut off at max_tokens (1024)"),
        ("refusal", "the model refused: I'm sorry, I cannot help with that request."),
    ],
)
def test_each_kind_of_misbehaviour_is_caught_and_a_fenced_answer_is_accepted(
    server: OpenAITestServer, streamed: bool, kind: str, error: str
) -> None:
    server.inject(Fault(kind=kind))  # type: ignore[arg-type]
    server.inject(Fault(kind="fenced"))
    result = agentops.run(
        workflow_on(server, [{"name": "planner", "output": {"schema": PLAN}}]),
        subscribers=[Watcher()] if streamed else [],
    )
    planner = result.agents["planner"]
    assert planner.status is AgentStatus.SUCCEEDED, planner.error
    assert planner.attempts[0].validation_error is not None and planner.attempts[
        0
    ].validation_error.startswith(error)
    assert planner.value == {"title": "title", "steps": ["steps 1"]}
    assert len(server.requests) == 2


def test_the_json_object_form_for_servers_that_take_it(server: OpenAITestServer) -> None:
    loaded = workflow_on(server, [{"name": "planner", "output": {"schema": PLAN}}])
    document = yaml.safe_load(loaded.source)
    document["providers"]["test"]["response_format"] = "json_object"
    result = agentops.run(load_workflow_text(yaml.safe_dump(document)))
    assert result.ok
    assert server.requests[0].body["response_format"] == {"type": "json_object", "schema": PLAN}
    document["providers"]["test"]["response_format"] = "none"
    server.requests.clear()
    result = agentops.run(load_workflow_text(yaml.safe_dump(document)))
    # Nothing asks the server for JSON, so it answers prose: caught here, re-asked, then failed.
    assert "response_format" not in server.requests[0].body
    assert result.agents["planner"].status is AgentStatus.FAILED
    assert result.agents["planner"].error.startswith(
        "the answer does not follow the output schema after 1 re-ask: the answer is not JSON"
    )  # type: ignore[union-attr]


def test_a_compatible_server_that_refuses_the_json_schema_form_gets_the_json_object_form(
    server: OpenAITestServer,
) -> None:
    def refuses(body: dict[str, Any]) -> bool:
        return body.get("response_format", {}).get("type") == "json_schema"

    server.inject_for(
        refuses,
        kind="status",
        status=422,
        message="response_format: Input should be 'text' or 'json_object'",
    )
    result = agentops.run(
        workflow_on(
            server,
            [
                {"name": "planner", "output": {"schema": PLAN}},
                {"name": "other", "output": {"schema": PLAN}},
            ],
            policies={"max_concurrency": 1},
        )
    )
    assert result.ok, {n: a.error for n, a in result.agents.items()}
    first = result.agents["planner"].attempts[0]
    assert first.error_type == "ResponseFormatRefusedError" and first.error is not None
    assert "so the next attempt sends the schema as {type: json_object, schema}" in first.error
    # The switch holds for the provider: the next agent sends the json_object form at once.
    assert [r.body["response_format"]["type"] for r in server.requests] == [
        "json_schema",
        "json_object",
        "json_object",
    ]


def test_a_server_that_refuses_an_explicit_json_schema_form_gets_a_hint_naming_the_setting(
    server: OpenAITestServer,
) -> None:
    server.inject_for(
        lambda body: "response_format" in body,
        kind="status",
        status=422,
        message="response_format: Input should be 'text' or 'json_object'",
    )
    loaded = workflow_on(server, [{"name": "planner", "output": {"schema": PLAN}}])
    document = yaml.safe_load(loaded.source)
    document["providers"]["test"]["response_format"] = "json_schema"
    result = agentops.run(load_workflow_text(yaml.safe_dump(document)))
    error = result.agents["planner"].error or ""
    assert len(server.requests) == 1  # a bad request: not retried
    assert "Input should be 'text' or 'json_object'" in error
    assert error.endswith(
        "set providers.test.response_format: json_object (llama-cpp-python's server) or none "
        "(the answer is then only validated here)"
    )


def test_the_fake_provider_answers_a_schema_by_default() -> None:
    fake = FakeProvider()
    result = agentops.run(load_workflow_text(structured_flow()), provider=fake)
    assert result.ok
    assert result.agents["planner"].value == {"title": "title", "steps": ["steps 1"]}
    assert result.agents["writer"].output == "ok"
    assert (
        fake.requests_for("writer")[0].messages[-1].content
        == "Write about title; start with steps 1."
    )
