"""The lite fleet's nodes follow the agents' wire rules where the bench's figures depend
on them (bench/lite_fleet.py)."""

from __future__ import annotations

from edgefleet_protocol import Topics

from bench.lite_fleet import LiteNode, NodeSpec


class Written:
    """Stands in for the node's socket: every packet it writes, in order."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.packets.append(data)


def test_a_lite_node_says_hello_only_to_a_later_orchestrator_run_as_agents_do() -> None:
    topics = Topics("t")
    node = LiteNode(topics, NodeSpec("gw-1", "s1"), session_no=7)
    sent = Written()
    node.client.transport = sent  # type: ignore[assignment]

    # The first run it sees (its retained status, right after the node's own connect
    # announced it): no second announcement, which doubled every connect storm.
    node.on_orchestrator_status({"state": "online", "since": 100.0})
    node.on_orchestrator_status({"state": "online", "since": 100.0})
    node.on_orchestrator_status({"state": "offline", "since": 100.0})
    assert sent.packets == []

    # A later run knows nothing live: status and a full telemetry, not the (retained)
    # capabilities.
    node.on_orchestrator_status({"state": "online", "since": 200.0})
    said = b"".join(sent.packets)
    assert topics.node_status("s1", "gw-1").encode() in said
    assert topics.node_telemetry("s1", "gw-1").encode() in said
    assert topics.node_capabilities("s1", "gw-1").encode() not in said

    sent.packets.clear()
    node.on_orchestrator_status({"state": "online", "since": 200.0})
    assert sent.packets == []
