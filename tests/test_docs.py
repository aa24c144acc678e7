"""The manual cannot drift: the generated references match the code that generates them,
the README stays a front page, and every relative link in README.md, CONTRIBUTING.md and
docs/ leads to a file (and heading, by GitHub's anchors) that exists. ``mkdocs build
--strict`` checks the site's own links and anchors (scripts/test.sh runs it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _docs_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "scripts" / "docs_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", ["docs/reference/cli.md", "docs/reference/tables.md"])
def test_a_generated_reference_is_what_the_code_generates_now(path: str) -> None:
    generator = _docs_reference()
    expected = generator.REFERENCES[path]()
    checked_in = (ROOT / path).read_text(encoding="utf-8")
    assert checked_in == expected, f"{path} is out of date: run {generator.REFRESH} and commit it"


def test_the_command_reference_has_the_help_of_every_command() -> None:
    text = (ROOT / "docs/reference/cli.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == [
        "agentops", "run", "resume", "rerun", "plan", "validate", "graph", "batch", "resume-batch", "approvals",
        "approve", "reject", "revise", "list-runs",
        "show-runs", "list-workflow-runs", "show-workflow-run", "show-run", "costs", "ui", "list-batches",
        "show-batch", "db", "db migrate", "db prune", "budget", "budget set", "budget list",
        "budget show", "cache", "cache stats", "cache clear",
    ]  # fmt: skip
    assert "Usage: agentops show-run [OPTIONS] {RUN_ID}" in text


def test_the_table_reference_lists_each_column_with_the_migration_that_added_it() -> None:
    text = (ROOT / "docs/reference/tables.md").read_text(encoding="utf-8")
    tables = re.findall(r"^## `(\w+)`$", text, flags=re.MULTILINE)
    assert tables == [
        "_migrations", "runs", "workflow_runs", "attempts", "agent_starts", "tool_calls", "tool_servers", "batches",
        "budgets", "budget_holds", "cost_ledger", "approvals", "response_cache",
    ]  # fmt: skip
    assert "| `value` | TEXT |  |  |  | 10 `structured_outputs` |" in text
    assert "| `run_id` | INTEGER | yes |  | `runs.id` (on delete cascade) | 5 `attempts` |" in text
    assert "- unique on (run_id, number)" in text


def test_the_refresh_command_rewrites_a_stale_reference_and_check_then_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generator = _docs_reference()
    (tmp_path / "docs/reference").mkdir(parents=True)
    (tmp_path / "docs/reference/tables.md").write_text("# Tables\n\nstale\n", encoding="utf-8")
    monkeypatch.setattr(generator, "ROOT", tmp_path)

    assert generator.main(["--check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "docs/reference/cli.md is out of date: run .venv/bin/python scripts/docs_reference.py",
        "docs/reference/tables.md is out of date: run .venv/bin/python scripts/docs_reference.py",
    ]
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    assert (tmp_path / "docs/reference/tables.md").read_text(encoding="utf-8") == (
        ROOT / "docs/reference/tables.md"
    ).read_text(encoding="utf-8")


def test_the_readme_is_a_front_page_that_keeps_the_two_quick_start_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    quick_start = readme.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert (
        "```bash\n"
        "scripts/demo.sh    # 1. set up .venv and run a sample workflow on the bundled local model\n"
        "scripts/test.sh    # 2. set up the test tools and run the whole test suite\n"
        "```"
    ) in quick_start


# --- relative links ---------------------------------------------------------------------

_FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as
    hyphens, and a repeated heading numbered (``resume``, ``resume-1``)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", markdown), flags=re.MULTILINE):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def broken_links(path: Path) -> list[str]:
    """Each relative link in the Markdown file ``path`` whose file, or heading, does not exist."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif (
            anchor
            and linked.suffix == ".md"
            and anchor not in github_anchors(linked.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading with this anchor")
    return broken


PAGES = [
    "README.md",
    "CONTRIBUTING.md",
    *(p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").rglob("*.md"))),
]


@pytest.mark.parametrize("name", PAGES)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(name: str) -> None:
    assert broken_links(ROOT / name) == []


def test_the_link_check_reports_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/page.md").write_text(
        "# Page\n\n## The cost cap\n\n## Resume\n\n## Resume\n", encoding="utf-8"
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Front\n\n## Here\n\n"
        "[ok](docs/page.md) [ok](docs/page.md#the-cost-cap) [ok](docs/page.md#resume-1) [ok](#here) "
        "[ok](https://example.com/x.md) ![ok](docs/page.md)\n"
        "[gone](docs/missing.md) [gone](docs/page.md#the-costcap) [gone](#there)\n"
        "`[in code](nowhere.md)`\n\n```text\n[in a block](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(readme) == [
        "docs/missing.md: no such file",
        "docs/page.md#the-costcap: no heading with this anchor",
        "#there: no heading with this anchor",
    ]
