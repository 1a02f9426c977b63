"""What one idle edge agent costs: RSS, CPU and bytes per second on the wire.

Runs the REAL agent (``edgefleet-agent run --runtime process``, default timings) against a
real mosquitto on loopback, through a small TCP proxy that counts every byte in each
direction, with 0 and then 10 workloads (``sleep`` processes). After a warm-up (connected,
workloads running, first full telemetry and first usage figures sent: 25 s) the counters
are reset and the agent is left alone for the measuring window; then:

* ``rss_mb`` / ``peak_rss_mb`` — the agent process's resident memory now / at its peak;
* ``cpu_pct`` — its CPU time over the window as a percentage of one core;
* ``up_bytes_per_s`` / ``down_bytes_per_s`` — MQTT bytes (TCP payload) agent → broker and
  broker → agent; ``bytes_per_s`` is both together (the idle target is ≤ 20 B/s);
* ``est_ip_bytes_per_s`` — a rough estimate including TCP/IP headers (52 bytes per data
  segment and one 52-byte ACK each) and the handshakes of any extra TCP connection, which
  carry no payload, so the proxy sees them only as connections (``probe_connections``:
  the broker latency probe's, until issue #13 measured it from the session's PUBACKs;
  now 0 with the default settings).

The window is at least one heartbeat (60 s) and rounded up to whole heartbeats, so it holds
as many full telemetry messages and keepalives as a long run would per minute.

    python -m bench.agent_footprint --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import psutil
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Publication, Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from harness.mosquitto import free_port, start_mosquitto  # noqa: E402

AGENT = Path(sys.executable).parent / "edgefleet-agent"
HEARTBEAT_S = 60.0
WARM_UP_S = 25.0
RSS_TARGET_MB = 45.0
IDLE_TARGET_BYTES_PER_S = 20.0
HEADER_BYTES = 52  # IPv4 20 + TCP 20 + timestamps option 12
HANDSHAKE_PACKETS = 7  # SYN, SYN-ACK, ACK, FIN, ACK, FIN, ACK of one probe connect


@dataclass
class Counters:
    up: int = 0
    down: int = 0
    up_segments: int = 0
    down_segments: int = 0
    connections: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def reset(self) -> None:
        self.up = self.down = self.up_segments = self.down_segments = self.connections = 0


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counters: Counters, up: bool
) -> None:
    try:
        while chunk := await reader.read(65536):
            if up:
                counters.up += len(chunk)
                counters.up_segments += 1
            else:
                counters.down += len(chunk)
                counters.down_segments += 1
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def start_proxy(target_port: int, counters: Counters) -> asyncio.Server:
    """A loopback TCP proxy to the broker that counts payload bytes each way."""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        counters.connections += 1
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        for task in (
            asyncio.create_task(_pipe(client_r, broker_w, counters, up=True)),
            asyncio.create_task(_pipe(broker_r, client_w, counters, up=False)),
        ):
            counters.tasks.add(task)
            task.add_done_callback(counters.tasks.discard)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _desired(node: str, count: int, tag: str) -> bytes:
    workloads = []
    for i in range(count):
        spec = WorkloadSpec(runtime="process", command=["sleep", f"{tag}{i}"])
        workloads.append(
            DesiredWorkload(name=f"w{i}", app="bench", spec=spec, spec_hash=spec_hash(spec))
        )
    doc = Desired(node=node, site="bench", generation=1, issued_at=time.time(), workloads=workloads)
    return doc.model_dump_json().encode()


async def _wait_reported(session: Session, topic: str, count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        async for message in session.messages():
            if message.topic != topic or not message.payload:
                continue
            body = json.loads(message.payload)
            workloads = body.get("workloads", {})
            if body.get("observed_generation") != 1:
                continue
            if len(workloads) == count and all(w["state"] == "running" for w in workloads.values()):
                return


async def _case(
    workloads: int,
    window_s: float,
    broker_port: int,
    workdir: Path,
    warm_up_s: float = WARM_UP_S,
) -> dict[str, Any]:
    counters = Counters()
    proxy = await start_proxy(broker_port, counters)
    proxy_port = proxy.sockets[0].getsockname()[1]
    node = f"bench-{uuid.uuid4().hex[:6]}"
    root = f"bench-{uuid.uuid4().hex[:6]}"
    tag = f"{86400 + os.getpid() % 10000}.{workloads:02d}"  # `sleep 96400.100` etc.
    state = workdir / f"state-{workloads}"
    direct = BrokerSettings.from_url(f"mqtt://127.0.0.1:{broker_port}")
    base = f"{root}/nodes/bench/{node}"
    log = _open_log(workdir / f"agent-{workloads}.log")
    agent = await asyncio.create_subprocess_exec(
        str(AGENT), "run", "--node", node, "--site", "bench", "--root", root,
        "--broker", f"mqtt://127.0.0.1:{proxy_port}", "--state-dir", str(state),
        "--runtime", "process", "--log-level", "warning",
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        async with Session(direct, client_id=f"bench-{node}", subscriptions=[f"{base}/#"]) as s:
            assert await s.wait_connected(10)
            await s.publish(
                Publication(f"{base}/desired", _desired(node, workloads, tag), retain=True)
            )
            await _wait_reported(s, f"{base}/reported", workloads, timeout=60)
            # Past the start: retained republishes, the first full telemetry, and the first
            # usage figures (a process's CPU needs two samples, 10 s apart).
            await asyncio.sleep(warm_up_s)
            while s.pending():  # published before the window: not part of it
                await anext(aiter(s.messages()))
            proc = psutil.Process(agent.pid)
            cpu_before = sum(proc.cpu_times()[:2])
            counters.reset()
            started = time.monotonic()
            seen = await _collect(s, base, window_s)
            elapsed = time.monotonic() - started
            window = dataclasses.replace(counters, tasks=set())
            cpu_after = sum(proc.cpu_times()[:2])
            memory = proc.memory_full_info()
            peak_kb = _peak_rss_kb(agent.pid)
            await s.clear_retained(f"{base}/desired")
    finally:
        if agent.returncode is None:
            agent.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await agent.wait()
        log.close()
        _kill_sleepers(tag)
        proxy.close()
        for task in list(counters.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await proxy.wait_closed()
    segments = window.up_segments + window.down_segments
    payload = window.up + window.down
    estimate = (
        payload
        + segments * HEADER_BYTES * 2
        + window.connections * (HANDSHAKE_PACKETS * HEADER_BYTES)
    )
    return {
        "workloads": workloads,
        "messages": seen,
        "window_s": round(elapsed, 1),
        "rss_mb": round(memory.rss / 2**20, 1),
        "uss_mb": round(memory.uss / 2**20, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "cpu_pct": round((cpu_after - cpu_before) / elapsed * 100, 3),
        "up_bytes_per_s": round(window.up / elapsed, 2),
        "down_bytes_per_s": round(window.down / elapsed, 2),
        "bytes_per_s": round(payload / elapsed, 2),
        "segments": segments,
        "probe_connections": window.connections,
        "est_ip_bytes_per_s": round(estimate / elapsed, 1),
    }


async def _collect(session: Session, base: str, window_s: float) -> dict[str, Any]:
    """What the agent published in the window (seen on a direct connection, so not
    counted by the proxy): message counts and payload bytes per kind, and which fields the
    telemetry deltas carried — the breakdown behind the bytes per second."""
    seen: dict[str, list[int]] = {"telemetry_full": [0, 0], "telemetry_delta": [0, 0]}
    moved: dict[str, int] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(window_s):
            async for message in session.messages():
                if not message.topic.startswith(base) or message.topic.endswith("/desired"):
                    continue
                kind = message.topic.rsplit("/", 1)[-1]
                if kind == "telemetry":
                    body = json.loads(message.payload)
                    kind = "telemetry_full" if body.get("full") else "telemetry_delta"
                    if kind == "telemetry_delta":
                        for key in body:
                            if key not in ("v", "node", "site", "ts"):
                                moved[key] = moved.get(key, 0) + 1
                counts = seen.setdefault(kind, [0, 0])
                counts[0] += 1
                counts[1] += len(message.payload)
    return {
        **{k: {"count": v[0], "payload_bytes": v[1]} for k, v in seen.items()},
        "delta_fields": moved,
    }


def _open_log(path: Path) -> BinaryIO:
    return open(path, "wb")  # the caller closes it after the agent exits


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0])


def _kill_sleepers(tag: str) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) == 2 and cmdline[0] == "sleep" and cmdline[1].startswith(tag):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def measure(
    seconds: float = 60.0,
    workload_counts: tuple[int, ...] = (0, 10),
    *,
    warm_up_s: float = WARM_UP_S,
    min_window_s: float = HEARTBEAT_S,
) -> dict[str, Any]:
    """Measure each case; ``rows`` hold the figures against their targets.

    ``warm_up_s`` and ``min_window_s`` exist for the test suite's smoke run (seconds, not
    minutes); figures from shorter windows than a heartbeat are not comparable."""
    step = min(min_window_s, HEARTBEAT_S)
    window = max(min_window_s, math.ceil(seconds / step) * step)
    workdir = Path(tempfile.mkdtemp(prefix="agent-footprint-"))
    broker = start_mosquitto(workdir / "broker", port=free_port())
    try:
        cases = [
            asyncio.run(_case(n, window, broker.port, workdir, warm_up_s)) for n in workload_counts
        ]
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for case in cases:
        label = f"{case['workloads']} workloads"
        rows.append({
            "case": label, "figure": f"rss_mb = {case['rss_mb']}",
            "target": f"<= {RSS_TARGET_MB}", "met": case["rss_mb"] <= RSS_TARGET_MB,
        })  # fmt: skip
        rows.append({
            "case": label, "figure": f"bytes_per_s = {case['bytes_per_s']}",
            "target": f"<= {IDLE_TARGET_BYTES_PER_S}",
            "met": case["bytes_per_s"] <= IDLE_TARGET_BYTES_PER_S,
        })  # fmt: skip
        rows.append({
            "case": label, "figure": f"cpu_pct = {case['cpu_pct']}", "target": "(none)",
            "met": True,
        })  # fmt: skip
    return {"window_s": window, "cases": cases, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window per case")
    parser.add_argument("--workloads", type=int, nargs="*", default=[0, 10])
    args = parser.parse_args()
    print(json.dumps(measure(args.seconds, tuple(args.workloads)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
