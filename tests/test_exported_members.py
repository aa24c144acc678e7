"""The public surface is deliberate: ``__all__`` names exactly what users may import."""

from __future__ import annotations

import subprocess
import sys

import agentops


def test_every_exported_name_resolves() -> None:
    for name in agentops.__all__:
        assert getattr(agentops, name) is not None, name


def test_no_public_name_is_left_out_of_all() -> None:
    public = {name for name in agentops._LAZY} | {
        name for name in vars(agentops) if not name.startswith("_") and name[0].isupper()
    }
    assert public <= set(agentops.__all__)


def test_importing_the_package_stays_light() -> None:
    code = (
        "import sys, agentops, agentops.cli; "
        "heavy = [m for m in ('openai', 'genai_prices', 'llama_cpp', 'pydantic') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == ""
