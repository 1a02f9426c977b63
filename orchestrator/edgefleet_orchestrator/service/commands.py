"""Command intake: from a PUBLISH on ``commands/{verb}`` to a reply and an audit event.

Order of checks, each refusal answered where it can be: the envelope (``v``,
``request_id``); the reply topic (``reply_to`` wins over the MQTT 5 Response Topic; a bad
one is answered on events only); idempotency (a known ``request_id`` gets its stored reply
again, not a second run); the verb's arguments; then the handler, in one store
transaction. What each verb does is :mod:`edgefleet_orchestrator.service.handlers`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from edgefleet_protocol import CommandReply, ProtocolError, encode
from edgefleet_protocol.commands import (
    ROLLOUT_VERBS,
    ErrorCode,
    check_reply_to,
    error_reply,
    parse_command,
    parse_envelope,
    rejection_reply,
    resolve_reply_to,
    salvage_envelope,
)
from edgefleet_protocol.session import InboundMessage, Publication, Session

from edgefleet_orchestrator.access.roles import decide, visible
from edgefleet_orchestrator.access.targets import NO_TARGET, Named, access_target, target_of
from edgefleet_orchestrator.service.config import ServiceStats
from edgefleet_orchestrator.service.events import EventPublisher
from edgefleet_orchestrator.service.handlers import CommandFailed, handle
from edgefleet_orchestrator.service.plans import PLAN_VERBS
from edgefleet_orchestrator.service.recent import EVENT_VERBS
from edgefleet_orchestrator.service.rollout_handlers import handle_rollout
from edgefleet_orchestrator.service.secrets import SECRET_VERBS
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import AuditEntry, Store

log = logging.getLogger("edgefleet.orchestrator")

ANONYMOUS = "anonymous"
"""The operator a command comes from when the broker names no user (the dev config)."""

_OWN = {**SECRET_VERBS, **PLAN_VERBS, **EVENT_VERBS}
"""Verbs answered by a handler module of their own rather than :mod:`.handlers`."""


class CommandIntake:
    """Answers commands. ``on_change(placement_changed)`` tells the loop what to redo."""

    def __init__(
        self,
        *,
        root: str,
        session: Session,
        store: Store,
        state: ControlState,
        events: EventPublisher,
        stats: ServiceStats,
        on_change: Callable[[bool], None],
        clock: Callable[[], float],
    ) -> None:
        self._clock = clock
        self._root = root
        self._session = session
        self._store = store
        self._state = state
        self._events = events
        self._stats = stats
        self._on_change = on_change

    async def command(
        self, verb: str, message: InboundMessage, operator: str | None = None
    ) -> None:
        """Answer one command. ``operator`` is the sender named by the topic
        (``commands/{operator}/{verb}``, bound to the account by the broker ACL); ``None``
        for an accountless ``commands/{verb}``, which runs as :data:`ANONYMOUS`."""
        if not message.payload:
            # Someone cleared a command retained by mistake (docs/protocol.md says how):
            # not a command, and nothing went wrong.
            log.debug("cleared retained command on %s", message.topic)
            return
        self._stats.commands += 1
        who = operator or ANONYMOUS
        try:
            envelope = parse_envelope(message.payload)
        except ProtocolError as exc:
            # Answer where the payload still says to, if it can be read (a bad `v` with a
            # good request_id and reply_to); else on an MQTT 5 Response Topic; a bad
            # reply_to itself (bad_reply_to) only on events.
            salvage = salvage_envelope(self._root, message.payload, exc, operator)
            reply = error_reply(
                salvage.request_id, salvage.code, str(exc), verb=verb, details=exc.as_dict()
            )
            if salvage.code is ErrorCode.BAD_REPLY_TO:
                reply_to = None
            else:
                reply_to = salvage.reply_to or self._safe_reply_topic(
                    message.response_topic, operator
                )
            await self._answer(reply, reply_to, message.correlation_data, verb, who)
            return
        try:
            reply_to = resolve_reply_to(self._root, envelope, message.response_topic, operator)
        except ProtocolError as exc:
            reply = error_reply(
                envelope.request_id,
                ErrorCode.BAD_REPLY_TO,
                str(exc),
                verb=verb,
                details=exc.as_dict(),
            )
            await self._answer(reply, None, message.correlation_data, verb, who)
            return
        # request_ids are per operator: one cannot squat another's id, nor replay it to
        # read the other's stored reply.
        earlier = self._store.get_reply(envelope.request_id, operator=who)
        if earlier is not None:
            await self._answer_raw(earlier.encode(), reply_to, message.correlation_data)
            return
        reply, target = self._execute(verb, envelope.request_id, message.payload, who)
        if reply.error is not None and reply.error.code == ErrorCode.INTERNAL:
            # Not remembered: the documented answer to `internal` is a retry with the same
            # request_id, which must run again rather than replay the failure forever.
            stored = encode(reply).decode()
        else:
            stored = self._store.remember_reply(
                envelope.request_id, verb, encode(reply).decode(), operator=who
            )
        await self._answer_raw(stored.encode(), reply_to, message.correlation_data)
        await self._audit(reply, verb, target, who)

    def _safe_reply_topic(self, topic: str | None, operator: str | None) -> str | None:
        if topic is None:
            return None
        try:
            return check_reply_to(self._root, topic, operator)
        except ProtocolError:
            return None

    def _execute(
        self, verb: str, request_id: str, payload: bytes, who: str
    ) -> tuple[CommandReply, Named]:
        try:
            _, args = parse_command(verb, payload)
        except ProtocolError as exc:
            return rejection_reply(request_id, verb, exc), NO_TARGET
        target = target_of(args)
        access = self._state.access
        judged = access_target(args, target, apps=self._state.apps, site_of=self._site_of)
        refusal = decide(access, who, verb, judged)
        if refusal is not None:
            reply = error_reply(
                request_id, ErrorCode.FORBIDDEN, refusal.message, verb=verb, details=refusal.details
            )
            return reply, target
        try:
            with self._store.transaction():
                run = handle_rollout if verb in ROLLOUT_VERBS else _OWN.get(verb, handle)
                outcome = run(verb, args, self._state, self._store)
        except CommandFailed as exc:
            reply = error_reply(request_id, exc.code, exc.message, verb=verb, details=exc.details)
            return reply, target
        except Exception as exc:
            log.exception("command %s failed", verb)
            reply = error_reply(
                request_id, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", verb=verb
            )
            return reply, target
        self._on_change(outcome.placement_changed)
        if verb == "deploy" and outcome.placement_changed:
            # Deploy-to-running starts now (the metrics' histogram; see _note_converged).
            self._stats.deploys_waiting[outcome.result["app"]] = self._state.clock()
        result = visible(access, who, verb, outcome.result)
        reply = CommandReply(request_id=request_id, verb=verb, ok=True, result=result)
        return reply, target

    def _site_of(self, node: str) -> str | None:
        record = self._state.registry.nodes.get(node)
        return record.site if record is not None else None

    async def _answer(
        self,
        reply: CommandReply,
        reply_to: str | None,
        correlation: bytes | None,
        verb: str,
        who: str,
    ) -> None:
        await self._answer_raw(encode(reply), reply_to, correlation)
        await self._audit(reply, verb, NO_TARGET, who)

    async def _audit(self, reply: CommandReply, verb: str, target: Named, who: str) -> None:
        kind, name = target
        entry = AuditEntry(
            ts=self._clock(),
            operator=who,
            verb=verb,
            request_id=reply.request_id,
            ok=reply.ok,
            code=reply.error.code if reply.error is not None else None,
            target_kind=kind,
            target=name,
        )
        try:
            self._store.append_audit(entry)
        except Exception:  # the trail must never cost the command its answer
            log.exception("could not store the audit entry of %s %s", who, verb)
        await self._events.audit(entry)

    async def _answer_raw(
        self, payload: bytes, reply_to: str | None, correlation: bytes | None
    ) -> None:
        if reply_to is not None:
            await self._session.publish(
                Publication(
                    topic=reply_to,
                    payload=payload,
                    qos=1,
                    retain=False,
                    correlation_data=correlation,
                )
            )
