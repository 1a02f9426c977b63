"""Issue #12 defect 7, the agent's side, with the real agent process on a real mosquitto:
a flood of 16,000 bad desired documents (it once made 16,000 log lines and doubled the
agent's memory) costs a few log lines and events and one ``events-suppressed`` summary."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import psutil
from harness.tiers import require
from test_agent_harness import AgentProcess, Watcher

FLOOD = 16_000


async def test_a_desired_flood_is_summarised_not_logged_line_by_line(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    pub = shutil.which("mosquitto_pub")
    require(pub is not None, "mosquitto_pub (mosquitto-clients) is not installed")
    assert pub is not None
    host, port = broker_url.removeprefix("mqtt://").split(":")
    lines = tmp_path / "flood.txt"
    lines.write_text("".join(f"{{not json {i}\n" for i in range(FLOOD)))
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, extra=["--log-level", "info"])
    async with Watcher(broker_url, topic_root) as watcher:
        try:
            agent.start()
            await watcher.wait_for(agent.topic("reported"), timeout=20)
            assert agent.proc is not None
            before_mb = psutil.Process(agent.proc.pid).memory_info().rss / 2**20
            with lines.open("rb") as stdin:
                flooder = await asyncio.create_subprocess_exec(
                    pub, "-h", host, "-p", port, "-q", "1", "-t", agent.topic("desired"), "-l",
                    stdin=stdin,
                )  # fmt: skip
                assert await flooder.wait() == 0

            def accounted() -> int:
                bodies = watcher.bodies(agent.topic("events"))
                told = sum(1 for b in bodies if b["kind"] == "desired-rejected")
                summed = sum(
                    b["details"]["suppressed"]
                    for b in bodies
                    if b["kind"] == "events-suppressed"
                    and b["details"]["kind"] == "desired-rejected"
                )
                return told + summed

            deadline = asyncio.get_running_loop().time() + 120
            while accounted() < FLOOD and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.5)
            assert accounted() == FLOOD  # every refusal reported, one by one or counted
            after_mb = psutil.Process(agent.proc.pid).memory_info().rss / 2**20
            rejected = [
                b for b in watcher.bodies(agent.topic("events")) if b["kind"] == "desired-rejected"
            ]
            logged = [line for line in agent.log().splitlines() if "desired" in line]
            print(
                f"\n{FLOOD} bad desired documents: {len(rejected)} desired-rejected events, "
                f"{len(logged)} log lines about them; "
                f"agent RSS {before_mb:.0f} -> {after_mb:.0f} MB (not bounded yet: the"
                " inbound messages queue while the agent works through them)"
            )
            windows = 1 + len([b for b in watcher.bodies(agent.topic("events"))
                               if b["kind"] == "events-suppressed"])  # fmt: skip
            assert len(rejected) <= 5 * windows
            assert len(logged) <= 6 * windows
            assert agent.proc.poll() is None
        finally:
            agent.stop()
