"""Presence of the REAL agent process: online on connect, will on kill -9, sessions rising
across restarts, and a clean SIGTERM that publishes offline and leaves workloads running."""

from __future__ import annotations

from pathlib import Path

from test_agent_harness import AgentProcess, Watcher, all_running, desired_doc, workload


async def test_online_then_will_on_kill_then_a_higher_session(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    status = agent.topic("status")
    async with Watcher(broker_url, topic_root) as watcher:
        try:
            agent.start()
            online = await watcher.wait_for(status, lambda b: b["state"] == "online")
            assert online["session"] == 1
            capabilities = await watcher.wait_for(agent.topic("capabilities"))
            assert capabilities["runtimes"] == ["simulated"]

            mark = watcher.mark()
            agent.kill9()
            will = await watcher.wait_for(status, lambda b: b["state"] == "offline", after=mark)
            assert will["session"] == 1

            mark = watcher.mark()
            agent.start()
            again = await watcher.wait_for(status, lambda b: b["state"] == "online", after=mark)
            assert again["session"] == 2
        finally:
            agent.stop()


async def test_retained_status_after_kill_is_offline_with_its_session(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    try:
        async with Watcher(broker_url, topic_root) as watcher:
            agent.start()
            await watcher.wait_for(agent.topic("status"), lambda b: b["state"] == "online")
        agent.kill9()
        # A late subscriber sees the retained will.
        async with Watcher(broker_url, topic_root) as late:
            body = await late.wait_for(agent.topic("status"), lambda b: b["state"] == "offline")
            assert body["session"] == 1
    finally:
        agent.stop()


async def test_sigterm_publishes_offline_exits_quickly_and_leaves_workloads_running(
    tmp_path: Path, broker_url: str, topic_root: str
) -> None:
    agent = AgentProcess(tmp_path / "state", broker_url, topic_root)
    async with Watcher(broker_url, topic_root) as watcher:
        await watcher.publish(agent.topic("desired"), desired_doc(agent.node, 1, workload("w1")))
        try:
            agent.start()
            first = await watcher.wait_for(agent.topic("reported"), all_running({"w1"}))
            runtime_id_before = (tmp_path / "state" / "simulated-workloads.json").read_text()
            mark = watcher.mark()
            code, seconds = agent.terminate()
            assert code == 0
            assert seconds < 5.0
            offline = await watcher.wait_for(
                agent.topic("status"), lambda b: b["state"] == "offline", after=mark
            )
            assert offline["session"] == 1
            # The workload was left as it was: same row, still running, not removed.
            assert (tmp_path / "state" / "simulated-workloads.json").read_text() == (
                runtime_id_before
            )
            assert '"state":"running"' in runtime_id_before
            assert first["workloads"]["w1"]["restarts"] == 0
        finally:
            agent.stop()
