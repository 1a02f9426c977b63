"""Broker connection settings, parsed from one URL an operator can type.

``mqtt://user:pass@host:1883`` or ``mqtts://user:pass@host:8883?ca=/etc/edgefleet/ca.crt&
cert=client.crt&key=client.key&protocol=5``. Query options: ``ca``, ``cert``, ``key``,
``insecure`` (skip hostname check; tests only), ``protocol`` (``5``, ``3.1.1`` or ``auto``:
try 5, fall back to 3.1.1 when the broker refuses it), ``keepalive`` (seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from edgefleet_protocol.errors import ProtocolError

ProtocolChoice = Literal["5", "3.1.1", "auto"]


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    protocol: ProtocolChoice = "auto"
    keepalive: int = 30

    @classmethod
    def from_url(cls, url: str) -> BrokerSettings:
        """Parse a broker URL, or raise :class:`ProtocolError` naming what is wrong."""
        shown = redact_url(url)  # errors quote the URL: never with its password
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ProtocolError(
                "broker", f"{shown!r}: scheme must be mqtt:// or mqtts://, got {parts.scheme!r}"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        if not parts.hostname:
            raise ProtocolError("broker", f"{shown!r} names no host")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ProtocolError("broker", f"{shown!r} has an invalid port") from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"ca", "cert", "key", "insecure", "protocol", "keepalive"}
        if unknown:
            raise ProtocolError("broker", f"unknown URL option(s): {', '.join(sorted(unknown))}")
        protocol = query.get("protocol", "auto")
        if protocol not in ("5", "3.1.1", "auto"):
            raise ProtocolError("broker", f"protocol must be 5, 3.1.1 or auto, got {protocol!r}")
        try:
            keepalive = int(query.get("keepalive", "30"))
        except ValueError:
            raise ProtocolError("broker", "keepalive must be a whole number of seconds") from None
        if not 5 <= keepalive <= 65535:
            raise ProtocolError("broker", "keepalive must be between 5 and 65535 seconds")
        if ("cert" in query) != ("key" in query):
            raise ProtocolError("broker", "a client certificate needs both cert= and key=")
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=tls,
            ca_file=query.get("ca"),
            cert_file=query.get("cert"),
            key_file=query.get("key"),
            insecure=query.get("insecure", "").lower() in ("1", "true", "yes"),
            protocol=protocol,  # type: ignore[arg-type]
            keepalive=keepalive,
        )

    def redacted(self) -> str:
        """The URL for logs: the password never appears."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``, also when the rest
    does not parse (a typo such as ``mqtts//user:secret@host`` must not leak it either):
    the user info is what sits between the last ``/`` and the last ``@`` before the query."""
    query = url.find("?")
    at = url.rfind("@", 0, query if query >= 0 else len(url))
    if at < 0:
        return url
    start = url.rfind("/", 0, at) + 1
    user, colon, _ = url[start:at].partition(":")
    return url if not colon else f"{url[:start]}{user}:***{url[at:]}"
