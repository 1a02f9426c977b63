"""The scale-out path (issue #17 item 6): site brokers bridged to a central broker.

Two site mosquittos (site-a, site-b), each bridged to a central mosquitto with the
bridge block and ``topic`` lines ``edgefleet broker config --bridge`` generates (TLS,
certificate and password lines removed: the listeners here are plain loopback, and
``tests/integration/test_broker_configs.py`` runs the TLS bridge with a generated set).
Each bridge goes through a loopback :class:`~harness.proxy.Proxy`, which counts its bytes
and can cut it. The real orchestrator runs on the central broker; real agents (process
runtime, ``sleep`` workloads) connect only to their site broker. One scenario, in order:

1. a deploy converges through the bridges;
2. a site broker restart keeps the retained desired state: the restarted broker still
   holds the node's document, the agent reads it again, and no workload restarts;
3. a site whose bridge is cut keeps its workloads running (and its agents keep
   publishing locally) until the bridge is back;
4. an agent killed with kill -9 is seen offline at the centre through the bridge (its
   will), and its replicated replica runs elsewhere after the app's grace.

Then the same path with TLS both ways, from the generated sets themselves: the central
set with ``--bridge`` for both sites, each site broker on its own set plus the
``bridges/<site>/`` files as written; a deploy converges and a kill -9 is seen offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Backoff, Session
from harness.bridge import Site, SiteAgent
from harness.chaos import AGENT_FAST, BIN, ChaosFleet, compare, until
from harness.fleet import Operator
from harness.mosquitto import MissingTool, Mosquitto
from harness.processes import Program
from harness.production import generate_set, installed, override, start_generated_broker
from harness.tiers import require

pytestmark = [pytest.mark.asyncio(loop_scope="module")]

GRACE_S = 6.0
SETTLE_S = 60.0
INSTALL = "/etc/mosquitto/edgefleet/"
SITES = {"site-a": ("a1", "a2"), "site-b": ("b1",)}


@dataclass
class Bridged:
    central: ChaosFleet
    sites: dict[str, Site]
    agents: list[SiteAgent]

    def agent(self, node: str) -> SiteAgent:
        return next(a for a in self.agents if a.node == node)

    async def view(self) -> tuple[dict[str, str], list[dict[str, object]]]:
        """The orchestrator's live view: node -> state, and its app rows."""
        operator = self.central.operator
        assert operator is not None
        nodes = await operator.call("nodes", timeout_s=3)
        apps = await operator.call("apps", timeout_s=3)
        states = {r["node"]: r["state"] for r in nodes.get("result", {}).get("nodes", [])}
        return states, apps.get("result", {}).get("apps", [])

    async def correct(self, expected_names: set[str]) -> bool:
        try:
            states, apps = await self.view()
        except TimeoutError:
            return False
        if len(states) != len(self.agents) or set(states.values()) != {"online"}:
            return False
        if not apps or any(a["state"] != "healthy" or a["running"] != a["desired"] for a in apps):
            return False
        now = self.central.census()
        return now.names() == expected_names and not now.duplicates()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bridged]:
    workdir = tmp_path_factory.mktemp("bridge")
    central = ChaosFleet(workdir / "central")
    sites = {n: Site(n, workdir, central.root, central.port) for n in SITES}
    bridged = Bridged(central, sites, [])
    try:
        try:
            central.start_broker()
        except MissingTool as exc:
            require(False, str(exc))
        central.start_orchestrator()
        for site in sites.values():
            await site.start_bridge()
            site.start_broker()
        for name, nodes in SITES.items():
            for node in nodes:
                agent = SiteAgent(node, sites[name])
                agent.start()
                bridged.agents.append(agent)
        await central.open_operator()
        yield bridged
    finally:
        for agent in bridged.agents:
            agent.kill9()
        for site in sites.values():
            if site.broker is not None:
                site.broker.kill()
            if site.proxy is not None:
                await site.proxy.close()
        await central.stop()  # the orchestrator, the central broker and every workload


async def first_message(url: str, topic: str, timeout_s: float = 5.0) -> bytes | None:
    """The first message on ``topic`` for a new subscriber (a retained one, if any)."""
    session = Session(
        BrokerSettings.from_url(url),
        client_id=f"probe-{uuid.uuid4().hex[:8]}",
        subscriptions=[topic],
        backoff=Backoff(base_s=0.05, cap_s=0.3),
    )
    async with session:
        if not await session.wait_connected(5):
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                async for message in session.messages():
                    return message.payload
    return None


async def _true(value: bool) -> bool:
    return value


async def test_deploy_converges_through_the_bridges(fleet: Bridged) -> None:
    disconnect = {"grace_s": GRACE_S}
    await fleet.central.deploy(
        fleet.central.app("web", replicas=2, placement={"max_per_node": 1}, disconnect=disconnect),
        fleet.central.app("logs", mode="daemon", disconnect=disconnect),
    )

    async def all_running() -> bool:
        names = fleet.central.census().names()
        return len(names) == 2 + len(fleet.agents)

    await until(all_running, SETTLE_S, "every replica running at the sites")
    names = fleet.central.census().names()
    await until(lambda: fleet.correct(names), SETTLE_S, "a correct view at the centre")
    # Every node's workloads run under its own site's agent.
    census = fleet.central.census()
    assert {node for name in names for node in census.node_of(name)} == {
        n for nodes in SITES.values() for n in nodes
    }


async def test_site_broker_restart_keeps_the_retained_desired_state(fleet: Bridged) -> None:
    before = fleet.central.census()
    site = fleet.sites["site-b"]
    desired = f"{site.root}/nodes/site-b/b1/desired"
    held = await first_message(site.url, desired)
    assert held is not None and json.loads(held)["node"] == "b1"
    assert site.broker is not None
    site.broker.stop()  # SIGTERM: mosquitto saves its retained messages
    # Bring it back with the bridge held down, so what the site has is its own copy.
    assert site.proxy is not None
    site.proxy.cut()
    site.start_broker()
    assert await first_message(site.url, desired) == held
    site.proxy.restore()
    await until(lambda: fleet.correct(before.names()), SETTLE_S, "a correct view after it")
    counts = compare(before, fleet.central.census())
    assert counts.lost == [] and counts.restarted == [] and counts.duplicates == {}


async def test_a_site_cut_off_keeps_its_workloads_running(fleet: Bridged) -> None:
    before = fleet.central.census()
    site = fleet.sites["site-a"]
    assert site.proxy is not None
    # notifications true: the bridge's state, retained on the site broker under its client
    # id (remote_clientid bridge@site-a), "0" while it is down.
    state = "$SYS/broker/connection/bridge@site-a/state"
    site.proxy.cut()

    async def bridge_down() -> bool:
        return await first_message(site.url, state, timeout_s=1) == b"0"

    await until(bridge_down, 30, "site-a's broker reporting its bridge down")
    # Agents keep talking to their site broker meanwhile: a fresh status arrives locally.
    status = f"{site.root}/nodes/site-a/a1/status"
    assert await first_message(site.url, status) is not None
    await asyncio.sleep(GRACE_S + 1)  # the outage itself, longer than the grace
    during = compare(before, fleet.central.census())
    assert during.lost == [] and during.restarted == [] and during.moved == []
    site.proxy.restore()
    await until(lambda: fleet.correct(before.names()), SETTLE_S, "a correct view after it")
    after = compare(before, fleet.central.census())
    assert after.lost == [] and after.restarted == [] and after.duplicates == {}


async def test_an_agent_killed_is_seen_offline_through_the_bridge(fleet: Bridged) -> None:
    before = fleet.central.census()
    web = sorted(n for n in before.names() if n.startswith("web-"))
    victim_node = next(iter(before.node_of(web[0])))
    victim = fleet.agent(victim_node)
    victim.kill9()

    async def offline() -> bool:
        with contextlib.suppress(TimeoutError):
            states, _ = await fleet.view()
            return states.get(victim_node) == "offline"
        return False

    seen = await until(offline, 30, f"{victim_node} offline at the centre (its will)")
    moved = await until(
        lambda: _true(bool(fleet.central.census().node_of(web[0]) - {victim_node})),
        SETTLE_S,
        "the victim's web replica running elsewhere",
    )
    assert moved >= GRACE_S - 1 - seen, "moved before the grace ran out"
    victim.start()
    await until(lambda: fleet.correct(before.names()), SETTLE_S, "a correct view after it")


# -- TLS end to end ------------------------------------------------------------------------


def tls_url(set_dir: Path, port: int, user: str) -> str:
    """A client of a generated set (TLS, its certificate is its identity)."""
    clients = set_dir / "clients"
    files = {"ca": set_dir / "ca.crt", "cert": clients / f"{user}.crt"}
    files["key"] = clients / f"{user}.key"
    return f"mqtts://{user}@127.0.0.1:{port}?" + "&".join(
        f"{k}={quote(str(v))}" for k, v in files.items()
    )


async def test_tls_both_ways_with_the_generated_sets(tmp_path: Path) -> None:
    """The central set with two ``--bridge`` sites, each site broker run from the site's
    own set plus ``bridges/<site>/`` exactly as generated (paths and address aside): the
    orchestrator, an operator and the agents all on TLS with their certificates."""
    nodes = {"site-a": "a1", "site-b": "b1"}
    central_set = tmp_path / "central-set"
    generate_set(
        central_set,
        *(a for site, node in nodes.items() for a in ("--node", f"{site}/{node}")),
        *(a for site in nodes for a in ("--bridge", site)),
        "--operator", "tester",
    )  # fmt: skip
    try:
        central = start_generated_broker(central_set, tmp_path / "central")
    except MissingTool as exc:
        require(False, str(exc))
    fleet = ChaosFleet(tmp_path / "fleet", root="edgefleet/v1", port=central.port)
    sites: list[Mosquitto] = []
    agents: list[Program] = []
    orchestrator: Program | None = None
    try:
        for site, node in nodes.items():
            site_set = tmp_path / f"{site}-set"
            generate_set(site_set, "--node", f"{site}/{node}")
            side = central_set / "bridges" / site
            config = installed(
                (side / "bridge.conf").read_text(),
                {INSTALL: site_set, f"{INSTALL}central/": side / "central"},
            )
            config = override(config, {"address": f"address 127.0.0.1:{central.port}"})
            broker = start_generated_broker(site_set, tmp_path / site, config=config)
            sites.append(broker)
            state = tmp_path / node
            state.mkdir()
            agent = Program(
                f"agent-{node}",
                [
                    str(BIN / "edgefleet-agent"),
                    "run",
                    "--node",
                    node,
                    "--site",
                    site,
                    "--broker",
                    tls_url(site_set, broker.port, f"{site}.{node}"),
                    "--state-dir",
                    str(state),
                    "--runtime",
                    "process",
                    *AGENT_FAST,
                ],
                tmp_path,
            )
            agents.append(agent.start())
        orchestrator = Program(
            "orchestrator",
            [
                str(BIN / "edgefleet"),
                "orchestrator",
                "run",
                "--broker",
                tls_url(central_set, central.port, "orchestrator"),
                "--data-dir",
                str(tmp_path / "orchestrator"),
                "--tick",
                "0.2",
            ],
            tmp_path,
        ).start()
        async with Operator(
            tls_url(central_set, central.port, "tester"), "edgefleet/v1", operator="tester"
        ) as operator:
            fleet.operator = operator
            await fleet.deploy(fleet.app("tls", mode="daemon", disconnect={"grace_s": 60}))

            async def view() -> dict[str, str]:
                reply = await operator.call("nodes", timeout_s=3)
                return {r["node"]: r["state"] for r in reply["result"]["nodes"]}

            async def running() -> bool:
                return set(await view()) == set(nodes.values()) and len(
                    fleet.census().names()
                ) == len(nodes)

            await until(running, SETTLE_S, "the daemon running at both sites over TLS")
            # kill -9 one agent: its will crosses the TLS bridge.
            agents[0].kill9()

            async def offline() -> bool:
                return (await view()).get("a1") == "offline"

            await until(offline, 30, "a1 offline at the centre through the TLS bridge")
    finally:
        if orchestrator is not None:
            orchestrator.stop()
        for program in agents:
            if program.running():
                program.kill9()
        for broker in sites:
            broker.kill()
        fleet.operator = None
        await fleet.stop()  # the orchestrator handle is not its own; kills the workloads
        central.kill()
