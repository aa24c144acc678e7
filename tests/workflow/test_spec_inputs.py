"""Workflow inputs: ``--input key=value`` parsing and resolution against ``inputs:``."""

from __future__ import annotations

import pytest

from agentops.errors import UsageError
from agentops.workflow.inputs import parse_input_args, resolve_inputs
from tests.support.spec import load

FLOW = """\
name: x
inputs:
  topic:
  audience: engineers
  tone: {description: how it sounds, default: dry}
  length: {required: true}
  note: {description: optional text, required: false}
  rounds: 3
agents:
  - {name: a, model: m, task: "{{ inputs.topic }}"}
"""


def test_parse_input_args() -> None:
    assert parse_input_args([]) == {}
    assert parse_input_args(["topic=AI chips", "q=a=b", "empty="]) == {
        "topic": "AI chips",
        "q": "a=b",
        "empty": "",
    }
    assert parse_input_args([" spaced =v"]) == {"spaced": "v"}


@pytest.mark.parametrize("bad", ["topic", "=value", " =v"])
def test_parse_input_args_rejects_malformed_pairs(bad: str) -> None:
    with pytest.raises(UsageError, match="--input expects KEY=VALUE"):
        parse_input_args([bad])


def test_parse_input_args_rejects_duplicates() -> None:
    with pytest.raises(UsageError, match="given twice"):
        parse_input_args(["a=1", "a=2"])


def test_resolve_inputs_applies_defaults() -> None:
    workflow = load(FLOW).workflow
    assert resolve_inputs(workflow, {"topic": "chips", "length": "200"}) == {
        "topic": "chips",
        "audience": "engineers",
        "tone": "dry",
        "length": "200",
        "note": None,
        "rounds": 3,
    }
    given = {"topic": "t", "length": "1", "audience": "kids", "rounds": "5"}
    assert resolve_inputs(workflow, given)["audience"] == "kids"


def test_missing_required_inputs_name_the_flag() -> None:
    workflow = load(FLOW).workflow
    with pytest.raises(UsageError) as caught:
        resolve_inputs(workflow, {})
    assert str(caught.value) == (
        "missing required inputs 'topic', 'length'; pass --input topic=VALUE --input length=VALUE"
    )
    with pytest.raises(
        UsageError, match=r"^missing required input 'length'; pass --input length=VALUE$"
    ):
        resolve_inputs(workflow, {"topic": "x"})


def test_unknown_input_suggests() -> None:
    workflow = load(FLOW).workflow
    with pytest.raises(UsageError, match=r"^unknown input 'topc'; did you mean 'topic'\?$"):
        resolve_inputs(workflow, {"topc": "x"})
    with pytest.raises(
        UsageError, match="this workflow declares: topic, audience, tone, length, note, rounds"
    ):
        resolve_inputs(workflow, {"zzzzzz": "x"})
    plain = load("name: x\nagents: [{name: a, model: m, task: t}]\n").workflow
    with pytest.raises(UsageError, match="this workflow declares no inputs"):
        resolve_inputs(plain, {"x": "1"})
    assert resolve_inputs(plain, {}) == {}
