"""Staged rollouts end to end: a real orchestrator process, real agents (in this event loop,
one ``Agent`` per gateway with the process runtime), real workload processes, a real
mosquitto. A good version is ``sleep``; a bad one is a command that exits 1.

Each workload process carries the test's mark and its version in its environment, and its
replica name in the metrics-file path the agent gives it, so the tests read what runs from
the process table, not from anything the code under test reports about itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness.agents import (
    MARK_ENV,
    VERSION_ENV,
    Gateway,
    Workload,
    kill_marked,
    running_agents,
    workloads,
)
from harness.fleet import Operator, Watcher
from harness.mosquitto import free_port, start_mosquitto

BIN = Path(sys.executable).parent
GOOD = ["sleep", "3600"]
BAD = ["sh", "-c", "exit 1"]


@pytest.fixture
def mark() -> Iterator[str]:
    value = uuid.uuid4().hex
    yield value
    kill_marked(value)


def manifest(mark: str, version: str, command: list[str], **update: Any) -> dict[str, Any]:
    return {
        "name": "meter",
        "mode": "daemon",
        "workload": {
            "runtime": "process",
            "command": command,
            "env": {MARK_ENV: mark, VERSION_ENV: version},
            "stop_timeout_s": 1,
        },
        "disconnect": {"grace_s": 120},
        "update": update,
    }


def spawn_orchestrator(url: str, root: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    args = [
        str(BIN / "edgefleet"), "orchestrator", "run", "--broker", url, "--root", root,
        "--data-dir", str(data_dir), "--tick", "0.2", "--stale-after", "30",
        "--client-id", f"orch-{uuid.uuid4().hex[:6]}", "--log-level", "WARNING",
    ]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Fleet:
    url: str
    root: str
    tmp: Path
    mark: str
    op: Operator
    watcher: Watcher
    orchestrator: subprocess.Popen[bytes]
    seen: dict[str, set[tuple[str, int]]] = field(default_factory=dict)

    def rollout(self) -> dict[str, Any]:
        return self.watcher.latest.get(f"{self.root}/apps/meter/rollout", {})

    def desired(self, site: str, node: str) -> dict[str, Any]:
        return self.watcher.latest.get(f"{self.root}/nodes/{site}/{node}/desired", {})

    def live(self) -> dict[str, Workload]:
        """replica → its live workload process (and every (version, pid) is remembered)."""
        now = {w.replica: w for w in workloads(self.mark)}
        for w in now.values():
            self.seen.setdefault(w.replica, set()).add((w.version, w.pid))
        return now

    async def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        for _ in range(60):  # commands are not retained: retry until the orchestrator listens
            try:
                reply = await self.op.call("deploy", timeout_s=2.0, manifest=body)
            except TimeoutError:
                continue
            assert reply["ok"], reply
            result: dict[str, Any] = reply["result"]
            return result
        raise AssertionError(f"no reply to deploy\n{self.log()}")

    def restart_orchestrator(self) -> None:
        self.orchestrator = spawn_orchestrator(
            self.url, self.root, self.tmp / "orch", self.tmp / "orch.log"
        )

    def log(self) -> str:
        path = self.tmp / "orch.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@asynccontextmanager
async def fleet(
    url: str, root: str, tmp: Path, mark: str, gateways: Sequence[Gateway]
) -> AsyncIterator[Fleet]:
    orch = spawn_orchestrator(url, root, tmp / "orch", tmp / "orch.log")
    watcher = Watcher(url, [f"{root}/apps/+/rollout", f"{root}/nodes/+/+/desired",
                            f"{root}/nodes/+/+/reported"])  # fmt: skip
    await watcher.start()
    f = None
    try:
        async with running_agents(url, root, tmp / "agents", gateways), Operator(url, root) as op:
            f = Fleet(url, root, tmp, mark, op, watcher, orch)
            yield f
    finally:
        await watcher.stop()
        stop_process(f.orchestrator if f is not None else orch)


async def until(check: Callable[[], bool], timeout_s: float, what: str, f: Fleet) -> float:
    """Poll ``check`` every 0.1 s; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{f.log()}")


def versions(live: dict[str, Workload]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in live.values():
        counts[w.version] = counts.get(w.version, 0) + 1
    return counts


def gateways(n: int, sites: int = 2) -> list[Gateway]:
    return [Gateway(f"gw-{i:02d}", f"site-{i % sites}") for i in range(n)]


async def test_a_good_version_reaches_20_gateways_a_quarter_at_a_time(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    fleet_of = gateways(20)
    update = {"max_parallel": "25%", "min_healthy_s": 1, "healthy_deadline_s": 20}
    async with fleet(broker_url, topic_root, tmp_path, mark, fleet_of) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: versions(f.live()) == {"1": 20}, 60, "v1 on 20 gateways", f)
        result = await f.deploy(manifest(mark, "2", GOOD, **update))
        assert result["revision"] == 2 and result["rollout"] == "progressing"
        samples: list[int] = []
        started = time.monotonic()
        while f.rollout().get("phase") != "succeeded" or f.rollout().get("revision") != 2:
            samples.append(len(f.live()))
            assert time.monotonic() - started < 90, f"rollout stuck: {f.rollout()}\n{f.log()}"
            await asyncio.sleep(0.1)
        took = time.monotonic() - started
        assert versions(f.live()) == {"2": 20}
        print(f"20 gateways, max_parallel 25%: {took:.1f} s, {len(samples)} samples, "
              f"fewest running {min(samples)}")  # fmt: skip
        assert len(samples) >= 10 and min(samples) >= 15, samples
        status = f.rollout()
        assert status["counts"] == {"total": 20, "updated": 20, "healthy": 20, "failed": 0,
                                    "surged": 0, "in_place": 20}  # fmt: skip
        # each replica was replaced exactly once: one v1 process, then one v2 process
        assert all(len(s) == 2 for s in f.seen.values()), f.seen


async def test_a_bad_canary_is_reverted_and_no_other_gateway_is_touched(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    fleet_of = gateways(20)
    deadline_s = 4.0
    update = {"canary": "10%", "auto_revert": True, "max_parallel": "25%", "min_healthy_s": 1,
              "healthy_deadline_s": deadline_s}  # fmt: skip
    async with fleet(broker_url, topic_root, tmp_path, mark, fleet_of) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: versions(f.live()) == {"1": 20}, 60, "v1 on 20 gateways", f)
        await until(lambda: all(f.desired(g.site, g.node).get("generation") for g in fleet_of),
                    20, "every desired document at the watcher", f)  # fmt: skip
        before = f.live()
        generations = {g.node: f.desired(g.site, g.node).get("generation") for g in fleet_of}
        await f.deploy(manifest(mark, "2", BAD, **update))
        await until(lambda: len(f.rollout().get("canary", [])) == 2, 20, "a canary", f)
        canary = set(f.rollout()["canary"])
        gone: dict[str, float] = {}
        back: dict[str, float] = {}

        def watch() -> bool:
            live = f.live()
            now = time.monotonic()
            for replica in canary:
                w = live.get(replica)
                if replica not in gone and (w is None or w.pid != before[replica].pid):
                    gone[replica] = now
                if replica in gone and w is not None and w.version == "1":
                    back.setdefault(replica, now)
            return len(back) == len(canary) and f.rollout().get("phase") == "reverted"

        await until(watch, 40, "the canary reverted", f)
        took = max(back[r] - gone[r] for r in canary)
        print(f"canary {sorted(canary)}: back on v1 {took:.2f} s after v2 replaced v1")
        assert took <= deadline_s + 2, (took, f.rollout())
        live = f.live()
        assert versions(live) == {"1": 20}
        status = f.rollout()
        # The first canary to fail reverts the rollout; the other may be sent back to
        # revision 1 before it fails in turn (the faster the orchestrator hears the first,
        # the likelier), so it need not be listed as failed.
        assert status["failed"] and set(status["failed"]) <= canary, status
        reasons = " ".join(status["failed"].values())
        assert "rolled back" in reasons or "crash-looping" in reasons, status
        for g in fleet_of:
            replica = f"meter-{g.node}"
            if replica in canary:
                continue
            assert live[replica].pid == before[replica].pid, f"{replica} was restarted"
            assert f.desired(g.site, g.node).get("generation") == generations[g.node], replica
        for doc in (f.desired(g.site, g.node) for g in fleet_of):
            assert all(w["spec"]["env"][VERSION_ENV] == "1" for w in doc["workloads"]), doc


async def test_waves_by_site_start_the_second_site_after_the_first_was_healthy_long_enough(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    fleet_of = gateways(6)
    min_healthy_s = 2.0
    update = {"waves": "site", "min_healthy_s": min_healthy_s, "healthy_deadline_s": 20}
    async with fleet(broker_url, topic_root, tmp_path, mark, fleet_of) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: versions(f.live()) == {"1": 6}, 60, "v1 on 6 gateways", f)
        await f.deploy(manifest(mark, "2", GOOD, **update))
        first_v2: dict[str, float] = {}

        def watch() -> bool:
            for replica, w in f.live().items():
                if w.version == "2":
                    first_v2.setdefault(replica, w.started)
            return f.rollout().get("phase") == "succeeded" and f.rollout().get("revision") == 2

        await until(watch, 60, "the rollout to succeed", f)
        site0 = [t for r, t in first_v2.items() if int(r[-2:]) % 2 == 0]
        site1 = [t for r, t in first_v2.items() if int(r[-2:]) % 2 == 1]
        assert len(site0) == len(site1) == 3
        gap = min(site1) - max(site0)
        print(f"waves: site-1 started {gap:.2f} s after site-0's last replica started")
        assert gap >= min_healthy_s, (site0, site1)
        assert f.rollout()["waves"] == ["site-0", "site-1"]


async def test_an_orchestrator_killed_mid_rollout_resumes_and_restarts_nothing_twice(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    fleet_of = gateways(8)
    update = {"max_parallel": 2, "min_healthy_s": 2, "healthy_deadline_s": 30}
    async with fleet(broker_url, topic_root, tmp_path, mark, fleet_of) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: versions(f.live()) == {"1": 8}, 60, "v1 on 8 gateways", f)
        await f.deploy(manifest(mark, "2", GOOD, **update))
        await until(lambda: 2 <= versions(f.live()).get("2", 0) < 8, 30, "a first batch", f)
        f.orchestrator.send_signal(signal.SIGKILL)
        f.orchestrator.wait(10)
        killed_at = versions(f.live()).get("2", 0)
        f.restart_orchestrator()

        def done() -> bool:
            f.live()
            return f.rollout().get("phase") == "succeeded" and f.rollout().get("revision") == 2

        await until(done, 90, "the rollout to resume and succeed", f)
        print(f"killed with {killed_at} of 8 on v2; resumed and succeeded")
        assert versions(f.live()) == {"2": 8}
        for replica, seen in f.seen.items():
            assert sorted(v for v, _ in seen) == ["1", "2"], (replica, seen)


async def test_a_gateway_reverts_a_bad_update_with_the_broker_down_and_reports_it_later(
    topic_root: str, tmp_path: Path, mark: str
) -> None:
    port = free_port()
    broker = start_mosquitto(tmp_path / "broker1", port=port)
    url = f"mqtt://127.0.0.1:{port}"
    deadline_s = 3.0
    update = {"auto_revert": True, "min_healthy_s": 1, "healthy_deadline_s": deadline_s}
    gateway = Gateway("gw-solo", "site-a")
    try:
        async with fleet(url, topic_root, tmp_path, mark, [gateway]) as f:
            await f.deploy(manifest(mark, "1", GOOD, **update))
            await until(lambda: versions(f.live()) == {"1": 1}, 60, "v1 running", f)
            old = f.live()["meter-gw-solo"].pid
            await f.deploy(manifest(mark, "2", BAD, **update))
            applying = await until(
                lambda: (w := f.live().get("meter-gw-solo")) is None or w.pid != old,
                30, "the agent applying v2", f,
            )  # fmt: skip
            broker.stop()
            reverted = await until(
                lambda: (w := f.live().get("meter-gw-solo")) is not None and w.version == "1",
                deadline_s + 10, "the agent's own revert", f,
            )  # fmt: skip
            print(f"broker down: reverted {reverted - applying:.2f} s after applying began")
            assert reverted - applying <= deadline_s + 1
            broker = start_mosquitto(tmp_path / "broker2", port=port)
            reported = f"{topic_root}/nodes/site-a/gw-solo/reported"
            said: list[str] = []

            def hear(topic: str, body: dict[str, Any]) -> None:
                w = body.get("workloads", {}).get("meter-gw-solo", {}) if topic == reported else {}
                if w.get("rolled_back", {}).get("reason"):
                    said.append(w["rolled_back"]["reason"])

            f.watcher.hooks.append(hear)
            if f.watcher.latest.get(reported):
                hear(reported, f.watcher.latest[reported])

            def reported_back() -> bool:
                # Its report may be superseded before this watcher is back (the orchestrator
                # reverts, the agent's revert ends): then the orchestrator's reason shows it.
                why = f.rollout().get("failed", {}).get("meter-gw-solo", "")
                return bool(said) or "agent rolled back" in why

            # Agent, orchestrator and watcher reconnect with jittered backoff (up to 30 s).
            await until(reported_back, 75, "rolled_back reported after the broker returned", f)
            await until(lambda: f.rollout().get("phase") == "reverted", 45, "phase reverted", f)
            assert f.rollout()["counts"]["failed"] == 1
            assert versions(f.live()) == {"1": 1}
    finally:
        broker.stop()


async def test_deploy_wait_follows_the_new_revision_and_fails_with_its_reasons(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    fleet_of = gateways(2)
    async with fleet(broker_url, topic_root, tmp_path, mark, fleet_of) as f:
        await f.deploy(manifest(mark, "1", GOOD))
        await until(lambda: versions(f.live()) == {"1": 2}, 60, "v1 on 2 gateways", f)
        bad = manifest(mark, "2", ["sh", "-c", "exit 3"])
        del bad["update"]  # no update block: every replica at once, as before rollouts
        path = tmp_path / "meter-v2.json"
        path.write_text(json.dumps(bad))
        started = time.monotonic()
        cli = await asyncio.create_subprocess_exec(
            str(BIN / "edgefleet"), "deploy", str(path), "--wait", "--timeout", "90",
            "--broker", broker_url, "--root", topic_root,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await cli.communicate()
        took = time.monotonic() - started
        print(f"deploy --wait of a crashing revision failed after {took:.1f} s")
        assert cli.returncode == 1, (out.decode(), err.decode())
        assert "error: revision 2 of meter failed" in err.decode(), err.decode()
        assert "crash-looping" in err.decode()
        assert took < 60


async def cli(url: str, root: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "edgefleet"), *args, "--broker", url, "--root", root, "--timeout", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_rollout_verbs_show_history_refuse_with_what_exists_and_undo(
    broker_url: str, topic_root: str, tmp_path: Path, mark: str
) -> None:
    update = {"min_healthy_s": 1, "healthy_deadline_s": 20}
    async with fleet(broker_url, topic_root, tmp_path, mark, gateways(2)) as f:
        await f.deploy(manifest(mark, "1", GOOD, **update))
        await until(lambda: versions(f.live()) == {"1": 2}, 60, "v1 on 2 gateways", f)
        await f.deploy(manifest(mark, "2", GOOD, **update))
        code, out, err = await cli(broker_url, topic_root, "rollout", "status", "meter", "--watch")
        assert code == 0 and "succeeded" in out.splitlines()[-1], (out, err)
        code, out, _ = await cli(
            broker_url, topic_root, "rollout", "history", "meter", "-o", "json"
        )
        history = json.loads(out)
        assert [r["revision"] for r in history["revisions"]] == [1, 2]
        assert history["current_revision"] == 2

        code, _, err = await cli(broker_url, topic_root, "rollout", "promote", "meter")
        assert code == 1 and "is succeeded; promote applies only in canary" in err, err
        code, _, err = await cli(broker_url, topic_root, "rollout", "undo", "meter",
                                 "--to-revision", "9")  # fmt: skip
        assert code == 1 and "has no revision 9" in err and ": 1, 2" in err, err

        code, out, err = await cli(broker_url, topic_root, "rollout", "undo", "meter", "-o", "json")
        assert code == 0, err
        assert json.loads(out)["revision"] == 3 and json.loads(out)["to_revision"] == 1
        code, out, err = await cli(broker_url, topic_root, "rollout", "status", "meter", "--watch")
        assert code == 0, (out, err)
        await until(lambda: versions(f.live()) == {"1": 2}, 30, "back on v1", f)


def test_the_bad_version_really_fails() -> None:
    assert subprocess.run(BAD, check=False).returncode == 1
