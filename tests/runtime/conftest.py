"""The runtime's tests call the project's test server through a named provider whose key
variable (``engine_helpers.TEST_KEY_ENV``) every test here sets."""

from __future__ import annotations

import pytest

from engine_helpers import TEST_KEY, TEST_KEY_ENV


@pytest.fixture(autouse=True)
def test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
