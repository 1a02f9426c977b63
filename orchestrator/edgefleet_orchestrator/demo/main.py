"""``make demo``: a whole edgefleet on one machine that has only Python, in about a minute.

``python -m edgefleet_orchestrator.demo`` starts a broker (mosquitto when it is on PATH,
else the embedded amqtt broker), the orchestrator, a camera hub to probe, and twelve real
``edgefleet-agent`` processes on three sites (see
:mod:`~edgefleet_orchestrator.demo.fleet`). Then it tells a story through the public MQTT
API only, timing each step: deploy the examples and watch the fleet converge; kill a
gateway's agent with SIGKILL and watch its will mark it offline and its replicas move after
the disconnect grace; restart it and watch it drop what moved away; scale an app past what
the fleet can hold and show why the rest cannot be placed. It prints a summary, deletes the
apps, and stops every process it started — also on Ctrl-C or SIGTERM.

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
from pathlib import Path

from edgefleet_orchestrator.demo.client import DemoStepFailed
from edgefleet_orchestrator.demo.fleet import DEMO_FLEET
from edgefleet_orchestrator.demo.procs import ProcessBook, sweep_leftovers
from edgefleet_orchestrator.demo.story import REPO, Demo, story
from edgefleet_orchestrator.demo.view import FleetView, running_on

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
