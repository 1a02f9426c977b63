"""The orchestrator's inbound path under a connect storm, against its own real mosquitto.

A fleet that connects at once sends every node's status in a burst, and each first
``online`` makes a ``node`` event. The inbound path must take in the whole burst without
waiting for the broker to acknowledge each event: awaiting every event's PUBACK held a
10,000-node connect storm to the broker's round trip (58 s until the fleet summary counted
every node, the orchestrator idle two thirds of it: see
bench/results/2026-12-06b-vm-fleet-size-lite.md).

The broker is paused (SIGSTOP) while the batch is handled, so no PUBACK can arrive: the
registry must still take in every node, and the events must reach the broker, in order,
once it runs again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from edgefleet_protocol import NodeStatus, Topics, encode
from edgefleet_protocol.wire import InboundMessage
from harness.fleet import eventually, running_orchestrator
from harness.mosquitto import start_mosquitto
from harness.observer import Observer

NODES = 40


def status(topics: Topics, node: str) -> InboundMessage:
    body = NodeStatus(
        node=node, site="s1", state="online", session=1, since=time.time(), agent_version="t"
    )
    return InboundMessage(topics.node_status("s1", node), encode(body), qos=1, retain=False)


async def test_a_burst_of_node_statuses_is_taken_in_while_the_broker_acknowledges_nothing(
    tmp_path: Path,
) -> None:
    broker = start_mosquitto(tmp_path / "broker")  # its own: this test pauses it
    root = f"t/storm-{uuid.uuid4().hex[:8]}"
    topics = Topics(root)
    names = [f"gw-{i:02d}" for i in range(NODES)]
    try:
        async with (
            Observer(broker.url, [topics.orchestrator_events()]) as obs,
            running_orchestrator(broker.url, root, tmp_path / "orch") as orch,
        ):
            registry = orch.state.registry

            def online() -> int:
                return sum(1 for r in registry.nodes.values() if r.state == "online")

            os.kill(broker.process.pid, signal.SIGSTOP)
            try:
                handling = asyncio.create_task(
                    orch.inbound.handle([status(topics, n) for n in names])
                )
                # Without waiting on the broker: every node is in (before, the first
                # event's publish waited for its PUBACK, up to its 10 s timeout each).
                await eventually(
                    lambda: online() == NODES, 15.0, "every node online, broker paused"
                )
            finally:
                os.kill(broker.process.pid, signal.SIGCONT)
            await asyncio.wait_for(handling, 30)

            def came_online() -> list[str]:
                return [
                    s.json()["node"]
                    for s in obs.seen(topics.orchestrator_events())
                    if s.json().get("kind") == "node" and "online" in s.json()["message"]
                ]

            await eventually(lambda: len(came_online()) == NODES, 30.0, "every node event")
            assert came_online() == names  # in the order the statuses arrived
    finally:
        broker.stop()
