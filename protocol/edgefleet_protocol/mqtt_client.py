"""Building the aiomqtt client and translating messages to and from it.

Who calls it: :mod:`edgefleet_protocol.session` only (which owns the connection loop).
Split out so the session module holds the connection's policy — reconnects, protocol
fallback, logging — and this one the library details.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, Literal

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.wire import Publication

ProtocolVersion = Literal["5", "3.1.1"]

MAX_INFLIGHT = 1000
"""QoS 1 publishes awaiting their PUBACK at once. paho's default is 20, which capped the
orchestrator's desired-document fan-out at 20 per broker round trip: a 1,000-node deploy
took 2.4 s where 1.3 s suffice (bench/convergence.py). Callers bound their own concurrency
(the orchestrator publishes 64 at a time); mosquitto takes 2,000 at once with its defaults."""


RECEIVE_MAXIMUM = 1000
"""MQTT 5 Receive Maximum: QoS 1 messages the broker may send us unacknowledged. The
session holds a PUBACK back while its inbound queue is full (:mod:`.inbox`), so this is
what bounds a QoS 1 flood in memory (on 3.1.1 the broker's ``max_inflight_messages``,
1,000 in the generated config, does)."""


AUTH_REFUSALS = frozenset({4, 5, 134, 135})
"""CONNACK codes that mean "these credentials are refused": 3.1.1 bad user name or password
(4), not authorised (5); MQTT 5 bad user name or password (134), not authorized (135)."""


def connack_code(exc: BaseException) -> int | None:
    """The CONNACK return/reason code of a refused connect, or ``None``."""
    rc = getattr(exc, "rc", None) if isinstance(exc, MqttConnectError) else None
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def make_client(
    s: BrokerSettings,
    client_id: str,
    will_pub: Publication | None,
    protocol: ProtocolVersion,
) -> aiomqtt.Client:
    """One aiomqtt client for one connection attempt. It never publishes: the session's
    publishes go through :mod:`.mqtt_outbound`, which also reads the PUBACK's reason code
    (aiomqtt 2.x drops it and reports an ACL refusal as success)."""
    will = None
    if will_pub is not None:
        will = aiomqtt.Will(will_pub.topic, will_pub.payload, will_pub.qos, will_pub.retain)
    tls_params = None
    if s.tls:
        tls_params = aiomqtt.TLSParameters(
            ca_certs=s.ca_file,
            certfile=s.cert_file,
            keyfile=s.key_file,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    v5 = protocol == "5"
    client = aiomqtt.Client(
        s.host,
        s.port,
        username=s.username,
        password=s.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=will,
        clean_session=None if v5 else True,
        keepalive=s.keepalive,
        timeout=10,
        tls_params=tls_params,
        tls_insecure=s.insecure if s.tls else None,
        logger=logging.getLogger("edgefleet.session.paho"),
        max_inflight_messages=MAX_INFLIGHT,
        properties=_connect_properties() if v5 else None,
    )
    _fail_connect_on_close(client)
    return client


def _connect_properties() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def _fail_connect_on_close(client: aiomqtt.Client) -> None:
    """Make a connection closed before its CONNACK or SUBACK fail the attempt at once.

    aiomqtt (2.x, ``Client._on_disconnect``) ignores a disconnect that comes before the
    CONNACK and lets the connect wait for its full timeout: a link cut while the agent
    was reconnecting (the gateway accepts TCP, the path behind it resets) cost 10 s of
    extra absence instead of the next backoff step (issue #13: a 1.2 s cut, 6+ s away).
    Nor does it fail a pending subscribe: a cut after the CONNACK and before the SUBACK
    left the session's subscribe waiting out its 10 s timeout (a 1.65 s cut, 13.2 s away
    in the chaos suite). The paho callback is wrapped, not replaced, so aiomqtt's own
    handling still runs.
    """
    paho = client._client
    inner = paho.on_disconnect

    def on_disconnect(*args: Any, **kwargs: Any) -> None:
        pending = client._connected
        if not pending.done():
            pending.set_exception(aiomqtt.MqttError("connection closed before the CONNACK"))
        for subscribing in client._pending_subscribes.values():
            if not subscribing.done():
                subscribing.set_exception(aiomqtt.MqttError("connection closed before the SUBACK"))
        if inner is not None:
            inner(*args, **kwargs)

    paho.on_disconnect = on_disconnect


def forget(client: aiomqtt.Client) -> None:
    """Mark the client's disconnect error as seen once the session is done with it.

    aiomqtt parks an unexpected disconnect in a future that only its message iterator
    reads; when the connection dropped elsewhere (during the subscribes) nothing reads it,
    and asyncio logs ``Future exception was never retrieved`` at ERROR for an expected
    disconnect (issue #13 item 5)."""
    gone = client._disconnected
    if gone.done() and not gone.cancelled():
        gone.exception()


def raise_if_cancelled() -> None:
    """Python 3.11's ``asyncio.wait_for`` (inside aiomqtt's connect and subscribe) swallows
    a cancellation that lands just as its future completes. The runner would then read
    messages forever and :meth:`Session.close` would never return; seen when thousands of
    simulated agents were stopped while connecting."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
