"""One listening port of a local proxy: accept, connect to an endpoint, relay bytes.

The I/O shell around :class:`~edgefleet_agent.proxy.balancer.Balancer`. For each accepted
connection it asks the balancer for an endpoint and connects; a connect that fails (refused,
unreachable, or slower than ``connect_timeout_s``) is reported to the balancer — which sets
that endpoint aside — and the next endpoint is tried. Nothing is read from the client
before an upstream connection exists, so a retry is invisible to it. When every endpoint
failed, the client's connection is closed without a byte.

Relaying is two copy loops with half-close (EOF in one direction is passed on, the other
keeps flowing), so request/response protocols that close their sending side work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable

from edgefleet_agent.proxy.balancer import Balancer, Key, key_of

log = logging.getLogger("edgefleet.agent.proxy")

CHUNK = 64 * 1024


class Listener:
    """Serves ``port`` on every host of ``hosts`` for the service port ``port_name``."""

    def __init__(
        self,
        balancer: Balancer,
        *,
        port_name: str,
        hosts: tuple[str, ...],
        port: int,
        connect_timeout_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.balancer = balancer
        self.port_name = port_name
        self.hosts = hosts
        self.port = port
        self._connect_timeout_s = connect_timeout_s
        self._monotonic = monotonic
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on every host; raises ``OSError`` (and listens nowhere) if one fails."""
        try:
            for host in self.hosts:
                server = await asyncio.start_server(
                    self._accepted, host, self.port, reuse_address=True, backlog=512
                )
                self._servers.append(server)
        except OSError:
            await self.close()
            raise

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers = []
        for task in list(self._tasks):
            task.cancel()

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except Exception:  # one connection's trouble never reaches the server
            log.debug("proxy connection on port %d ended with an error", self.port, exc_info=True)
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        balancer = self.balancer
        tried: list[Key] = []
        while True:
            endpoint = balancer.choose(self._monotonic(), tried)
            if endpoint is None:
                log.warning("proxy port %d: no endpoint left to try (%d tried)", self.port,
                            len(tried))  # fmt: skip
                return  # every endpoint failed: close without a byte
            port = endpoint.ports.get(self.port_name, endpoint.port)
            started = self._monotonic()
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    up_reader, up_writer = await asyncio.open_connection(endpoint.address, port)
            except (OSError, TimeoutError) as exc:
                aside = balancer.failed(endpoint, self._monotonic())
                log.info("proxy port %d: connect to %s (%s:%d) failed (%r); set aside %g s",
                         self.port, endpoint.replica or endpoint.node, endpoint.address, port,
                         exc, aside)  # fmt: skip
                tried.append(key_of(endpoint))
                continue
            balancer.connected(endpoint, self._monotonic() - started)
            break
        moved = 0
        try:
            _nodelay(writer)
            _nodelay(up_writer)
            sent, received = await asyncio.gather(
                _copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True
            )
            moved = sum(n for n in (sent, received) if isinstance(n, int))
        finally:
            balancer.closed(endpoint, moved)
            with contextlib.suppress(Exception):
                up_writer.close()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> int:
    """Copy until EOF, then pass the EOF on (half-close); returns the bytes copied."""
    total = 0
    try:
        while data := await src.read(CHUNK):
            total += len(data)
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        dst.close()
    return total
