"""Service discovery and the local proxy end to end: a real mosquitto, the orchestrator,
six REAL agents (process runtime) and Python http.server replicas, driven over TCP.

One fleet, phases in order (each states the property it proves):
1. 3 replicas on 3 gateways, a consumer on a 4th: 3,000 requests through its local proxy
   all succeed and split within ±10 % of the published weights; the consumer's
   environment names the proxy.
2. kill -9 one replica under load: no request that begins after the kill fails (those it
   was answering at that instant die with it: at most one per client); from 1 s after
   the kill none is answered by it (it is ejected passively at once, and leaves the
   catalog).
3. scale 3 -> 5: each new replica answers requests within 1 s of reporting healthy.
4. prefer-site: a daemon service with a replica on the consumer's own gateway keeps >= 95 %
   of requests in the site.
5. the broker stops: requests keep succeeding on the last known endpoints; a replica
   killed during the outage is ejected passively (no failures); the consumer's agent
   restarts with no broker and its proxy serves again from the local store.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from harness.fleet import Operator, Watcher, eventually, running_orchestrator
from harness.mosquitto import free_port, start_mosquitto
from service_fleet import Load, agent, consumer_app, hammer, kill_tagged, server_app, token

PROVIDERS = [("p1", "a", "127.0.0.11"), ("p2", "a", "127.0.0.12"), ("p3", "b", "127.0.0.13"),
             ("p4", "b", "127.0.0.14"), ("p5", "c", "127.0.0.15")]  # fmt: skip
CONSUMER = ("c1", "d", "127.0.0.20")


def endpoints(watcher: Watcher, root: str, service: str) -> list[dict[str, Any]]:
    return list(watcher.latest.get(f"{root}/services/{service}", {}).get("endpoints", []))


def shares_match_weights(counts: dict[str, int], eps: list[dict[str, Any]]) -> str | None:
    total_w = sum(e["weight"] for e in eps)
    total = sum(counts.values())
    for e in eps:
        want = e["weight"] / total_w
        got = counts.get(e["replica"], 0) / total
        if abs(got - want) > 0.1 * want:
            return f"{e['replica']}: {got:.3f} of requests vs weight share {want:.3f}"
    return None


async def test_proxy_balances_fails_over_scales_prefers_site_and_survives_the_broker(
    tmp_path: Path, topic_root: str
) -> None:
    root, tag, port, near_port = topic_root, token(), free_port(), free_port()
    broker = start_mosquitto(tmp_path / "broker", port=free_port())
    url = broker.url
    proxy_low = free_port()
    agents = [agent(tmp_path, url, root, n, s, a) for n, s, a in PROVIDERS]
    consumer = agent(
        tmp_path, url, root, *CONSUMER, "--proxy-ports", f"{proxy_low}-{proxy_low + 20}"
    )
    everyone = [*agents, consumer]
    watcher = Watcher(url, [f"{root}/services/+", f"{root}/nodes/+/+/reported"])
    env_file = tmp_path / "consumer-env.json"
    healthy_at: dict[str, float] = {}

    def note_healthy(topic: str, body: dict[str, Any]) -> None:
        for name, w in body.get("workloads", {}).items():
            if w.get("health") == "healthy" and name not in healthy_at:
                healthy_at[name] = time.monotonic()

    watcher.hooks.append(note_healthy)
    try:
        for a in everyone:
            a.start()
        await watcher.start()
        async with running_orchestrator(url, root, tmp_path / "orch"), Operator(url, root) as op:
            web = server_app("web", port, tag, replicas=3, placement={"sites": ["a", "b", "c"]})
            near = server_app("near", near_port, tag, mode="daemon")
            near["service"]["topology"] = "prefer-site"
            near["workload"].pop("health")
            for manifest in (
                web,
                near,
                consumer_app("client", env_file, tag, ["web", "near"], "d"),
            ):
                reply = await op.call("deploy", manifest=manifest)
                assert reply["ok"], reply

            def catalog_complete() -> bool:
                return len(endpoints(watcher, root, "web")) == 3 and len(
                    endpoints(watcher, root, "near")) == 6  # fmt: skip

            reported = f"{root}/nodes/d/c1/reported"

            def proxies_listen() -> bool:
                got = watcher.latest.get(reported, {}).get("proxies", {})
                return len(got) == 2 and all(p["state"] == "listening" for p in got.values())

            await eventually(catalog_complete, 60, "endpoints")
            await eventually(proxies_listen, 30, "proxies")
            proxies = watcher.latest[reported]["proxies"]
            web_port, near_port_local = proxies["web"]["port"], proxies["near"]["port"]
            await eventually(env_file.exists, 30, "consumer env")
            env = json.loads(env_file.read_text())
            assert env["EDGEFLEET_SERVICE_WEB_HOST"] == "127.0.0.1"
            assert env["EDGEFLEET_SERVICE_WEB_PORT"] == str(web_port)
            assert env["EDGEFLEET_SERVICE_WEB_PORT_HTTP"] == str(web_port)

            # 1. 3,000 requests, all succeed, shares follow weights.
            started = time.monotonic()
            weights_before = endpoints(watcher, root, "web")
            load = await hammer(web_port, requests=3000)
            took = time.monotonic() - started
            print(f"phase 1: 3000 requests in {took:.1f} s, {dict(load.counts())}")
            assert load.failures == [], load.failures[:5]
            assert len(load.served) == 3000
            if (why := shares_match_weights(load.counts(), weights_before)) is not None:
                # Weights follow node load; if they moved during the run, compare with both.
                assert (
                    shares_match_weights(load.counts(), endpoints(watcher, root, "web")) is None
                ), why

            # 2. kill -9 one replica under load.
            victim = sorted(load.counts())[0]
            stop, load = asyncio.Event(), Load()
            runner = asyncio.create_task(hammer(web_port, until=stop, load=load))
            await asyncio.sleep(1.0)
            assert kill_tagged(tag, victim), f"no process for {victim}"
            killed_at = time.monotonic()  # requests begun after the kill must all succeed

            def victim_gone() -> bool:
                return all(e["replica"] != victim for e in endpoints(watcher, root, "web"))

            await eventually(victim_gone, 10, "victim out of the catalog")
            out_of_catalog = time.monotonic() - killed_at
            await asyncio.sleep(1.5)
            stop.set()
            await runner
            print(f"phase 2: victim {victim} out of the catalog after {out_of_catalog:.2f} s; "
                  f"{len(load.failures)} request(s) in flight on it failed")  # fmt: skip
            assert load.failed_after(killed_at) == [], load.failures[:5]
            assert len(load.failures) <= 16
            assert load.counts(since=killed_at + 1.0)[victim] == 0
            assert load.counts(since=killed_at + 1.0).total() > 50

            # 3. scale 3 -> 5: new replicas answer within 1 s of reporting healthy.
            stop, load = asyncio.Event(), Load()
            runner = asyncio.create_task(hammer(web_port, until=stop, load=load, concurrency=8))
            assert (await op.call("scale", app="web", replicas=5))["ok"]
            await eventually(
                lambda: {"web-3", "web-4"} <= {r for _, r in load.served}, 60, "new replicas serve"
            )
            stop.set()
            await runner
            assert load.failures == [], load.failures[:5]
            for replica in ("web-3", "web-4"):
                first = min(t for t, r in load.served if r == replica)
                lag = first - healthy_at[replica]
                print(f"phase 3: {replica} served {lag:.3f} s after reporting healthy")
                assert lag <= 1.0, f"{replica}: {lag:.2f} s"

            # 4. prefer-site: the consumer's own site has a near replica.
            load = await hammer(near_port_local, requests=400)
            assert load.failures == []
            local = load.counts()["near-c1"] / 400
            print(f"phase 4: {local:.1%} of prefer-site requests stayed in the site")
            assert local >= 0.95

            # 5. the broker stops: last known endpoints keep working, passive ejection.
            broker.stop()
            stop, load = asyncio.Event(), Load()
            runner = asyncio.create_task(hammer(web_port, until=stop, load=load))
            await asyncio.sleep(1.0)
            second = sorted(r for r in load.counts() if r != victim)[0]
            assert kill_tagged(tag, second)
            killed_at = time.monotonic()  # requests begun after the kill must all succeed
            await asyncio.sleep(2.0)
            stop.set()
            await runner
            print(f"phase 5: {len(load.failures)} request(s) in flight on {second} failed")
            assert load.failed_after(killed_at) == [], load.failures[:5]
            assert len(load.failures) <= 16
            assert load.counts(since=killed_at + 1.0)[second] == 0
            assert load.counts(since=killed_at + 1.0).total() > 50
            consumer.terminate()
            consumer.start()  # a reboot with no broker: the catalog comes from the store
            again = Load()

            async def proxy_back() -> bool:
                await hammer(web_port, requests=20, concurrency=1, load=again)
                return len(again.served) > 0

            deadline = time.monotonic() + 20
            while not await proxy_back():
                assert time.monotonic() < deadline, f"proxy not back: {again.failures[-3:]}"
                again.failures.clear()
                await asyncio.sleep(0.2)
            load = await hammer(web_port, requests=300)
            assert load.failures == [], load.failures[:5]
            assert second not in load.counts() and victim not in load.counts()
            broker = start_mosquitto(tmp_path / "broker2", port=broker.port)
    finally:
        await watcher.stop()
        for a in everyone:
            a.stop()
        kill_tagged(tag)
        broker.stop()
