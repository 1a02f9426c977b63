"""The event kinds and command error codes are one list each in the protocol package, and
docs/protocol.md's tables say exactly what those lists say (both directions), so the
contract cannot drift again the way ``generation-ignored`` / ``desired-stale`` did."""

from __future__ import annotations

import asyncio
import json
import re
import typing
from pathlib import Path

import pytest
from edgefleet_agent.core.admission import Accept, Reject, Stale, notice_for
from edgefleet_agent.service.outbox import EventOutbox
from edgefleet_orchestrator.fleet.notes import NoteKind
from edgefleet_protocol import Desired, Event
from edgefleet_protocol import events as events_module
from edgefleet_protocol.commands import ErrorCode
from edgefleet_protocol.events import CATALOGUE, build_event, event_kind

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def table_after(header: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header line starts with ``header``."""
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


DOC_EVENTS = {ticked(row[0])[0]: row for row in table_after("| kind | published by |")}


def test_the_doc_event_table_lists_exactly_the_catalogued_kinds() -> None:
    assert set(DOC_EVENTS) == set(CATALOGUE)


@pytest.mark.parametrize("kind", sorted(CATALOGUE))
def test_each_kind_is_documented_with_its_publisher_and_details_keys(kind: str) -> None:
    _, publisher, keys, when = DOC_EVENTS[kind]
    entry = CATALOGUE[kind]
    assert publisher == entry.publisher
    assert ticked(keys) == list(entry.details)
    assert when == entry.when


def test_every_event_example_in_the_doc_is_a_catalogued_kind_with_its_keys() -> None:
    bodies = re.findall(r"<!-- example: Event -->\n```json\n(.*?)\n```", DOC, re.DOTALL)
    assert len(bodies) >= 3
    for body in bodies:
        event = Event.model_validate(json.loads(body))
        assert set(event.details) <= set(event_kind(event.kind).details), event.kind


def test_a_lower_generation_is_desired_stale_with_generation_and_current_everywhere() -> None:
    # The drift that made this catalogue: protocol.md said generation-ignored {received,
    # applied}; the agent and operations.md said desired-stale {generation, current}.
    assert "generation-ignored" not in DOC
    notice = notice_for(Stale(15, 17))
    assert notice is not None
    assert notice.kind == "desired-stale"
    assert notice.details == {"generation": 15, "current": 17}


def test_every_admission_notice_is_a_catalogued_agent_event() -> None:
    desired = Desired(node="gw-1", generation=3, issued_at=1.0)
    for verdict in (Accept(desired), Stale(1, 2), Reject("payload", "bad")):
        notice = notice_for(verdict)
        assert notice is not None
        entry = event_kind(notice.kind)
        assert entry.publisher == "agent"
        assert set(notice.details) == set(entry.details)


def test_every_pass_note_kind_is_a_catalogued_orchestrator_event() -> None:
    for kind in typing.get_args(NoteKind):
        assert event_kind(kind).publisher == "orchestrator"


def test_build_event_refuses_a_kind_or_a_details_key_outside_the_catalogue() -> None:
    with pytest.raises(ValueError, match=r"not in edgefleet_protocol\.events\.CATALOGUE"):
        build_event("generation-ignored", "x", ts=1.0)
    with pytest.raises(ValueError, match=r"does not carry details \['received'\]"):
        build_event("desired-stale", "x", ts=1.0, details={"received": 1})
    built = build_event("desired-stale", "x", ts=1.0, details={"generation": 1, "current": 2})
    assert (built.kind, built.details) == ("desired-stale", {"generation": 1, "current": 2})


def test_the_agent_outbox_builds_its_events_from_the_catalogue() -> None:
    async def send(_: Event) -> bool:
        return True

    outbox = EventOutbox(
        node="gw-1", site="plant-a", clock=lambda: 5.0, send=send, connected=lambda: False
    )
    with pytest.raises(ValueError, match=r"not in edgefleet_protocol\.events\.CATALOGUE"):
        outbox.queue("warning", "no-such-kind", "x")
    asyncio.run(outbox.emit("warning", "workload-unhealthy", "web-0: down", workload="web-0"))
    assert [(e.kind, e.node, e.details) for e in outbox.queued] == [
        ("workload-unhealthy", "gw-1", {"workload": "web-0"})
    ]


# -- error codes ----------------------------------------------------------------------------


def test_the_doc_error_code_table_lists_exactly_the_error_codes() -> None:
    documented = [ticked(row[0])[0] for row in table_after("| code | meaning |")]
    assert sorted(documented) == sorted(code.value for code in ErrorCode)


# -- the catalogue's own rules, exactly (killing make mutate's survivors in events.py) --------


def test_a_kind_catalogued_twice_is_refused_and_the_first_entry_stays() -> None:
    with pytest.raises(ValueError, match=r"^event kind 'desired-stale' is catalogued twice$"):
        events_module._kind("desired-stale", "agent", (), "again")
    assert CATALOGUE["desired-stale"] is events_module.DESIRED_STALE


def test_an_unknown_kind_is_refused_in_full_words() -> None:
    with pytest.raises(ValueError, match="generation-ignored") as caught:
        event_kind("generation-ignored")
    assert str(caught.value) == (
        "event kind 'generation-ignored' is not in edgefleet_protocol.events.CATALOGUE"
        " (add it there and to docs/protocol.md)"
    )


def test_a_built_event_has_every_field_it_was_given_and_defaults_to_info() -> None:
    built = build_event(
        "node-isolated", "m" * 5000, ts=2.0, node="n1", site="s1", app="a", details={"reason": "r"}
    )
    assert (built.ts, built.level, built.kind, built.node, built.site, built.app) == (
        2.0,
        "info",
        "node-isolated",
        "n1",
        "s1",
        "a",
    )
    assert built.message == "m" * 4096  # cut to the documented 4 KiB
    assert built.details == {"reason": "r"}
    assert build_event("node-isolated", "m", ts=1.0, level="warning").details == {}


def test_a_details_key_outside_the_kind_is_refused_in_full_words() -> None:
    with pytest.raises(ValueError, match="received") as caught:
        build_event("desired-stale", "x", ts=1.0, details={"received": 1, "generation": 2})
    assert str(caught.value) == "event kind 'desired-stale' does not carry details ['received']"
