"""Run protocol-level fake nodes (tests/harness/fleet.py) as a process of their own.

The CLI tests start this beside a real ``edgefleet orchestrator run``, so the CLI, the
orchestrator and the "agents" are three processes talking only through mosquitto, as in a
deployment. Usage::

    python tests/e2e/fake_fleet.py --broker mqtt://127.0.0.1:1883 --root R gw1:s1 gw2:s2

Prints ``ready`` once every node is connected and has announced itself, then serves until
SIGTERM or SIGINT, when each node publishes ``offline`` and disconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.fleet import FakeNode


async def main(broker: str, root: str, specs: list[str]) -> None:
    nodes = []
    for spec in specs:
        name, _, site = spec.partition(":")
        nodes.append(FakeNode(broker, root, name, site or "s1", labels={"role": "edge"}))
    for n in nodes:
        await n.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for n in nodes:
        await n.go_offline()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("nodes", nargs="+", help="node:site")
    args = parser.parse_args()
    asyncio.run(main(args.broker, args.root, args.nodes))
