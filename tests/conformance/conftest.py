"""A real fleet per test module: mosquitto (the session's), ``edgefleet orchestrator run``
and two ``edgefleet-agent run`` processes on the simulated runtime, under a topic root of
the module's own, watched by a plain MQTT 5 :class:`~harness.observer.Observer` that sees
retain flags and properties. The tests talk to it only through the broker, like any
client of docs/protocol.md would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgefleet_protocol import Topics
from harness.mosquitto import Mosquitto
from harness.observer import Observer, Seen
from harness.processes import Program, agent, orchestrator

SITE = "s1"
NODES = ("gw-a", "gw-b")
USER = "alice"


@dataclass
class Fleet:
    url: str
    root: str
    topics: Topics
    orch: Program
    agents: dict[str, Program]
    obs: Observer
    orch_data: Path

    def node(self, node: str, kind: str) -> str:
        return f"{self.root}/nodes/{SITE}/{node}/{kind}"

    @property
    def orch_status(self) -> str:
        return self.topics.orchestrator_status()

    @property
    def orch_events(self) -> str:
        return self.topics.orchestrator_events()

    def reply_topic(self, request_id: str, operator: str = USER) -> str:
        return f"{self.root}/replies/{operator}/{request_id}"

    def send(
        self,
        verb: str,
        body: dict[str, Any] | bytes,
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        operator: str | None = USER,
    ) -> None:
        """Publish a command as ``operator`` (``None``: the accountless topic)."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.obs.publish(
            self.topics.command(verb, operator),
            payload,
            retain=retain,
            response_topic=response_topic,
            correlation_data=correlation_data,
        )

    def call(self, verb: str, **args: Any) -> dict[str, Any]:
        """A well-formed command with ``reply_to``; returns the reply's body."""
        rid = args.pop("request_id", None) or f"{verb}-{uuid.uuid4().hex[:10]}"
        operator = args.pop("operator", USER)
        mark = self.obs.mark()
        reply_to = self.reply_topic(rid, operator)
        self.send(verb, {"v": 1, "request_id": rid, "reply_to": reply_to, **args},
                  operator=operator)  # fmt: skip
        return self.reply(rid, after=mark, operator=operator).json()

    def reply(self, request_id: str, *, after: int, operator: str = USER) -> Seen:
        topic = self.reply_topic(request_id, operator)
        return self.obs.expect(lambda s: s.topic == topic, after=after, what=f"reply on {topic}")

    def audit(self, request_id: str, *, after: int) -> dict[str, Any]:
        """The audit event of one command on ``orchestrator/events``."""
        seen = self.obs.expect_json(
            self.orch_events,
            lambda b: b["kind"] == "command" and b["details"]["request_id"] == request_id,
            after=after,
            what=f"the audit event of {request_id}",
        )
        return seen.json()


@pytest.fixture(scope="module")
def fleet(
    mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Fleet]:
    """A module may define ``orchestrator_args(work: Path) -> list[str]`` for extra options
    of its orchestrator (a roles file, a policy file)."""
    work = tmp_path_factory.mktemp("conformance")
    extra_args = getattr(request.module, "orchestrator_args", lambda _: [])(work)
    root = f"conformance/{uuid.uuid4().hex[:10]}"
    topics = Topics(root)
    obs = Observer(mosquitto.url, [f"{root}/#"]).start()
    orch = orchestrator(
        mosquitto.url, root, work / "orchestrator", work, client_id=f"orch-{uuid.uuid4().hex[:6]}"
    )
    orch.argv += extra_args
    agents = {
        node: agent(mosquitto.url, root, work / node, work, node=node, site=SITE) for node in NODES
    }
    fleet = Fleet(mosquitto.url, root, topics, orch, agents, obs, work / "orchestrator")
    try:
        orch.start()
        obs.expect_json(topics.orchestrator_status(), lambda b: b["state"] == "online")
        for program in agents.values():
            program.start()
        for node in NODES:
            obs.expect_json(fleet.node(node, "status"), lambda b: b["state"] == "online")
        obs.expect_json(
            topics.fleet_summary(), lambda b: b["nodes_online"] == len(NODES), timeout_s=30
        )
        yield fleet
    finally:
        for program in [*agents.values(), orch]:
            program.stop()
        obs.stop()
        # Leave no retained state behind on the shared broker.
        with Observer(mosquitto.url, [f"{root}/#"]) as sweeper:
            for topic in {s.topic for s in obs.seen() if s.retain}:
                sweeper.publish(topic, b"", retain=True)


@pytest.fixture
def mark(fleet: Fleet) -> int:
    """The observer's position at the start of the test: "from now on"."""
    return fleet.obs.mark()
