"""The story ``make demo`` tells, step by step, each one timed.

Who calls it: :mod:`edgefleet_orchestrator.demo.main` (which owns signals and the teardown).
Every step acts only through the public surface — processes it starts, the MQTT command
API, the retained status topics — and waits on the fleet view with a deadline, so a step
that does not happen fails the demo with a message instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_orchestrator.demo.client import DemoStepFailed, FleetWatch
from edgefleet_orchestrator.demo.embedded_broker import LOOPBACK
from edgefleet_orchestrator.demo.fleet import (
    DEMO_APPS,
    DEMO_FLEET,
    MOVING_APP,
    SCALE_TO,
    SLOW_GRACE_APPS,
    DemoNode,
    agent_argv,
    pick_victim,
)
from edgefleet_orchestrator.demo.procs import BrokerInfo, ProcessBook, start_broker
from edgefleet_orchestrator.demo.report import Step, print_keep_help, print_placement, print_summary
from edgefleet_orchestrator.demo.view import (
    FleetView,
    all_healthy,
    apps_by_node,
    node_converged,
    online,
    progress_line,
    replica_nodes,
    running_on,
    unplaced_reasons,
)

REPO = Path(__file__).resolve().parents[3]
APP_NAMES = [name for _, name in DEMO_APPS]


@dataclass
class Demo:
    """Everything the story and the teardown share."""

    workdir: Path
    book: ProcessBook
    keep: bool
    broker_choice: str
    started: float = field(default_factory=time.monotonic)
    steps: list[Step] = field(default_factory=list)
    broker: BrokerInfo | None = None
    watch: FleetWatch | None = None
    camera_hub: tuple[str, int] | None = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def step(self, label: str, seconds: float, note: str = "") -> None:
        self.steps.append(Step(label, seconds, note))

    def state_dir(self, node: DemoNode) -> Path:
        return self.workdir / "agents" / node.node

    def agent_name(self, node: DemoNode) -> str:
        return f"agent-{node.node}"

    def spawn_agent(self, node: DemoNode) -> None:
        assert self.broker is not None
        state_dir = self.state_dir(node)
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = agent_argv(
            node,
            python=sys.executable,
            broker_url=self.broker.url,
            state_dir=state_dir,
            profiles_dir=REPO / "device-profiles",
            camera_hub=self.camera_hub,
        )
        # Working directory = state dir: workloads inherit it (their heartbeat files land
        # there, and the leftover sweep can recognise them by it).
        self.book.spawn(self.agent_name(node), "agent", argv, cwd=state_dir)


def progress(view: FleetView) -> str:
    return "  " + progress_line(view, APP_NAMES, len(DEMO_FLEET))


async def serve_camera_hub() -> tuple[asyncio.Server, tuple[str, int]]:
    """The TCP endpoint the plants' agents probe as ``camera-hub``: it accepts and closes."""

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(accept, LOOPBACK, 0)
    port: int = server.sockets[0].getsockname()[1]
    return server, (LOOPBACK, port)


# -- the story ---------------------------------------------------------------------------------


async def start_fleet(demo: Demo) -> FleetWatch:
    t = time.monotonic()
    demo.broker = start_broker(demo.book, sys.executable, prefer=demo.broker_choice)
    demo.say(f"broker: {demo.broker.description} on {demo.broker.url}")
    orchestrator = [
        sys.executable,
        "-c",
        "from edgefleet_cli.main import main; main()",
        "orchestrator",
        "run",
        "--broker",
        demo.broker.url,
        "--data-dir",
        str(demo.workdir / "orchestrator"),
        "--stale-after",
        "30",
        "--tick",
        "0.5",
        "--log-level",
        "WARNING",
    ]
    demo.book.spawn("orchestrator", "orchestrator", orchestrator)
    watch = FleetWatch(demo.broker.url, DEFAULT_ROOT)
    await watch.__aenter__()
    demo.watch = watch
    await watch.call("nodes", timeout_s=60)  # answered: the orchestrator is serving
    demo.step("broker + orchestrator up", time.monotonic() - t, demo.broker.kind)
    demo.say("orchestrator is answering commands")

    t = time.monotonic()
    sites = sorted({n.site for n in DEMO_FLEET})
    demo.say(f"starting {len(DEMO_FLEET)} agents on sites {', '.join(sites)} ...")
    for node in DEMO_FLEET:
        demo.spawn_agent(node)
    took = await watch.until(
        lambda v: len(online(v)) == len(DEMO_FLEET),
        timeout_s=120,
        what=f"{len(DEMO_FLEET)} gateways online",
        progress=lambda v: f"  nodes {len(online(v))}/{len(DEMO_FLEET)} online",
        say=demo.say,
    )
    demo.step(f"{len(DEMO_FLEET)} agents started, all online", took)
    return watch


async def deploy_and_converge(demo: Demo, watch: FleetWatch) -> None:
    t = time.monotonic()
    for path, _ in DEMO_APPS:
        result = await watch.call("deploy", manifest=(REPO / path).read_text())
        demo.say(
            f"deploy {path}: {result.get('action', 'ok') if isinstance(result, dict) else 'ok'}"
        )
    await watch.until(
        lambda v: all_healthy(v, APP_NAMES),
        timeout_s=120,
        what="every app healthy",
        progress=progress,
        say=demo.say,
    )
    replicas = sum(s.desired for s in watch.view.apps.values())
    demo.step(
        "deploy 4 apps -> every replica running", time.monotonic() - t, f"{replicas} replicas"
    )
    print_placement(watch.view, APP_NAMES)


async def kill_and_reschedule(demo: Demo, watch: FleetWatch) -> DemoNode:
    name = pick_victim(apps_by_node(watch.view), moving_app=MOVING_APP, avoid=SLOW_GRACE_APPS)
    if name is None:
        raise DemoStepFailed(f"no node runs {MOVING_APP}")
    victim = next(n for n in DEMO_FLEET if n.node == name)
    hosted = sorted(running_on(watch.view, name))
    demo.say(f"kill -9 the agent of {name} (runs {', '.join(hosted)})")
    t = time.monotonic()
    demo.book.crash(demo.agent_name(victim))
    offline_after = await watch.until(
        lambda v: v.nodes.get(name) is not None and v.nodes[name].state == "offline",
        timeout_s=30,
        what=f"{name} offline",
        say=demo.say,
        since=t,
    )
    demo.say(f"{name} is offline (its will, published by the broker)")
    demo.step(f"kill -9 {name} -> seen offline", offline_after, "the agent's will")
    replicated = [app for app in APP_NAMES if app != "log-shipper"]

    def moved(view: FleetView) -> bool:
        return all_healthy(view, replicated) and all(
            name not in replica_nodes(view, app).values() for app in replicated
        )

    took = await watch.until(
        moved, timeout_s=90, what="replicas rescheduled", progress=progress, say=demo.say, since=t
    )
    demo.step(f"kill -9 {name} -> replicas running elsewhere", took, "5 s grace included")
    return victim


async def rejoin(demo: Demo, watch: FleetWatch, victim: DemoNode) -> None:
    name = victim.node
    before = watch.view.nodes[name].session
    leftovers = sorted(running_on(watch.view, name))
    demo.say(f"restart the agent of {name}: it still runs {', '.join(leftovers) or 'nothing'}")
    t = time.monotonic()
    demo.spawn_agent(victim)

    def back(view: FleetView) -> bool:
        # Back with a new session, running exactly its desired workloads, and every app
        # whole again (the daemon log-shipper returns to a node that returns).
        status = view.nodes.get(name)
        if status is None or status.session <= before:
            return False
        return node_converged(view, name) and all_healthy(view, APP_NAMES)

    took = await watch.until(
        back,
        timeout_s=60,
        what=f"{name} back and converged",
        progress=progress,
        say=demo.say,
        since=t,
    )
    now = sorted(running_on(watch.view, name))
    dropped = sorted(set(leftovers) - set(now))
    demo.say(f"{name} is back: dropped {', '.join(dropped) or 'nothing'}; runs {', '.join(now)}")
    demo.step(f"restart {name} -> what moved away stopped", took, f"{len(dropped)} stopped")


async def scale(demo: Demo, watch: FleetWatch) -> None:
    demo.say(f"scale {MOVING_APP} to {SCALE_TO} (more than the gateways that qualify)")
    t = time.monotonic()
    await watch.call("scale", app=MOVING_APP, replicas=SCALE_TO)

    def settled(view: FleetView) -> bool:
        status = view.apps.get(MOVING_APP)
        if status is None or status.desired != SCALE_TO:
            return False
        missing = sum(u.count for u in status.unplaced)
        return status.placed + missing == SCALE_TO and status.running == status.placed

    took = await watch.until(
        settled,
        timeout_s=60,
        what=f"{MOVING_APP} scaled",
        progress=progress,
        say=demo.say,
        since=t,
    )
    status = watch.view.apps[MOVING_APP]
    demo.step(
        f"scale {MOVING_APP} 3 -> {SCALE_TO}",
        took,
        f"{status.running} running, {SCALE_TO - status.placed} unplaced",
    )
    for reason in unplaced_reasons(watch.view, MOVING_APP):
        demo.say(f"  unplaced because: {reason}")


async def story(demo: Demo) -> None:
    server, demo.camera_hub = await serve_camera_hub()
    try:
        watch = await start_fleet(demo)
        await deploy_and_converge(demo, watch)
        victim = await kill_and_reschedule(demo, watch)
        await rejoin(demo, watch, victim)
        await scale(demo, watch)
        print_placement(watch.view, APP_NAMES)
        print_summary(demo.steps, watch.view, time.monotonic() - demo.started)
        if demo.keep:
            assert demo.broker is not None
            print_keep_help(demo.broker.url, os.getpid(), demo.workdir)
            await asyncio.Event().wait()  # until a signal cancels us
    finally:
        server.close()
