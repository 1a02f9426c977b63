"""Runs one health probe (HTTP, TCP or exec) and says whether it passed, with its output.

The thin I/O half of health checking; :mod:`edgefleet_agent.core.health` holds the state
machine. Probes address the workload from the gateway: ``host`` (default 127.0.0.1) and
the check's ``port``, translated to the published host port when the spec maps that
container port (Docker). ``kind: docker`` is not probed here: the runtime reports the
image's own HEALTHCHECK verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from edgefleet_protocol import HealthCheck, WorkloadSpec

from edgefleet_agent.core.runtime import Runtime

MAX_OUTPUT = 512


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    output: str


def probe_port(spec: WorkloadSpec, check: HealthCheck) -> int | None:
    """The port to probe: the host side of a published container port, else as written."""
    for port in spec.ports:
        if port.container == check.port and port.host is not None:
            return port.host
    return check.port


async def run_probe(
    check: HealthCheck, *, spec: WorkloadSpec, name: str, runtime: Runtime
) -> ProbeResult:
    """One probe, bounded by ``check.timeout_s``; never raises (except cancellation)."""
    try:
        async with asyncio.timeout(check.timeout_s):
            return await _probe(check, spec=spec, name=name, runtime=runtime)
    except TimeoutError:
        return ProbeResult(False, f"{check.kind} check timed out after {check.timeout_s:g} s")
    except OSError as exc:
        return ProbeResult(False, f"{check.kind} check failed: {exc.strerror or exc}")


async def _probe(
    check: HealthCheck, *, spec: WorkloadSpec, name: str, runtime: Runtime
) -> ProbeResult:
    port = probe_port(spec, check)
    if check.kind == "tcp" and port is not None:
        _, writer = await asyncio.open_connection(check.host, port)
        await _close(writer)
        return ProbeResult(True, f"tcp {check.host}:{port} accepted a connection")
    if check.kind == "http" and port is not None:
        return await _http(check.host, port, check.path)
    if check.kind == "exec" and check.command:
        result = await runtime.exec(name, list(check.command), timeout_s=check.timeout_s)
        output = result.output.strip()[-MAX_OUTPUT:]
        verdict = f"exit code {result.exit_code}" + (f": {output}" if output else "")
        return ProbeResult(result.exit_code == 0, f"exec {' '.join(check.command)}: {verdict}")
    return ProbeResult(True, f"{check.kind} check is not run by the agent")


async def _http(host: str, port: int, path: str) -> ProbeResult:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        request = (
            f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: edgefleet-agent\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1").strip()
    finally:
        await _close(writer)
    parts = status_line.split(" ", 2)
    url = f"http://{host}:{port}{path}"
    if len(parts) < 2 or not parts[1].isdigit():
        return ProbeResult(False, f"GET {url}: not an HTTP response ({status_line[:80]!r})")
    code = int(parts[1])
    return ProbeResult(200 <= code < 400, f"GET {url}: HTTP {code}")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
