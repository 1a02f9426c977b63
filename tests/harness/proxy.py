"""A loopback TCP relay in front of the broker, one per client, to cut and restore one link.

Used by the session tests and the chaos suite. Unlike the simulator's
:class:`edgefleet_agent.simulate.link.Link` (a silent cut: bytes wait in buffers), a cut
here is the loud kind — every connection through the relay is reset and new ones are
accepted and reset at once — so the broker publishes the client's will straight away
and the client's reconnect schedule is what decides how long it stays away.

``drop_connects`` accepts a connection, reads its CONNECT packet, records the MQTT
protocol level it asked for (4 = 3.1.1, 5 = MQTT 5) in ``levels`` and closes it, as a
broker that is not there yet behind a gateway would.

``on_up`` sees every chunk the client sends before it is relayed, to cut the link at an
exact point of the MQTT exchange (a cut there drops the chunk).

Invariants: one event loop owns the relay; every live pair of connections is in
``_pairs`` until both pumps end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Proxy:
    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = 0
        self.cut_now = False
        self.drop_connects = False
        self.levels: list[int] = []
        self.on_drop: Callable[[int], None] | None = None
        self.on_up: Callable[[bytes], None] | None = None
        self.bytes_up = 0
        self.bytes_down = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def cut(self) -> None:
        """Reset every connection and every new one until :meth:`restore`."""
        self.cut_now = True
        for client, upstream in list(self._pairs):
            _abort(client)
            _abort(upstream)

    def restore(self) -> None:
        self.cut_now = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.cut_now:
            _abort(writer)
            return
        if self.drop_connects:
            with contextlib.suppress(Exception):
                head = await asyncio.wait_for(reader.read(64), 5)
                level = _protocol_level(head)
                self.levels.append(level)
                if self.on_drop is not None:
                    self.on_drop(level)
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, up=True)),
            asyncio.create_task(self._pump(up_reader, writer, up=False)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        _abort(writer)
        _abort(up_writer)
        self._pairs.discard(pair)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        with contextlib.suppress(Exception):
            while not self.cut_now:
                data = await reader.read(65536)
                if not data:
                    return
                if up and self.on_up is not None:
                    self.on_up(data)
                    if self.cut_now:
                        return
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                writer.write(data)
                await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


def _protocol_level(packet: bytes) -> int:
    """The protocol level byte of an MQTT CONNECT packet (0 if it is not one)."""
    if not packet or packet[0] >> 4 != 1:
        return 0
    i = 1
    while i < len(packet) and packet[i] & 0x80:  # remaining length is a varint
        i += 1
    i += 1
    if i + 2 > len(packet):
        return 0
    name_len = int.from_bytes(packet[i : i + 2], "big")
    at = i + 2 + name_len
    return packet[at] if at < len(packet) else 0
