"""Call slots and pauses: a free slot is taken at once, a busy one in the order asked, and a
cancelled waiter neither keeps a slot nor loses one."""

from __future__ import annotations

import asyncio

import pytest

from agentops.runtime.limits import InProcessCallLimits, Slots


def test_free_slots_are_taken_without_waiting_and_given_back() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take()
    slots.give()
    assert slots.free == 1
    assert slots.try_take()


def test_waiters_get_slots_in_the_order_they_asked() -> None:
    async def main() -> list[int]:
        slots = Slots(1)
        assert slots.try_take()
        order: list[int] = []

        async def wait_for_one(number: int) -> None:
            await slots.take()
            order.append(number)

        waiting = [asyncio.create_task(wait_for_one(n)) for n in range(3)]
        await asyncio.sleep(0)
        assert not slots.try_take()  # others wait for a slot before us: no jumping the queue
        for _ in range(3):
            slots.give()
            await asyncio.sleep(0)
        await asyncio.gather(*waiting)
        assert slots.free == 0
        return order

    assert asyncio.run(main()) == [0, 1, 2]


def test_a_waiter_cancelled_before_its_turn_leaves_the_queue() -> None:
    async def main() -> None:
        slots = Slots(1)
        assert slots.try_take()
        waiter = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        slots.give()
        assert slots.free == 1
        assert slots.try_take()  # nobody stale stands in front

    asyncio.run(main())


def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    async def main() -> None:
        slots = Slots(1)
        assert slots.try_take()
        first = asyncio.create_task(slots.take())
        second = asyncio.create_task(slots.take())
        await asyncio.sleep(0)
        slots.give()  # handed to the first waiter, which is cancelled before it resumes
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # the slot went on to the next
        assert slots.free == 0
        slots.give()
        assert slots.free == 1

    asyncio.run(main())


def test_a_paused_provider_is_not_called_without_waiting_but_others_are() -> None:
    async def main() -> None:
        limits = InProcessCallLimits.create(max_concurrency=4, cap=None)
        limits.pause("openai", 0.05)
        assert not limits.try_acquire("openai")
        assert limits.try_acquire("azure")
        assert limits.in_flight == 1
        await asyncio.wait_for(limits.acquire("openai"), 1)  # waits the pause out
        assert limits.in_flight == 2
        assert limits.try_acquire("openai")
        limits.release()
        limits.release()
        limits.release()
        assert limits.in_flight == 0
        assert limits.slots.free == 4

    asyncio.run(main())
