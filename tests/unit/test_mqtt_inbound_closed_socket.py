"""A connection the link resets while paho is still connecting closes its socket before the
event loop gets to start reading it; that is an expected disconnect and must not reach
asyncio's exception handler (which logs it at ERROR: issue #13 item 5)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiomqtt
from edgefleet_protocol.mqtt_inbound import install


async def test_a_socket_closed_before_the_reader_starts_is_not_an_error() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    client = aiomqtt.Client("127.0.0.1", 1883, identifier="closed-socket")
    paho = client._client
    paho.on_socket_open = None  # only edgefleet's reader: aiomqtt's would race the same way
    install(client, lambda message, size: None, v5=True)
    sock = socket.socket()
    paho._sock = sock
    paho.on_socket_open(paho, None, sock)  # as paho calls it from its connect thread
    sock.close()  # the link reset the connection: paho closed the socket meanwhile
    paho._sock = None
    for _ in range(3):
        await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert errors == []
