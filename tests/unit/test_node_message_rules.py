"""What docs/protocol.md says of the node messages beyond their field tables: capabilities
without ``network`` read as an ``unknown`` link with no figures, and a ``sealing_key`` (of
a node or of the orchestrator) longer than 64 characters refuses the message. Why: the
orchestrator reads ``capabilities.network`` for every placement with a bandwidth or latency
constraint, and a key is only ever 44 characters of base64; mutation testing found both
unpinned."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import Capabilities, OrchestratorStatus, ProtocolError, decode

CAPABILITIES = {
    "v": 1,
    "node": "gw-1",
    "site": "plant-a",
    "arch": "aarch64",
    "cpu_cores": 4,
    "memory_mb": 3796,
    "disk_mb": 24576,
    "runtimes": ["docker"],
}
STATUS = {"v": 1, "state": "online", "since": 1767225500.0}


def test_capabilities_without_network_read_as_an_unknown_link_with_no_figures() -> None:
    network = decode(Capabilities, json.dumps(CAPABILITIES)).network
    assert (network.link, network.bandwidth_mbps, network.latency_ms) == ("unknown", None, None)


@pytest.mark.parametrize(
    ("model", "body"), [(Capabilities, CAPABILITIES), (OrchestratorStatus, STATUS)]
)
def test_a_sealing_key_of_more_than_64_characters_refuses_the_message(
    model: type[Any], body: dict[str, Any]
) -> None:
    longest = "k" * 64
    assert decode(model, json.dumps({**body, "sealing_key": longest})).sealing_key == longest
    assert decode(model, json.dumps(body)).sealing_key is None
    with pytest.raises(ProtocolError) as caught:
        decode(model, json.dumps({**body, "sealing_key": longest + "k"}))
    assert caught.value.field == "sealing_key"
