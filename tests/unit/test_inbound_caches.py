"""The orchestrator's inbound path keeps its caches bounded: a flood of distinct topics or
node names (valid or not) cannot grow memory without limit."""

from __future__ import annotations

from typing import Any, cast

import pytest
from edgefleet_orchestrator.service import inbound
from edgefleet_orchestrator.service.inbound import Inbound
from edgefleet_protocol import ProtocolError, Topics, ids
from edgefleet_protocol.ids import Identifier
from pydantic import BaseModel


class _Host:
    topics = Topics("r")


def test_the_parsed_topic_cache_is_bounded_and_never_holds_a_bad_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inbound, "TOPIC_CACHE", 50)
    path = Inbound(cast(Any, _Host()))
    for n in range(500):
        assert path.parse(f"r/nodes/s/gw-{n}/telemetry").node == f"gw-{n}"
        with pytest.raises(ProtocolError):
            path.parse(f"r/nodes/s/BAD_{n}/telemetry")
        assert len(path._topics) <= 50
    assert all("BAD" not in topic for topic in path._topics)


class _Named(BaseModel):
    name: Identifier


def test_the_known_valid_id_set_is_bounded_and_never_holds_a_bad_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "KNOWN_VALID_MAX", 50)
    monkeypatch.setattr(ids, "_KNOWN_VALID", set())
    for n in range(500):
        assert _Named(name=f"gw-{n}").name == f"gw-{n}"
        with pytest.raises(ValueError, match="not a valid"):
            _Named(name=f"Bad {n}")
        assert len(ids._KNOWN_VALID) <= 50
    assert all(" " not in name for name in ids._KNOWN_VALID)
    assert _Named(name="gw-7").name == "gw-7"  # checked again after a clear, still valid
