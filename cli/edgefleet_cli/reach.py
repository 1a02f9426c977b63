"""Reaching the broker, and saying exactly why not (issue #12 defect 8).

Used by :class:`edgefleet_cli.client.OperatorClient`. Each failure names what the operator
can fix: a host or port that does not answer (and whether that was the development
default because nothing was configured), credentials the broker refused in its CONNACK, or
a command its ACL refused in the PUBACK (MQTT 5 only: over 3.1.1 a forbidden publish is
acknowledged like any other and looks like a silent orchestrator). A broker URL is only
ever shown redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from edgefleet_cli.config import ClientSettings, CommandRefused, Unreachable


async def probe(settings: ClientSettings) -> None:
    """A plain TCP connect first: a wrong host or port fails at once with the OS's reason,
    instead of as a reconnect loop that runs into the timeout."""
    s = settings.broker
    where = (
        "no broker is configured (--broker, EDGEFLEET_BROKER or the config file), so the "
        f"development default {s.redacted()} was tried"
        if settings.broker_source == "default"
        else f"check {settings.broker_source}"
    )
    wait_s = min(settings.timeout_s, 5.0)
    try:
        async with asyncio.timeout(wait_s):
            _, writer = await asyncio.open_connection(s.host, s.port)
    except TimeoutError:
        raise Unreachable(
            f"error: cannot reach the broker at {s.redacted()} (no answer within "
            f"{wait_s:g} s): {where}"
        ) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise Unreachable(
            f"error: cannot reach the broker at {s.redacted()} ({reason}): is it running? {where}"
        ) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def refused_connect(settings: ClientSettings, refused: str) -> Unreachable:
    """The broker's CONNACK refused these credentials: retrying cannot help."""
    who = repr(settings.broker.username or "anonymous")
    return Unreachable(
        f"error: the broker at {settings.broker.redacted()} refused user {who}: not "
        f"authorised ({refused}): check the user name and password in --broker / "
        "EDGEFLEET_BROKER (or the client certificate)"
    )


def refused_command(settings: ClientSettings, verb: str, reason: str) -> CommandRefused:
    """The broker's PUBACK refused the command (MQTT 5: its ACL forbids this user)."""
    user = settings.broker.username or "anonymous"
    return CommandRefused(
        f"error: the broker refused to let {user} publish the {verb} command ({reason}): "
        "its ACL does not allow this user to send commands (a viewer account?); use an "
        "operator's credentials"
    )
