"""Bytes an idle gateway costs across a site bridge (issue #17 item 6, docs/operations.md).

A central mosquitto with the orchestrator process, one site mosquitto bridged to it with
the generated bridge block and topic lines (``tests/harness/bridge.py``, generated
keepalive and reconnect timings), and ``--agents`` real agents (process runtime, default
timings: telemetry sampled every 10 s, full telemetry at least every 60 s, keepalive 60 s)
on the site broker, each running one ``sleep`` replica of a daemon app. Once the
orchestrator sees every node online and the app healthy, the bridge's loopback proxy
counts the bytes in both directions for ``--window-s`` seconds of nothing happening.

Plain MQTT, no TLS: TLS adds its record overhead (about 22-29 bytes per record with
AES-GCM) on top of these figures.

Run ``python -m bench.bridge_idle [--agents 5] [--window-s 180]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:  # the broker-tier harness: one fleet for tests and figures
    sys.path.insert(0, str(_TESTS))

from edgefleet_protocol.broker import BrokerSettings  # noqa: E402
from edgefleet_protocol.session import Session  # noqa: E402
from harness.bridge import Site, SiteAgent  # noqa: E402
from harness.chaos import ChaosFleet, until  # noqa: E402

SITE = "site-a"


class _Counter:
    """Counts the site's messages as the central broker delivers them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.n = 0
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for _ in self.session.messages():
            self.n += 1

    async def close(self) -> None:
        self.task.cancel()
        await self.session.close()


async def _count_messages(url: str, topic: str) -> _Counter:
    session = Session(BrokerSettings.from_url(url), client_id="bench-count", subscriptions=[topic])
    session.start()
    assert await session.wait_connected(10)
    return _Counter(session)


async def measure(agents: int, window_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bridge-idle-") as tmp:
        central = ChaosFleet(Path(tmp) / "central")
        site = Site(SITE, Path(tmp), central.root, central.port, fast=False)
        fleet: list[SiteAgent] = []
        try:
            central.start_broker()
            central.start_orchestrator()
            await site.start_bridge()
            site.start_broker()
            for i in range(agents):
                agent = SiteAgent(f"gw-{i + 1}", site, timings=("--log-level", "warning"))
                agent.start()
                fleet.append(agent)
            operator = await central.open_operator()
            await central.deploy(central.app("idle", mode="daemon"))

            async def ready() -> bool:
                try:
                    nodes = await operator.call("nodes", timeout_s=3)
                    apps = await operator.call("apps", timeout_s=3)
                except TimeoutError:
                    return False
                rows = nodes.get("result", {}).get("nodes", [])
                app_rows = apps.get("result", {}).get("apps", [])
                return (
                    len(rows) == agents
                    and all(r["state"] == "online" for r in rows)
                    and bool(app_rows)
                    and all(a["running"] == a["desired"] == agents for a in app_rows)
                )

            await until(ready, 180, "every node online and the app running")
            assert site.proxy is not None
            counted = await _count_messages(central.url, f"{central.root}/nodes/{SITE}/#")
            await asyncio.sleep(5)  # the counter's retained replay passes before the window
            up0, down0, msgs0 = site.proxy.bytes_up, site.proxy.bytes_down, counted.n
            started = time.monotonic()
            await asyncio.sleep(window_s)  # the measurement window itself
            took = time.monotonic() - started
            messages = counted.n - msgs0
            await counted.close()
            up = site.proxy.bytes_up - up0
            down = site.proxy.bytes_down - down0
        finally:
            for agent in fleet:
                agent.kill9()
            if site.broker is not None:
                site.broker.kill()
            if site.proxy is not None:
                await site.proxy.close()
            await central.stop()
    per_gw_s = (up + down) / agents / took
    return {
        "agents": agents,
        "window_s": round(took, 1),
        "bytes_site_to_central": up,
        "bytes_central_to_site": down,
        "bytes_per_gateway_per_s": round(per_gw_s, 1),
        "bytes_per_gateway_per_day": round(per_gw_s * 86400),
        "messages_from_site": messages,
        "messages_per_gateway_per_min": round(messages / agents / took * 60, 2),
        "out_per_gateway_per_s": round(up / agents / took, 1),
        "in_per_gateway_per_s": round(down / agents / took, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=180.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.agents, args.window_s)), indent=2))


if __name__ == "__main__":
    main()
