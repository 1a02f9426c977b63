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
