"""The simulator's collector at quiet moments (:func:`keep_heap`): off while the fleet
works, young objects collected once it is idle or once too many piled up, and the
collector back on when the keeper stops."""

from __future__ import annotations

import asyncio
import gc

import pytest
from edgefleet_agent.simulate.limits import collection_due, keep_heap

DEADLINE_S = 60.0  # a loaded machine may leave an idle loop late for a while


def test_older_generations_are_collected_as_cpython_would() -> None:
    assert collection_due(0, 0, every=10) == 0
    assert collection_due(9, 9, every=10) == 0
    assert collection_due(10, 0, every=10) == 1
    assert collection_due(10, 10, every=10) == 2
    assert collection_due(0, 10, every=10) == 2


async def _until(condition: object) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        assert loop.time() < until, "the keeper did not collect in time"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("quiet", [True, False])
async def test_young_objects_are_collected_when_quiet_or_too_many(quiet: bool) -> None:
    # quiet: the floor is low and the cap out of reach, so only an idle tick collects;
    # otherwise the floor is out of reach and only the cap does.
    floor, cap = (1_000, 10**9) if quiet else (10**9, 5_000)
    gc.collect()
    keeper = asyncio.create_task(keep_heap(tick_s=0.01, cap=cap, floor=floor))
    try:
        await _until(lambda: not gc.isenabled())
        kept = [[] for _ in range(20_000)]  # new containers, alive: counted, not freed
        assert gc.get_count()[0] >= 20_000, "nothing collects them behind the keeper's back"
        await _until(lambda: gc.get_count()[0] < 1_000)
        assert len(kept) == 20_000
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert gc.isenabled(), "the collector is back on once the keeper stops"


async def test_a_few_new_objects_are_left_for_later() -> None:
    gc.collect()
    keeper = asyncio.create_task(keep_heap(tick_s=0.01, cap=10**9, floor=10**8))
    try:
        await _until(lambda: not gc.isenabled())
        kept = [[] for _ in range(5_000)]
        for _ in range(20):  # many idle ticks
            await asyncio.sleep(0.01)
        assert gc.get_count()[0] >= 5_000, "below the floor nothing is collected"
        assert len(kept) == 5_000
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert gc.isenabled()
