"""What a call costs: genai-prices data, or the workflow's ``prices:`` overrides.

Prices are USD. The local model costs nothing. A model with no known price
yields ``None`` (unknown), never a silent $0. genai-prices is imported on first
use only, so commands that never price anything stay light.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from agentops.runtime.provider import Route
from agentops.runtime.usage import Usage
from agentops.workflow.spec import Price

FREE_KINDS = frozenset({"local", "fake"})
_PROVIDER_IDS = {"openai": "openai", "azure": "azure"}


class PriceBook:
    """Prices for one workflow: overrides first (by model as written or as sent), then genai-prices."""

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._override_of: dict[Route, Price | None] = {}  # looked up once per route, not per call
        # Models genai-prices does not know (kind, model, priced_as): whether it knows one does
        # not depend on tokens. Keyed by strings, not the Route: hashing one is a Python call.
        self._unpriced: set[tuple[str, str, str | None]] = set()

    def override_for(self, route: Route) -> Price | None:
        if route in self._override_of:
            return self._override_of[route]
        found = next(
            (
                self.overrides[key]
                for model in _names_of(route)
                for key in (f"{route.provider}:{model}", model)
                if key in self.overrides
            ),
            None,
        )
        self._override_of[route] = found
        return found

    def is_known(self, route: Route) -> bool:
        return self.cost(route, Usage(1, 1)) is not None

    def cost(self, route: Route, usage: Usage) -> float | None:
        """USD for ``usage`` on ``route``; None when the model has no known price."""
        # Most workflows set no prices: then no call, and no Route hashed, per priced call.
        override = self.override_for(route) if self.overrides else None
        if override is not None:
            return (
                usage.input_tokens * override.input + usage.output_tokens * override.output
            ) / 1e6
        if route.kind in FREE_KINDS:
            return 0.0
        provider_id = _PROVIDER_IDS.get(route.kind)
        known = (route.kind, route.model, route.priced_as)
        if provider_id is None or known in self._unpriced:
            return None
        for model in _names_of(route):
            cost = _library_cost(model, provider_id, usage.input_tokens, usage.output_tokens)
            if cost is not None:
                return cost
        self._unpriced.add(known)
        return None


def _names_of(route: Route) -> tuple[str, ...]:
    """The model as sent first (a deployment may be priced under its own name), then as written."""
    return (route.model,) if route.priced_as is None else (route.model, route.priced_as)


@lru_cache(maxsize=4096)
def _library_cost(
    model: str, provider_id: str, input_tokens: int, output_tokens: int
) -> float | None:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    try:
        calculation = calc_price(
            PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_ref=model,
            provider_id=provider_id,
        )
    except LookupError:
        return None
    return float(calculation.total_price)
