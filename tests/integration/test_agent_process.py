"""The REAL agent with the process runtime: offline start from the local store, adoption
after kill -9 (same pid, no duplicate), removal of what is no longer desired, a clean stop
that leaves processes running, and telemetry with a workload's own metrics file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness.mosquitto import free_port, start_mosquitto
from test_agent_harness import (
    AgentProcess,
    Watcher,
    all_running,
    desired_doc,
    kill_markers,
    pids_running,
    sleeper,
    unique_marker,
    workload,
)


def wait_until(check: object, timeout: float, what: str) -> float:
    """Poll ``check()`` until truthy; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{what} not within {timeout} s")


@pytest.fixture
def markers() -> Iterator[list[str]]:
    made = [unique_marker() for _ in range(3)]
    yield made
    kill_markers(*made)


async def test_offline_start_restores_workloads_from_the_local_store(
    tmp_path: Path, topic_root: str, markers: list[str]
) -> None:
    port = free_port()
    broker = start_mosquitto(tmp_path / "broker1", port=port)
    url = f"mqtt://127.0.0.1:{port}"
    agent = AgentProcess(tmp_path / "state", url, topic_root, runtime="process")
    one, two = markers[0], markers[1]
    doc = desired_doc(
        agent.node, 1,
        workload("w1", runtime="process", command=sleeper(one)),
        workload("w2", runtime="process", command=sleeper(two)),
    )  # fmt: skip
    try:
        async with Watcher(url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), doc)
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w2"}))
        code, _ = agent.terminate()
        assert code == 0
        # A power cut: the workloads die with the gateway, and the broker is unreachable.
        kill_markers(one, two)
        broker.stop()
        wait_until(lambda: not pids_running(one) and not pids_running(two), 5, "workloads gone")

        agent.start()
        # A condition with a deadline, not a speed claim (the machine is shared and loaded).
        took = wait_until(
            lambda: len(pids_running(one)) == 1 and len(pids_running(two)) == 1, 30, "restore"
        )
        print(f"offline restore took {took:.2f} s")
        pids = (pids_running(one), pids_running(two))

        # The broker returns: the agent connects, and nothing with an unchanged hash restarts.
        broker = start_mosquitto(tmp_path / "broker2", port=port)
        async with Watcher(url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), doc)
            online = await watcher.wait_for(
                agent.topic("status"), lambda b: b["state"] == "online", timeout=40
            )
            assert online["session"] == 2
            reported = await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w2"}))
            assert reported["observed_generation"] == 1
        assert (pids_running(one), pids_running(two)) == pids
    finally:
        agent.stop()
        broker.stop()


async def test_after_kill_9_the_agent_adopts_its_processes_and_removes_undesired_ones(
    tmp_path: Path, broker_url: str, topic_root: str, markers: list[str]
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="process")
    keep, drop = markers[0], markers[1]
    w1 = workload("w1", runtime="process", command=sleeper(keep))
    w2 = workload("w2", runtime="process", command=sleeper(drop))
    try:
        async with Watcher(broker_url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, w1, w2))
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"w1", "w2"}))
            kept_pid = pids_running(keep)
            assert len(kept_pid) == 1
            agent.kill9()
            assert pids_running(keep) == kept_pid  # workloads outlive the agent
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 2, w1))
            mark = watcher.mark()
            agent.start()
            reported = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b["session"] == 2 and all_running({"w1"})(b),
                after=mark,
            )
            assert reported["observed_generation"] == 2
            assert reported["workloads"]["w1"]["restarts"] == 0
        assert pids_running(keep) == kept_pid  # adopted: same pid, not duplicated
        wait_until(lambda: not pids_running(drop), 5, "the undesired workload removed")
    finally:
        agent.stop()


async def test_sigterm_leaves_processes_running(
    tmp_path: Path, broker_url: str, topic_root: str, markers: list[str]
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="process")
    w1 = workload("w1", runtime="process", command=sleeper(markers[0]))
    try:
        async with Watcher(broker_url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, w1))
            agent.start()
            await watcher.wait_for(agent.topic("reported"), all_running({"w1"}))
            pid = pids_running(markers[0])
            mark = watcher.mark()
            code, seconds = agent.terminate()
            assert (code, seconds < 5.0) == (0, True)
            offline = await watcher.wait_for(
                agent.topic("status"), lambda b: b["state"] == "offline", after=mark
            )
            assert offline["session"] == 1
        assert pids_running(markers[0]) == pid
    finally:
        agent.stop()


async def test_telemetry_carries_latency_usage_and_the_workloads_own_metrics(
    tmp_path: Path, broker_url: str, topic_root: str, markers: list[str]
) -> None:
    port = int(broker_url.rsplit(":", 1)[1])
    agent = AgentProcess(
        tmp_path / "state", broker_url, topic_root, runtime="process",
        extra=["--probe", f"loopback=127.0.0.1:{port}"],
    )  # fmt: skip
    script = 'printf \'{"queue_depth": 7, "temp_c": 41.5}\' > "$EDGEFLEET_METRICS_FILE"; ' + (
        f"exec sleep {markers[0]}"
    )
    w1 = workload("w1", runtime="process", command=["sh", "-c", script])
    try:
        async with Watcher(broker_url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, w1))
            agent.start()
            telemetry = await watcher.wait_for(
                agent.topic("telemetry"),
                lambda b: (
                    b.get("full") is True
                    and "w1" in b.get("workloads", {})
                    and "metrics" in b["workloads"]["w1"]
                ),
                timeout=15,
            )
            assert telemetry["workloads"]["w1"]["metrics"] == {"queue_depth": 7, "temp_c": 41.5}
            assert telemetry["workloads"]["w1"]["memory_mb"] > 0
            assert set(telemetry["latency_ms"]) == {"broker", "loopback"}
            assert telemetry["cpu_pct"] >= 0 and 0 < telemetry["memory_pct"] <= 100
    finally:
        agent.stop()


async def test_an_http_health_check_marks_a_process_unhealthy_and_restarts_it(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    ok_port, bad_port = free_port(), free_port()
    (tmp_path / "www").mkdir()

    def server(port: int, path: str) -> Any:
        return workload(
            f"web-{port}", runtime="process", cwd=str(tmp_path / "www"),
            command=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            health={"kind": "http", "port": port, "path": path, "interval_s": 0.3,
                    "failure_threshold": 2, "timeout_s": 1},
        )  # fmt: skip

    good, sick = server(ok_port, "/"), server(bad_port, "/missing")
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root, runtime="process")
    try:
        async with Watcher(broker_url, topic_root) as watcher:
            await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, good, sick))
            agent.start()
            unhealthy = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: b.get("workloads", {}).get(sick.name, {}).get("state") == "unhealthy",
                timeout=20,
            )
            message = unhealthy["workloads"][sick.name]["message"]
            assert f"GET http://127.0.0.1:{bad_port}/missing: HTTP 404" in message
            event = await watcher.wait_for(
                agent.topic("events"), lambda b: b["kind"] == "workload-restarted", timeout=20
            )
            assert event["details"]["workload"] == sick.name
            healthy = await watcher.wait_for(
                agent.topic("reported"),
                lambda b: (
                    b["workloads"][sick.name]["restarts"] >= 1
                    and b["workloads"][good.name]["health"] == "healthy"
                ),
                timeout=20,
            )
            assert healthy["workloads"][good.name]["state"] == "running"
            assert healthy["workloads"][good.name]["restarts"] == 0
    finally:
        agent.stop()
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "http.server" in cmdline and (str(bad_port) in cmdline or str(ok_port) in cmdline):
                proc.kill()
