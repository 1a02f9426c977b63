"""``edgefleet events`` against a real orchestrator (in this process) on the session's
mosquitto: the recent events come from the ``events`` command with the filters applied,
and ``--follow`` prints a new event as it happens until SIGINT ends it with exit 0 — in a
CLI process started with SIGINT *ignored*, so it passes only because the command installs
its own handler instead of relying on the disposition it inherited."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from harness.fleet import Operator, running_orchestrator

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def next_json(stream: asyncio.StreamReader) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), 60)
    assert line, "the follow ended by itself"
    body = json.loads(line)
    assert isinstance(body, dict)
    return body


async def test_events_prints_recent_ones_and_follows_new_ones_until_sigint(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    common = ["--broker", broker_url, "--root", topic_root, "--user", "ops"]
    async with (
        running_orchestrator(broker_url, topic_root, tmp_path / "orch"),
        Operator(broker_url, topic_root) as op,
    ):
        for name in ("a", "b"):
            reply = await op.call("delete", app=name)  # refused: a command event each
            assert reply["error"]["code"] == "not_found"
        follow = await asyncio.create_subprocess_exec(
            str(BIN / "edgefleet"), "events", "--follow", "--kind", "command",
            "--limit", "1", "-o", "json", *common,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=ENV, preexec_fn=ignore_sigint,
        )  # fmt: skip
        recent = asyncio.create_subprocess_exec(
            str(BIN / "edgefleet"), "events", "--app", "a", *common,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV,
        )  # fmt: skip
        listed = await recent
        try:
            assert follow.stdout is not None and follow.stderr is not None
            # The newest recent command event first: it is subscribed by then. That is b's
            # delete, unless the other CLI's `events --app a` (audited with target a) came
            # in between.
            first = await next_json(follow.stdout)
            assert first["kind"] == "command"
            assert (first["details"]["verb"], first["details"]["target"]) in {
                ("delete", "b"),
                ("events", "a"),
            }
            # A new event is printed as it happens (after, maybe, the command events of
            # the CLIs' own `events` calls).
            reply = await op.call("delete", app="c")
            assert not reply["ok"]
            for _ in range(5):
                seen = await next_json(follow.stdout)
                if seen["details"]["request_id"] == reply["request_id"]:
                    break
                assert seen["details"]["verb"] == "events", seen
            assert seen["details"]["request_id"] == reply["request_id"]
            assert seen["message"].endswith("delete app c: not_found")

            out, err = await asyncio.wait_for(listed.communicate(), 60)
            assert listed.returncode == 0, err.decode()
            lines = out.decode().splitlines()
            assert len(lines) == 1 and "command [app a]: " in lines[0], lines
            assert "delete app a: not_found" in lines[0]
        finally:
            follow.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(follow.wait(), 30)
            if listed.returncode is None:
                await asyncio.wait_for(listed.communicate(), 60)
        assert code == 0, (await follow.stderr.read()).decode()
