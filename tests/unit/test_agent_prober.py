"""Health probes against real loopback servers: HTTP status, TCP connect, exec exit code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from edgefleet_agent.core.runtime import WorkloadRef
from edgefleet_agent.runtimes.simulated import SimulatedRuntime
from edgefleet_agent.service.prober import probe_port, run_probe
from edgefleet_protocol import HealthCheck, WorkloadSpec, spec_hash

SPEC = WorkloadSpec(runtime="simulated")


async def http_server(status: int) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def ok_server() -> AsyncIterator[int]:
    server, port = await http_server(204)
    async with server:
        yield port


async def test_http_2xx_passes_and_5xx_fails(ok_server: int) -> None:
    good = await run_probe(
        HealthCheck(kind="http", port=ok_server, path="/healthz"),
        spec=SPEC,
        name="w",
        runtime=SimulatedRuntime(),
    )
    assert (good.ok, good.output) == (True, f"GET http://127.0.0.1:{ok_server}/healthz: HTTP 204")
    server, port = await http_server(503)
    async with server:
        bad = await run_probe(
            HealthCheck(kind="http", port=port), spec=SPEC, name="w", runtime=SimulatedRuntime()
        )
    assert (bad.ok, bad.output) == (False, f"GET http://127.0.0.1:{port}/: HTTP 503")


async def test_tcp_passes_when_something_listens_and_fails_when_nothing_does(
    ok_server: int,
) -> None:
    up = await run_probe(
        HealthCheck(kind="tcp", port=ok_server), spec=SPEC, name="w", runtime=SimulatedRuntime()
    )
    assert up.ok
    server, port = await http_server(200)
    server.close()
    await server.wait_closed()
    down = await run_probe(
        HealthCheck(kind="tcp", port=port), spec=SPEC, name="w", runtime=SimulatedRuntime()
    )
    assert not down.ok
    assert "tcp check failed" in down.output


async def test_a_silent_server_times_out() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the prober gives up and closes
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await run_probe(
            HealthCheck(kind="http", port=port, timeout_s=0.2),
            spec=SPEC,
            name="w",
            runtime=SimulatedRuntime(),
        )
        server.close()
    assert (result.ok, result.output) == (False, "http check timed out after 0.2 s")


async def test_exec_uses_the_runtime_and_reports_the_exit_code() -> None:
    rt = SimulatedRuntime()
    await rt.start(WorkloadRef("w", "a", SPEC, spec_hash(SPEC)))
    passed = await run_probe(
        HealthCheck(kind="exec", command=["check"]), spec=SPEC, name="w", runtime=rt
    )
    failed = await run_probe(
        HealthCheck(kind="exec", command=["false"]), spec=SPEC, name="w", runtime=rt
    )
    assert passed.ok
    assert not failed.ok
    assert failed.output.startswith("exec false: exit code 1")


def test_a_published_container_port_is_probed_on_its_host_port() -> None:
    spec = WorkloadSpec(runtime="docker", image="x", ports=[{"container": 80, "host": 8080}])
    assert probe_port(spec, HealthCheck(kind="tcp", port=80)) == 8080
    assert probe_port(spec, HealthCheck(kind="tcp", port=81)) == 81
