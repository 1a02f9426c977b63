"""A loopback TCP proxy that can cut a link silently, for the failover benchmark.

Until :meth:`CuttableProxy.cut` it forwards bytes both ways. After it, the link is dead the
way a pulled uplink is dead: nothing is forwarded in either direction and no socket is
closed, so the broker gets no FIN and no RST and can only notice by keepalive expiry
(1.5 x the client's keepalive), when it publishes the client's will. Connections made
after the cut (the client retrying) are accepted and held, never forwarded.

Invariant: once cut, the proxy never closes a broker-side socket until :meth:`close` —
a close would tell the broker at once and turn the silent cut into a plain disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.is_cut = False
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the proxy first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.port

    def cut(self) -> None:
        """From now on forward nothing, close nothing."""
        self.is_cut = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(client_w)
        if self.is_cut:
            return  # held open and never answered, like a SYN into a dead link that got lucky
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers.append(broker_w)
        for reader, writer in ((client_r, broker_w), (broker_r, client_w)):
            task = asyncio.create_task(self._pipe(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                if self.is_cut:
                    continue  # swallowed: the link is dead
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        if not self.is_cut:
            writer.close()
        # Once cut, both sides stay open (and silent) until close().
