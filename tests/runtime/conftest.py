"""The runtime's tests call the project's test server through a named provider whose key
variable (``TEST_KEY_ENV`` of ``tests.support.engine``) every test here sets."""

from __future__ import annotations

import pytest

from tests.support.engine import TEST_KEY, TEST_KEY_ENV


@pytest.fixture(autouse=True)
def test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
