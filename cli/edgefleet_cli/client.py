"""The operator's side of the command API: a small MQTT client, the fleet view it reads
from the retained status topics, and the rule ``deploy --wait`` stops by.

Used by the ``edgefleet`` operator commands (:mod:`edgefleet_cli.commands`), which talk to the
orchestrator only over MQTT, as any operator tool may: a command goes to
``<root>/commands/<broker user>/<verb>`` (the accountless ``<root>/commands/<verb>`` when
the broker URL names no user) with a fresh ``request_id`` and ``reply_to =
<root>/replies/<user>/<request_id>`` (the only place the broker ACL lets an operator read
replies, and the only one the orchestrator answers that operator in). Expected failures raise the
:class:`~edgefleet_cli.config.CliError` of their exit code.

Invariants of :class:`OperatorClient`:

* One task (the dispatcher) reads the session's inbound queue; it resolves reply futures
  and updates :attr:`OperatorClient.snapshot`. Everything runs on one event loop.
* The reply subscription is declared last: the broker sends each subscription's retained
  messages after its SUBACK, so when the session reports "connected" the retained status
  of the earlier subscriptions is already on its way in, ahead of any reply.
* A retained or live ``orchestrator/status: offline`` fails every pending call at once
  (exit 4) instead of letting it run into its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edgefleet_protocol import (
    AppStatus,
    CommandReply,
    ComplianceReport,
    FleetSummary,
    NodeStatus,
    OrchestratorStatus,
    ProtocolError,
    ServiceEndpoints,
    TopicKind,
    Topics,
    decode,
    decode_for_kind,
)
from edgefleet_protocol.session import Backoff, InboundMessage, Publication, Session

from edgefleet_cli.config import ClientSettings, CommandRefused, Unreachable
from edgefleet_cli.reach import probe, refused_command, refused_connect

HINT = "is `edgefleet orchestrator run` running? check --broker and --root"

# -- deploy --wait -----------------------------------------------------------------------------


def expected_replicas(manifest: Mapping[str, Any]) -> int | None:
    """The replica count a replicated manifest asks for; ``None`` for daemon apps (their
    count follows the nodes) or when the manifest does not say."""
    replicas = manifest.get("replicas")
    if manifest.get("mode") == "daemon" or isinstance(replicas, bool):
        return None
    return replicas if isinstance(replicas, int) else None


def converged(
    status: AppStatus | None,
    *,
    expected: int | None,
    action: str,
    fresh: bool,
    since_reply_s: float,
    settle_s: float = 2.0,
) -> bool:
    """Whether ``deploy --wait`` may stop: every desired replica runs, none is unplaced.

    After an update the retained status may still describe the previous version, so only a
    status published after the reply (``fresh``) counts, unless none came within
    ``settle_s`` (the orchestrator republishes only statuses that changed).
    """
    if status is None or status.state == "deleted":
        return False
    if action == "updated" and not fresh and since_reply_s < settle_s:
        return False
    if expected is not None and status.desired != expected:
        return False
    return status.state == "healthy" and status.running >= status.desired and not status.unplaced


# -- the fleet view ----------------------------------------------------------------------------


@dataclass
class FleetSnapshot:
    """The latest retained status documents, as read from the broker."""

    orchestrator: OrchestratorStatus | None = None
    summary: FleetSummary | None = None
    apps: dict[str, AppStatus] = field(default_factory=dict)
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[tuple[str, str], NodeStatus] = field(default_factory=dict)
    services: dict[str, ServiceEndpoints] = field(default_factory=dict)
    compliance: dict[tuple[str, str], ComplianceReport] = field(default_factory=dict)
    app_updates: dict[str, int] = field(default_factory=dict)
    """Status messages taken in per app: tells ``deploy --wait`` what arrived after a reply."""
    rejected: int = 0

    def apply(self, topics: Topics, message: InboundMessage) -> bool:
        """Take one status message in; ``True`` if the view changed. Bad ones are counted."""
        try:
            parsed = topics.parse(message.topic)
            gone = not message.payload
            model = None if gone else decode_for_kind(parsed.kind, message.payload)
        except ProtocolError:
            self.rejected += 1
            return False
        match parsed.kind:
            case TopicKind.ORCHESTRATOR_STATUS:
                self.orchestrator = model if isinstance(model, OrchestratorStatus) else None
            case TopicKind.FLEET_SUMMARY:
                self.summary = model if isinstance(model, FleetSummary) else None
            case TopicKind.APP_STATUS if parsed.app is not None:
                self.app_updates[parsed.app] = self.app_updates.get(parsed.app, 0) + 1
                if isinstance(model, AppStatus) and model.state != "deleted":
                    self.apps[parsed.app] = model
                else:
                    self.apps.pop(parsed.app, None)
            case TopicKind.APP_ROLLOUT if parsed.app is not None:
                if model is None:
                    self.rollouts.pop(parsed.app, None)
                else:
                    self.rollouts[parsed.app] = model.model_dump(mode="json", exclude_none=True)
            case TopicKind.NODE_STATUS if parsed.site is not None and parsed.node is not None:
                if isinstance(model, NodeStatus):
                    self.nodes[(parsed.site, parsed.node)] = model
                else:
                    self.nodes.pop((parsed.site, parsed.node), None)
            case TopicKind.NODE_COMPLIANCE if parsed.site and parsed.node:
                key = (parsed.site, parsed.node)
                if isinstance(model, ComplianceReport):
                    self.compliance[key] = model
                else:
                    self.compliance.pop(key, None)
            case TopicKind.SERVICE if parsed.service is not None:
                if isinstance(model, ServiceEndpoints):
                    self.services[parsed.service] = model
                else:  # cleared: the app that offered it was deleted
                    self.services.pop(parsed.service, None)
            case _:
                return False
        return True

    def as_json(self) -> dict[str, Any]:
        def dump(model: Any) -> Any:
            return None if model is None else model.model_dump(mode="json", exclude_none=True)

        return {
            "orchestrator": dump(self.orchestrator),
            "summary": dump(self.summary),
            "apps": [dump(self.apps[name]) for name in sorted(self.apps)],
            "nodes": [dump(self.nodes[key]) for key in sorted(self.nodes)],
        }


def fleet_filters(topics: Topics) -> list[str]:
    """What ``watch`` follows: summary, every app, every node's presence."""
    return [
        topics.fleet_summary(),
        topics.all_app_status(),
        topics.all_nodes(TopicKind.NODE_STATUS),
    ]


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the client --------------------------------------------------------------------------------


class OperatorClient:
    """``async with OperatorClient(settings) as client: reply = await client.call(...)``."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        follow: Sequence[str] = (),
        tap: Callable[[InboundMessage], bool] | None = None,
    ) -> None:
        self.settings = settings
        self._tap = tap
        """Sees every message outside the reply topics first; ``True`` means it took it
        (``events --follow``: the events topics, which the snapshot does not keep)."""
        self.topics = Topics(settings.root)
        self.snapshot = FleetSnapshot()
        self.changed = asyncio.Event()
        self._pending: dict[str, asyncio.Future[CommandReply]] = {}
        self.streams: dict[str, asyncio.Queue[InboundMessage]] = {}
        """Reply topics that carry a stream (logs chunks): their messages queue here."""
        self._heard = asyncio.Event()  # set on every inbound message (for settle)
        self._dispatcher: asyncio.Task[None] | None = None
        self.session = Session(
            settings.broker,
            client_id=f"edgefleet-cli-{settings.user}-{uuid.uuid4().hex[:8]}",
            # The reply subscription last: see the module docstring.
            subscriptions=[
                self.topics.orchestrator_status(),
                *follow,
                f"{settings.reply_prefix}/#",
            ],
            backoff=Backoff(base_s=0.1, cap_s=1.0),
        )

    async def __aenter__(self) -> OperatorClient:
        await probe(self.settings)
        self.session.start()
        try:
            if not await self._connected_or_refused():
                why = self.session.stats.last_error or "no answer to CONNECT"
                raise Unreachable(
                    f"error: no MQTT session with {self.settings.broker.redacted()} ({why}): "
                    "is it an MQTT broker? check the user, password and TLS options of --broker"
                )
        except BaseException:
            await self.session.close()
            raise
        self._dispatcher = asyncio.create_task(self._dispatch(), name="cli-dispatcher")
        return self

    async def _connected_or_refused(self) -> bool:
        """Wait for the session, but stop at once when the broker refuses the credentials
        (CONNACK "not authorised"): retrying cannot help."""
        deadline = time.monotonic() + self.settings.timeout_s
        while time.monotonic() < deadline:
            if await self.session.wait_connected(min(0.05, deadline - time.monotonic())):
                return True
            if (refused := self.session.stats.refused) is not None:
                raise refused_connect(self.settings, refused)
        return False

    async def __aexit__(self, *exc: object) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        await self.session.close()

    async def _dispatch(self) -> None:
        prefix = self.settings.reply_prefix + "/"
        async for message in self.session.messages():
            self._heard.set()
            if message.topic.startswith(prefix):
                stream = self.streams.get(message.topic)
                if stream is not None:
                    stream.put_nowait(message)
                    continue
                future = self._pending.get(message.topic)
                if future is not None and not future.done():
                    try:
                        future.set_result(decode(CommandReply, message.payload))
                    except ProtocolError as exc:
                        future.set_exception(
                            CommandRefused(f"error: unreadable reply on {message.topic}: {exc}")
                        )
                continue
            if self._tap is not None and self._tap(message):
                continue
            if self.snapshot.apply(self.topics, message):
                self.changed.set()
                if self.orchestrator_offline():
                    for future in self._pending.values():
                        if not future.done():
                            future.set_exception(Unreachable(self._offline_line()))

    def orchestrator_offline(self) -> bool:
        status = self.snapshot.orchestrator
        return status is not None and status.state == "offline"

    def _offline_line(self) -> str:
        status = self.snapshot.orchestrator
        since = f" since {when(status.since)}" if status is not None else ""
        return (
            f"error: the orchestrator of {self.settings.root} is offline{since} "
            f"(retained orchestrator/status): {HINT}"
        )

    async def call(
        self, verb: str, args: Mapping[str, Any] | None = None, *, request_id: str | None = None
    ) -> CommandReply:
        """Send one command and return its reply (``ok`` or not). Raises
        :class:`Unreachable` when the orchestrator is offline or does not answer in time."""
        await asyncio.sleep(0)  # give the dispatcher a turn at what already arrived
        if self.orchestrator_offline():
            raise Unreachable(self._offline_line())
        rid = request_id or f"{self.settings.user}-{uuid.uuid4().hex[:16]}"
        reply_to = f"{self.settings.reply_prefix}/{rid}"
        body = {**(args or {}), "v": 1, "request_id": rid, "reply_to": reply_to}
        future: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._pending[reply_to] = future
        topic = self.topics.command(verb, self.settings.operator)
        try:
            sent = await self.session.publish(
                Publication(topic=topic, payload=json.dumps(body).encode())
            )
            refusal = self.session.last_refusal
            if not sent and refusal is not None and refusal[0] == topic:
                raise refused_command(self.settings, verb, refusal[1])
            if not sent:
                raise Unreachable(
                    f"error: lost the broker at {self.settings.broker.redacted()} while "
                    "sending the command: check the broker and retry"
                )
            async with asyncio.timeout(self.settings.timeout_s):
                return await future
        except TimeoutError:
            raise Unreachable(self._silence_line()) from None
        finally:
            self._pending.pop(reply_to, None)

    def _silence_line(self) -> str:
        t = f"{self.settings.timeout_s:g}"
        # Over 3.1.1 a publish the broker's ACL refuses is acknowledged like any other.
        acl = (
            "; over MQTT 3.1.1 a command the broker's ACL refuses looks just like this: "
            "check that this user may send commands"
            if self.session.protocol == "3.1.1"
            else ""
        )
        if self.snapshot.orchestrator is None:
            return (
                f"error: no reply within {t} s, and no orchestrator has ever announced itself "
                f"on {self.settings.root}/orchestrator/status: {HINT}{acl}"
            )
        return (
            f"error: no reply within {t} s although the orchestrator says it is online: "
            f"{HINT}, or retry with a longer --timeout{acl}"
        )

    async def settle(self, *, quiet_s: float = 0.3, max_s: float = 3.0) -> None:
        """Wait until the retained burst is in: no message for ``quiet_s`` (at most ``max_s``).

        There is no end-of-retained marker in MQTT, and the production ACL lets an operator
        publish nothing it could read back as a barrier, so a short quiet period it is.
        """
        deadline = time.monotonic() + max_s
        while (left := deadline - time.monotonic()) > 0:
            self._heard.clear()
            try:
                async with asyncio.timeout(min(quiet_s, left)):
                    await self._heard.wait()
            except TimeoutError:
                return

    async def next_change(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the snapshot to change; ``True`` if it did."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.changed.wait()
        except TimeoutError:
            return False
        self.changed.clear()
        return True
