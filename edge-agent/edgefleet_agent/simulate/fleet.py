"""The fleet simulator's programmatic API: N real agents in one process, and their faults.

Each simulated gateway is a real :class:`~edgefleet_agent.service.agent.Agent` — its own
MQTT session, will, local store, admission, converge loop and reported document — on the
simulated runtime, built exactly as ``edgefleet-agent run --runtime simulated`` builds it.
Only the device is modelled (:mod:`~edgefleet_agent.simulate.device`): hardware, link
bandwidth, latency probes and load come from the node's device profile and seeded draws
(:mod:`~edgefleet_agent.simulate.plan`). So everything an orchestrator sees is what real
agents send.

    fleet = Fleet(SimulateSettings(count=1000, sites=10, broker=..., root=...))
    await fleet.start()
    connect_s = await fleet.wait_ready()    # every node's online + capabilities seen live
    await fleet.kill(5)                     # sockets closed: the broker publishes 5 wills
    fleet.cut(5, for_s=30)                  # silent: wills only at keepalive expiry
    fleet.flap(3, down_s=2, up_s=8)
    await fleet.stop()                      # clean: offline published, workloads left

Faults act on *faultable* nodes, whose agents connect through their own
:class:`~edgefleet_agent.simulate.link.Link` (4 file descriptors each instead of 1); by
default every node is faultable as far as ``RLIMIT_NOFILE`` allows (see
:mod:`~edgefleet_agent.simulate.limits`). Victims are drawn from a seeded RNG, so a run repeats.

Invariants: one event loop owns the fleet; a node is ``new``, ``running``, ``killed`` or
``stopped``; only a running node has an agent task; a faultable node has a link while it
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgefleet_protocol.profiles import Profile

from edgefleet_agent.simulate.device import device_profile
from edgefleet_agent.simulate.limits import (
    ensure_fd_limit,
    load_fleet_profiles,
    temporary_state_root,
)
from edgefleet_agent.simulate.node import HALT_TIMEOUT_S, Handler, SimNode, quiet_cancelled_connects
from edgefleet_agent.simulate.plan import (
    FleetShape,
    NodePlan,
    check_unique,
    pick_nodes,
    plan_fleet,
    spread_indices,
)
from edgefleet_agent.simulate.settings import SimulateSettings, check_settings
from edgefleet_agent.simulate.watch import PresenceWatch

log = logging.getLogger("edgefleet.simulate")

START_BATCH = 50
"""Agents built between two yields to the event loop while starting, so the first ones
connect while later ones are still being built."""


class FaultError(ValueError):
    """A fault that cannot be applied as asked (no such node, not faultable, too few)."""


class NotReady(RuntimeError):
    """Not every node came online in time; the message says how many did."""


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One applied fault (``kill``, ``cut``, ``flap``, ``restore``, ``revive``)."""

    kind: str
    nodes: tuple[str, ...]
    at: float


class Fleet:
    def __init__(
        self,
        settings: SimulateSettings,
        *,
        profiles: Mapping[str, Profile] | None = None,
        plans: Sequence[NodePlan] | None = None,
    ) -> None:
        """Check everything and plan the fleet; raises ``SettingsError`` on bad input.
        ``plans`` replaces the generated plan (hand-made fleets, tests)."""
        check_settings(settings)
        self.settings = settings
        self.profiles = dict(profiles) if profiles is not None else load_fleet_profiles(
            settings.profiles_dir, settings.profile_weights)  # fmt: skip
        if plans is None:
            plans = plan_fleet(self._shape())
        check_unique(plans)
        self.faultable = ensure_fd_limit(len(plans), settings.faultable)
        chosen = set(spread_indices(len(plans), self.faultable))
        self.nodes: dict[str, SimNode] = {
            p.node: SimNode(
                plan=p,
                profile=device_profile(self.profiles[p.profile], p),
                faultable=i in chosen,
            )
            for i, p in enumerate(plans)
        }
        self.broker = replace(settings.broker, keepalive=settings.keepalive_s)
        self.history: list[FaultRecord] = []
        self.on_fault: Callable[[FaultRecord], object] | None = None
        """Called with every fault as it is applied, timed restores included."""
        self.watch = PresenceWatch(self.broker, settings.root)
        self._rng = random.Random(f"edgefleet-sim-faults:{settings.seed}")
        self._state_root: Path | None = None
        self._owns_state = False
        self._timers: set[asyncio.Task[None]] = set()
        self._started_at = 0.0
        self._loop_handler: tuple[asyncio.AbstractEventLoop, Handler | None] | None = None

    def _shape(self) -> FleetShape:
        s = self.settings
        return FleetShape(
            count=s.count,
            sites=s.sites,
            profiles=self.profiles,
            seed=s.seed,
            prefix=s.prefix,
            weights=s.profile_weights,
            assign=s.assign,
            probes=s.probes,
            heartbeat_s=s.heartbeat_s,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every agent (returns once all are started, not connected)."""
        loop = asyncio.get_running_loop()
        self._loop_handler = (loop, quiet_cancelled_connects(loop))
        if not await self.watch.start(min(10.0, self.settings.ready_timeout())):
            await self.watch.close()
            loop.set_exception_handler(self._loop_handler[1])
            raise NotReady(f"the broker {self.broker.redacted()} does not answer")
        if self.broker.protocol == "auto" and self.watch.session.protocol is not None:
            # Thousands of agents connecting at once can take longer than the short first
            # MQTT 5 attempt of "auto" mode and fall back for nothing: use what worked.
            self.broker = replace(self.broker, protocol=self.watch.session.protocol)
        self._state_root = self._make_state_root()
        self._started_at = time.monotonic()
        for i, node in enumerate(self.nodes.values()):
            await self._start_node(node)
            if i % START_BATCH == START_BATCH - 1:
                await asyncio.sleep(0)

    def _make_state_root(self) -> Path:
        if self.settings.state_dir is not None:
            self.settings.state_dir.mkdir(parents=True, exist_ok=True)
            return self.settings.state_dir
        self._owns_state = True
        return temporary_state_root()

    async def _start_node(self, node: SimNode) -> None:
        assert self._state_root is not None
        agent = await node.boot(self.settings, self.broker, self._state_root)
        self.watch.expect(node.id, agent.session_no, agent.started_at)

    def running(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.state == "running"]

    def ready_count(self) -> int:
        """Running nodes whose current agent the broker has shown online and announced."""
        return len(self.watch.ready)

    async def wait_ready(self, timeout_s: float | None = None) -> float:
        """Wait until the broker has delivered every running node's online status and
        capabilities; returns seconds since :meth:`start`. Raises :class:`NotReady`."""
        timeout = timeout_s if timeout_s is not None else self.settings.ready_timeout()
        deadline = time.monotonic() + timeout
        running = len(self.running())
        while (ready := self.ready_count()) < running:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReady(
                    f"only {ready} of {running} simulated nodes came online "
                    f"within {timeout:g} s (broker {self.broker.redacted()}; is its "
                    "connection or file limit too low?)"
                )
            self.watch.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self.watch.changed.wait()
        return time.monotonic() - self._started_at

    async def stop(self) -> None:
        """Stop cleanly: each running agent publishes ``offline`` and disconnects."""
        for timer in list(self._timers):
            timer.cancel()
        for node in self.nodes.values():
            node.stop_flapping()
            node.stop.set()
        tasks = [n.task for n in self.nodes.values() if n.task is not None]
        # Agents stopped while connecting leave aiomqtt to log an ERROR per in-flight call
        # ("Unexpected message ID"): expected on the way out, so not shown.
        mqtt_log = logging.getLogger("edgefleet.session.paho")
        level = mqtt_log.level
        mqtt_log.setLevel(logging.CRITICAL)
        try:
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=HALT_TIMEOUT_S)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=5)
        finally:
            mqtt_log.setLevel(level)
        for node in self.nodes.values():
            if node.link is not None:
                await node.link.close()
            if node.state == "running":
                node.state = "stopped"
            node.task = None
        await asyncio.gather(*self._timers, return_exceptions=True)
        await self.watch.close()
        if self._owns_state and self._state_root is not None:
            shutil.rmtree(self._state_root, ignore_errors=True)
        if self._loop_handler is not None:
            loop, previous = self._loop_handler
            loop.set_exception_handler(previous)
            self._loop_handler = None

    # -- faults ---------------------------------------------------------------------------

    def _choose(self, n: int, nodes: Sequence[str], kind: str) -> list[SimNode]:
        if nodes:
            chosen = []
            for name in nodes:
                node = self.nodes.get(name)
                if node is None:
                    raise FaultError(f"{kind}: no simulated node {name!r}")
                if not node.faultable:
                    raise FaultError(f"{kind}: {name} connects directly (not faultable)")
                chosen.append(node)
            return chosen
        if n < 1:
            raise FaultError(f"{kind}: name nodes or a count of at least 1")
        pool = [node.id for node in self.nodes.values() if node.faultable and node.healthy]
        if n > len(pool):
            raise FaultError(f"{kind}: asked for {n} nodes, only {len(pool)} faultable ones "
                             "are up and untouched")  # fmt: skip
        return [self.nodes[name] for name in pick_nodes(pool, n, self._rng)]

    def _record(self, kind: str, nodes: Sequence[SimNode]) -> list[str]:
        names = [n.id for n in nodes]
        record = FaultRecord(kind, tuple(names), time.time())
        self.history.append(record)
        log.info("%s: %s", kind, ", ".join(names))
        if self.on_fault is not None:
            self.on_fault(record)
        return names

    async def kill(self, n: int = 0, *, nodes: Sequence[str] = ()) -> list[str]:
        """Nodes die: sockets closed at once (the broker publishes their wills), agents
        gone without a word. Returns the node ids."""
        chosen = [node for node in self._choose(n, nodes, "kill") if node.state == "running"]
        tasks = [task for node in chosen if (task := node.die()) is not None]
        for node in chosen:
            self.watch.forget(node.id)
        if tasks:
            await asyncio.wait(tasks, timeout=HALT_TIMEOUT_S)
        return self._record("kill", chosen)

    async def revive(self, n: int = 0, *, nodes: Sequence[str] = ()) -> list[str]:
        """Killed nodes boot again: a new agent session on the same local store."""
        if nodes:
            chosen = [self.nodes[name] for name in nodes if name in self.nodes]
        else:
            chosen = [node for node in self.nodes.values() if node.state == "killed"][: n or None]
        chosen = [node for node in chosen if node.state == "killed"]
        for node in chosen:
            await self._start_node(node)
        return self._record("revive", chosen)

    def cut(
        self, n: int = 0, *, nodes: Sequence[str] = (), for_s: float | None = None
    ) -> list[str]:
        """Links go silent (no close, no will until the keepalive expires); restored after
        ``for_s`` seconds when given."""
        chosen = [node for node in self._choose(n, nodes, "cut") if node.state == "running"]
        for node in chosen:
            assert node.link is not None
            node.link.down()
        names = self._record("cut", chosen)
        if for_s is not None:
            self._later(for_s, lambda: self.restore(names))
        return names

    def flap(
        self, n: int = 0, *, nodes: Sequence[str] = (), down_s: float, up_s: float
    ) -> list[str]:
        """Links go down for ``down_s`` and up for ``up_s``, over and over, until restored."""
        if down_s <= 0 or up_s <= 0:
            raise FaultError("flap: down and up must be > 0 seconds")
        chosen = [node for node in self._choose(n, nodes, "flap") if node.state == "running"]
        for node in chosen:
            node.start_flapping(down_s, up_s)
        return self._record("flap", chosen)

    def restore(self, nodes: Sequence[str] | None = None) -> list[str]:
        """Bring cut or flapping links back up (all of them when ``nodes`` is ``None``)."""
        names = list(self.nodes) if nodes is None else list(nodes)
        unknown = [name for name in names if name not in self.nodes]
        if unknown:
            raise FaultError(f"restore: no simulated node {unknown[0]!r}")
        restored = []
        for name in names:
            node = self.nodes[name]
            if node.link is None or node.state != "running":
                continue
            if node.flapping is None and node.link.state != "down":
                continue
            node.stop_flapping()
            node.link.up()
            restored.append(node)
        return self._record("restore", restored)

    def _later(self, delay_s: float, action: Callable[[], object]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            action()

        task = asyncio.create_task(run(), name="sim-fault-timer")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    def summary(self) -> dict[str, int]:
        nodes = list(self.nodes.values())
        return {
            "count": len(nodes),
            "running": sum(n.state == "running" for n in nodes),
            "ready": self.ready_count(),
            "killed": sum(n.state == "killed" for n in nodes),
            "cut": sum(
                n.link is not None and n.link.state == "down" and n.flapping is None for n in nodes
            ),
            "flapping": sum(n.flapping is not None for n in nodes),
            "faultable": sum(n.faultable for n in nodes),
        }
