"""The loader: what loads, and every validation rule with its message and position."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentops.errors import UsageError, WorkflowError
from agentops.workflow import yaml_source
from agentops.workflow.graph import AnyOf, Ref, parse_condition
from agentops.workflow.loader import (
    LoadedWorkflow,
    check_workflow,
    load_workflow,
    load_workflow_text,
    validate_workflow,
)
from agentops.workflow.spec import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_TOKENS,
    Agent,
    InputSpec,
    Workflow,
)
from tests.support.spec import (
    SKETCH_PARALLEL,
    SKETCH_SAMPLE,
    SKETCH_SCHEMA,
    load,
    only_problem,
    problems,
)

# --- what loads ------------------------------------------------------------------------


def test_sketch_sample_workflow_loads_unchanged() -> None:
    workflow = load(SKETCH_SAMPLE).workflow
    assert workflow.name == "research_summary"
    assert workflow.description == "Simple two-agent workflow example"
    assert workflow.policies.retries == 2
    assert workflow.policies.cost_cap == 1.0
    assert [a.name for a in workflow.agents] == ["researcher", "summarizer"]
    assert workflow.agent("summarizer").depends_on == "researcher"
    assert workflow.agent("summarizer").model == "gpt-4o-mini"


def test_sketch_parallel_workflow_loads_unchanged() -> None:
    workflow = load(SKETCH_PARALLEL).workflow
    assert len(workflow.agents) == 6
    assert workflow.policies.cost_cap == 2.0
    assert workflow.agent("report_beautifier").depends_on == ["data_analyzer", "trend_spotter"]


def test_sketch_schema_block_has_no_key_or_type_problem_only_its_placeholder_dependency() -> None:
    # The schema block names a dependency that does not exist; everything else is accepted.
    assert problems(SKETCH_SCHEMA) == [
        "flow.yaml:11:18: agent 'agent_name' depends on unknown agent 'single_dependency'"
    ]
    extended = SKETCH_SCHEMA + "  - name: single_dependency\n    model: gpt-4o\n    task: t\n"
    assert load(extended).workflow.agent("agent_name").depends_on == "single_dependency"


FULL = """\
name: full
description: every field
policies:
  retries: 3
  cost_cap: 0.5
  max_concurrency: 4
  timeout: 120
  max_tokens: 256
  temperature: 0.2
  backoff: {base: 0.5, max: 10}
inputs:
  topic:
  audience: engineers
  tone: {description: "how it sounds", default: dry}
  length: {required: true}
prices:
  my-model: {input: 1.5, output: 6}
providers:
  gateway: {type: openai, base_url: "http://127.0.0.1:9999/v1", api_key_env: GATEWAY_KEY}
agents:
  - name: a
    model: my-model
    provider: gateway
    system: "You write for {{ inputs.audience }}."
    temperature: 1.5
    max_tokens: 100
    timeout: 30
    retries: 0
    task: "About {{ inputs.topic }}, {{ inputs.tone }}, {{ inputs.length }} words"
  - name: b
    model: gpt-4o
    provider: local
    depends_on: {any: [a, {all: [a]}]}
    task: "{{ a.output }}"
"""


def test_every_documented_field_loads() -> None:
    workflow = load(FULL).workflow
    policies = workflow.policies
    assert (policies.retries, policies.cost_cap, policies.max_concurrency) == (3, 0.5, 4)
    assert (policies.timeout, policies.max_tokens, policies.temperature) == (120, 256, 0.2)
    assert (policies.backoff.base, policies.backoff.max) == (0.5, 10)
    assert workflow.inputs["topic"] is None
    assert workflow.inputs["audience"] == "engineers"
    assert workflow.inputs["tone"] == InputSpec(description="how it sounds", default="dry")
    assert workflow.prices["my-model"].output == 6
    assert workflow.providers["gateway"].api_key_env == "GATEWAY_KEY"
    a = workflow.agent("a")
    assert (a.provider, a.temperature, a.max_tokens, a.timeout, a.retries) == (
        "gateway",
        1.5,
        100,
        30,
        0,
    )
    assert workflow.effective_retries(a) == 0
    assert workflow.effective_retries(workflow.agent("b")) == 3


def test_defaults_come_from_spec() -> None:
    workflow = load("name: x\nagents: [{name: a, model: m, task: t}]\n").workflow
    assert workflow.policies.max_concurrency == DEFAULT_MAX_CONCURRENCY
    assert workflow.policies.max_tokens == DEFAULT_MAX_TOKENS
    assert workflow.policies.cost_cap is None
    assert workflow.inputs == {} and workflow.prices == {} and workflow.providers == {}


def test_empty_sections_mean_defaults() -> None:
    text = "name: x\npolicies:\n  # retries: 5\ninputs:\nprices:\nproviders:\nagents: [{name: a, model: m, task: t}]\n"
    workflow = load(text).workflow
    assert workflow.policies.retries == 2 and workflow.inputs == {}


@pytest.mark.parametrize(
    ("depends_on", "expected"),
    [
        ("a", Ref("a")),
        ("[a]", Ref("a")),
        ("'a || b'", AnyOf((Ref("a"), Ref("b")))),
        ("{any: [a, b]}", AnyOf((Ref("a"), Ref("b")))),
    ],
)
def test_depends_on_forms(depends_on: str, expected: object) -> None:
    text = f"""\
        name: x
        agents:
          - {{name: a, model: m, task: t}}
          - {{name: b, model: m, task: t}}
          - name: c
            model: m
            task: t
            depends_on: {depends_on}
        """
    workflow = load(text).workflow
    assert parse_condition(workflow.agent("c").depends_on) == expected


def test_anchors_and_merge_keys_share_settings() -> None:
    text = """\
        name: x
        agents:
          - &base {name: a, model: gpt-4o-mini, task: t, temperature: 0.1}
          - <<: *base
            name: b
            task: other
        """
    workflow = load(text).workflow
    b = workflow.agent("b")
    assert (b.model, b.temperature, b.task) == ("gpt-4o-mini", 0.1, "other")


def test_dates_and_numbers_where_text_is_expected() -> None:
    workflow = load(
        "name: x\ndescription: 2024-05-01\nagents: [{name: a, model: m, task: t}]\n"
    ).workflow
    assert workflow.description == "2024-05-01"


def test_loaded_workflow_records_source_and_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(SKETCH_SAMPLE, encoding="utf-8")
    loaded = load_workflow(path)
    assert loaded == LoadedWorkflow(loaded.workflow, SKETCH_SAMPLE, str(path))
    assert load_workflow_text(SKETCH_SAMPLE).path is None


def test_byte_order_marks_are_accepted(tmp_path: Path) -> None:
    utf8 = tmp_path / "bom8.yaml"
    utf8.write_bytes(b"\xef\xbb\xbf" + SKETCH_SAMPLE.encode())
    utf16 = tmp_path / "bom16.yaml"
    utf16.write_bytes(SKETCH_SAMPLE.encode("utf-16"))
    assert (
        load_workflow(utf8).workflow.name
        == load_workflow(utf16).workflow.name
        == "research_summary"
    )


# --- keys and types ------------------------------------------------------------------------


def test_unknown_agent_key_suggests_the_right_one() -> None:
    text = SKETCH_SAMPLE.replace("    depends_on: researcher", "    depnds_on: researcher")
    assert problems(text)[0] == (
        "flow.yaml:13:5: unknown key 'depnds_on' in agent 'summarizer'; did you mean 'depends_on'?"
    )


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("needs", "depends_on"),
        ("dependencies", "depends_on"),
        ("prompt", "task"),
        ("Model", "model"),
    ],
)
def test_keys_from_other_tools_get_ours_suggested(key: str, suggestion: str) -> None:
    text = f"name: x\nagents:\n  - name: a\n    model: m\n    task: t\n    {key}: v\n"
    found = problems(text)
    assert f"flow.yaml:6:5: unknown key '{key}' in agent 'a'; did you mean '{suggestion}'?" in found


def test_unknown_key_without_a_close_match_lists_the_allowed_ones() -> None:
    assert only_problem("name: x\nzebra: 1\nagents: [{name: a, model: m, task: t}]\n") == (
        "flow.yaml:2:1: unknown key 'zebra' at the top level; allowed keys: "
        "name, description, policies, inputs, prices, providers, tools, agents, loops"
    )


def test_unknown_keys_in_nested_sections() -> None:
    text = """\
        name: x
        policies:
          max_concurency: 3
          backoff: {bse: 1}
        providers:
          p: {type: openai, url: x}
        agents: [{name: a, model: m, task: t}]
        """
    assert problems(text) == [
        "flow.yaml:3:3: unknown key 'max_concurency' in policies; did you mean 'max_concurrency'?",
        "flow.yaml:4:13: unknown key 'bse' in policies.backoff; did you mean 'base'?",
        "flow.yaml:6:21: unknown key 'url' in providers.p; did you mean 'base_url'?",
    ]


def test_missing_required_keys() -> None:
    text = """\
        description: no name
        agents:
          - name: a
          - model: m
            task: t
        """
    assert problems(text) == [
        "flow.yaml:1:1: the workflow has no 'name'; add name: <a name>",
        "flow.yaml:3:5: agent 'a' is missing 'model'; add model: <model name, e.g. gpt-4o-mini>",
        "flow.yaml:3:5: agent 'a' is missing 'task'; add task: <what the agent should do>",
        "flow.yaml:4:5: agent #2 is missing 'name'; add name: <a name>",
    ]


@pytest.mark.parametrize("agents", ["agents: []", "agents:", "agents: ~"])
def test_empty_agent_list(agents: str) -> None:
    column = 1 if agents == "agents:" else 9
    assert only_problem(f"name: x\n{agents}\n") == (
        f"flow.yaml:2:{column}: agents is empty; add at least one agent with name, model and task"
    )


def test_wrong_types_and_ranges() -> None:
    text = """\
        name: x
        policies:
          retries: three
          cost_cap: -1
          max_concurrency: 2.5
          temperature: 3
        agents:
          - name: a
            model: 4
            task: no
            max_tokens: 0
            timeout: 0
          - a string
        """
    assert problems(text) == [
        "flow.yaml:3:12: policies.retries must be a whole number (got text 'three')",
        "flow.yaml:4:13: policies.cost_cap must be at least 0 (got -1)",
        "flow.yaml:5:20: policies.max_concurrency must be a whole number (got 2.5)",
        "flow.yaml:6:16: policies.temperature must be at most 2 (got 3)",
        "flow.yaml:9:12: agent 'a': model must be text (got 4); YAML read it as a number, so put it in quotes",
        "flow.yaml:10:11: agent 'a': task must be text (got false); YAML read it as a boolean, so put it in quotes",
        "flow.yaml:11:17: agent 'a': max_tokens must be at least 1 (got 0)",
        "flow.yaml:12:14: agent 'a': timeout must be more than 0 (got 0)",
        "flow.yaml:13:5: agent #2 must be a mapping (key: value) (got text 'a string')",
    ]


def test_booleans_are_not_numbers() -> None:
    # pydantic would take `retries: yes` as 1; in a workflow file that is a mistake.
    text = "name: x\npolicies: {retries: yes, backoff: {max: off}}\nagents: [{name: a, model: m, task: t, temperature: true}]\n"
    assert problems(text) == [
        "flow.yaml:2:21: policies.retries must be a whole number (got true)",
        "flow.yaml:2:41: policies.backoff.max must be a number (got false)",
        "flow.yaml:3:52: agent 'a': temperature must be a number (got true)",
    ]
    assert load(
        "name: x\ninputs: {flag: {default: true}}\nagents: [{name: a, model: m, task: t}]\n"
    )


def test_bad_agent_name_and_empty_task() -> None:
    assert problems("name: x\nagents:\n  - {name: my agent, model: m, task: ''}\n") == [
        "flow.yaml:3:12: agent name 'my agent' is not valid: start with a letter or '_' and use only "
        "letters, digits, '_' and '-'",
        "flow.yaml:3:38: agent 'my agent': task must not be empty",
    ]


def test_provider_type_literal_suggests() -> None:
    text = "name: x\nproviders:\n  p: {type: azur}\nagents: [{name: a, model: m, task: t}]\n"
    assert only_problem(text) == (
        "flow.yaml:3:13: providers.p.type must be one of 'openai', 'azure' or 'local' (got text 'azur'); "
        "did you mean 'azure'?"
    )


def test_inputs_of_the_wrong_shape() -> None:
    text = """\
        name: x
        inputs:
          tags: [a, b]
          tone: {defualt: dry}
          size: {default: [1]}
        agents: [{name: a, model: m, task: t}]
        """
    assert problems(text) == [
        "flow.yaml:3:9: input 'tags' must be a default value (text, a number or true/false), empty (required), "
        "or a mapping with description, default, required (got a list)",
        "flow.yaml:4:10: unknown key 'defualt' in inputs.tone; did you mean 'default'?",
        "flow.yaml:5:19: inputs.size.default must be text, a number or true or false (got a list)",
    ]


def test_input_with_default_and_required_true_and_bad_input_name() -> None:
    text = "name: x\ninputs:\n  a: {default: 1, required: true}\n  my-topic: z\nagents: [{name: a, model: m, task: t}]\n"
    assert problems(text) == [
        "flow.yaml:3:3: input 'a' has a default and required: true; remove one (an input with a default is optional)",
        "flow.yaml:4:3: input name 'my-topic' cannot be used in {{ inputs.NAME }}; use letters, digits and '_' "
        "(not starting with a digit)",
    ]


# --- agents and dependencies -------------------------------------------------------------------


def test_duplicate_agent_names() -> None:
    text = "name: x\nagents:\n  - {name: a, model: m, task: t}\n  - {name: a, model: m, task: t}\n"
    assert only_problem(text) == (
        "flow.yaml:4:12: duplicate agent name 'a' (also agent #1); give each agent a unique name"
    )


def test_agent_named_inputs_is_reserved() -> None:
    assert only_problem("name: x\nagents:\n  - {name: inputs, model: m, task: t}\n") == (
        "flow.yaml:3:12: agent name 'inputs' is reserved for {{ inputs.NAME }} placeholders; rename the agent"
    )


def test_unknown_dependency_points_at_the_name_wherever_it_is_written() -> None:
    text = """\
        name: x
        agents:
          - {name: researcher, model: m, task: t}
          - {name: b, model: m, task: t, depends_on: reseacher}
          - {name: c, model: m, task: t, depends_on: [researcher, writter]}
          - {name: d, model: m, task: t, depends_on: "researcher && (b || wrter)"}
          - {name: e, model: m, task: t, depends_on: {any: [b, {all: [zzz]}]}}
          - {name: f, model: m, task: t, depends_on: "b c"}
        """
    assert problems(text) == [
        "flow.yaml:4:46: agent 'b' depends on unknown agent 'reseacher'; did you mean 'researcher'?",
        "flow.yaml:5:59: agent 'c' depends on unknown agent 'writter'; known agents: researcher, b, d, e, f",
        "flow.yaml:6:67: agent 'd' depends on unknown agent 'wrter'; known agents: researcher, b, c, e, f",
        "flow.yaml:7:63: agent 'e' depends on unknown agent 'zzz'; known agents: researcher, b, c, d, f",
        "flow.yaml:8:47: agent 'f' depends on unknown agent 'b c'; for several dependencies write a list "
        '[b, c] or an expression "b && c"',
    ]


def test_cycle_is_printed_as_a_path() -> None:
    text = """\
        name: x
        agents:
          - {name: a, model: m, task: t, depends_on: b}
          - {name: b, model: m, task: t, depends_on: c}
          - {name: c, model: m, task: t, depends_on: [a]}
        """
    assert only_problem(text) == (
        "flow.yaml:3:46: dependency cycle a → b → c → a (each agent depends on the next); "
        "remove one of these dependencies"
    )


def test_self_dependency_and_separate_cycles_are_all_reported() -> None:
    text = """\
        name: x
        agents:
          - {name: a, model: m, task: t, depends_on: a}
          - {name: b, model: m, task: t, depends_on: "c || a"}
          - {name: c, model: m, task: t, depends_on: b}
        """
    assert problems(text) == [
        "flow.yaml:3:46: agent 'a' depends on itself; remove 'a' from its depends_on",
        "flow.yaml:4:47: dependency cycle b → c → b (each agent depends on the next); "
        "remove one of these dependencies",
    ]


@pytest.mark.parametrize(
    ("depends_on", "message"),
    [
        ('"a && (b"', "missing ')' in dependency expression 'a && (b'"),
        ('"a &&"', "dependency expression 'a &&' ends too early"),
        ('"a & b"', "cannot read depends_on 'a & b': join names with && (all of) or || (any of)"),
        (
            "{anyof: [a]}",
            "a dependency mapping takes exactly one key, 'all' or 'any' (found anyof)",
        ),
        ("{any: []}", "'any:' takes a non-empty list of dependencies"),
        ("5", "depends_on must be a name, a list of names, {all: [...]} or {any: [...]}, not int"),
        ("[a, [b]]", "a dependency must be a name or a mapping, not list"),
        ('""', "depends_on has an empty name; write an agent name or remove it"),
    ],
)
def test_unparseable_dependencies(depends_on: str, message: str) -> None:
    text = f"name: x\nagents:\n  - {{name: a, model: m, task: t}}\n  - name: b\n    model: m\n    task: t\n    depends_on: {depends_on}\n"
    found = only_problem(text)
    # A quoted value's text starts one column after the quote.
    column = 18 if depends_on == '"a & b"' else 17
    assert found.startswith(f"flow.yaml:7:{column}: agent 'b'")
    assert message in found


def test_deeply_nested_expression_is_refused_not_crashed() -> None:
    expression = "(" * 5000 + "a" + ")" * 5000
    text = f"name: x\nagents:\n  - {{name: a, model: m, task: t}}\n  - {{name: b, model: m, task: t, depends_on: '{expression}'}}\n"
    assert "nests parentheses deeper than" in only_problem(text)


def test_unknown_provider_suggests_builtin_or_declared() -> None:
    text = """\
        name: x
        providers:
          gateway: {base_url: "http://127.0.0.1:1/v1"}
        agents:
          - {name: a, model: m, task: t, provider: opena}
          - {name: b, model: m, task: t, provider: gatewy}
          - {name: c, model: m, task: t, provider: gateway}
          - {name: d, model: m, task: t, provider: azure}
        """
    assert problems(text) == [
        "flow.yaml:5:44: agent 'a': unknown provider 'opena'; did you mean 'openai'? "
        "(use openai, azure, local or a name defined under providers:)",
        "flow.yaml:6:44: agent 'b': unknown provider 'gatewy'; did you mean 'gateway'? "
        "(use openai, azure, local or a name defined under providers:)",
    ]


def test_all_problems_are_reported_together_in_file_order() -> None:
    text = """\
        name: x
        policies: {retries: -1}
        agents:
          - {name: a, model: m, task: "{{ b.output }}", depnds_on: b}
          - {name: a, model: m, task: t, provider: nope}
          - {name: c, model: m, task: t, depends_on: [zz]}
        """
    found = problems(text)
    assert [line.split(": ", 1)[0] for line in found] == [
        "flow.yaml:2:21",
        "flow.yaml:4:32",
        "flow.yaml:4:49",
        "flow.yaml:5:12",
        "flow.yaml:5:44",
        "flow.yaml:6:47",
    ]


# --- hostile and malformed input: one clear line, never a traceback ---------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            "flow.yaml:1:1: the file is empty; a workflow needs at least name: and agents: (see examples/)",
        ),
        ("# only a comment\n", "flow.yaml:1:1: the file is empty"),
        (
            "- a\n- b\n",
            "flow.yaml:1:1: the top level is a list, but a workflow is a mapping of keys",
        ),
        (
            "just text\n",
            "flow.yaml:1:1: the top level is text 'just text', but a workflow is a mapping",
        ),
        (
            "name: x\nagents:\n\t- name: a\n",
            "flow.yaml:3:1: tab character: YAML does not allow tabs here",
        ),
        (
            "name: x\nname: y\nagents: [{name: a, model: m, task: t}]\n",
            "flow.yaml:2:1: duplicate key 'name' (first given on line 1); remove one of them",
        ),
        ("name: a\n---\nname: b\n", "flow.yaml:2:1: the file holds more than one YAML document"),
        ("name: *nothing\n", "flow.yaml:1:7: invalid YAML: *nothing refers to no &nothing anchor"),
        (
            'name: "open\nagents: []\n',
            "flow.yaml:3:1: invalid YAML: the text ends inside a quoted value",
        ),
        ("name: a: b\n", "flow.yaml:1:8: invalid YAML: unexpected ':'"),
        ("name: x\x07\n", "flow.yaml:1:8: the file contains a control character (U+0007)"),
        (
            "name: !!python/object:os.system x\nagents: [{name: a, model: m, task: t}]\n",
            "flow.yaml:1:7: unsupported YAML tag !!python/object:os.system; remove it",
        ),
        (
            "name: x\non: push\nagents: [{name: a, model: m, task: t}]\n",
            "flow.yaml:2:1: key 'on' is read by YAML as a boolean; put it in quotes: \"on\"",
        ),
        (
            "name: x\n[a]: 1\nagents: [{name: a, model: m, task: t}]\n",
            "flow.yaml:2:1: a key must be a plain name, not a list or mapping",
        ),
    ],
)
def test_malformed_yaml_is_one_clear_line(text: str, expected: str) -> None:
    found = problems(text, dedent=False)
    assert found[0].startswith(expected), found


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    found = problems("\n".join(lines) + "\n", dedent=False)
    assert len(found) == 1 and "aliases (*name) expand to more than" in found[0]


def test_recursive_alias_and_deep_nesting_are_refused() -> None:
    assert "nesting deeper than" in only_problem("a: &a [*a]\n")
    assert "nesting deeper than" in only_problem("x: " + "[" * 100_000 + "]" * 100_000)
    assert "nesting deeper than" in only_problem("x: " + "{a: " * 3000 + "1" + "}" * 3000)


def test_too_many_values_is_refused() -> None:
    assert "values, the limit for a workflow" in only_problem("x: [" + "1," * 310_000 + "]\n")


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # 50 MB of one long value
        handle.write(b"name: ")
        handle.write(b"a" * (50 * 1024 * 1024))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(big)
    assert str(caught.value) == (
        f"{big}:1:1: the file is larger than 5 MB, the limit for workflow files; "
        "split it or move large text out of it"
    )


def test_binary_and_non_utf8_files(tmp_path: Path) -> None:
    binary = tmp_path / "junk.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(binary)
    assert (
        str(caught.value)
        == f"{binary}:1:1: the file contains NUL bytes; it looks binary, not a YAML text file"
    )
    with pytest.raises(WorkflowError) as caught:
        load_workflow(latin)
    assert str(caught.value) == (
        f"{latin}:2:17: the file is not valid UTF-8 (byte 0xe9); save it with UTF-8 encoding"
    )


def test_unreadable_paths_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_workflow(tmp_path / "missing.yaml")
    with pytest.raises(UsageError, match="is a directory"):
        load_workflow(tmp_path)


# --- workflows built in Python -----------------------------------------------------------------


def test_check_workflow_on_python_objects() -> None:
    workflow = Workflow(
        name="py",
        agents=[
            Agent(name="a", model="m", task="t", depends_on="b"),
            Agent(name="b", model="m", task="{{ a.output }} {{ inputs.x }}", depends_on="a"),
            Agent(name="c", model="m", task="t", depends_on="missing"),
        ],
    )
    assert check_workflow(workflow) == [
        (
            ("agents", 2, "depends_on"),
            "agent 'c' depends on unknown agent 'missing'; known agents: a, b",
        ),
        (
            ("agents", 0, "depends_on"),
            "dependency cycle a → b → a (each agent depends on the next); remove one of these dependencies",
        ),
        (
            ("agents", 1, "task"),
            "agent 'b': task refers to undeclared input 'x' in {{ inputs.x }}; "
            "declare it under inputs:",
        ),
    ]
    with pytest.raises(WorkflowError) as caught:
        validate_workflow(workflow)
    assert [(d.file, d.line, d.column) for d in caught.value.diagnostics] == [
        ("<workflow>", 0, 0)
    ] * 3


def test_validate_workflow_accepts_a_valid_workflow() -> None:
    validate_workflow(load(SKETCH_PARALLEL).workflow)
    assert check_workflow(load(SKETCH_PARALLEL).workflow) == []


# --- fuzzing: whatever the input, a WorkflowError or a workflow, never anything else ----------

YAMLISH = st.sampled_from(
    [
        *":-[]{},&*!|>'\"#%@`?<\t\n ~.0123456789abcxyz",
        "name",
        "agents",
        "depends_on",
        "{{",
        "}}",
        "&&",
        "||",
        "<<",
        "---",
        "\\u0000",
        "\r\n",
        "é",
        "\ufeff",
    ]
)


def _expect_clean(text: str) -> None:
    try:
        load_workflow_text(text, "fuzz.yaml")
    except WorkflowError as error:
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert (
                diagnostic.file == "fuzz.yaml" and diagnostic.line >= 1 and diagnostic.column >= 1
            )
            assert "\n" not in diagnostic.message and "Traceback" not in diagnostic.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text: str) -> None:
    _expect_clean(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAMLISH, max_size=120).map("".join))
def test_fuzz_yaml_like_text(text: str) -> None:
    _expect_clean(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_examples(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([SKETCH_SAMPLE, SKETCH_PARALLEL, FULL]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 6))
        text = text[:at] + data.draw(YAMLISH) + text[at + cut :]
    _expect_clean(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "flow.yaml"
    path.write_bytes(raw)
    try:
        load_workflow(path)
    except WorkflowError as error:
        assert all(d.file == str(path) and d.line >= 1 for d in error.diagnostics)


_KEYS = st.sampled_from(
    [
        "name",
        "agents",
        "model",
        "task",
        "depends_on",
        "inputs",
        "policies",
        "retries",
        "any",
        "all",
        "providers",
        "prices",
        "default",
        "system",
        "provider",
        "x",
    ]
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_fuzz_well_formed_yaml_of_any_shape(data: object) -> None:
    agent = {"name": "a", "model": "m", "task": "t", "depends_on": data}
    for document in (
        data,
        {"name": "x", "agents": data},
        {"name": "x", "inputs": data, "agents": [agent]},
    ):
        _expect_clean(yaml.safe_dump(document))


_PARITY_CASES = [
    *(p.read_text() for p in sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))),
    "name: x\nname: y\nagents: []\n",  # a duplicate key
    "name: x\nagents:\n  - {name: a, model: m, task: t}\n  - &b {name: b, model: m, task: !!binary aGk=}\n",
    "defaults: &d {model: m}\nagents:\n  - {<<: *d, name: a, task: 't {{ inputs.q }}'}\n  - {1: x}\n",
    "name: x\nagents:\n  - name: a\n    task: |\n      line one\n      {{ b.output }} here\n",
]


@pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="PyYAML was built without libyaml: only one path exists"
)
@pytest.mark.parametrize("text", _PARITY_CASES)
def test_the_libyaml_path_reads_exactly_what_the_pure_python_path_reads(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = yaml_source._parse_with_libyaml(text)
    assert fast is not None, "libyaml should read this file"
    monkeypatch.setattr(yaml_source.yaml, "__with_libyaml__", False)
    slow = yaml_source.parse_yaml(text)
    assert (fast.data, fast.problems) == (slow.data, slow.problems)
    positions = {path: yaml_source.node_position(node) for path, node in slow.values.items()}
    assert {
        path: yaml_source.node_position(node) for path, node in fast.values.items()
    } == positions
    assert fast.keys.keys() == slow.keys.keys()
