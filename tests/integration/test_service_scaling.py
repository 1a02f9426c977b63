"""Balancing by messages and scaling on what the proxies measure, on REAL agents:

* MQTT-native balancing: an app with ``service.mqtt_group`` runs 3 replicas (paho clients)
  that subscribe to ``$share/$EDGEFLEET_MQTT_GROUP/<topic>``; 300 messages published to
  the topic are split between them (each gets some, none gets them all, none is lost).
* autoscaling on the proxy-measured connection rate: an app autoscaled on
  ``service.connections_per_s`` scales up when a consumer's request rate through its
  gateway's proxy rises, and the new replicas then receive traffic.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

from edgefleet_protocol.session import Publication
from harness.fleet import Operator, Watcher, eventually, running_orchestrator
from harness.mosquitto import free_port, start_mosquitto
from service_fleet import PY, Load, agent, consumer_app, hammer, kill_tagged, server_app, token

SUBSCRIBER = """
import os, paho.mqtt.client as mqtt
name = os.environ["EDGEFLEET_WORKLOAD"] + "@" + str(os.getpid())  # a moved replica: 2 files
out, count = os.path.join(os.environ["OUT_DIR"], name), [0]
def connected(client, userdata, flags, reason, properties):
    client.subscribe("$share/" + os.environ["EDGEFLEET_MQTT_GROUP"] + "/" + os.environ["TOPIC"], 1)
def received(client, userdata, message):
    count[0] += 1
    write()
def write():
    with open(out + ".tmp", "w") as f:
        f.write(str(count[0]))
    os.replace(out + ".tmp", out)
def subscribed(client, userdata, mid, reasons, properties):
    write()  # the count file exists once the SUBSCRIBE is acknowledged
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
client.on_connect, client.on_message = connected, received
client.on_subscribe = subscribed
client.connect("127.0.0.1", int(os.environ["BROKER_PORT"]))
client.loop_forever()
"""


async def test_shared_subscriptions_split_messages_and_proxy_rate_drives_autoscale(
    tmp_path: Path, topic_root: str
) -> None:
    root, tag = topic_root, token()
    broker = start_mosquitto(tmp_path / "broker", port=free_port())
    url, low = broker.url, free_port()
    nodes = [agent(tmp_path, url, root, f"p{i}", site, f"127.0.0.{40 + i}")
             for i, site in ((1, "a"), (2, "b"), (3, "c"))]  # fmt: skip
    consumer = agent(
        tmp_path, url, root, "c1", "d", "127.0.0.49", "--proxy-ports", f"{low}-{low + 9}"
    )
    out_dir = tmp_path / "counts"
    out_dir.mkdir()
    watcher = Watcher(url, [f"{root}/services/+", f"{root}/apps/+/status",
                            f"{root}/nodes/d/c1/reported", f"{root}/fleet/summary"])  # fmt: skip
    try:
        for a in [*nodes, consumer]:
            a.start()
        await watcher.start()
        async with running_orchestrator(url, root, tmp_path / "orch", scaling_interval_s=1.0), \
                Operator(url, root) as op:  # fmt: skip
            ingest = {
                "name": "ingest", "replicas": 3, "placement": {"sites": ["a", "b", "c"]},
                "service": {"mqtt_group": "ingest"},
                "workload": {"runtime": "process", "command": [PY, "-c", SUBSCRIBER, tag],
                             "env": {"OUT_DIR": str(out_dir), "TOPIC": f"{root}/readings",
                                     "BROKER_PORT": str(broker.port)},
                             "resources": {"memory_mb": 512}, "stop_timeout_s": 1},
            }  # fmt: skip
            api = server_app("api", free_port(), tag, placement={"sites": ["a", "b", "c"]},
                             autoscale={"metric": "service.connections_per_s", "target": 20,
                                        "min": 1, "max": 3, "scale_up_cooldown_s": 0,
                                        "scale_down_cooldown_s": 3600})  # fmt: skip
            client = consumer_app("client", tmp_path / "env.json", tag, ["api"], "d")
            # The whole fleet first: a deploy to a partial fleet is rebalanced as gateways
            # join, and a moved subscriber loses the QoS 1 messages in flight to it.
            summary = f"{root}/fleet/summary"
            await eventually(
                lambda: watcher.latest.get(summary, {}).get("nodes_online") == 4, 60, "4 nodes"
            )
            for manifest in (ingest, api, client):
                reply = await op.call("deploy", manifest=manifest)
                assert reply["ok"], reply

            # MQTT-native balancing.
            status = f"{root}/apps/ingest/status"
            await eventually(
                lambda: watcher.latest.get(status, {}).get("running") == 3, 60, "ingest"
            )

            def counts() -> dict[str, int]:
                """Messages per replica, summed over its processes (a replica that moved
                make-before-break had two copies in the group for a while)."""
                got: Counter[str] = Counter()
                for p in out_dir.iterdir():
                    if not p.name.endswith(".tmp"):
                        got[p.name.split("@")[0]] += int(p.read_text() or 0)
                return dict(got)

            # A message published before a member's SUBSCRIBE lands never reaches it.
            await eventually(lambda: len(counts()) >= 3, 30, "subscribed")
            group = watcher.latest.get(f"{root}/services/ingest", {})
            assert group.get("mqtt_group") == "ingest" and group.get("endpoints") == []
            for i in range(300):
                body = json.dumps({"i": i}).encode()
                assert await op.session.publish(Publication(f"{root}/readings", body, qos=1))

            try:
                await eventually(lambda: sum(counts().values()) == 300, 30, "all 300 messages")
            except AssertionError as exc:
                files = {p.name: p.read_text() for p in out_dir.iterdir()}
                raise AssertionError(f"{exc}: {counts()}; files {files}") from None
            got = counts()
            print(f"shared subscription split: {got}")
            assert len(got) == 3 and all(0 < n < 300 for n in got.values()), got

            # Autoscale on the proxy-measured connection rate.
            reported = f"{root}/nodes/d/c1/reported"
            await eventually(lambda: "api" in watcher.latest.get(reported, {}).get("proxies", {})
                             and len(watcher.latest.get(f"{root}/services/api", {})
                                     .get("endpoints", [])) == 1, 60, "api proxy")  # fmt: skip
            port = watcher.latest[reported]["proxies"]["api"]["port"]
            stop, load = asyncio.Event(), Load()
            # About 50 connections/s: two and a half times the per-replica target.
            runner = asyncio.create_task(
                hammer(port, until=stop, load=load, concurrency=2, pace_s=0.04)
            )
            api_status = f"{root}/apps/api/status"
            started = time.monotonic()
            await eventually(lambda: watcher.latest.get(api_status, {}).get("desired", 0) >= 2,
                             40, "a scale-up on service.connections_per_s")  # fmt: skip
            print(f"scaled up after {time.monotonic() - started:.1f} s: "
                  f"{watcher.latest[api_status].get('autoscale')}")  # fmt: skip
            await eventually(lambda: len(load.counts()) >= 2, 40, "traffic on a new replica")
            stop.set()
            await runner
            assert load.failures == [], load.failures[:5]
            assert len(load.counts()) >= 2, load.counts()
    finally:
        await watcher.stop()
        for a in [*nodes, consumer]:
            a.stop()
        kill_tagged(tag)
        broker.stop()
