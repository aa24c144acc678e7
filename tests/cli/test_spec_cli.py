"""``agentops validate`` and ``agentops graph``: output, streams and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from tests.support import ROOT
from tests.support.spec import EXAMPLES, SKETCH_SAMPLE

BROKEN = """\
name: broken
agents:
  - name: a
    model: m
    task: t
    depnds_on: b
  - name: b
    model: m
    task: t
    depends_on: [a, c]
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    good = tmp_path / "good.yaml"
    good.write_text(SKETCH_SAMPLE, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN, encoding="utf-8")
    return good, bad


def test_validate_ok(runner: CliRunner, files: tuple[Path, Path]) -> None:
    good, _ = files
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0
    assert result.stdout == f"OK {good}\n"


def test_validate_reports_every_problem_and_exits_2(
    runner: CliRunner, files: tuple[Path, Path]
) -> None:
    good, bad = files
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        f"OK {good}",
        f"{bad}:6:5: unknown key 'depnds_on' in agent 'a'; did you mean 'depends_on'?",
        f"{bad}:10:21: agent 'b' depends on unknown agent 'c'; known agents: a",
    ]
    assert "Traceback" not in result.output


def test_validate_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stdout == f"{tmp_path / 'nope.yaml'}: no such file; check the path\n"


def test_validate_every_example(runner: CliRunner) -> None:
    paths = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = runner.invoke(app, ["validate", *paths])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [f"OK {p}" for p in paths]


def test_validate_hostile_file_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(bytes(range(255, 0, -3)) + b"\x00")
    result = runner.invoke(app, ["validate", str(junk)])
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == 1 and result.stdout.startswith(f"{junk}:")


def test_graph_mermaid_default_and_dot(runner: CliRunner, files: tuple[Path, Path]) -> None:
    good, _ = files
    mermaid = runner.invoke(app, ["graph", str(good)])
    assert mermaid.exit_code == 0
    assert mermaid.stdout.splitlines()[0] == "flowchart TD"
    assert "    researcher --> summarizer" in mermaid.stdout.splitlines()
    dot = runner.invoke(app, ["graph", str(good), "--format", "dot"])
    assert dot.exit_code == 0
    assert (
        dot.stdout.startswith('digraph "research_summary" {')
        and '"researcher" -> "summarizer";' in dot.stdout
    )


def test_graph_of_an_invalid_file_prints_diagnostics_to_stderr(
    runner: CliRunner, files: tuple[Path, Path]
) -> None:
    _, bad = files
    result = runner.invoke(app, ["graph", str(bad)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert (
        result.stderr.splitlines()[0]
        == f"{bad}:6:5: unknown key 'depnds_on' in agent 'a'; did you mean 'depends_on'?"
    )


def test_graph_rejects_an_unknown_format(runner: CliRunner, files: tuple[Path, Path]) -> None:
    good, _ = files
    result = runner.invoke(app, ["graph", str(good), "--format", "svg"])
    assert result.exit_code == 2
    assert "svg" in result.stderr


def _agentops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentops", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_real_process_help_and_validate(files: tuple[Path, Path]) -> None:
    good, bad = files
    help_ = _agentops("--help")
    assert help_.returncode == 0
    assert "validate" in help_.stdout and "graph" in help_.stdout
    ok = _agentops("validate", str(good))
    assert (ok.returncode, ok.stdout) == (0, f"OK {good}\n")
    failed = _agentops("validate", str(bad))
    assert failed.returncode == 2
    assert failed.stdout.splitlines()[0].startswith(f"{bad}:6:5: unknown key 'depnds_on'")
    assert "Traceback" not in failed.stderr
    graph = _agentops("graph", str(bad))
    assert graph.returncode == 2 and "Traceback" not in graph.stderr
    assert graph.stderr.splitlines()[0].startswith(f"{bad}:6:5:")


def test_version_is_the_installed_one() -> None:
    from importlib.metadata import version

    completed = subprocess.run(
        [sys.executable, "-m", "agentops", "--version"], capture_output=True, text=True, check=False
    )
    assert (completed.returncode, completed.stdout) == (0, f"agentops {version('agentops')}\n")
