"""The web view tests' fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.web import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per module (a test marked ``needs_browser()`` asks for it)."""
    with chromium() as driver:
        yield driver
