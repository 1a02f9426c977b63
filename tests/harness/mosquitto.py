"""Start a real mosquitto on a free loopback port with a generated config.

Used by the broker-tier fixtures and by the benchmarks. Each broker gets its own temp dir
(config, log, persistence), and is stopped (SIGTERM, then SIGKILL) when done.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.processes import stop_gracefully


class MissingTool(RuntimeError):
    """A binary the tier needs is not installed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if found is None:
        raise MissingTool("mosquitto is not installed (apt-get install mosquitto)")
    return found


def dev_config(port: int, workdir: Path) -> str:
    """The development config of broker-config/, on a chosen port, loopback only."""
    return "\n".join(
        [
            "per_listener_settings false",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 100000",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            "",
        ]
    )


@dataclass
class Mosquitto:
    """A running broker. ``url`` is what clients connect to."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    workdir: Path
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop_gracefully(self.process, timeout_s=5)

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a broker crash would look to clients."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def start_mosquitto(
    workdir: Path,
    *,
    config: str | None = None,
    port: int | None = None,
    tls: bool = False,
    wait_port: int | None = None,
) -> Mosquitto:
    """Start mosquitto with ``config`` (default: the dev config) and wait until it listens."""
    binary = mosquitto_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(config if config is not None else dev_config(port, workdir))
    with open(workdir / "stderr.log", "wb") as err:  # the child keeps its own copy of the fd
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err)
    listen = wait_port or port
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = (workdir / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"mosquitto exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", listen), timeout=0.2):
                return Mosquitto(proc, "127.0.0.1", listen, workdir, tls=tls)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"mosquitto did not listen on {listen} within 10 s")
