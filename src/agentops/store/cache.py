"""The response cache and replays over the history: ``runtime.cache.ResponseCache`` implemented
through ``HistoryReader`` and ``HistoryWriter``, so every store that implements those serves both.

``HistoryCache`` is the cache of ``policies.cache`` / ``--cache``: a lookup is one read by the
primary key (entries older than ``cache_ttl`` are not read), an accepted answer one
``INSERT OR REPLACE``. ``RecordedAnswers`` is a replay (``--replay RUN``): every call is answered
from the recorded run's attempts with the same agent and request key, and a call it has no
answer for fails its agent, naming what differs from the closest recorded call; it never
becomes a live call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from agentops.errors import StoreError
from agentops.runtime.cache import (
    CachedAnswer,
    ReplayMismatchError,
    RequestKey,
    describe_difference,
    response_from_json,
    response_json,
)
from agentops.runtime.messages import ChatResponse
from agentops.runtime.usage import Usage
from agentops.store.reader import HistoryReader
from agentops.store.records import CacheEntry, RecordedAnswer
from agentops.store.writer import HistoryWriter
from agentops.workflow.spec import CacheMode

logger = logging.getLogger("agentops")

__all__ = ["HistoryCache", "RecordedAnswers"]


class HistoryCache:
    """The response cache of one invocation's runs (all of ``workflow``), in the history."""

    def __init__(
        self,
        reader: HistoryReader,
        writer: HistoryWriter,
        *,
        workflow: str,
        mode: CacheMode,
        ttl: float | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.workflow = workflow
        self.mode = mode
        self.ttl = ttl  # seconds; None: entries never expire
        self._failed = False  # a write failed once: said once, not per call

    @property
    def reads(self) -> bool:
        return self.mode != "off"

    @property
    def writes(self) -> bool:
        return self.mode == "read_write"

    @property
    def replaying(self) -> str | None:
        return None

    def lookup(self, agent: str, key: RequestKey) -> CachedAnswer | None:
        not_before = None if self.ttl is None else time.time() - self.ttl
        try:
            entry = self.reader.cache_entry(key.key, not_before=not_before)
        except StoreError as error:
            self._warn(error)
            return None
        if entry is None:
            return None
        usage = Usage(entry.input_tokens, entry.output_tokens, entry.tokens_estimated)
        try:
            return CachedAnswer(response_from_json(entry.response, usage), entry.cost)
        except ValueError:  # a damaged entry is a miss; the answer this call gets replaces it
            return None

    def store(
        self, agent: str, key: RequestKey, response: ChatResponse, cost: float | None
    ) -> None:
        usage = response.usage
        entry = CacheEntry(
            key=key.key,
            workflow=self.workflow,
            agent=agent,
            model=model if isinstance(model := key.parts.get("model"), str) else None,
            response=response_json(response),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            tokens_estimated=usage.estimated,
            cost=cost,
            created_at=time.time(),
        )
        try:
            self.writer.put_cache_entry(entry)
        except StoreError as error:
            self._warn(error)

    def _warn(self, error: StoreError) -> None:
        if not self._failed:
            self._failed = True
            logger.warning("the response cache is not used from here on: %s", error)


class RecordedAnswers:
    """A replay: calls answered from recorded attempts by agent and request key, never live.

    The same request made again (two fan-out items alike) gets the next recorded answer for it,
    and the last one once they run out.
    """

    reads = True
    writes = False

    def __init__(self, answers: Iterable[RecordedAnswer], *, recording: str) -> None:
        self.replaying = recording  # what is replayed, as messages name it: "workflow run 7"
        self._answers: dict[tuple[str, str], list[RecordedAnswer]] = {}
        self._served: dict[tuple[str, str], int] = {}
        self._digests: dict[str, list[Mapping[str, Any]]] = {}
        for answer in answers:
            self._answers.setdefault((answer.agent, answer.request_key), []).append(answer)
            self._digests.setdefault(answer.agent, []).append(answer.digest)

    def lookup(self, agent: str, key: RequestKey) -> CachedAnswer | None:
        found = self._answers.get((agent, key.key))
        if not found:
            raise ReplayMismatchError(self._mismatch(agent, key))
        served = self._served.get((agent, key.key), 0)
        self._served[(agent, key.key)] = served + 1
        answer = found[min(served, len(found) - 1)]
        usage = Usage(answer.input_tokens, answer.output_tokens, answer.tokens_estimated)
        try:
            return CachedAnswer(response_from_json(answer.response, usage), answer.cost)
        except ValueError as damaged:
            raise ReplayMismatchError(
                f"the answer recorded for agent {agent} in {self.replaying} is damaged ({damaged})"
            ) from None

    def store(
        self, agent: str, key: RequestKey, response: ChatResponse, cost: float | None
    ) -> None:
        """A replay writes nothing."""

    def _mismatch(self, agent: str, key: RequestKey) -> str:
        recorded = self._digests.get(agent)
        if not recorded:
            return (
                f"replaying {self.replaying}: agent {agent} made a model call, but the recording "
                "has no call of that agent; record the run again"
            )
        current = key.parts
        closest = max(recorded, key=lambda digest: _likeness(digest, current))
        return (
            f"replaying {self.replaying}: agent {agent} made a call the recording has no answer "
            f"for; it differs in {describe_difference(closest, current)}; record the run again "
            "if the change is meant"
        )


def _likeness(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[int, int]:
    """How alike two digests are: equal parts, then equal leading messages."""
    parts = sum(recorded.get(name) == value for name, value in current.items())
    before, now = recorded.get("messages") or [], current.get("messages") or []
    prefix = 0
    for a, b in zip(before, now, strict=False):
        if a != b:
            break
        prefix += 1
    return parts, prefix
