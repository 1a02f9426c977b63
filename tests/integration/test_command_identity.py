"""Who sent a command, and what of it others may see: the command API's identity rules
against a real mosquitto (the dev config) and a real orchestrator.

#12 defects 4 and 5: a command's reply (manifest ``env`` values included) went to
``orchestrator/events``, which every viewer reads; ``request_id`` was one namespace for
all operators.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Session
from harness.fleet import Operator, eventually, running_orchestrator

SECRET = "s3cr3t-" + uuid.uuid4().hex


def secret_manifest(name: str = "vault") -> dict[str, Any]:
    return {
        "name": name,
        "replicas": 1,
        "workload": {"runtime": "simulated", "env": {"API_TOKEN": SECRET}},
    }


@asynccontextmanager
async def listening(url: str, topic_filter: str) -> AsyncIterator[list[InboundMessage]]:
    """Everything published on ``topic_filter`` while the block runs."""
    seen: list[InboundMessage] = []
    session = Session(
        BrokerSettings.from_url(url),
        client_id=f"ear-{uuid.uuid4().hex[:6]}",
        subscriptions=[topic_filter],
    )

    async def pump() -> None:
        async for message in session.messages():
            seen.append(message)

    async with session:
        assert await session.wait_connected(5)
        task = asyncio.create_task(pump())
        try:
            yield seen
        finally:
            task.cancel()


def command_events(seen: list[InboundMessage]) -> list[dict[str, Any]]:
    bodies = [json.loads(m.payload) for m in seen if m.payload]
    return [b for b in bodies if b.get("kind") == "command"]


async def test_command_events_carry_who_verb_target_result_and_no_payload_values(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path),
        listening(broker_url, f"{topic_root}/orchestrator/events") as events,
        Operator(broker_url, topic_root) as op,
    ):
        deployed = await op.call("deploy", manifest=secret_manifest())
        assert deployed["ok"], deployed
        shown = await op.call("app", app="vault")  # its reply quotes the manifest, env too
        assert SECRET in json.dumps(shown)
        refused = await op.call("scale", app="vault", replicas="3")
        assert refused["error"]["code"] == "bad_request"
        await eventually(lambda: len(command_events(events)) >= 3, what="three audit events")
    assert not any(SECRET.encode() in m.payload for m in events)
    audit = [e["details"] for e in command_events(events)]
    assert [(a["verb"], a["target"], a["result"]) for a in audit] == [
        ("deploy", "vault", "ok"),
        ("app", "vault", "ok"),
        ("scale", None, "bad_request"),
    ]
    assert {a["operator"] for a in audit} == {"anonymous"}
    assert all("reply" not in e["details"] for e in command_events(events))


async def test_request_ids_are_per_operator_no_squatting_no_replay(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root, operator="alice") as alice,
        Operator(broker_url, topic_root, operator="bob") as bob,
    ):
        # Bob squats the id first; alice's deploy with it must still run.
        squat = await bob.call("apps", request_id="shared-1")
        assert squat["ok"] and squat["result"] == {"apps": []}
        mine = await alice.call("deploy", request_id="shared-1", manifest=secret_manifest())
        assert mine["ok"] and mine["result"]["action"] == "created", mine
        assert "vault" in orch.state.apps
        # Bob replays her id (with another verb): he gets his own stored reply, not hers.
        replay = await bob.call("deploy", request_id="shared-1", manifest=secret_manifest("x"))
        assert replay == squat
        assert SECRET not in json.dumps(replay)
        # And alice's own retry is still idempotent.
        again = await alice.call("deploy", request_id="shared-1", manifest=secret_manifest("y"))
        assert again == mine and "y" not in orch.state.apps


async def test_a_reply_cannot_be_aimed_at_another_operators_subtree(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        listening(broker_url, f"{topic_root}/replies/#") as replies,
        listening(broker_url, f"{topic_root}/orchestrator/events") as events,
        Operator(broker_url, topic_root, operator="alice") as alice,
        Operator(broker_url, topic_root, operator="bob") as bob,
    ):
        assert (await alice.call("deploy", manifest=secret_manifest()))["ok"]
        # Bob asks for alice's app (env included) with the reply aimed into alice's
        # subtree — or anyone's he could read through a compromised account of hers.
        await bob.send_raw(
            "app",
            json.dumps(
                {
                    "v": 1,
                    "request_id": "aim-1",
                    "reply_to": f"{topic_root}/replies/alice/aim-1",
                    "app": "vault",
                }
            ).encode(),
        )
        await eventually(
            lambda: any(e["details"].get("request_id") == "aim-1" for e in command_events(events)),
            what="the refused command's audit event",
        )
        assert orch.stats.commands == 2
    refused = [
        e["details"] for e in command_events(events) if e["details"]["request_id"] == "aim-1"
    ]
    assert refused == [
        {
            "ts": refused[0]["ts"],
            "operator": "bob",
            "verb": "app",
            "request_id": "aim-1",
            "target_kind": None,
            "target": None,
            "ok": False,
            "result": "bad_reply_to",
        }
    ]
    assert not [m for m in replies if m.topic.endswith("/aim-1")]
