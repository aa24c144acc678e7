"""Hostile input through the command line: generated and mutated workflow files,
``--input`` values and arguments. Whatever comes in, the answer is success or a
clear error (exit 2, ``file:line:col`` for a bad file) — never a traceback.

The loader's own fuzzing lives in test_spec_loader.py; this goes through
``agentops validate / plan / run`` (``agentops.cli.main`` in-process for the bulk,
a real process for the nastiest files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import KEY, Outcome, invoke, run_agentops, workflow_document

pytestmark = pytest.mark.usefixtures("provider_key")

# No "explain" phase: on a failure it reruns hundreds of CLI calls for little extra insight.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
FUZZ = settings(
    max_examples=150, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow]
)


def assert_no_crash(outcome: Outcome) -> None:
    assert "Traceback" not in outcome.output, outcome.output
    assert "internal error" not in outcome.output, outcome.output
    assert outcome.code in (0, 1, 2), outcome


def located(path: Path) -> re.Pattern[str]:
    """A diagnostic line for ``path``: FILE:LINE:COL: message (``error: `` in front on stderr)."""
    return re.compile(rf"^(?:error: )?{re.escape(str(path))}:\d+:\d+: \S")


def assert_invalid_file(outcome: Outcome, path: Path) -> None:
    assert_no_crash(outcome)
    assert outcome.code == 2, outcome
    lines = [line for line in outcome.output.splitlines() if line.strip()]
    assert lines and all(located(path).match(line) for line in lines), outcome.output


# --- generated workflows ---------------------------------------------------------------------

# Agent names must start with an ASCII letter or "_"; the rest may be any word character.
_NAME_TAIL = st.text(alphabet=st.sampled_from("abcxyz_-0129éßøДж研究者Ωλ"), max_size=8)
_AGENT_NAME = st.builds(
    lambda head, tail: head + tail, st.sampled_from("abqzAQZ_"), _NAME_TAIL
).filter(lambda n: n != "inputs")
_INPUT_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n != "inputs")
_FREE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"]) | st.sampled_from("\n\t"),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() and "{{" not in t and "}}" not in t)


@st.composite
def workflow_documents(draw: st.DrawFn, base_url: str = "http://127.0.0.1:9/v1") -> dict[str, Any]:
    """A valid workflow: a DAG of uniquely named agents, inputs with and without defaults."""
    names = draw(st.lists(_AGENT_NAME, min_size=1, max_size=6, unique=True))
    inputs: dict[str, Any] = {}
    for name in draw(st.lists(_INPUT_NAME, max_size=3, unique=True)):
        inputs[name] = draw(
            st.one_of(
                st.none(),
                _FREE_TEXT,
                st.integers(-5, 5),
                st.fixed_dictionaries({"default": _FREE_TEXT}),
            )
        )
    agents = []
    for index, name in enumerate(names):
        agent: dict[str, Any] = {"name": name}
        earlier = names[:index]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        if deps:
            agent["depends_on"] = deps if draw(st.booleans()) else {"any": deps}
        task = f"agent {name}: " + draw(_FREE_TEXT)
        if deps and draw(st.booleans()):
            task += " {{ " + deps[0] + ".output }}"
        if inputs and draw(st.booleans()):
            task += " {{ inputs." + draw(st.sampled_from(sorted(inputs))) + " }}"
        agent["task"] = task
        agents.append(agent)
    document = workflow_document(
        base_url, agents, name=draw(_FREE_TEXT).strip() or "w", policies={"retries": 0}
    )
    if inputs:
        document["inputs"] = inputs
    return document


def required_inputs(document: dict[str, Any]) -> list[str]:
    return [name for name, value in document.get("inputs", {}).items() if value is None]


_MUTATIONS = st.sampled_from(
    [
        ":",
        "- ",
        "  ",
        "\t",
        "&a ",
        "*a",
        "*nope",
        "!!python/object:os.system ",
        "{",
        "[",
        "]",
        "}",
        "'",
        '"',
        "\n",
        "\n  - name: a\n",
        "depnds_on: x\n",
        "retries: -1\n",
        "cost_cap: lots\n",
        "{{ ",
        " }}",
        "{{ nobody.output }}",
        "{{ inputs.missing }}",
        "\x00",
        "\x07",
        "\ufeff",
        "é",
        "🙂",
        "---\n",
        "<<: *a\n",
        "on: yes\n",
        "~",
        "null",
        "0x1F",
        "1e999",
    ]
)


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    text = yaml.safe_dump(draw(workflow_documents()), sort_keys=False, allow_unicode=True)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 8))
        text = text[:at] + draw(_MUTATIONS) + text[at + cut :]
    return text


def input_args(document: dict[str, Any], values: list[str]) -> list[str]:
    args: list[str] = []
    for name, value in zip(required_inputs(document), values, strict=False):
        args += ["--input", f"{name}={value}"]
    return args


@FUZZ
@given(document=workflow_documents(), values=st.lists(_FREE_TEXT, min_size=3, max_size=3))
def test_generated_valid_workflows_validate_and_plan(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any], values: list[str]
) -> None:
    path = tmp_path_factory.mktemp("valid") / "flow ünï 🙂.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    validated = invoke("validate", path)
    assert (validated.code, validated.stdout) == (0, f"OK {path}\n"), validated
    planned = invoke("plan", path, *input_args(document, values), "--json")
    assert_no_crash(planned)
    assert planned.code == 0, planned
    plan = json.loads(planned.stdout)
    assert sorted(a["name"] for a in plan["agents"]) == sorted(
        a["name"] for a in document["agents"]
    )


@FUZZ
@given(text=mutated_text())
def test_mutated_workflows_fail_with_located_errors_in_every_command(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("mutated") / "flow.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    validated = invoke("validate", path)
    assert_no_crash(validated)
    if validated.code == 0:
        planned = invoke("plan", path)  # may still lack required inputs: a one-line usage error
        assert_no_crash(planned)
        assert planned.code == 0 or (planned.code == 2 and planned.stderr.startswith("error: ")), (
            planned
        )
        return
    assert_invalid_file(validated, path)
    diagnostics = validated.stdout.splitlines()
    for command in ("plan", "run"):
        outcome = invoke(command, path)
        assert_invalid_file(outcome, path)
        # The same problems, whichever command found them.
        assert [
            line.removeprefix("error: ") for line in outcome.stderr.splitlines() if line.strip()
        ] == diagnostics


@FUZZ
@given(
    document=workflow_documents(),
    pairs=st.lists(
        st.one_of(
            st.text(max_size=20),  # anything at all, '=' or not
            st.builds(lambda k, v: f"{k}={v}", _INPUT_NAME, st.text(max_size=20)),
        ),
        max_size=4,
    ),
)
def test_arbitrary_input_arguments_are_accepted_or_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any], pairs: list[str]
) -> None:
    path = tmp_path_factory.mktemp("inputs") / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    args = [part for pair in pairs for part in ("--input", pair)]
    outcome = invoke("plan", path, *args)
    assert_no_crash(outcome)
    if outcome.code != 0:
        assert outcome.code == 2
        assert outcome.stderr.startswith("error: ") and "input" in outcome.stderr, outcome
        assert len(outcome.stderr.strip().splitlines()) == 1, outcome


_COMMANDS = [
    "run",
    "plan",
    "validate",
    "graph",
    "resume",
    "show-workflow-run",
    "list-workflow-runs",
    "list-runs",
]
_ARG_WORDS = st.sampled_from(
    [
        *_COMMANDS,
        "--input",
        "-i",
        "--db",
        "--cost-cap",
        "--json",
        "--format",
        "--limit",
        "--workflow",
        "-1",
        "0",
        "1",
        "nan",
        "inf",
        "1e309",
        "",
        "=",
        "a=b",
        "dot",
        "svg",
        "@DIR",
        "@GARBAGE",
        "@MISSING",
        "@VALID",
        "ünï🙂",
        "\u202e",
        "--",
        "-",
        "x" * 300,
    ]
)


@FUZZ
@given(
    command=st.sampled_from(_COMMANDS),
    target=st.sampled_from(
        ["@VALID", "@MISSING", "@DIR", "@GARBAGE", "1", "-1", "99999999999999999999", "ünï🙂", ""]
    ),
    words=st.lists(_ARG_WORDS, max_size=5),
)
def test_arbitrary_argument_lists_never_crash(
    tmp_path_factory: pytest.TempPathFactory, command: str, target: str, words: list[str]
) -> None:
    """Commands, options and junk in any order: an answer or a usage error, never a traceback.
    No workflow here reaches a model (its provider points at a closed port)."""
    where = tmp_path_factory.mktemp("args")
    garbage = where / "garbage.db"
    garbage.write_bytes(b"this is not a database\x00" * 100)
    valid = where / "valid.yaml"
    document = workflow_document("http://127.0.0.1:9/v1", [{"name": "a"}], policies={"retries": 0})
    valid.write_text(yaml.safe_dump(document), encoding="utf-8")
    substitutes = {
        "@DIR": str(where),
        "@GARBAGE": str(garbage),
        "@MISSING": str(where / "missing.yaml"),
        "@VALID": str(valid),
    }
    outcome = invoke(*[substitutes.get(word, word) for word in [command, target, *words]])
    assert_no_crash(outcome)


@settings(
    max_examples=25, deadline=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow]
)
@given(document=workflow_documents(), values=st.lists(_FREE_TEXT, min_size=3, max_size=3))
def test_generated_workflows_run_end_to_end(
    tmp_path_factory: pytest.TempPathFactory,
    server: OpenAITestServer,
    document: dict[str, Any],
    values: list[str],
) -> None:
    """Unicode names, odd input values and every dependency form, through ``agentops run``."""
    document["providers"]["test"]["base_url"] = server.base_url
    path = tmp_path_factory.mktemp("runs") / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    outcome = invoke("run", path, *input_args(document, values), "--db", path.with_suffix(".db"))
    assert_no_crash(outcome)
    assert outcome.code == 0, outcome
    assert KEY not in outcome.output


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.0) as running:
        yield running


# --- the nastiest files, through a real process ---------------------------------------------------


def alias_bomb() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    return ("\n".join(lines) + "\nname: bomb\nagents: *a9\n").encode()


HOSTILE_FILES = {
    "alias-bomb": alias_bomb,
    "binary-junk": lambda: bytes(range(256)) * 64,
    "deep-nesting": lambda: b"name: deep\nagents: " + b"[" * 200_000 + b"]" * 200_000 + b"\n",
    "deep-mappings": lambda: (
        b"name: deep\nagents:\n  - " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n"
    ),
    "huge": lambda: b"name: huge\ndescription: " + b"x" * (6 * 1024 * 1024) + b"\n",
    "not-utf8": lambda: "name: caf\xe9\nagents: []\n".encode("latin-1"),
    "unicode-garbage": lambda: (
        "name: 🙂\nagents:\n  - name: 研究\n    model: m\n    task: \u202etxt.exe\n"
    ).encode(),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_FILES))
def test_hostile_files_through_a_real_process(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind} ✨.yaml"
    path.write_bytes(HOSTILE_FILES[kind]())
    for command in ("validate", "plan", "run"):
        completed = run_agentops(command, path)
        outcome = Outcome(completed.returncode, completed.stdout, completed.stderr)
        assert_invalid_file(outcome, path)
        assert len(outcome.output.splitlines()) <= 5, (
            outcome.output
        )  # a handful of lines, not a dump


def test_unicode_names_everywhere_run_in_a_real_process(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    agents = [
        {"name": "r_研究者"},
        {
            "name": "x_Ωmega-β",
            "depends_on": ["r_研究者"],
            "task": "agent x_Ωmega-β: {{ r_研究者.output }}",
        },
    ]
    document = workflow_document(
        server.base_url, agents, name="ünïcødé 🚀 workflow", policies={"retries": 0}
    )
    path = tmp_path / "ünï 🚀.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    completed = run_agentops("run", path, "--db", tmp_path / "h 🚀.db")
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    assert "x_Ωmega-β" in completed.stdout and "r_研究者" in completed.stdout
