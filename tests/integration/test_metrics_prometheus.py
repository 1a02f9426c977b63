"""Prometheus metrics, read back by a real Prometheus server.

A real mosquitto, the ``edgefleet orchestrator run --metrics-addr`` process, a small fleet
of real agents (``edgefleet-agent simulate``: real agents, simulated runtime) and one
``edgefleet-agent run --metrics-addr`` process; a real Prometheus (Debian's package)
scrapes the orchestrator and that agent every second, and the test reads
fleet metrics back through Prometheus' HTTP query API. Then the bad cases: a message with
an id no node may have, and the broker going away, must show in the metrics while the
orchestrator and its endpoint stay up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edgefleet_protocol.session import Publication
from harness.fleet import Operator
from harness.mosquitto import MissingTool, free_port, start_mosquitto
from harness.prometheus import Prometheus, start_prometheus
from harness.tiers import require

BIN = Path(sys.executable).parent
NODES = 4


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[list[str]], Prometheus]]:
    started: list[Prometheus] = []

    def start(targets: list[str]) -> Prometheus:
        try:
            server = start_prometheus(tmp_path / "prometheus", targets)
        except MissingTool as exc:
            require(False, str(exc))
            raise
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def value(prom: Prometheus, expr: str) -> float | None:
    """The single value of an instant query, or ``None`` while it has none."""
    result = prom.query(expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def wait_for(prom: Prometheus, expr: str, want: float, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = value(prom, expr)
        if seen == want:
            return
        time.sleep(0.3)
    raise AssertionError(f"{expr} = {seen} after {timeout_s} s, expected {want}")


async def test_prometheus_scrapes_fleet_metrics_and_they_survive_bad_input_and_a_lost_broker(
    tmp_path: Path, topic_root: str, prometheus_factory: Callable[[list[str]], Prometheus]
) -> None:
    broker = start_mosquitto(tmp_path / "mosquitto")
    metrics_port = free_port()
    orch = spawn(
        [
            str(BIN / "edgefleet"),
            "orchestrator",
            "run",
            "--broker",
            broker.url,
            "--root",
            topic_root,
            "--data-dir",
            str(tmp_path / "orch"),
            "--tick",
            "0.2",
            "--metrics-addr",
            f"127.0.0.1:{metrics_port}",
            "--metrics-per-node-limit",
            "10",
        ],
        tmp_path / "orchestrator.log",
    )
    fleet = spawn(
        [
            str(BIN / "edgefleet-agent"),
            "simulate",
            "--count",
            str(NODES),
            "--sites",
            "2",
            "--broker",
            broker.url,
            "--root",
            topic_root,
            "--seed",
            "3",
        ],
        tmp_path / "fleet.log",
    )
    agent_port = free_port()
    agent = spawn(
        [
            str(BIN / "edgefleet-agent"),
            "run",
            "--node",
            "real-1",
            "--site",
            "site-0",
            "--broker",
            broker.url,
            "--root",
            topic_root,
            "--state-dir",
            str(tmp_path / "agent"),
            "--runtime",
            "process",
            "--metrics-addr",
            f"127.0.0.1:{agent_port}",
        ],
        tmp_path / "agent.log",
    )
    try:
        prom = prometheus_factory([f"127.0.0.1:{metrics_port}", f"127.0.0.1:{agent_port}"])
        wait_for(prom, 'edgefleet_nodes{state="online"}', NODES + 1)
        wait_for(prom, "sum(edgefleet_node_online)", NODES + 1)
        wait_for(prom, "edgefleet_agent_broker_connected", 1)
        assert value(prom, 'edgefleet_agent_workloads{state="running"}') == 0

        manifest = {"name": "sim-app", "replicas": 3, "workload": {"runtime": "simulated"}}
        async with Operator(broker.url, topic_root) as op:
            reply = await op.call("deploy", manifest=manifest)
            assert reply["ok"], reply
            wait_for(prom, 'edgefleet_app_replicas_running{app="sim-app"}', 3)
            wait_for(prom, 'edgefleet_apps{state="healthy"}', 1)
            wait_for(prom, "edgefleet_replicas_desired", 3)
            wait_for(prom, "edgefleet_deploy_to_running_seconds_count", 1)
            assert (value(prom, "edgefleet_reconcile_pass_seconds_count") or 0) >= 1
            assert (value(prom, "edgefleet_placement_seconds_count") or 0) >= 1
            assert (value(prom, 'edgefleet_messages_received_total{kind="reported"}') or 0) >= 3
            assert (value(prom, 'edgefleet_messages_published_total{kind="desired"}') or 0) >= 1
            assert value(prom, 'edgefleet_messages_published_total{kind="reply"}') == 1
            # Every family builds on the real orchestrator (rollouts, services included).
            assert value(prom, "edgefleet_metrics_errors_total") == 0
            assert value(prom, 'edgefleet_rollouts{phase="canary"}') == 0
            assert value(prom, "edgefleet_services") == 0

            # An id no node may have, and a payload that is not JSON: counted, not fatal.
            for topic, payload in [
                (f"{topic_root}/nodes/Bad Site!/x/status", b"{}"),
                (f"{topic_root}/nodes/site-0/ghost/telemetry", b"not json"),
            ]:
                await op.session.publish(Publication(topic=topic, payload=payload))
            wait_for(prom, 'edgefleet_messages_invalid_total{reason="topic"}', 1)
            wait_for(prom, 'edgefleet_messages_invalid_total{reason="payload"}', 1)

        stop(fleet)
        broker.stop()  # the broker goes away: the endpoints stay and say so
        wait_for(prom, "edgefleet_broker_connected", 0)
        wait_for(prom, "edgefleet_agent_broker_connected", 0)
        wait_for(prom, 'count(up{job="edgefleet"} == 1)', 2)
        assert orch.poll() is None, (tmp_path / "orchestrator.log").read_text()
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()
        assert all(t["health"] == "up" for t in prom.targets())
    finally:
        stop(fleet)
        stop(agent)
        stop(orch)
        broker.stop()
    log = (tmp_path / "orchestrator.log").read_text()
    assert "Traceback" not in log, log
    assert "Traceback" not in (tmp_path / "agent.log").read_text()
    assert json.loads((tmp_path / "fleet.log").read_text().splitlines()[0])["ready"] == NODES
