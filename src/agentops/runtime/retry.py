"""Which failures are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from agentops.errors import ProviderError
from agentops.workflow.spec import Backoff

# A server asking for more than this is treated as asking for this: a run
# should not sleep for an hour because of one header.
MAX_RETRY_AFTER = 120.0


@dataclass
class RetryPolicy:
    retries: int  # retries after the first attempt
    backoff: Backoff = field(default_factory=Backoff)
    rng: random.Random = field(default_factory=random.Random)

    def should_retry(self, error: BaseException, attempt_number: int) -> bool:
        """Transient provider errors only, while attempts remain."""
        return (
            isinstance(error, ProviderError) and error.retryable and attempt_number <= self.retries
        )

    def delay(self, error: BaseException, attempt_number: int) -> float:
        """Seconds to wait after failed attempt ``attempt_number`` (1-based).

        The server's Retry-After wins; otherwise exponential backoff with full
        jitter: uniform(0, min(max, base * 2 ** (n - 1))).
        """
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(0.0, float(retry_after)), MAX_RETRY_AFTER)
        ceiling = min(self.backoff.max, self.backoff.base * 2 ** (attempt_number - 1))
        return self.rng.uniform(0, ceiling)
