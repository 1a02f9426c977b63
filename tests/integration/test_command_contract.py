"""The command contract of #12 item 10 through a real orchestrator on a real mosquitto,
observed with a plain MQTT 5 client: which refusals reach ``reply_to``, which only
``orchestrator/events``, and that clearing a retained command is not a command."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from harness.fleet import FakeNode, eventually, running_orchestrator
from harness.observer import Observer


def command_events(obs: Observer, root: str, after: int) -> list[dict[str, Any]]:
    return [
        s.json()
        for s in obs.since(after)
        if s.topic == f"{root}/orchestrator/events" and s.payload and s.json()["kind"] == "command"
    ]


def audit_of(request_id: str) -> Any:
    def match(body: dict[str, Any]) -> bool:
        return body["kind"] == "command" and body["details"]["request_id"] == request_id

    return match


async def test_whole_numbers_written_as_floats_are_integers_in_scale_and_drain(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    node = FakeNode(broker_url, topic_root, "gw-1", "s1")
    await node.start()
    reply_root = f"{topic_root}/replies/alice"
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Observer(broker_url, [f"{reply_root}/#"]) as obs,
    ):
        await eventually(lambda: "gw-1" in orch.state.registry.nodes, what="node known")
        manifest = {"name": "web", "replicas": 1, "workload": {"runtime": "simulated"}}
        for rid, verb, args in [
            ("d-1", "deploy", {"manifest": manifest}),
            ("s-1", "scale", {"app": "web", "replicas": 3.0}),
            ("n-1", "drain", {"node": "gw-1", "max_unavailable": 1.0}),
        ]:
            payload = {"v": 1, "request_id": rid, "reply_to": f"{reply_root}/{rid}", **args}
            obs.publish(f"{topic_root}/commands/{verb}", json.dumps(payload))
            reply = (await obs.wait_json(f"{reply_root}/{rid}")).json()
            assert reply["ok"], reply
        assert orch.state.apps["web"].replicas == 3
    await node.stop()


@pytest.mark.parametrize("reply_to", ["{root}/replies/+", "{root}/replies/alice/#"])
async def test_a_wildcard_reply_topic_is_refused_as_bad_reply_to_on_events_only(
    broker_url: str, topic_root: str, tmp_path: Path, reply_to: str
) -> None:
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path),
        Observer(broker_url, [f"{topic_root}/#"]) as obs,
    ):
        payload = {"v": 1, "request_id": "w-1", "reply_to": reply_to.format(root=topic_root)}
        obs.publish(f"{topic_root}/commands/apps", json.dumps(payload))
        event = await obs.wait_json(f"{topic_root}/orchestrator/events", audit_of("w-1"))
        audit = event.json()["details"]
        assert (audit["ok"], audit["result"]) == (False, "bad_reply_to")
        assert not [s for s in obs.seen() if s.topic.startswith(f"{topic_root}/replies/")]


async def test_a_bad_version_is_answered_on_its_readable_reply_topic(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    reply_to = f"{topic_root}/replies/alice/v-1"
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path),
        Observer(broker_url, [f"{topic_root}/replies/#"]) as obs,
    ):
        payload = {"v": 2, "request_id": "v-1", "reply_to": reply_to}
        obs.publish(f"{topic_root}/commands/apps", json.dumps(payload))
        reply = (await obs.wait_json(reply_to)).json()
        assert (reply["request_id"], reply["ok"], reply["error"]["code"]) == (
            "v-1",
            False,
            "bad_request",
        )
        assert reply["error"]["details"]["field"] == "v"


async def test_clearing_a_retained_command_is_not_a_command_and_not_an_error(
    broker_url: str, topic_root: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"{topic_root}/commands/deploy"
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Observer(broker_url, [f"{topic_root}/orchestrator/events"]) as obs,
    ):
        mark = obs.mark()
        obs.publish(topic, b"", retain=True)  # what docs/protocol.md tells operators to do
        # A command published after the clear is answered; the clear before it is not.
        obs.publish(topic, json.dumps({"v": 1, "request_id": "after-clear"}))
        await obs.wait_json(
            f"{topic_root}/orchestrator/events", audit_of("after-clear"), after=mark
        )
        answered = [e["details"]["request_id"] for e in command_events(obs, topic_root, mark)]
        assert answered == ["after-clear"]
        rejected = [s for s in obs.since(mark) if s.payload and s.json()["kind"] != "command"]
        assert rejected == []
        assert orch.stats.rejected == 0
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "deploy" in r.getMessage()
    ]
