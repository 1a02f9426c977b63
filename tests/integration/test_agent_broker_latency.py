"""The agent measures its broker latency on its own MQTT traffic (issue #13): a TCP probe
connection a minute cost the broker three log lines and ~12 B/s per agent."""

from __future__ import annotations

from pathlib import Path

from harness.mosquitto import Mosquitto
from harness.proxy import Proxy
from test_agent_harness import AgentProcess, Watcher


async def test_the_agent_reports_broker_latency_without_extra_connections(
    tmp_path: Path, mosquitto: Mosquitto, topic_root: str
) -> None:
    proxy = Proxy(mosquitto.port)
    port = await proxy.start()
    url = f"mqtt://127.0.0.1:{port}"
    # --probe-interval-s 1 (FAST): the old probe would have connected every second.
    agent = AgentProcess(tmp_path / "state", url, topic_root)
    try:
        async with Watcher(mosquitto.url, topic_root) as watcher:
            agent.start()
            telemetry = agent.topic("telemetry")
            body = await watcher.wait_for(
                telemetry, lambda b: "broker" in b.get("latency_ms", {}), timeout=30
            )
            assert 0 < body["latency_ms"]["broker"] < 5000
            mark = watcher.mark()
            await watcher.wait_for(telemetry, after=mark, timeout=30)  # a few probe intervals
            assert proxy.accepted == 1, f"{proxy.accepted} connections: only the MQTT session"
    finally:
        agent.stop()
        await proxy.close()
