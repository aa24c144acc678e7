"""``--executor ray`` refused early and clearly (exit 2, one line, before any call), and Ray kept
out of every command that does not ask for it. Real ``agentops`` processes; no cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support import ROOT, free_port
from tests.support.reliability import cli_env, run_agentops, write_workflow


def flow(tmp_path: Path, server: OpenAITestServer, **policies: object) -> Path:
    return write_workflow(
        tmp_path / "flow.yaml", server.base_url, [{"name": "a"}], policies=policies
    )


def one_line_error(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 2, completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), completed.stderr
    assert "Traceback" not in completed.stderr
    return lines[0]


def test_without_ray_installed_the_error_names_the_extra(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    # ``sys.modules["ray"] = None`` makes ``import ray`` fail as it does where Ray is not installed.
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from agentops.cli.app import main\n"
        "sys.argv = ['agentops', *sys.argv[1:]]\n"
        "main()\n"
    )
    for command in ("run", "batch"):
        data = tmp_path / "rows.jsonl"
        data.write_text('{"x": 1}\n', encoding="utf-8")
        extra = ["--data", str(data)] if command == "batch" else []
        completed = subprocess.run(
            [
                *(sys.executable, "-c", code, command, str(flow(tmp_path, server)), *extra),
                *("--executor", "ray", "--db", str(tmp_path / "h.db")),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        line = one_line_error(completed)
        assert "pip install 'agentops[ray]'" in line, line
    assert server.requests == []


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_no_cluster_at_the_address_is_exit_2_naming_it_at_once(
    tmp_path: Path, server: OpenAITestServer, scheme: str
) -> None:
    address = f"{scheme}127.0.0.1:{free_port()}"
    started = time.monotonic()
    completed = run_agentops(
        "run", flow(tmp_path, server), "--executor", "ray", "--ray-address", address
    )
    line = one_line_error(completed)
    assert f"no Ray cluster at {address}" in line and "refused" in line.lower(), line
    assert time.monotonic() - started < 30  # probed, not handed to Ray's long retries
    assert server.requests == []


def test_ray_address_is_read_from_the_environment_and_policies_executor_from_the_file(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    address = f"127.0.0.1:{free_port()}"
    completed = run_agentops(
        "run", flow(tmp_path, server, executor="ray"), env=cli_env(RAY_ADDRESS=address)
    )
    assert f"no Ray cluster at {address}" in one_line_error(completed)
    assert server.requests == []


def test_a_ray_address_for_a_local_run_or_an_address_ray_cannot_take_is_a_usage_error(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    completed = run_agentops(
        "run", flow(tmp_path, server), "--executor", "local", "--ray-address", "127.0.0.1:6379"
    )
    assert "add --executor ray" in one_line_error(completed)
    completed = run_agentops(
        "run", flow(tmp_path, server), "--executor", "ray", "--ray-address", "nowhere"
    )
    assert "give auto, HOST:PORT" in one_line_error(completed)
    completed = run_agentops("run", flow(tmp_path, server), "--executor", "dask")
    assert completed.returncode == 2 and "dask" in completed.stderr
    assert server.requests == []


def test_a_provider_given_in_python_cannot_go_to_ray(tmp_path: Path) -> None:
    import agentops
    from agentops.errors import UsageError
    from agentops.providers.fake import FakeProvider

    workflow = tmp_path / "flow.yaml"
    workflow.write_text("name: f\nagents:\n  - {name: a, model: m, task: t}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="cannot run on Ray"):
        agentops.run(workflow, provider=FakeProvider(), executor="ray")


# Runs ``agentops ARGS`` through the console entry point, then reports whether ray was imported.
PROBE = """
import json, sys
sys.argv = ["agentops", *json.loads(sys.argv[1])]
from agentops.cli.app import main
try:
    main()
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"code": code, "ray": "ray" in sys.modules}), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["batch", "--help"], ["run", "FLOW"]], ids=" ".join
)
def test_ray_is_imported_only_when_asked_for(
    tmp_path: Path, server: OpenAITestServer, args: list[str]
) -> None:
    args = [str(flow(tmp_path, server)) if a == "FLOW" else a for a in args]
    if "run" in args and "--help" not in args:
        args += ["--db", str(tmp_path / "h.db")]
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "ray": False}, completed.stdout + completed.stderr
