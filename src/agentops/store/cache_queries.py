"""The SQLite queries behind the response cache and replays: an entry by its key (the primary
key: one indexed read), the per-workflow statistics, and a recorded run's answers."""

from __future__ import annotations

from agentops.store.database import Database
from agentops.store.records import (
    CacheEntry,
    CacheStat,
    RecordedAnswer,
    cache_stat,
    recorded_answer,
)
from agentops.store.records import cache_entry as entry_of
from agentops.store.timestamps import to_iso

_ENTRY_COLUMNS = """key, workflow, agent, model, response, input_tokens, output_tokens,
    tokens_estimated, cost, created_at"""


def cache_entry(store: Database, key: str, *, not_before: float | None = None) -> CacheEntry | None:
    if not_before is None:
        rows = store.read(f"SELECT {_ENTRY_COLUMNS} FROM response_cache WHERE key = ?", (key,))
    else:
        rows = store.read(
            f"SELECT {_ENTRY_COLUMNS} FROM response_cache WHERE key = ? AND created_at >= ?",
            (key, to_iso(not_before)),
        )
    return entry_of(rows[0]) if rows else None


def cache_stats(store: Database) -> list[CacheStat]:
    rows = store.read(
        """WITH entries AS (
            SELECT workflow, count(*) AS entries, sum(size) AS size FROM response_cache
            GROUP BY workflow
        ), hits AS (
            SELECT r.workflow AS workflow, count(*) AS hits, sum(coalesce(a.saved_cost, 0)) AS saved
            FROM attempts a JOIN runs r ON r.id = a.run_id
                JOIN workflow_runs w ON w.id = r.workflow_run_id
            WHERE a.cached = 1 AND w.replaying IS NULL GROUP BY r.workflow
        ), names AS (SELECT workflow FROM entries UNION SELECT workflow FROM hits)
        SELECT names.workflow AS workflow, entries.entries AS entries, entries.size AS size,
            hits.hits AS hits, hits.saved AS saved
        FROM names LEFT JOIN entries ON entries.workflow = names.workflow
            LEFT JOIN hits ON hits.workflow = names.workflow
        ORDER BY names.workflow"""
    )
    return [cache_stat(row) for row in rows]


def recorded_answers(store: Database, workflow_run_ids: list[int]) -> list[RecordedAnswer]:
    found: list[RecordedAnswer] = []
    for start in range(0, len(workflow_run_ids), 500):  # under SQLite's bound-parameter limit
        chunk = workflow_run_ids[start : start + 500]
        rows = store.read(
            f"""SELECT r.agent AS agent, a.request_key, a.request_digest, a.response,
                a.input_tokens, a.output_tokens, a.tokens_estimated, a.cost, a.cached, a.saved_cost
            FROM attempts a JOIN runs r ON r.id = a.run_id
            WHERE r.workflow_run_id IN ({", ".join("?" * len(chunk))})
                AND a.status = 'succeeded' AND a.request_key IS NOT NULL
                AND a.response IS NOT NULL
            ORDER BY r.workflow_run_id, r.id, a.number""",
            tuple(chunk),
        )
        found.extend(recorded_answer(row) for row in rows)
    return found


def batch_workflow_runs(store: Database, batch_id: int) -> list[int]:
    rows = store.read("SELECT id FROM workflow_runs WHERE batch_id = ? ORDER BY id", (batch_id,))
    return [int(row[0]) for row in rows]


__all__ = ["batch_workflow_runs", "cache_entry", "cache_stats", "recorded_answers"]
