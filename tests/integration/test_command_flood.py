"""Issue #12 defect 7 on a real mosquitto: a 20,000-command flood from one client must not
stall the orchestrator — another operator's command and node messages get through within a
few seconds, the flooder is refused with ``rate_limited``, and the refusals are summarised
instead of echoed one by one."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from pathlib import Path

import pytest
from edgefleet_protocol.session import Publication
from harness.fleet import FakeNode, Operator, Watcher, eventually, running_orchestrator
from harness.tiers import require

FLOOD = 20_000
BOUND_S = 20.0
"""Generous: on the shared 2-core VM at load 6-9 the measured delay was 4.4-11.5 s, most of
it the broker delivering the flood ahead of the command; unlimited it was about 45 s."""


def flood_file(path: Path, root: str) -> Path:
    lines = [
        json.dumps(
            {"v": 1, "request_id": f"f{i}", "reply_to": f"{root}/replies/mallory/f{i}"},
            separators=(",", ":"),
        )
        for i in range(FLOOD)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_20000_command_flood_delays_others_by_at_most_a_few_seconds(
    broker_url: str, topic_root: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgefleet.orchestrator")
    pub = shutil.which("mosquitto_pub")
    require(pub is not None, "mosquitto_pub (mosquitto-clients) is not installed")
    assert pub is not None
    host, port = broker_url.removeprefix("mqtt://").split(":")
    lines = flood_file(tmp_path / "flood.txt", topic_root)
    events = Watcher(broker_url, [f"{topic_root}/orchestrator/events"])
    await events.start()
    seen: list[dict[str, object]] = []
    events.hooks.append(lambda _t, body: seen.append(body))
    mallory = Watcher(broker_url, [f"{topic_root}/replies/mallory/#"])
    await mallory.start()
    node = FakeNode(broker_url, topic_root, "late", "s1")
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path / "data") as orch,
        Operator(broker_url, topic_root, user="alice") as alice,
    ):
        assert (await alice.call("apps"))["ok"]
        started = time.monotonic()
        with lines.open("rb") as stdin:
            flooder = await asyncio.create_subprocess_exec(
                pub, "-h", host, "-p", port, "-q", "1", "-t", f"{topic_root}/commands/apps",
                "-l", stdin=stdin,
            )  # fmt: skip
        seen_by_orch = orch.stats.commands
        await eventually(
            lambda: orch.stats.commands + orch.stats.commands_refused - seen_by_orch > 2_000,
            timeout_s=30,
            what="the flood arriving",
        )

        async def command() -> float:
            t0 = time.monotonic()
            reply = await alice.call("nodes", timeout_s=30)
            assert reply["ok"], reply
            return time.monotonic() - t0

        async def node_message() -> float:
            t1 = time.monotonic()
            await node.start()
            await eventually(
                lambda: "late" in orch.state.registry.nodes, timeout_s=30, what="the node"
            )
            return time.monotonic() - t1

        command_delay, node_delay = await asyncio.gather(command(), node_message())
        backlog = orch.session.pending()

        assert await flooder.wait() == 0
        flood_s = time.monotonic() - started
        await eventually(
            lambda: orch.session.pending() == 0 and orch.intake.pending() == 0,
            timeout_s=60,
            what="the flood drained",
        )
        print(
            f"\nflood of {FLOOD} commands sent in {flood_s:.2f} s; another operator's command"
            f" answered after {command_delay:.3f} s, a node message handled after"
            f" {node_delay:.3f} s; run {orch.stats.commands - seen_by_orch},"
            f" refused {orch.stats.commands_refused}; {backlog} still queued in the session"
        )
        assert command_delay < BOUND_S
        assert node_delay < BOUND_S
        assert orch.stats.commands_refused > FLOOD // 2
        # The flooder hears why, but not 20,000 times.
        await eventually(
            lambda: any(
                b.get("error", {}).get("code") == "rate_limited"  # type: ignore[union-attr]
                for b in mallory.latest.values()
            ),
            what="a rate_limited reply",
        )
        assert len(mallory.latest) < orch.stats.commands - seen_by_orch + 50
        await eventually(
            lambda: any(e.get("kind") == "commands-refused" for e in seen),
            timeout_s=15,
            what="the commands-refused summary",
        )
        summary = next(e for e in seen if e.get("kind") == "commands-refused")
        assert summary["details"]["client"] == "mallory"  # type: ignore[index]
    await node.stop()
    await mallory.stop()
    await events.stop()
    # Log lines are summarised too: nowhere near one per refused command.
    assert len(caplog.records) < 200, len(caplog.records)


async def test_invalid_node_messages_are_logged_and_reported_a_few_per_window(
    broker_url: str, topic_root: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgefleet.orchestrator")
    events = Watcher(broker_url, [f"{topic_root}/orchestrator/events"])
    await events.start()
    seen: list[dict[str, object]] = []
    events.hooks.append(lambda _t, body: seen.append(body))
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path) as orch,
        Operator(broker_url, topic_root) as op,
    ):
        for i in range(500):
            await op.session.publish(
                Publication(topic=f"{topic_root}/nodes/s1/bad/telemetry", payload=b"x%d" % i)
            )
        await eventually(lambda: orch.stats.rejected >= 500, what="500 rejections")
        per_message = [e for e in seen if e.get("kind") == "message-rejected"]
        assert len(per_message) <= 10
        await eventually(
            lambda: any(e.get("kind") == "rejections-suppressed" for e in seen),
            timeout_s=20,
            what="one summary",
        )
        summary = next(e for e in seen if e.get("kind") == "rejections-suppressed")
        assert summary["node"] == "bad"
        assert summary["details"]["suppressed"] >= 400  # type: ignore[index]
    await events.stop()
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) <= 10, len(dropped)
