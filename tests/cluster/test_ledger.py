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
        ledger = Ledger(cap=1.0, spent=0.1)
        done, _ = await ledger.reserve("a", 0.2)
        settled, _ = await ledger.reserve("b", 0.3)
        in_flight, _ = await ledger.reserve("b", 0.25)
        assert done and settled and in_flight
        await ledger.settle("a", done, 0.05)
        await ledger.settle("b", settled, 0.1)  # b settled one call before it was lost

        charged, snapshot = await ledger.forfeit("b")

        assert charged == [0.25]  # the call in flight: its worst case, not zero
        assert snapshot.spent == pytest.approx(0.1 + 0.05 + 0.1 + 0.25)
        assert snapshot.reserved == 0
        # A settle that arrives late changes nothing; b is refused, and told to stop.
        await ledger.settle("b", in_flight, 0.0)
        assert (await ledger.snapshot()).spent == pytest.approx(0.5)
        assert (await ledger.reserve("b", 0.01))[0] is None
        news = await ledger.follow(0, 0)
        assert (news.stops, news.stopped) == (1, [("b", "")])

    run(scenario())


def test_a_reservation_waiting_when_its_holder_is_lost_is_given_back_not_charged() -> None:
    async def scenario() -> None:
        ledger = Ledger(cap=1.0, spent=0.0)
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


def test_follow_answers_each_worker_process_with_the_stops_and_pauses_since_it_asked() -> None:
    async def scenario() -> None:
        ledger = Ledger(cap=None, spent=0.0)
        await ledger.stop("early", "timed out")  # before any process asked: still heard
        news = await ledger.follow(0, 0)
        assert (news.stops, news.stopped, news.pauses) == (1, [("early", "timed out")], 0)
        one = asyncio.ensure_future(ledger.follow(1, 0))
        other = asyncio.ensure_future(ledger.follow(1, 0))
        await asyncio.sleep(0.01)
        assert not one.done()  # a long call: it answers when something changes
        await ledger.stop("a", "interrupted by SIGINT")
        await ledger.stop("a", "again")  # a holder is stopped once
        for answer in (await one, await other):
            assert (answer.stops, answer.stopped) == (2, [("a", "interrupted by SIGINT")])
        paused = asyncio.ensure_future(ledger.follow(2, 0))
        await asyncio.sleep(0.01)
        assert not paused.done()
        await ledger.pause("openai", 5.0)  # a 429 on one node: every process hears at once
        news = await paused
        [(provider, left)] = news.state.paused
        assert news.stopped == [] and news.pauses == 1
        assert provider == "openai" and 4.0 < left <= 5.0

    run(scenario())


def test_many_holders_calling_at_once_never_spend_past_the_cap() -> None:
    async def holder(ledger: Ledger, name: str, rng: random.Random) -> None:
        for _ in range(20):
            number, _ = await ledger.reserve(name, 0.01)
            if number is None:
                return
            await asyncio.sleep(rng.random() / 1000)  # the call
            await ledger.settle(name, number, rng.uniform(0.0, 0.01))

    async def scenario() -> float:
        ledger = Ledger(cap=0.5, spent=0.0)
        rng = random.Random(7)
        lost = asyncio.ensure_future(holder(ledger, "lost", rng))
        others = [holder(ledger, f"h{n}", rng) for n in range(30)]
        await asyncio.sleep(0.002)
        lost.cancel()  # its worker died mid-call: the driver forfeits it
        await ledger.forfeit("lost")
        await asyncio.gather(*others)
        state = await ledger.snapshot()
        assert state.reserved == 0.0
        return state.spent

    assert run(scenario()) <= 0.5 + 1e-9


def test_holds_settled_to_nothing_leave_nothing_reserved_so_the_whole_cap_fits_again() -> None:
    async def scenario() -> int | None:
        ledger = Ledger(cap=0.4, spent=0.0)
        first, _ = await ledger.reserve("a", 0.1)
        second, _ = await ledger.reserve("b", 0.3)
        assert first is not None and second is not None
        await ledger.settle("a", first, 0.0)
        await ledger.settle("b", second, 0.0)  # 0.1 + 0.3 - 0.1 - 0.3 is 5.6e-17 in floats
        assert (await ledger.snapshot()).reserved == 0.0
        # With that residue counted as a hold, this waited for a settlement that could never come.
        number, _ = await asyncio.wait_for(ledger.reserve("c", 0.4), timeout=5)
        return number

    assert run(scenario()) is not None
