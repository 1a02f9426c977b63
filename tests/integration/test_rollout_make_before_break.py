"""Make-before-break rollouts of a replicated app, end to end: a real orchestrator process,
real agents, real workload processes, a real mosquitto (the fleet of
``test_rollout_e2e``). Three gateways, two replicas at most one per node: one spare node,
so each released replica can get its new copy before its old one stops.

What runs is read from the process table (the test's mark and the version in each
workload's environment), and the app status is sampled from its retained topic throughout.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness.agents import MARK_ENV, VERSION_ENV, Workload, workloads
from harness.fleet import Watcher
from test_rollout_e2e import BAD, GOOD, Fleet, cli, fleet, gateways, mark, until

__all__ = ["mark"]  # the fixture, shared with test_rollout_e2e


def manifest(mark: str, version: str, command: list[str], **update: Any) -> dict[str, Any]:
    return {
        "name": "meter",
        "replicas": 2,
        "placement": {"max_per_node": 1},
        "workload": {
            "runtime": "process",
            "command": command,
            "env": {MARK_ENV: mark, VERSION_ENV: version},
            "stop_timeout_s": 1,
        },
        "disconnect": {"grace_s": 120},
        "update": update,
    }


def processes(f: Fleet) -> list[Workload]:
    return workloads(f.mark)


def by_version(found: list[Workload]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in found:
        counts[w.version] = counts.get(w.version, 0) + 1
    return counts


class Sampler:
    """The app's retained status and the live processes, sampled every 0.1 s."""

    def __init__(self, f: Fleet, status: Watcher) -> None:
        self.f = f
        self.status = status
        self.running: list[int] = []
        self.replicas_live: list[int] = []

    def app(self) -> dict[str, Any]:
        found: dict[str, Any] = self.status.latest.get(f"{self.f.root}/apps/meter/status", {})
        return found

    def sample(self) -> list[Workload]:
        live = processes(self.f)
        self.running.append(int(self.app().get("running", 0)))
        self.replicas_live.append(len({w.replica for w in live}))
        return live


async def sample_until_finished(s: Sampler, phase: str, timeout_s: float) -> None:
    f = s.f
    deadline = time.monotonic() + timeout_s
    while True:
        s.sample()
        status = f.rollout()
        retiring = [r for r in s.app().get("replicas", []) if r.get("state") == "retiring"]
        if status.get("revision") == 2 and status.get("phase") == phase and not retiring:
            return
        assert time.monotonic() < deadline, f"rollout not {phase}: {status}\n{f.log()}"
        await asyncio.sleep(0.1)


async def test_with_a_spare_node_a_good_rollout_never_runs_fewer_than_its_replicas(
    broker_url: str, topic_root: str, tmp_path: Any, mark: str
) -> None:
    update = {"max_parallel": 1, "min_healthy_s": 1, "healthy_deadline_s": 20}
    status = Watcher(broker_url, [f"{topic_root}/apps/+/status"])
    await status.start()
    try:
        async with fleet(broker_url, topic_root, tmp_path, mark, gateways(3)) as f:
            s = Sampler(f, status)
            await f.deploy(manifest(mark, "1", GOOD, **update))
            await until(lambda: by_version(processes(f)) == {"1": 2}, 60, "v1 on 2 nodes", f)
            await until(lambda: s.app().get("running") == 2, 30, "status: 2 running", f)
            result = await f.deploy(manifest(mark, "2", GOOD, **update))
            assert result["revision"] == 2
            started = time.monotonic()
            await sample_until_finished(s, "succeeded", 90)
            took = time.monotonic() - started
            print(f"make-before-break, 2 replicas on 3 nodes: {took:.1f} s, {len(s.running)} "
                  f"samples, fewest running (status) {min(s.running)}, fewest replicas with "
                  f"a live process {min(s.replicas_live)}")  # fmt: skip
            assert len(s.running) >= 10
            assert min(s.running) >= 2, s.running
            assert min(s.replicas_live) >= 2, s.replicas_live
            # The last old copy left its document; its agent stops it (stop_timeout_s 1).
            await until(lambda: by_version(processes(f)) == {"2": 2}, 15, "only v2 runs", f)
            counts = f.rollout()["counts"]
            assert (counts["surged"], counts["in_place"], counts["healthy"]) == (2, 0, 2), counts
    finally:
        await status.stop()


async def test_with_a_spare_node_a_bad_version_leaves_the_old_copies_running(
    broker_url: str, topic_root: str, tmp_path: Any, mark: str
) -> None:
    update = {"max_parallel": 1, "min_healthy_s": 1, "healthy_deadline_s": 4}
    status = Watcher(broker_url, [f"{topic_root}/apps/+/status"])
    await status.start()
    try:
        async with fleet(broker_url, topic_root, tmp_path, mark, gateways(3)) as f:
            s = Sampler(f, status)
            await f.deploy(manifest(mark, "1", GOOD, **update))
            await until(lambda: by_version(processes(f)) == {"1": 2}, 60, "v1 on 2 nodes", f)
            await until(lambda: s.app().get("running") == 2, 30, "status: 2 running", f)
            old = {w.pid for w in processes(f)}
            await f.deploy(manifest(mark, "2", BAD, **update))
            deadline = time.monotonic() + 60
            while True:
                live = s.sample()
                v1 = {w.pid for w in live if w.version == "1"}
                assert v1 == old, f"an old copy was stopped: {live}\n{f.log()}"
                status_now = f.rollout()
                retiring = [r for r in s.app().get("replicas", []) if r["state"] == "retiring"]
                if status_now.get("phase") == "failed" and not retiring and len(live) == 2:
                    break
                assert time.monotonic() < deadline, f"not failed: {status_now}\n{f.log()}"
                await asyncio.sleep(0.1)
            final = f.rollout()
            print(f"bad version with a spare node: {final['reasons'][-1]}; fewest running "
                  f"(status) {min(s.running)}")  # fmt: skip
            assert len(final["failed"]) == 1, final
            assert final["counts"]["surged"] == 1
            assert {w.pid for w in processes(f)} == old, "the old copies run on, unrestarted"
            assert min(s.running[1:]) >= 2, s.running
    finally:
        await status.stop()


async def test_undo_and_promote_with_watch_follow_the_rollout_they_changed_to_its_end(
    broker_url: str, topic_root: str, tmp_path: Any, mark: str
) -> None:
    update = {"canary": 1, "auto_promote": False, "min_healthy_s": 1, "healthy_deadline_s": 20}
    async with fleet(broker_url, topic_root, tmp_path, mark, gateways(3)) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: by_version(processes(f)) == {"1": 2}, 60, "v1 on 2 nodes", f)
        await f.deploy(manifest(mark, "2", GOOD, **update))
        await until(lambda: f.rollout().get("phase") == "awaiting-promotion", 30, "a canary", f)
        # undo reverts the rollout: "reverted" is what was asked for (exit 0)
        code, out, err = await cli(broker_url, topic_root, "rollout", "undo", "meter", "--watch")
        lines = out.splitlines()
        assert code == 0 and "reverting" in lines[0] and "reverted" in lines[-1], (out, err)
        await until(lambda: by_version(processes(f)) == {"1": 2}, 30, "back on v1", f)
        await f.deploy(manifest(mark, "2", GOOD, **update))
        await until(lambda: f.rollout().get("phase") == "awaiting-promotion", 30, "a canary", f)
        code, out, err = await cli(broker_url, topic_root, "rollout", "promote", "meter", "--watch")
        lines = out.splitlines()
        assert code == 0 and "progressing" in lines[0] and "succeeded" in lines[-1], (out, err)
        assert "(2 make-before-break)" in lines[-1], lines[-1]
        await until(lambda: by_version(processes(f)) == {"2": 2}, 30, "v2 on 2 nodes", f)
