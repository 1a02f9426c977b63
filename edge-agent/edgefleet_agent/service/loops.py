"""How every agent loop runs: forever, each failure contained, each stop request honoured.

The agent's loops (converge, health, telemetry, capabilities, supervise) share these two
drivers so that a bug in one tick costs one pause, never the loop, and never the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("edgefleet.agent")

LOOP_ERROR_PAUSE_S = 5.0


async def forever(name: str, tick: Callable[[], Awaitable[float]]) -> None:
    """Run ``tick`` forever; it returns how long to wait. An error costs one pause."""
    while True:
        try:
            delay = await tick()
        except Exception:
            log.exception("%s loop failed; retrying in %g s", name, LOOP_ERROR_PAUSE_S)
            delay = LOOP_ERROR_PAUSE_S
        end_if_cancelled()
        await asyncio.sleep(delay)


async def woken(name: str, wake: asyncio.Event, tick: Callable[[], Awaitable[float]]) -> None:
    """Like :func:`forever`, but ``wake`` cuts the wait short."""
    while True:
        wake.clear()
        try:
            delay = await tick()
        except Exception:
            log.exception("%s pass failed; retrying in %g s", name, LOOP_ERROR_PAUSE_S)
            delay = LOOP_ERROR_PAUSE_S
        end_if_cancelled()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await wake.wait()


def end_if_cancelled() -> None:
    """End a loop whose task was asked to stop even if the request got lost on the way.

    Python 3.11's ``asyncio.wait_for`` (used inside aiomqtt's publish) swallows a
    cancellation that arrives just as its future completes; the loop would then sleep and
    go round forever, and ``Agent.run`` would never return. Seen with thousands of agents
    stopping at once in the fleet simulator."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
