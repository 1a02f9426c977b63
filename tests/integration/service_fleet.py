"""Shared pieces for the service-discovery tests (this module holds no tests itself).

A fleet of REAL agents (process runtime) on one machine: each gateway advertises its own
loopback address (127.0.0.N), so replicas of one service can share a port number as they
would on separate gateways. The provider workload is a Python ``http.server`` answering
every GET with a 1 KiB body that starts with its replica name; :func:`hammer` is an HTTP
client that records which replica answered each request, and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from test_agent_harness import AgentProcess

PY = sys.executable

SERVER = """
import os, sys, http.server
name = os.environ["EDGEFLEET_WORKLOAD"].encode()
body = name + b" " * (1024 - len(name))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.request_queue_size = 256
where = (os.environ["EDGEFLEET_ADDRESS"], int(os.environ["PORT"]))
http.server.ThreadingHTTPServer(where, H).serve_forever()
"""

CHECK = (
    "import os, socket; "
    "where = (os.environ['EDGEFLEET_ADDRESS'], int(os.environ['PORT'])); "
    "socket.create_connection(where, 1).close()"
)

CONSUMER = """
import json, os, sys, time
env = {k: v for k, v in os.environ.items() if k.startswith("EDGEFLEET_")}
with open(os.environ["OUT"], "w") as f:
    json.dump(env, f)
time.sleep(1e6)
"""


def token() -> str:
    return f"tok-{uuid.uuid4().hex[:10]}"


def server_app(name: str, port: int, tag: str, **extra: Any) -> dict[str, Any]:
    """A manifest whose replicas serve HTTP on ``port`` at their node's address."""
    workload = {
        "runtime": "process",
        "command": [PY, "-c", SERVER, tag],
        "env": {"PORT": str(port)},
        "restart": "never",
        "stop_timeout_s": 2,
        # RLIMIT_AS counts each thread's 8 MiB stack: room for 16 concurrent requests.
        "resources": {"cpu": 0.1, "memory_mb": 1024},
        "health": {"kind": "exec", "command": [PY, "-c", CHECK], "interval_s": 0.5,
                   "timeout_s": 2, "failure_threshold": 1},
    }  # fmt: skip
    return {"name": name, "workload": workload,
            "service": {"ports": [{"name": "http", "port": port}]}, **extra}  # fmt: skip


def consumer_app(name: str, out: Path, tag: str, uses: list[str], site: str) -> dict[str, Any]:
    workload = {"runtime": "process", "command": [PY, "-c", CONSUMER, tag],
                "env": {"OUT": str(out)}, "stop_timeout_s": 1}  # fmt: skip
    return {"name": name, "replicas": 1, "workload": workload, "uses": uses,
            "placement": {"sites": [site]}}  # fmt: skip


def kill_tagged(tag: str, workload: str | None = None) -> list[int]:
    """SIGKILL the workload processes started with ``tag`` (one replica, or all), and return
    once they are dead.

    ``os.kill`` returns before the kernel has torn the process down; until it has, its
    listening socket still completes handshakes into the backlog, and those connections
    are reset when it finally exits. A request that lands there is in flight on the dying
    replica, so "after the kill" means after the process is gone: exited, or a zombie with
    no thread left. A multithreaded server's leader shows as a zombie while its other
    threads are still being torn down, and they hold the listening socket until the last
    one is gone (a CI run saw two requests reset 15 ms after a zombie-only wait).
    """
    victims: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if tag not in cmd:
            continue
        with contextlib.suppress(psutil.Error):
            if workload is None or proc.environ().get("EDGEFLEET_WORKLOAD") == workload:
                os.kill(proc.pid, signal.SIGKILL)
                victims.append(proc)
    deadline = time.monotonic() + 10.0
    for proc in victims:
        while time.monotonic() < deadline:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE and _threads_left(proc.pid) <= 1:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.001)
        else:
            raise AssertionError(f"pid {proc.pid} still alive 10 s after SIGKILL")
    return [p.pid for p in victims]


def _threads_left(pid: int) -> int:
    """Threads of ``pid`` not yet gone (its leader included, even as a zombie); 0 once the
    process is reaped."""
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


@dataclass
class Load:
    """Which replica answered each request, when (monotonic), and what failed."""

    served: list[tuple[float, str]] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    """(when the request began, what went wrong)."""

    def counts(self, since: float = 0.0) -> Counter[str]:
        return Counter(r for t, r in self.served if t >= since)

    def failed_after(self, moment: float) -> list[tuple[float, str]]:
        """Failures of requests that began after ``moment``: a replica killed mid-response
        takes the requests it was answering with it (no L4 proxy can replay those), but
        every request that begins later must succeed."""
        return [f for f in self.failures if f[0] > moment]


async def get(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: edge\r\n\r\n")
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") or len(body) != 1024:
        raise ValueError(f"bad response: {data[:80]!r}")
    return body.split(b" ", 1)[0].decode()


async def hammer(
    port: int,
    *,
    requests: int | None = None,
    until: asyncio.Event | None = None,
    concurrency: int = 16,
    load: Load | None = None,
    pace_s: float = 0.0,
) -> Load:
    """``requests`` GETs (or until ``until`` is set) through ``port``, 16 at a time."""
    load = load or Load()
    left = [requests if requests is not None else 1 << 62]

    async def worker() -> None:
        while left[0] > 0 and not (until is not None and until.is_set()):
            left[0] -= 1
            begun = time.monotonic()
            try:
                async with asyncio.timeout(10):
                    replica = await get(port)
                load.served.append((time.monotonic(), replica))
            except Exception as exc:
                load.failures.append((begun, repr(exc)))
            if pace_s:
                await asyncio.sleep(pace_s)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return load


def agent(tmp: Path, url: str, root: str, node: str, site: str, address: str,
          *extra: str) -> AgentProcess:  # fmt: skip
    (tmp / node).mkdir(parents=True, exist_ok=True)
    return AgentProcess(
        tmp / node / "state", url, root, node=node, site=site, runtime="process",
        extra=["--address", address, "--region", "eu", *extra],
    )  # fmt: skip
