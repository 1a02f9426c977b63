"""``make demo``: a whole edgefleet on one machine that has only Python, in about a minute.

``python -m edgefleet_orchestrator.demo`` starts a broker (mosquitto when it is on PATH,
else the embedded amqtt broker), the orchestrator, a camera hub to probe, and twelve real
``edgefleet-agent`` processes on three sites (see :mod:`demo_fleet`). Then it tells a story
through the public MQTT API only, timing each step: deploy the examples and watch the fleet
converge; kill a gateway's agent with SIGKILL and watch its will mark it offline and its
replicas move after the disconnect grace; restart it and watch it drop what moved away;
scale an app past what the fleet can hold and show why the rest cannot be placed. It prints
a summary, deletes the apps, and stops every process it started — also on Ctrl-C or SIGTERM.

Environment: ``DEMO_KEEP=1`` leaves the fleet running after the story and prints the CLI
commands to explore it (stop it with ``kill <pid>`` or Ctrl-C, which cleans up);
``EDGEFLEET_DEMO_BROKER=auto|mosquitto|embedded`` picks the broker.

Exit codes: 0 the story ran, 1 a step failed (the relevant log tails are printed),
130 interrupted before the story finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet_protocol.topics import DEFAULT_ROOT

from edgefleet_orchestrator.demo_client import DemoStepFailed, FleetWatch
from edgefleet_orchestrator.demo_fleet import (
    DEMO_APPS,
    DEMO_FLEET,
    MOVING_APP,
    SCALE_TO,
    SLOW_GRACE_APPS,
    DemoNode,
    agent_argv,
    pick_victim,
)
from edgefleet_orchestrator.demo_procs import BrokerInfo, ProcessBook, start_broker, sweep_leftovers
from edgefleet_orchestrator.demo_report import Step, print_keep_help, print_placement, print_summary
from edgefleet_orchestrator.demo_view import (
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
from edgefleet_orchestrator.embedded_broker import LOOPBACK

REPO = Path(__file__).resolve().parents[2]
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
        "from edgefleet_orchestrator.cli import main; main()",
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


# -- teardown ------------------------------------------------------------------------------


async def delete_apps(demo: Demo) -> None:
    """Delete every app and wait until no live gateway runs a workload, so agents can stop
    without leaving workloads behind (the process runtime keeps them through a stop)."""
    watch = demo.watch
    orchestrator = demo.book.children.get("orchestrator")
    if watch is None or orchestrator is None or not orchestrator.alive():
        return
    t = time.monotonic()
    for app in sorted(watch.view.apps):
        with contextlib.suppress(DemoStepFailed):
            await watch.call("delete", app=app, timeout_s=10)
    children = demo.book.children
    agents = {
        n.node
        for n in DEMO_FLEET
        if (child := children.get(demo.agent_name(n))) is not None and child.alive()
    }

    def stopped(view: FleetView) -> bool:
        return not view.apps and all(not running_on(view, node) for node in agents)

    with contextlib.suppress(DemoStepFailed):
        took = await watch.until(stopped, timeout_s=30, what="workloads stopped", say=demo.say)
        demo.say(f"deleted every app; all workloads stopped in {took:.1f} s")
    demo.step("delete apps -> all workloads stopped", time.monotonic() - t)


def stop_everything(demo: Demo) -> list[str]:
    """Stop agents, sweep workloads, stop orchestrator and broker; what had to be swept."""
    book = demo.book
    state_dirs = [demo.state_dir(n) for n in DEMO_FLEET]
    book.stop(book.names("agent"))
    spare = [child.pid for child in book.alive()]
    swept = sweep_leftovers(demo.workdir, state_dirs, spare=spare)
    book.stop(book.names("orchestrator"))
    book.stop(book.names("broker"))
    book.kill_all()
    return swept + sweep_leftovers(demo.workdir, state_dirs)


async def run(demo: Demo) -> int:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    interrupts = 0
    story_task = asyncio.create_task(story(demo), name="demo-story")
    teardown: asyncio.Task[None] | None = None

    def on_signal() -> None:
        nonlocal interrupts
        interrupts += 1
        if not story_task.done():
            story_task.cancel()
        elif teardown is not None and interrupts > 1:
            teardown.cancel()  # a second Ctrl-C: skip the polite part

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    code = 0
    try:
        await story_task
    except asyncio.CancelledError:
        code = 0 if demo.keep and len(demo.steps) >= 6 else 130
        demo.say("stopping (signal received) ...")
    except DemoStepFailed as exc:
        code = 1
        demo.say(f"demo step failed: {exc}")
        for child in demo.book.children.values():
            if child.role != "agent" or not child.alive():
                demo.say(f"--- last lines of {child.name} ({child.log_path}) ---")
                print(child.log_tail(), flush=True)
    teardown = asyncio.create_task(delete_apps(demo), name="demo-teardown")
    with contextlib.suppress(asyncio.CancelledError):
        await teardown
    if demo.watch is not None:
        with contextlib.suppress(Exception):
            await demo.watch.__aexit__(None, None, None)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)
    return code


def main() -> int:
    keep = os.environ.get("DEMO_KEEP", "").lower() in ("1", "true", "yes")
    choice = os.environ.get("EDGEFLEET_DEMO_BROKER", "auto").lower()
    if choice not in ("auto", "mosquitto", "embedded"):
        print("EDGEFLEET_DEMO_BROKER must be auto, mosquitto or embedded", file=sys.stderr)
        return 2
    if not (REPO / "examples").is_dir() or not (REPO / "device-profiles").is_dir():
        print(f"the demo runs from a source checkout; {REPO} has no examples/", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="edgefleet-demo-"))
    demo = Demo(workdir=workdir, book=ProcessBook(workdir), keep=keep, broker_choice=choice)
    demo.say(f"edgefleet demo (work dir {workdir}; pid {os.getpid()})")
    code = 1
    try:
        code = asyncio.run(run(demo))
    except KeyboardInterrupt:
        code = 130
    finally:
        t = time.monotonic()
        with _ignoring_signals():
            swept = stop_everything(demo)
        left = [child.name for child in demo.book.alive()]
        demo.say(
            f"stopped all {demo.book.started} processes the demo started "
            f"({len(swept)} leftover workload(s) swept) in {time.monotonic() - t:.1f} s"
        )
        for line in swept:
            demo.say(f"  swept: {line}")
        if left:
            demo.say(f"could not stop: {', '.join(left)}")
            code = code or 1
        shutil.rmtree(workdir, ignore_errors=True)
    return code


@contextlib.contextmanager
def _ignoring_signals() -> Iterator[None]:
    """The final cleanup must not be cut short by another Ctrl-C."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
