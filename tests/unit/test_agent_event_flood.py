"""An event flood on the agent (a desired-topic flood of bad documents) costs a few log
lines and events per window and one summary, not one each (issue #12 defect 7)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from edgefleet_agent.service.outbox import EVENT_WINDOW_S, EVENTS_PER_WINDOW, EventOutbox
from edgefleet_protocol import Event


def test_a_flood_of_one_kind_is_sent_a_few_times_then_summarised_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgefleet.agent")
    now = [100.0]
    sent: list[Event] = []

    async def send(event: Event) -> bool:
        sent.append(event)
        return True

    outbox = EventOutbox(
        node="gw-1", site="s", clock=lambda: now[0], send=send, connected=lambda: True
    )

    async def flood() -> None:
        for i in range(16_000):
            await outbox.emit("warning", "desired-rejected", f"bad {i}", field="payload")
        await outbox.emit("warning", "workload-unhealthy", "web-0: down", workload="web-0")
        now[0] += EVENT_WINDOW_S
        await outbox.flush_summaries()

    asyncio.run(flood())
    kinds = [e.kind for e in sent]
    assert kinds.count("desired-rejected") == EVENTS_PER_WINDOW
    assert kinds.count("workload-unhealthy") == 1  # another kind has its own limit
    summaries = [e for e in sent if e.kind == "events-suppressed"]
    assert [(e.details["kind"], e.details["suppressed"]) for e in summaries] == [
        ("desired-rejected", 16_000 - EVENTS_PER_WINDOW)
    ]
    assert len(caplog.records) <= EVENTS_PER_WINDOW + 2
    assert not outbox.queued


def test_an_event_emitted_while_the_reconnect_flush_runs_is_sent_once() -> None:
    """The flush after a reconnect and a new event interleave at every publish (each
    awaits its PUBACK): seen as a duplicated desired-rejected event once inbound messages
    reached the agent while its on-connect flush still ran."""
    sent: list[str] = []

    async def send(event: Event) -> bool:
        sent.append(event.message)
        for _ in range(10 if event.message == "new" else 1):  # PUBACK round trips: other
            await asyncio.sleep(0)  # tasks run meanwhile, and this one's comes last
        return True

    outbox = EventOutbox(node="gw-1", site="s", clock=lambda: 1.0, send=send,
                         connected=lambda: True)  # fmt: skip
    for i in range(3):
        outbox.queue("info", "desired-accepted", f"queued {i}")

    async def both() -> None:
        await asyncio.gather(
            outbox.flush(), outbox.emit("warning", "desired-rejected", "new", field="payload")
        )

    asyncio.run(both())
    assert sorted(sent) == ["new", "queued 0", "queued 1", "queued 2"]
    assert not outbox.queued
