"""Two orchestrators on one broker (#12 defect 3): which one yields, as a table."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
from edgefleet_orchestrator.service.presence import Presence, judge
from edgefleet_protocol import OrchestratorStatus, Topics, encode
from edgefleet_protocol.wire import InboundMessage, Publication

ME = OrchestratorStatus(state="online", since=100.0, instance="bbbb")


def status(state: str, since: float, instance: str | None) -> OrchestratorStatus:
    return OrchestratorStatus(state=state, since=since, instance=instance)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("other", "retained", "announced", "verdict"),
    [
        (status("online", 100.0, "bbbb"), True, True, "ignore"),  # our own
        (status("offline", 50.0, None), True, False, "ignore"),  # an old version's
        (status("online", 50.0, "aaaa"), True, False, "yield"),  # an earlier one is online
        (status("online", 50.0, "aaaa"), False, True, "yield"),
        (status("online", 100.0, "aaaa"), False, True, "yield"),  # same start: ids decide
        (status("offline", 50.0, "aaaa"), True, False, "supersede"),  # a previous run's will
        (status("offline", 50.0, "aaaa"), False, True, "reassert"),  # its late will, live
        (status("offline", 50.0, "aaaa"), True, True, "yield"),  # it took over in between
        (status("online", 200.0, "cccc"), False, True, "reassert"),  # a later one: it yields
        (status("offline", 200.0, "cccc"), True, True, "reassert"),
        (status("offline", 200.0, "cccc"), True, False, "reassert"),  # a later one's will
    ],
)
def test_which_orchestrator_yields(
    other: OrchestratorStatus, retained: bool, announced: bool, verdict: str
) -> None:
    assert judge(ME, other, retained=retained, announced=announced) == verdict


def test_exactly_one_of_two_yields_whoever_looks() -> None:
    first = status("online", 10.0, "aaaa")
    second = status("online", 20.0, "zzzz")
    assert judge(first, second, retained=False, announced=True) == "reassert"
    assert judge(second, first, retained=False, announced=True) == "yield"


class _Session:
    """Just what :class:`Presence` reads of its session: the connection count and publish."""

    def __init__(self) -> None:
        self.stats = SimpleNamespace(connects=1)
        self.published: list[Publication] = []

    async def publish(self, pub: Publication) -> bool:
        self.published.append(pub)
        return True


def _seen(other: OrchestratorStatus, *, retain: bool) -> InboundMessage:
    return InboundMessage(
        topic=Topics("edgefleet").orchestrator_status(), payload=encode(other), qos=1,
        retain=retain,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("other", "retain", "level"),
    [
        (status("offline", 50.0, "aaaa"), True, logging.INFO),  # the last run's will, at start
        (status("offline", 50.0, "aaaa"), False, logging.WARNING),  # its will, live: late
        (status("online", 200.0, "cccc"), False, logging.WARNING),  # someone else wrote it
    ],
)
async def test_the_last_runs_will_found_at_start_is_routine_not_a_warning(
    other: OrchestratorStatus, retain: bool, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    presence = Presence(Topics("edgefleet"), since=100.0, version="1")
    session = _Session()
    presence.bind(session)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="edgefleet.orchestrator"):
        await presence.on_status(_seen(other, retain=retain))
    assert [r.levelno for r in caplog.records] == [level]
    assert [json.loads(p.payload)["state"] for p in session.published] == ["online"]
