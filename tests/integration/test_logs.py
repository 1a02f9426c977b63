"""Logs on demand, end to end: a real mosquitto, the orchestrator (in this process), a real
``edgefleet-agent run`` process on the process runtime running a real workload that prints
a numbered line every 0.1 s, and the real ``edgefleet logs`` command.

``--tail 5`` prints the newest five lines in order; ``--follow`` keeps printing new ones
until SIGINT ends it cleanly (exit 0); a request for a workload the node does not run gets
a ``not_found`` chunk at once; a node that does not answer ends the CLI with exit 4 within
its ``--timeout`` instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from edgefleet_protocol import LogsChunk, LogsRequest, Topics, decode
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.logs import logs_reply_to
from edgefleet_protocol.session import Publication, Session
from harness.fleet import Operator, Watcher, eventually, running_orchestrator

BIN = Path(sys.executable).parent
LINE = re.compile(r"^line (\d+)$")


def marked(mark: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            if p.environ().get("EDGEFLEET_TEST_MARK") == mark:
                found.append(p.pid)
    return found


@pytest.fixture
def mark() -> Iterator[str]:
    value = uuid.uuid4().hex
    yield value
    for pid in marked(value):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def spawn_agent(broker_url: str, topic_root: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    with open(tmp_path / "agent.log", "wb") as out:
        return subprocess.Popen(
            [
                str(BIN / "edgefleet-agent"),
                "run",
                "--node",
                "gw-1",
                "--site",
                "plant-a",
                "--broker",
                broker_url,
                "--root",
                topic_root,
                "--runtime",
                "process",
                "--state-dir",
                str(tmp_path / "agent"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(BIN / "edgefleet"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )


def numbers(text: str) -> list[int]:
    return [int(m.group(1)) for line in text.splitlines() if (m := LINE.match(line))]


async def test_logs_tail_and_follow_of_a_real_process_workload(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    agent = spawn_agent(broker_url, topic_root, tmp_path)
    status_topic = f"{topic_root}/apps/ticker/status"
    watcher = Watcher(broker_url, [status_topic])
    await watcher.start()
    common = ["--broker", broker_url, "--root", topic_root, "--user", "tester"]
    try:
        async with (
            running_orchestrator(broker_url, topic_root, tmp_path / "orch"),
            Operator(broker_url, topic_root) as op,
        ):
            manifest = {
                "name": "ticker",
                "replicas": 1,
                "workload": {
                    "runtime": "process",
                    "command": [
                        "sh",
                        "-c",
                        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
                    ],
                    "env": {"EDGEFLEET_TEST_MARK": mark},
                },
            }
            await eventually(
                lambda: agent.poll() is None and bool(watcher.session.connected.is_set()),
                what="agent up",
            )
            reply: dict[str, Any] = await op.call("deploy", manifest=manifest)
            assert reply["ok"], reply
            await eventually(
                lambda: watcher.latest.get(status_topic, {}).get("running") == 1,
                timeout_s=30,
                what="the ticker running",
            )
            await asyncio.sleep(1.0)  # some lines in its log

            # --tail 5: the five newest lines, consecutive.
            proc = await cli("logs", "ticker", "--tail", "5", *common)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            got = numbers(out.decode())
            assert len(got) == 5, out.decode()
            assert got == list(range(got[0], got[0] + 5))
            assert got[0] >= 5

            # --follow: new lines keep coming until SIGINT, which ends it with exit 0.
            proc = await cli(
                "logs", "ticker", "--replica", "ticker-0", "-f", "--tail", "1", *common
            )
            assert proc.stdout is not None
            seen: list[int] = []
            async with asyncio.timeout(30):
                while len(seen) < 15:
                    line = (await proc.stdout.readline()).decode().strip()
                    assert line, "the follow ended by itself"
                    seen.extend(numbers(line))
            assert seen == list(range(seen[0], seen[0] + len(seen))), seen
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 15)
            assert proc.returncode == 0

            # A workload the node does not run: one not_found chunk, at once.
            chunks = await ask_directly(broker_url, topic_root, "ghost-0")
            assert len(chunks) == 1
            assert chunks[0].done and chunks[0].end == "error"
            assert chunks[0].error is not None and chunks[0].error.code == "not_found"
            assert "ticker-0" in chunks[0].error.message

            # The CLI refuses a replica the app does not have, naming those it has.
            proc = await cli("logs", "ticker", "--replica", "nope-9", *common)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 1
            assert "ticker-0 on gw-1" in err.decode()

            # The node goes away: the CLI gives up after its timeout (exit 4), no hang.
            agent.send_signal(signal.SIGTERM)
            agent.wait(15)
            proc = await cli("logs", "ticker", "--timeout", "2", *common)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 4, err.decode()
            assert "did not answer" in err.decode()
    finally:
        await watcher.stop()
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(15)
    assert "Traceback" not in (tmp_path / "agent.log").read_text()


async def ask_directly(url: str, root: str, workload: str) -> list[LogsChunk]:
    """A LogsRequest as any MQTT client would send it; the chunks until ``done``."""
    rid = uuid.uuid4().hex
    reply_to = logs_reply_to(root, "tester", "plant-a", "gw-1", rid)
    session = Session(
        BrokerSettings.from_url(url), client_id=f"t-{rid[:6]}", subscriptions=[reply_to]
    )
    session.start()
    try:
        assert await session.wait_connected(5)
        request = LogsRequest(request_id=rid, reply_to=reply_to, workload=workload)
        await session.publish(
            Publication(
                topic=Topics(root).node_logs("plant-a", "gw-1"),
                payload=json.dumps(request.model_dump(mode="json")).encode(),
            )
        )
        chunks: list[LogsChunk] = []
        async with asyncio.timeout(10):
            async for message in session.messages():
                chunks.append(decode(LogsChunk, message.payload))
                if chunks[-1].done:
                    return chunks
    finally:
        await session.close()
    raise AssertionError("unreachable")
