"""The ledger's rules, on its body (``Ledger``, the actor's class) driven from one event loop as
the actor's is: holds kept per holder, a lost holder charged its reserved worst case, never
zero, and refused afterwards. Across a real cluster: ``test_cluster_batches``."""

from __future__ import annotations

import asyncio
import random

import pytest

from agentops.cluster.ledger import Ledger


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_a_lost_holder_is_charged_its_open_holds_in_full_and_refused_afterwards() -> None:
    async def scenario() -> None:
        ledger = Ledger(cap=1.0, spent=0.1, max_concurrency=2)
        done, _ = await ledger.reserve("a", 0.2)
        lost, _ = await ledger.reserve("b", 0.3)
        in_flight, _ = await ledger.reserve("b", 0.25)
        assert done and lost and in_flight
        await ledger.acquire("b", "p")
        await ledger.acquire("b", "p")
        await ledger.settle("a", done, 0.05)
        await ledger.settle("b", lost, 0.1)  # b settled one call before it was lost

        charged, snapshot = await ledger.forfeit("b")

        assert charged == [0.25]  # the call in flight: its worst case, not zero
        assert snapshot.spent == pytest.approx(0.1 + 0.05 + 0.1 + 0.25)
        assert snapshot.reserved == 0 and snapshot.in_flight == 0
        assert ledger.slots._value == 2  # its slots are given back
        # A settle that arrives late changes nothing; b is refused from now on.
        await ledger.settle("b", in_flight, 0.0)
        assert (await ledger.snapshot()).spent == pytest.approx(0.5)
        assert (await ledger.reserve("b", 0.01))[0] is None
        with pytest.raises(LookupError):
            await ledger.acquire("b", "p")
        await ledger.release("b")  # nothing held: nothing given back twice
        assert ledger.slots._value == 2

    run(scenario())


def test_a_reservation_waiting_when_its_holder_is_lost_is_given_back_not_charged() -> None:
    async def scenario() -> None:
        ledger = Ledger(cap=1.0, spent=0.0, max_concurrency=4)
        first, _ = await ledger.reserve("a", 0.6)
        waiting = asyncio.ensure_future(ledger.reserve("b", 0.6))  # fits only once a settles
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await ledger.forfeit("b")
        assert first is not None
        await ledger.settle("a", first, 0.1)
        number, snapshot = await waiting
        assert number is None and snapshot.reserved == 0
        assert snapshot.spent == pytest.approx(0.1)

    run(scenario())


def test_the_watch_answers_the_stop_reason_or_nothing_when_the_run_is_done() -> None:
    async def scenario() -> None:
        ledger = Ledger(cap=None, spent=0.0, max_concurrency=4)
        stopped = asyncio.ensure_future(ledger.watch("a"))
        finished = asyncio.ensure_future(ledger.watch("b"))
        await asyncio.sleep(0)
        await ledger.stop("a", "interrupted by SIGINT")
        await ledger.finish("b")
        assert await stopped == "interrupted by SIGINT"
        assert await finished == ""
        await ledger.stop("c", "timed out")  # before its task asked: it still hears it
        assert await ledger.watch("c") == "timed out"

    run(scenario())


def test_many_holders_calling_at_once_never_spend_past_the_cap() -> None:
    async def holder(ledger: Ledger, name: str, rng: random.Random) -> None:
        for _ in range(20):
            number, _ = await ledger.reserve(name, 0.01)
            if number is None:
                return
            await ledger.acquire(name, "p")
            await asyncio.sleep(rng.random() / 1000)
            await ledger.release(name)
            await ledger.settle(name, number, rng.uniform(0.0, 0.01))
        await ledger.finish(name)

    async def scenario() -> float:
        ledger = Ledger(cap=0.5, spent=0.0, max_concurrency=8)
        rng = random.Random(7)
        lost = asyncio.ensure_future(holder(ledger, "lost", rng))
        others = [holder(ledger, f"h{n}", rng) for n in range(30)]
        await asyncio.sleep(0.002)
        lost.cancel()  # its worker died mid-call: the driver forfeits it
        await ledger.forfeit("lost")
        await asyncio.gather(*others)
        state = await ledger.snapshot()
        assert state.reserved == pytest.approx(0.0, abs=1e-12) and state.in_flight == 0
        return state.spent

    assert run(scenario()) <= 0.5 + 1e-9


def test_holds_settled_to_nothing_leave_nothing_reserved_so_the_whole_cap_fits_again() -> None:
    async def scenario() -> int | None:
        ledger = Ledger(cap=0.3, spent=0.0, max_concurrency=4)
        first, _ = await ledger.reserve("a", 0.1)
        second, _ = await ledger.reserve("b", 0.2)  # 0.1 + 0.2 is 0.30000000000000004
        assert first is not None and second is not None
        await ledger.settle("a", first, 0.0)
        await ledger.settle("b", second, 0.0)
        assert (await ledger.snapshot()).reserved == 0.0
        # With the residue (5.6e-17) counted as a hold, this waited for a settlement that could
        # never come.
        number, _ = await asyncio.wait_for(ledger.reserve("c", 0.3), timeout=5)
        return number

    assert run(scenario()) is not None
