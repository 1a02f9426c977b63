"""The fleet simulator against a real mosquitto: 50 real agents in this process come online
with capabilities drawn from their profiles, apply a desired document, and die loudly
(kill: will at once) or quietly (silent cut: will only when the keepalive expires). What
the tests check is observed through a separate MQTT session, as an orchestrator would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from edgefleet_agent import cli
from edgefleet_agent.settings import SettingsError
from edgefleet_agent.simulate.fleet import FaultError, Fleet
from edgefleet_agent.simulate.plan import FleetShape, plan_fleet
from edgefleet_agent.simulate.settings import SimulateSettings
from edgefleet_protocol import (
    Desired,
    DesiredWorkload,
    TopicKind,
    Topics,
    WorkloadSpec,
)
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.profiles import load_profiles
from edgefleet_protocol.session import Publication, Session
from edgefleet_protocol.workload import spec_hash
from harness.mosquitto import free_port

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "device-profiles"
AGENT = Path(sys.executable).parent / "edgefleet-agent"
KEEPALIVE_S = 5
BROKER_CHECK_S = 6
"""mosquitto 2.0 looks for expired keepalives only every few seconds, all clients at once."""
Message = dict[str, Any]


class Observer:
    """Every node message under the root, as (arrival time, topic, payload), retained ones
    included: a second, independent view of what the fleet published."""

    def __init__(self, url: str, root: str) -> None:
        self.topics = Topics(root)
        self.session = Session(
            BrokerSettings.from_url(url),
            client_id=f"sim-test-observer-{time.monotonic_ns()}",
            subscriptions=[self.topics.all_nodes()],
        )
        self.seen: list[tuple[float, str, Message]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        self.session.start()
        assert await self.session.wait_connected(5)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.session.close()

    async def _read(self) -> None:
        async for message in self.session.messages():
            if message.payload:
                body = json.loads(message.payload)
                self.seen.append((time.monotonic(), message.topic, body))

    def latest(self, kind: TopicKind) -> dict[str, Message]:
        suffix = "/" + kind.value
        return {body["node"]: body for _, topic, body in self.seen if topic.endswith(suffix)}

    async def wait_for(
        self,
        what: str,
        check: Callable[[str, Message], bool],
        timeout_s: float = 15.0,
        *,
        after: float = 0.0,
    ) -> float:
        """Arrival time of the first message (topic, payload) arriving after ``after`` that
        passes ``check``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, topic, body in self.seen:
                if at > after and check(topic, body):
                    return at
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout_s} s")


def settings(url: str, root: str, **overrides: Any) -> SimulateSettings:
    values: dict[str, Any] = {
        "count": 50,
        "sites": 5,
        "broker": BrokerSettings.from_url(url),
        "root": root,
        "profiles_dir": PROFILES,
        "seed": 3,
        "keepalive_s": KEEPALIVE_S,
        "sample_interval_s": 1.0,
        "ready_timeout_s": 30.0,
    }
    values.update(overrides)
    return SimulateSettings(**values)


@pytest.fixture
async def fleet(broker_url: str, topic_root: str) -> AsyncIterator[Fleet]:
    fleet = Fleet(settings(broker_url, topic_root))
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop()


def status_of(
    node: str, state: str, session: int, since: float | None = None
) -> Callable[[str, Message], bool]:
    """A status check; with ``since``, only that agent instance's own (a will carries the
    ``since`` of the agent's start, a clean ``offline`` the time of the stop)."""

    def check(topic: str, body: Message) -> bool:
        return (
            topic.endswith("/status")
            and body.get("node") == node
            and body.get("state") == state
            and body.get("session") == session
            and (since is None or body.get("since") == since)
        )

    return check


async def test_fifty_simulated_agents_come_online_with_capabilities_drawn_from_their_profiles(
    fleet: Fleet, broker_url: str, topic_root: str
) -> None:
    await fleet.wait_ready()
    profiles = load_profiles(PROFILES)
    async with Observer(broker_url, topic_root) as observer:
        await observer.wait_for(
            "telemetry with latency probes",
            lambda topic, body: (
                topic.endswith("/telemetry") and "camera-hub" in body.get("latency_ms", {})
            ),
        )
        await observer.wait_for(
            "all 50 capabilities",
            lambda *_: len(observer.latest(TopicKind.NODE_CAPABILITIES)) == 50,
        )
        statuses = observer.latest(TopicKind.NODE_STATUS)
        capabilities = observer.latest(TopicKind.NODE_CAPABILITIES)
        telemetry = observer.latest(TopicKind.NODE_TELEMETRY)
    assert {s["state"] for s in statuses.values()} == {"online"}
    assert set(capabilities) == set(fleet.nodes)
    used = set()
    for name, caps in capabilities.items():
        plan = fleet.nodes[name].plan
        profile = profiles[plan.profile]
        used.add(profile.id)
        assert caps["site"] == plan.site
        assert caps["profile"] == profile.id
        assert caps["arch"] == profile.arch
        assert caps["memory_mb"] == profile.memory_mb
        assert caps["runtimes"] == ["simulated"]
        assert caps["network"]["link"] == profile.link.type
        assert caps["network"]["bandwidth_mbps"] == plan.bandwidth_mbps
        assert 0 < caps["network"]["bandwidth_mbps"] <= profile.link.bandwidth_mbps
    assert used == set(profiles)  # round-robin over every profile of the directory
    for name, body in telemetry.items():
        link = profiles[fleet.nodes[name].plan.profile].link
        for target in ("broker", "camera-hub"):
            assert link.latency_ms.min <= body["latency_ms"][target] <= link.latency_ms.max


async def test_a_desired_document_to_one_simulated_agent_is_applied_and_reported_running(
    fleet: Fleet, broker_url: str, topic_root: str
) -> None:
    await fleet.wait_ready()
    node = fleet.nodes["sim-site-2-7"]
    spec = WorkloadSpec.model_validate({"runtime": "simulated"})
    doc = Desired(
        node=node.id,
        site=node.plan.site,
        generation=4,
        issued_at=time.time(),
        workloads=[DesiredWorkload(name="w1", app="app1", spec=spec, spec_hash=spec_hash(spec))],
    )
    topics = Topics(topic_root)
    async with Observer(broker_url, topic_root) as observer:
        await observer.session.publish(
            Publication(
                topics.node_desired(node.plan.site, node.id),
                doc.model_dump_json().encode(),
                qos=1,
                retain=True,
            )
        )

        def running(topic: str, body: Message) -> bool:
            if topic != topics.node_reported(node.plan.site, node.id):
                return False
            w1 = body.get("workloads", {}).get("w1", {})
            return (
                body.get("observed_generation") == 4
                and w1.get("state") == "running"
                and w1.get("spec_hash") == spec_hash(spec)
            )

        await observer.wait_for("w1 reported running", running)
        await observer.session.clear_retained(topics.node_desired(node.plan.site, node.id))
    assert node.agent is not None
    assert set(node.agent.runtimes["simulated"].table()) == {"w1"}  # type: ignore[attr-defined]


async def test_a_killed_node_goes_offline_by_its_will_at_once_and_revives_as_a_new_session(
    fleet: Fleet, broker_url: str, topic_root: str
) -> None:
    await fleet.wait_ready()
    async with Observer(broker_url, topic_root) as observer:
        victim = fleet.nodes["sim-site-3-13"]
        assert victim.agent is not None
        session, started = victim.agent.session_no, victim.agent.started_at
        killed_at = time.monotonic()
        assert await fleet.kill(nodes=[victim.id]) == [victim.id]
        will = status_of(victim.id, "offline", session, since=started)
        will_at = await observer.wait_for("the will", will, after=killed_at)
        # A closed socket is noticed at once; a silent cut takes a second at least (below).
        assert will_at - killed_at < 1.0
        assert fleet.summary()["killed"] == 1
        assert await fleet.revive(nodes=[victim.id]) == [victim.id]
        await observer.wait_for("online again", status_of(victim.id, "online", session + 1))
        await fleet.wait_ready(15)


async def test_a_silent_cut_brings_the_will_only_when_the_keepalive_expires(
    fleet: Fleet, broker_url: str, topic_root: str
) -> None:
    await fleet.wait_ready()
    async with Observer(broker_url, topic_root) as observer:
        victim = fleet.nodes["sim-site-4-19"]
        assert victim.agent is not None
        session, started = victim.agent.session_no, victim.agent.started_at
        cut_at = time.monotonic()
        assert fleet.cut(nodes=[victim.id]) == [victim.id]
        will = status_of(victim.id, "offline", session, since=started)
        will_at = await observer.wait_for("the will", will, 4 * KEEPALIVE_S, after=cut_at)
        # The broker gives up more than 1.5 keepalives (in whole seconds: 7 s) after the
        # node's last packet, which left at most a keepalive (plus paho's 1 s tick) before
        # the cut, and it looks only every few seconds.
        assert will_at - cut_at > 1.0
        assert will_at - cut_at <= 1.5 * KEEPALIVE_S + BROKER_CHECK_S + 2
        assert fleet.restore([victim.id]) == [victim.id]
        online = status_of(victim.id, "online", session, since=started)
        await observer.wait_for("online after the restore", online, 6 * KEEPALIVE_S, after=will_at)
        assert victim.agent.session.stats.connects >= 2  # the agent reconnected


async def test_a_flapping_link_shorter_than_the_keepalive_costs_no_will(
    fleet: Fleet, broker_url: str, topic_root: str
) -> None:
    await fleet.wait_ready()
    async with Observer(broker_url, topic_root) as observer:
        # Each outage delays a ping by at most 0.5 s: the broker never misses 1.5 keepalives.
        flapping = fleet.flap(2, down_s=0.5, up_s=1.5)
        assert len(flapping) == 2 and fleet.summary()["flapping"] == 2
        await asyncio.sleep(2 * KEEPALIVE_S)
        assert fleet.restore(flapping) == sorted(flapping)
        offline = [
            body["node"]
            for _, topic, body in observer.seen
            if topic.endswith("/status") and body.get("state") == "offline"
        ]
        assert offline == []
        connects = [fleet.nodes[n].agent.session.stats.connects for n in flapping]  # type: ignore[union-attr]
        assert connects == [1, 1]  # the connections rode out every outage


async def test_a_hand_made_fleet_with_duplicate_node_ids_is_refused(
    broker_url: str, topic_root: str
) -> None:
    profiles = load_profiles(PROFILES)
    plans = plan_fleet(FleetShape(count=3, sites=1, profiles=profiles))
    with pytest.raises(SettingsError, match="duplicate node id 'sim-site-0-0'"):
        Fleet(settings(broker_url, topic_root, count=3, sites=1), plans=[*plans, plans[0]])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--count", "0", "--sites", "1"], "invalid setting 'count'"),
        (["--count", "5", "--sites", "0"], "invalid setting 'sites'"),
        (["--count", "5", "--sites", "6"], "6 sites cannot each hold one of 5"),
        (["--count", "5", "--sites", "1", "--profile", "nope"], "unknown profile 'nope'"),
        (["--count", "5", "--sites", "1", "--profiles", "/nonexistent"], "not a directory"),
        (["--count", "5", "--sites", "1", "--kill", "5"], "expected N@T"),
        (["--count", "5", "--sites", "1", "--faultable", "1", "--cut", "2@1"], "need 2"),
        (["--count", "2000000", "--sites", "1"], "invalid setting 'count'"),
    ],
)
def test_impossible_command_lines_exit_2_with_one_line_naming_the_setting(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], broker_url: str
) -> None:
    code = cli.main(["simulate", "--broker", broker_url, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert says in err
    assert err.startswith("edgefleet-agent simulate: invalid setting")
    assert err.count("\n") == 1


def run_cli(args: list[str], stdin: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(AGENT), "simulate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def test_the_command_line_prints_ready_applies_commands_and_stops_cleanly(
    broker_url: str, topic_root: str
) -> None:
    done = run_cli(
        [
            "--count",
            "6",
            "--sites",
            "2",
            "--broker",
            broker_url,
            "--root",
            topic_root,
            "--control",
            "--seed",
            "1",
        ],
        stdin="status\nkill 2\nexplode\nstop\n",
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["ready"] == 6 and lines[0]["faultable"] == 6
    assert lines[1]["status"]["ready"] == 6
    assert lines[2]["fault"] == "kill" and len(lines[2]["nodes"]) == 2
    assert "unknown command 'explode'" in lines[3]["error"]
    assert lines[-1] == {"stopped": 6}


def test_a_broker_that_cannot_be_reached_ends_with_a_message_and_no_ready_line() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    done = run_cli(["--count", "3", "--sites", "1", "--broker", url, "--ready-timeout-s", "2"], "")
    assert done.returncode == 1
    assert "does not answer" in done.stderr
    assert '"ready"' not in done.stdout


def test_scheduled_faults_fire_after_ready_and_sigterm_stops_the_fleet_cleanly(
    broker_url: str, topic_root: str
) -> None:
    args = ["--count", "8", "--sites", "2", "--broker", broker_url, "--root", topic_root]
    args += ["--kill", "2@0", "--cut", "1@0.2+1", "--flap", "1@0.2:0.5/0.5"]
    process = subprocess.Popen(
        [str(AGENT), "simulate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    try:
        lines = [json.loads(process.stdout.readline()) for _ in range(5)]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert lines[0]["ready"] == 8
    faults = {line["fault"]: line for line in lines[1:]}
    assert set(faults) == {"kill", "cut", "flap", "restore"}
    assert faults["restore"]["nodes"] == faults["cut"]["nodes"]
    assert faults["restore"]["t"] >= faults["cut"]["t"] + 1  # the cut's +1 s
    assert len(faults["kill"]["nodes"]) == 2 and faults["kill"]["t"] >= 0
    assert len(faults["cut"]["nodes"]) == 1 and faults["cut"]["t"] >= 0.2
    victims = faults["kill"]["nodes"] + faults["cut"]["nodes"] + faults["flap"]["nodes"]
    assert len(set(victims)) == 4  # each fault takes nodes no other fault holds
    assert json.loads(out.splitlines()[-1]) == {"stopped": 8}


async def test_faults_need_faultable_nodes_and_say_so(broker_url: str, topic_root: str) -> None:
    fleet = Fleet(settings(broker_url, topic_root, count=4, sites=1, faultable=0))
    with pytest.raises(FaultError, match="only 0 faultable ones"):
        await fleet.kill(1)
    with pytest.raises(FaultError, match="connects directly"):
        fleet.cut(nodes=["sim-site-0-0"])
    with pytest.raises(FaultError, match="no simulated node 'ghost'"):
        fleet.flap(nodes=["ghost"], down_s=1, up_s=1)
    with pytest.raises(FaultError, match="restore: no simulated node 'ghost'"):
        fleet.restore(["ghost"])
