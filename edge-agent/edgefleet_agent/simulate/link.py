"""A simulated gateway's uplink: a loopback TCP relay between one agent and the broker.

The fleet simulator points a faultable node's agent at its :class:`Link` instead of the
broker, so faults happen on the wire, where the broker and the agent see them as they would
see a real network fault, and nothing in the agent or the MQTT library is faked:

``down()``
    Nothing moves either way and nothing closes: bytes wait in the kernel's buffers, as on
    a cut cable while TCP retransmits. The broker hears nothing from the node and publishes
    its will when the keepalive expires: 1.5 keepalives after the node's last packet, which
    mosquitto 2.0 notices on a sweep every few seconds (with a 5 s keepalive, measured 6-11 s
    after the cut). Connections the agent opens while the link is down are held, never
    forwarded (its CONNECT times out).
``up()``
    The link comes back: held data flows on, a side that closed meanwhile is seen closed,
    and connection attempts made while down are reset (they are stale: forwarding one would
    hand the broker a CONNECT from a socket the agent has given up on).
``kill()``
    The gateway dies: its connections are closed at once, so the broker sees the socket go
    and publishes the will straight away; new connections are refused. (If the link was
    down, the broker side stays silent: it learns only at keepalive expiry.)

Invariants: one event loop owns the link; each accepted connection is one :class:`_Pipe`
with at most one upstream connection; a side's reading is paused while the link is down or
while the other side's write buffer is full (flow control), and resumed only when neither
holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

log = logging.getLogger("edgefleet.simulate.link")

LinkState = Literal["up", "down", "dead"]


class Link:
    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker_host = broker_host
        self.broker_port = broker_port
        self.state: LinkState = "up"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._silent: list[asyncio.Transport] = []

    async def open(self) -> int:
        """Listen on a free loopback port; returns it (the agent's broker port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _AgentSide(self), "127.0.0.1", 0, backlog=16
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def connections(self) -> int:
        return len(self._pipes)

    def down(self) -> None:
        if self.state != "up":
            return
        self.state = "down"
        for pipe in list(self._pipes):
            pipe.update_reading()

    def up(self) -> None:
        if self.state != "down":
            return
        self.state = "up"
        for pipe in list(self._pipes):
            if pipe.held:
                pipe.abort()
            else:
                pipe.update_reading()

    def kill(self) -> None:
        if self.state == "dead":
            return
        silent = self.state == "down"
        self.state = "dead"
        if self._server is not None:
            self._server.close()
        for pipe in list(self._pipes):
            if silent and pipe.broker is not None:
                self._silent.append(pipe.broker)
                pipe.broker = None
            pipe.abort()

    async def close(self) -> None:
        """Tear everything down (the fleet is stopping)."""
        self.kill()
        for transport in self._silent:
            transport.abort()
        self._silent.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()


class _Pipe:
    """One agent connection and its broker connection."""

    def __init__(self, link: Link, agent: asyncio.Transport) -> None:
        self.link = link
        self.agent = agent
        self.broker: asyncio.Transport | None = None
        self.held = link.state != "up"
        self._pending: list[bytes] = []
        self._connecting: asyncio.Task[None] | None = None
        self._broker_full = False
        self._agent_full = False
        self._closed = False
        if not self.held:
            self._connecting = asyncio.get_running_loop().create_task(
                self._connect(), name="sim-link-connect"
            )
        self.update_reading()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_connection(
                lambda: _BrokerSide(self), self.link.broker_host, self.link.broker_port
            )
        except OSError as exc:
            log.debug("link to the broker failed: %s", exc)
            self.abort()
            return
        if self._closed:
            transport.abort()
            return
        self.broker = transport
        for chunk in self._pending:
            transport.write(chunk)
        self._pending.clear()
        self.update_reading()

    def update_reading(self) -> None:
        if self._closed:
            return
        moving = self.link.state == "up" and not self.held
        _set_reading(self.agent, moving and not self._broker_full)
        if self.broker is not None:
            _set_reading(self.broker, moving and not self._agent_full)

    def from_agent(self, data: bytes) -> None:
        if self.broker is not None:
            self.broker.write(data)
        else:
            self._pending.append(data)

    def from_broker(self, data: bytes) -> None:
        if not self.agent.is_closing():
            self.agent.write(data)

    def buffer_full(self, side: Literal["agent", "broker"], full: bool) -> None:
        if side == "agent":
            self._agent_full = full
        else:
            self._broker_full = full
        self.update_reading()

    def agent_gone(self) -> None:
        """The agent closed its socket (only seen while the link carries data)."""
        self._finish(abort=False)

    def broker_gone(self) -> None:
        self._finish(abort=False)

    def abort(self) -> None:
        self._finish(abort=True)

    def _finish(self, *, abort: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self.link._pipes.discard(self)
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        for transport in (self.agent, self.broker):
            if transport is None or transport.is_closing():
                continue
            if abort:
                transport.abort()
            else:
                transport.close()  # flush what is buffered, then FIN


def _set_reading(transport: asyncio.Transport, reading: bool) -> None:
    if transport.is_closing():
        return
    if reading:
        transport.resume_reading()
    else:
        transport.pause_reading()


class _AgentSide(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self.link = link
        self.pipe: _Pipe | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.link.state == "dead":
            transport.abort()
            return
        self.pipe = _Pipe(self.link, transport)
        self.link._pipes.add(self.pipe)

    def data_received(self, data: bytes) -> None:
        if self.pipe is not None:
            self.pipe.from_agent(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pipe is not None:
            self.pipe.agent_gone()

    def pause_writing(self) -> None:
        if self.pipe is not None:
            self.pipe.buffer_full("agent", True)

    def resume_writing(self) -> None:
        if self.pipe is not None:
            self.pipe.buffer_full("agent", False)


class _BrokerSide(asyncio.Protocol):
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe

    def data_received(self, data: bytes) -> None:
        self.pipe.from_broker(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe.broker_gone()

    def pause_writing(self) -> None:
        self.pipe.buffer_full("broker", True)

    def resume_writing(self) -> None:
        self.pipe.buffer_full("broker", False)
