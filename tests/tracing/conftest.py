"""The tracing tests' fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tracing import OTLPReceiver


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """An OTLP/HTTP receiver on 127.0.0.1, stopped afterwards."""
    with OTLPReceiver() as running:
        yield running
