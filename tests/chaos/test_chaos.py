"""The chaos suite (issue #13): break a real fleet the ways a fleet breaks, and count.

One fleet for the whole module (its setup is the expensive part): mosquitto with
persistence, the orchestrator process, four real agents with process workloads, each
agent behind its own loopback proxy. Two apps: ``web`` (3 replicas, one per node) and
``logs`` (a daemon, one per node), both with a 6 s disconnect grace.

Every scenario takes a census of the workload processes (pid + start time) before the
fault, undoes the fault, waits for the orchestrator's live view to be correct again (its
``nodes`` and ``apps`` answers, and the processes themselves), and then asserts exact
counts: no workload lost, none restarted unless the scenario forces it, no duplicate.
The seconds to a correct view are printed (``-s``) and recorded by bench/reconvergence.py.

The scenarios run in file order and each starts from the fleet the previous one left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from harness.chaos import ChaosFleet, Counts, compare, until
from harness.mosquitto import MissingTool
from harness.tiers import require

pytestmark = [pytest.mark.chaos, pytest.mark.asyncio(loop_scope="module")]

# Longer than any outage the link-cut scenario causes, with room for a loaded machine: a
# client retries at most 1 s apart through an outage's first 30 s (protocol.md, *Connections
# and reconnects*), so an agent is back within about 1 s of its link; the longest link loss
# here is two cuts of the same agent with 0.88 s between them (seed 13: 1.99 + 0.88 + 1.78 s),
# 4.65 s plus that second.
GRACE_S = 6.0
AGENTS = 4
SETTLE_TIMEOUT_S = 60.0
TIMES: dict[str, float] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChaosFleet]:
    chaos = ChaosFleet(tmp_path_factory.mktemp("chaos"))
    try:
        try:
            chaos.start_broker()
        except MissingTool as exc:
            require(False, str(exc))
        chaos.start_orchestrator()
        await chaos.add_agents(AGENTS)
        await chaos.open_operator()
        disconnect = {"grace_s": GRACE_S}
        await chaos.deploy(
            chaos.app("web", replicas=3, placement={"max_per_node": 1}, disconnect=disconnect),
            chaos.app("logs", mode="daemon", disconnect=disconnect),
        )
        yield chaos
    finally:
        await chaos.stop()
        if TIMES:
            print("\nchaos: seconds to a correct fleet view:", TIMES)


async def settled(fleet: ChaosFleet, scenario: str, expected: object = None) -> float:
    before = fleet.census() if expected is None else expected
    took = await until(
        lambda: fleet.view_correct(before),  # type: ignore[arg-type]
        SETTLE_TIMEOUT_S,
        f"{scenario}: a correct fleet view",
    )
    TIMES[scenario] = round(took, 2)
    return took


def assert_counts(counts: Counts, *, restarted: int = 0, moved: int = 0) -> None:
    assert counts.lost == [], f"lost {counts.lost}"
    assert counts.duplicates == {}, f"duplicates {counts.duplicates}"
    assert len(counts.restarted) == restarted, f"restarted {counts.restarted}"
    assert len(counts.moved) == moved, f"moved {counts.moved}"


async def test_the_fleet_converges(fleet: ChaosFleet) -> None:
    async def seven_running() -> bool:
        census = fleet.census()
        return len(census.names()) == 3 + AGENTS and not census.duplicates()

    await until(seven_running, SETTLE_TIMEOUT_S, "every replica running")
    await settled(fleet, "deploy")


async def test_broker_kill9_restarts_nothing(fleet: ChaosFleet) -> None:
    before = fleet.census()
    assert fleet.broker is not None
    fleet.broker.kill()
    await asyncio.sleep(3.0)  # the outage itself (the fault's length, not a wait)
    fleet.start_broker()
    await settled(fleet, "broker kill -9, 3 s", before)
    assert_counts(compare(before, fleet.census()))


async def test_clean_broker_restart_reschedules_nothing(fleet: ChaosFleet) -> None:
    # SIGTERM: mosquitto publishes and persists every client's will on the way down.
    before = fleet.census()
    assert fleet.broker is not None
    fleet.broker.stop()
    await asyncio.sleep(GRACE_S / 2)
    fleet.start_broker()
    await settled(fleet, "broker clean restart", before)
    # Longer than the grace after the restart: nothing moves late either.
    await asyncio.sleep(GRACE_S + 1)
    assert_counts(compare(before, fleet.census()))


async def test_orchestrator_kill9_beyond_grace_moves_nothing(fleet: ChaosFleet) -> None:
    before = fleet.census()
    fleet.kill_orchestrator()
    await asyncio.sleep(GRACE_S + 2)
    fleet.start_orchestrator()
    await settled(fleet, "orchestrator kill -9 beyond grace", before)
    assert_counts(compare(before, fleet.census()))


async def test_agent_kill9_within_grace_adopts_everything(fleet: ChaosFleet) -> None:
    before = fleet.census()
    victim = fleet.agents[0]
    victim.kill9()
    await asyncio.sleep(GRACE_S / 3)
    victim.start()
    await settled(fleet, "agent kill -9 within grace", before)
    assert_counts(compare(before, fleet.census()))


async def test_agent_kill9_beyond_grace_moves_only_replicated_replicas(fleet: ChaosFleet) -> None:
    before = fleet.census()
    victim = next(a for a in fleet.agents if any(n.startswith("web-") for n in before.on(a.node)))
    web_there = sorted(n for n in before.on(victim.node) if n.startswith("web-"))
    victim.kill9()
    moved_away = await until(
        lambda: _async(all(fleet.census().node_of(n) - {victim.node} for n in web_there)),
        SETTLE_TIMEOUT_S,
        "the victim's web replicas running elsewhere",
    )
    assert moved_away >= GRACE_S - 1, "moved before the grace ran out"
    victim.start()
    await settled(fleet, "agent return after grace", before)
    # The move is forced: web replicas of the victim restart elsewhere, nothing else does;
    # the daemon replica of the victim is still the same process.
    assert_counts(compare(before, fleet.census()), restarted=len(web_there), moved=len(web_there))


async def test_gateway_reboot_with_the_broker_down(fleet: ChaosFleet) -> None:
    before = fleet.census()
    victim = fleet.agents[-1]
    there = before.on(victim.node)
    assert fleet.broker is not None
    fleet.broker.kill()
    victim.kill9()
    for procs in before.by_name.values():  # the power cut takes its workloads too
        for node, (pid, _) in procs:
            if node == victim.node:
                _kill(pid)
    victim.start()  # comes up from its local store, no broker in sight

    async def restored() -> bool:
        return there <= fleet.census().on(victim.node)

    await until(restored, 30, "the rebooted gateway's workloads from its local store")
    fleet.start_broker()
    await settled(fleet, "gateway reboot, broker down", before)
    assert_counts(compare(before, fleet.census()), restarted=len(there))


async def test_ten_random_link_cuts_restart_nothing(fleet: ChaosFleet) -> None:
    rng = random.Random(13)
    before = fleet.census()
    for _ in range(10):
        agent = rng.choice(fleet.agents)
        agent.proxy.cut()
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        agent.proxy.restore()
        await asyncio.sleep(rng.uniform(0.3, 1.0))
    await settled(fleet, "ten random link cuts", before)
    assert_counts(compare(before, fleet.census()))


async def _async(value: bool) -> bool:
    return value


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
