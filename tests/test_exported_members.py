"""The public surface is deliberate: ``__all__`` names exactly what users may import."""

from __future__ import annotations

import subprocess
import sys

import agentops


def test_every_exported_name_resolves() -> None:
    for name in agentops.__all__:
        assert getattr(agentops, name) is not None, name


def test_no_public_name_is_left_out_of_all() -> None:
    defined_here = {
        name
        for name, value in vars(agentops).items()
        if not name.startswith("_") and str(getattr(value, "__module__", "")).startswith("agentops")
    }
    public = set(agentops._LAZY) | defined_here
    assert public <= set(agentops.__all__)


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, agentops, agentops.cli; "
        "heavy = [m for m in ('openai', 'genai_prices', 'llama_cpp', 'pydantic') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == ""
