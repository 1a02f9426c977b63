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

from edgefleet_orchestrator.access.roles import parse_policy
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


async def test_roles_are_enforced_on_every_verb_with_a_forbidden_reply(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    policy = parse_policy(
        {
            "operators": {
                "ada": "admin",
                "dev": {"role": "deployer", "apps": ["vault"]},
                "eve": "viewer",
            }
        },
        "roles.yaml",
    )
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path, access=policy) as orch,
        Operator(broker_url, topic_root, operator="ada") as ada,
        Operator(broker_url, topic_root, operator="dev") as dev,
        Operator(broker_url, topic_root, operator="eve") as eve,
        Operator(broker_url, topic_root) as anonymous,
    ):
        refused = await eve.call("deploy", manifest=secret_manifest())
        assert refused["error"]["code"] == "forbidden", refused
        assert refused["error"]["details"]["needs"] == "deployer"
        assert "vault" not in orch.state.apps
        assert (await dev.call("deploy", manifest=secret_manifest()))["ok"]
        other = await dev.call("deploy", manifest=secret_manifest("other"))
        assert other["error"]["code"] == "forbidden" and "other" not in orch.state.apps
        assert (await dev.call("nodes"))["ok"]
        assert (await dev.call("cordon", node="gw-1"))["error"]["code"] == "forbidden"
        assert (await eve.call("apps"))["result"]["apps"][0]["app"] == "vault"
        assert (await anonymous.call("apps"))["error"]["code"] == "forbidden"
        assert (await ada.call("scale", app="vault", replicas=2))["ok"]

        # The trail: an admin reads everyone's, the others only their own.
        everything = (await ada.call("audit"))["result"]["entries"]
        assert [(e["operator"], e["verb"], e["result"]) for e in everything] == [
            ("eve", "deploy", "forbidden"),
            ("dev", "deploy", "ok"),
            ("dev", "deploy", "forbidden"),
            ("dev", "nodes", "ok"),
            ("dev", "cordon", "forbidden"),
            ("eve", "apps", "ok"),
            ("anonymous", "apps", "forbidden"),
            ("ada", "scale", "ok"),
        ]
        own = (await eve.call("audit"))["result"]["entries"]
        assert {e["operator"] for e in own} == {"eve"} and len(own) == 2
        only_dev = (await ada.call("audit", operator="dev", limit=2))["result"]["entries"]
        assert [e["verb"] for e in only_dev] == ["nodes", "cordon"]
    # The trail is in the store: a restarted orchestrator still has it.
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path, access=policy),
        Operator(broker_url, topic_root, operator="ada") as ada,
    ):
        again = (await ada.call("audit", limit=1000))["result"]["entries"]
        assert len(again) == 11 and SECRET not in json.dumps(again)
