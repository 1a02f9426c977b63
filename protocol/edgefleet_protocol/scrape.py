"""A minimal HTTP server for ``GET /metrics``, inside the caller's event loop.

Shared by the orchestrator's and the agent's ``exporters/``; it knows nothing of metrics
(the caller passes a ``render`` function and its content type), so this package needs no
metrics library. Why not prometheus-client's own ``start_http_server``: it serves from a
thread, and the orchestrator's and the agent's state belong to their event loop alone; a
scrape must read it between two loop steps, never while a pass changes it. A scrape is one
short request, so a few lines of asyncio do: read the request head (bounded in size and
time), answer, close. Any failure is logged and answered with 500; nothing reaches the
service. :func:`parse_address` (pure) reads ``--metrics-addr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("edgefleet.metrics")

MAX_HEAD_BYTES = 8192
READ_TIMEOUT_S = 5.0


class AddressError(ValueError):
    """A ``--metrics-addr`` that is not ``HOST:PORT``."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_address(text: str) -> Address:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces) into an :class:`Address`."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise AddressError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:9464)")
    port = int(port_text)
    if not 0 < port < 65536:
        raise AddressError(f"port {port} is out of range 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif "[" in host or "]" in host:  # else "[::1" reached bind() and failed only there
        raise AddressError(f"{text!r}: unbalanced brackets (write [::1]:9464)")
    if not host:
        host = "0.0.0.0"
    elif ":" in host and "[" not in text:
        raise AddressError(f"{text!r}: write an IPv6 host in brackets, as [::1]:9464")
    return Address(host, port)


class MetricsServer:
    """Serves ``render()`` on ``/metrics`` until :meth:`close`. ``port`` is the bound port
    (useful with port 0)."""

    def __init__(self, render: Callable[[], bytes], content_type: str, address: Address) -> None:
        self._render = render
        self._content_type = content_type
        self._address = address
        self._server: asyncio.Server | None = None
        self.port = address.port

    async def start(self) -> None:
        """Bind and listen; raises ``OSError`` (port taken, no such address) to the caller,
        which reports it before the orchestrator starts."""
        self._server = await asyncio.start_server(
            self._serve, self._address.host, self._address.port, limit=MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s/metrics", Address(self._address.host, self.port))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, ctype, body = self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, ctype, body = "400 Bad Request", "text/plain", b"bad request\n"
        except Exception:
            log.exception("metrics request failed")
            status, ctype, body = "500 Internal Server Error", "text/plain", b"internal error\n"
        try:
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the scraper went away; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        if path != "/metrics":
            return "404 Not Found", "text/plain", b"see /metrics\n"
        return "200 OK", self._content_type, self._render()
