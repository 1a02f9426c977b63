"""``edgefleet watch`` with stdout redirected: snapshots, not nothing, and no name wrapped.

A real broker holds retained statuses with long names; the real command writes into a
pipe without ``COLUMNS`` (as a script or ``> file`` would), prints a snapshot, another
after a change, and ends with exit 0 on SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

BIN = Path(sys.executable).parent
LONG_APP = "a-very-long-application-name-that-wraps-in-eighty-columns-x"
LONG_NODE = "gateway-with-a-long-name-in-the-north-plant-building-seven"


def app_status(name: str, running: int) -> bytes:
    body = {
        "v": 1,
        "app": name,
        "state": "healthy" if running else "progressing",
        "desired": 1,
        "placed": 1,
        "running": running,
        "updated_at": time.time(),
    }
    return json.dumps(body).encode()


async def test_watch_into_a_pipe_prints_unwrapped_snapshots_per_change(
    broker_url: str, topic_root: str
) -> None:
    session = Session(BrokerSettings.from_url(broker_url), client_id="nt-publisher")
    session.start()
    try:
        assert await session.wait_connected(5)
        node = {
            "v": 1,
            "node": LONG_NODE,
            "site": "plant-a",
            "state": "online",
            "session": 1,
            "since": time.time(),
        }
        for topic, payload in [
            (f"{topic_root}/apps/{LONG_APP}/status", app_status(LONG_APP, 0)),
            (f"{topic_root}/nodes/plant-a/{LONG_NODE}/status", json.dumps(node).encode()),
        ]:
            await session.publish(Publication(topic=topic, payload=payload, retain=True))
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "edgefleet"),
            "watch",
            "--broker",
            broker_url,
            "--root",
            topic_root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        seen: list[str] = []

        async def until(text: str) -> None:
            async with asyncio.timeout(30):
                while not any(text in line for line in seen):
                    line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
                    assert line, "watch ended by itself"
                    seen.append(line)

        await until(LONG_NODE)
        assert any(LONG_APP in line and "0/1" in line for line in seen), seen
        await session.publish(
            Publication(
                topic=f"{topic_root}/apps/{LONG_APP}/status",
                payload=app_status(LONG_APP, 1),
                retain=True,
            )
        )
        await until("1/1")
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 15)
        assert proc.returncode == 0
        # Each name whole on one line, in every snapshot (two at least).
        assert sum(LONG_APP in line for line in seen) >= 2
        assert sum(LONG_NODE in line for line in seen) >= 1
    finally:
        for topic in (
            f"{topic_root}/apps/{LONG_APP}/status",
            f"{topic_root}/nodes/plant-a/{LONG_NODE}/status",
        ):
            await session.publish(Publication(topic=topic, payload=b"", retain=True))
        await session.close()
