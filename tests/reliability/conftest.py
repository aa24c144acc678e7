"""The reliability tests' fixtures."""

from __future__ import annotations

import pytest

from tests.support.reliability import KEY, KEY_ENV


@pytest.fixture
def provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The named provider's key variable, set in this process (``cli_env`` sets it for the
    real processes), for the modules that run the CLI or the engine in-process."""
    monkeypatch.setenv(KEY_ENV, KEY)
