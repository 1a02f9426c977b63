"""``edgefleet-agent simulate``: a fleet of real agents in one process, with scheduled and
interactive faults.

    edgefleet-agent simulate --count 1000 --sites 10 --profiles device-profiles \\
        --broker mqtt://127.0.0.1:1883 --seed 7 --kill 5@30 --cut 5@60+20 --control

Settings are checked before anything starts (exit 2 and one line naming the setting: a
count or sites out of range, an unknown profile, an unreadable profiles directory, a fleet
the file-descriptor limit cannot hold, a malformed fault). Then the fleet starts, and
stdout carries one JSON object per line, for people and for benchmark scripts:

* ``{"ready": N, "connect_s": 1.9, "fleet": "simulator", "faultable": K}`` once the broker
  has delivered every node's online status and capabilities;
* ``{"fault": "kill", "nodes": [...], "t": 30.0}`` for every fault applied (``t`` counts
  from ready; the timed end of a ``cut ... +D`` is a ``restore`` line), and one line per
  ``--control`` command (its fault line, ``{"status": ...}`` or ``{"error": ...}``);
* ``{"stopped": N}`` after a clean stop (SIGTERM, SIGINT or the ``stop`` command).

A fleet that does not come online within ``--ready-timeout-s`` (a broker that cannot be
reached or refuses connections) ends with a message on stderr and exit code 1, never with a
ready line. This module only wires the command line; :mod:`~edgefleet_agent.simulate.fleet`
is the API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from edgefleet_agent.settings import SettingsError

if TYPE_CHECKING:
    from edgefleet_agent.simulate.control import Command
    from edgefleet_agent.simulate.fleet import Fleet
    from edgefleet_agent.simulate.settings import FaultSpec, SimulateSettings

EXIT_BAD_SETTINGS = 2
EXIT_NOT_READY = 1

OPTIONS: dict[str, tuple[str, str]] = {
    "count": ("N", "how many simulated gateways (required)"),
    "sites": ("S", "spread over sites site-0..S-1, round-robin (required)"),
    "profiles_dir": ("DIR", "device profiles directory (default: the repo's device-profiles/)"),
    "seed": ("N", "seed of every draw: profiles, links, loads, fault victims (default 0)"),
    "broker": ("URL", "broker URL (default mqtt://127.0.0.1:1883)"),
    "root": ("ROOT", "topic root (default edgefleet/v1)"),
    "state_dir": ("DIR", "keep each node's store in DIR/<node> (default: a temp dir, removed)"),
    "prefix": ("ID", "node ids are <prefix>-site-<s>-<i> (default sim)"),
    "assign": ("HOW", "profiles per node: round-robin (default) or random (seeded)"),
    "start_delay_s": ("S", "simulated runtime: seconds a workload spends starting (default 0)"),
    "failure_rate": ("P", "simulated runtime: probability a start fails, 0-1 (default 0)"),
    "heartbeat_s": ("S", "full telemetry period, jittered +-10%% per node (default 60)"),
    "keepalive_s": ("S", "MQTT keepalive; a silent cut is noticed after 1.5x (default 60)"),
    "sample_interval_s": ("S", "telemetry sampling period (default 10)"),
    "reconcile_interval_s": ("S", "idle converge pass period (default 30)"),
    "capabilities_interval_s": ("S", "capabilities re-check period (default 300)"),
    "faultable": (
        "N|all",
        "nodes on fault-injecting links (default: none; with --control "
        "or fault flags, all the fd limit allows)",
    ),
    "ready_timeout_s": ("S", "give up when not all online by then (default 30 + 0.01 x N)"),
    "log_level": ("LEVEL", "debug, info, warning (default) or error, to stderr"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (metavar, text) in OPTIONS.items():
        flag = "--profiles" if name == "profiles_dir" else "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, metavar=metavar, help=text)
    listed = {
        "--profile": ("profile_weights", "ID[=WEIGHT]", "use only these profiles, weighted"),
        "--probe": ("probes", "NAME", "simulated latency probe targets (default camera-hub)"),
    }
    for flag, (dest, metavar, text) in listed.items():
        parser.add_argument(flag, dest=dest, action="append", metavar=metavar,
                            help=f"{text} (repeatable)")  # fmt: skip
    faults = {
        "kill": "N@T: kill N nodes T s after ready (the broker publishes their wills)",
        "cut": "N@T[+D]: silence N links at T s (for D s); wills at keepalive expiry",
        "flap": "N@T:DOWN/UP: N links go down DOWN s and up UP s, repeatedly, from T s",
    }
    for name, text in faults.items():
        parser.add_argument(f"--{name}", action="append", metavar="SPEC", help=text)
    parser.add_argument("--control", action="store_true",
                        help="read commands from stdin (kill, cut, flap, restore, revive, "
                        "status, stop)")  # fmt: skip


def emit(body: dict[str, Any]) -> None:
    print(json.dumps(body, separators=(",", ":")), flush=True)


def main_simulate(args: argparse.Namespace) -> int:
    from edgefleet_agent.simulate.fleet import Fleet
    from edgefleet_agent.simulate.settings import resolve_simulate_settings

    try:
        settings = resolve_simulate_settings(vars(args))
        fleet = Fleet(settings)
    except SettingsError as exc:
        print(f"edgefleet-agent simulate: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    # Not loop.add_signal_handler: it delivers the signal through the loop's self-pipe,
    # which thousands of connecting agents can fill (each connect wakes the loop from an
    # executor thread), and a full pipe drops the signal. A plain handler always runs.
    previous = {
        signum: signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        return loop.run_until_complete(serve(fleet, settings, stop, control=args.control))
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def serve(
    fleet: Fleet, settings: SimulateSettings, stop: asyncio.Event, *, control: bool
) -> int:
    from edgefleet_agent.simulate.fleet import NotReady
    from edgefleet_agent.simulate.limits import keep_heap, settle_heap

    async def bring_up() -> float:
        await fleet.start()
        return await fleet.wait_ready()

    # A signal during a long start (minutes for 10,000 agents) stops at once.
    up = asyncio.create_task(bring_up())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({up, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not up.done():
        up.cancel()
        await asyncio.gather(up, return_exceptions=True)
        await fleet.stop()
        emit({"stopped": len(fleet.nodes)})
        return 0
    try:
        connect_s = up.result()
    except NotReady as exc:
        print(f"edgefleet-agent simulate: {exc}", file=sys.stderr)
        await fleet.stop()
        return EXIT_NOT_READY
    # The fleet is up: its long-lived objects leave the collector's walk (this process
    # is the fleet's own; a test that runs a Fleet in its process keeps its heap as it is).
    settle_heap()
    emit({"ready": len(fleet.running()), "connect_s": round(connect_s, 3),
          "fleet": "simulator", "faultable": fleet.faultable})  # fmt: skip
    ready_at = time.monotonic()

    def since_ready() -> float:
        return round(time.monotonic() - ready_at, 3)

    fleet.on_fault = lambda record: emit(
        {"fault": record.kind, "nodes": list(record.nodes), "t": since_ready()}
    )
    tasks = [asyncio.create_task(scheduled(fleet, spec, ready_at)) for spec in settings.faults]
    tasks.append(asyncio.create_task(keep_heap(), name="keep-heap"))
    if control:
        tasks.append(asyncio.create_task(read_commands(fleet, stop, ready_at)))
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fleet.stop()
    emit({"stopped": len(fleet.nodes)})
    return 0


async def scheduled(fleet: Fleet, spec: FaultSpec, ready_at: float) -> None:
    from edgefleet_agent.simulate.fleet import FaultError

    await asyncio.sleep(max(0.0, ready_at + spec.at_s - time.monotonic()))
    try:  # the fleet's on_fault hook reports what was applied
        match spec.kind:
            case "kill":
                await fleet.kill(spec.count)
            case "cut":
                fleet.cut(spec.count, for_s=spec.for_s)
            case "flap":
                fleet.flap(spec.count, down_s=spec.down_s, up_s=spec.up_s)
    except FaultError as exc:
        emit({"error": str(exc), "t": round(time.monotonic() - ready_at, 3)})


async def read_commands(fleet: Fleet, stop: asyncio.Event, ready_at: float) -> None:
    """Answer one JSON line per command on stdin; end of input just ends the reading."""
    from edgefleet_agent.simulate.control import CommandError, parse_command
    from edgefleet_agent.simulate.fleet import FaultError

    async for line in stdin_lines():
        try:
            command = parse_command(line)
            if command is None:
                continue
            answer = await apply_command(fleet, command, stop)
        except (CommandError, FaultError) as exc:
            answer = {"error": str(exc)}
        if answer is not None:
            answer["t"] = round(time.monotonic() - ready_at, 3)
            emit(answer)


async def apply_command(
    fleet: Fleet, command: Command, stop: asyncio.Event
) -> dict[str, Any] | None:
    """Apply one command; a fault is answered by the fleet's ``on_fault`` line, anything
    else by the returned object."""
    c = command
    match c.verb:
        case "kill":
            await fleet.kill(c.count, nodes=c.nodes)
        case "cut":
            fleet.cut(c.count, nodes=c.nodes, for_s=c.for_s)
        case "flap":
            fleet.flap(c.count, nodes=c.nodes, down_s=c.down_s, up_s=c.up_s)
        case "restore":
            fleet.restore(list(c.nodes) or None)
        case "revive":
            await fleet.revive(c.count, nodes=c.nodes)
        case "status":
            return {"status": fleet.summary()}
        case "stop":
            stop.set()
            return {"stopping": True}
    return None


async def stdin_lines() -> Any:
    """Lines of stdin without blocking the loop (a pipe or terminal; a file is read whole)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # a regular file cannot be watched by the loop
        for line in sys.stdin.read().splitlines():
            yield line
        return
    while line := await reader.readline():
        yield line.decode(errors="replace")
