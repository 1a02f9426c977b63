"""A site broker bridged to a central one, as ``edgefleet broker config --bridge`` writes it.

The site broker runs the chaos harness's persistent loopback config plus the generated
bridge block and ``topic`` lines (:func:`bridge_block`), with the TLS and credential lines
removed (plain loopback here; ``tests/integration/test_broker_configs.py`` runs the TLS
bridge from a generated set). The bridge goes through a :class:`~harness.proxy.Proxy`,
which counts its bytes and can cut it. Used by ``tests/integration/test_site_bridge.py``
and ``bench/bridge_idle.py``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from edgefleet_cli.brokerconfig.bridgeconf import BRIDGE_CONNECTION, render_site_conf

from harness.chaos import AGENT_FAST, BIN, persistent_config
from harness.mosquitto import Mosquitto, free_port, start_mosquitto
from harness.proxy import Proxy

DROPPED = (  # the generated lines a plain loopback bridge does without
    "remote_username", "remote_password", "bridge_cafile", "bridge_certfile",
    "bridge_keyfile", "bridge_insecure", "address",
)  # fmt: skip
FASTER = ("restart_timeout", "keepalive_interval")  # test timings replace these


def bridge_block(site: str, root: str, upstream_port: int, *, fast: bool = True) -> str:
    """The generated site config's bridge part, pointed at ``upstream_port`` in clear;
    ``fast``: reconnect within 1-2 s and a 5 s keepalive instead of the generated timings."""
    text = render_site_conf(site, central="unused:1", password="unused", root=root)
    lines = text.splitlines()
    block = lines[lines.index(f"connection {BRIDGE_CONNECTION}") :]
    dropped = DROPPED + FASTER if fast else DROPPED
    kept = [line for line in block if line.split(" ", 1)[0] not in dropped]
    kept[1:1] = [f"address 127.0.0.1:{upstream_port}"]
    if fast:
        kept[2:2] = ["restart_timeout 1 2", "keepalive_interval 5"]
    return "\n".join(kept) + "\n"


@dataclass
class Site:
    name: str
    workdir: Path
    root: str
    central_port: int
    port: int = field(default_factory=free_port)
    fast: bool = True
    proxy: Proxy | None = None
    broker: Mosquitto | None = None

    async def start_bridge(self) -> None:
        self.proxy = Proxy(self.central_port)
        await self.proxy.start()

    def start_broker(self) -> None:
        assert self.proxy is not None
        work = self.workdir / self.name
        config = persistent_config(self.port, work) + bridge_block(
            self.name, self.root, self.proxy.port, fast=self.fast
        )
        self.broker = start_mosquitto(work, config=config, port=self.port)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@dataclass
class SiteAgent:
    """A real agent (process runtime) connected to its site broker only."""

    node: str
    site: Site
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    timings: tuple[str, ...] = tuple(AGENT_FAST)
    """Agent options after the identity: the chaos suite's fast timings by default."""

    def start(self) -> None:
        self.starts += 1
        state = self.site.workdir / self.node / "state"
        state.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        log = self.site.workdir / f"{self.node}-agent-{self.starts}.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(BIN / "edgefleet-agent"),
                    "run",
                    "--node",
                    self.node,
                    "--site",
                    self.site.name,
                    "--broker",
                    self.site.url,
                    "--root",
                    self.site.root,
                    "--state-dir",
                    str(state),
                    "--runtime",
                    "process",
                    *self.timings,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
