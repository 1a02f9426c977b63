"""The operator command API: one argument model per verb, and the reply-topic rule.

A command is published to ``<root>/commands/<verb>`` as one JSON object: the envelope of
:class:`~edgefleet_protocol.control_messages.CommandRequest` (``v``, ``request_id``,
``reply_to``) with the verb's arguments beside it, so a Node-RED ``change`` node can build it
as one flat object. :func:`parse_command` splits such a payload into the envelope and the
verb's own args model; the orchestrator calls it for every inbound command, and the tests hold
it to raising nothing but :class:`ProtocolError`.

Replies go only to topics under ``<root>/replies/`` (:func:`check_reply_to`): the production
broker ACLs let an operator read ``<root>/replies/<user>/#`` and nothing else there, so a
request cannot make the orchestrator publish over somebody else's topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Final

import yaml
from pydantic import BaseModel, BeforeValidator, Field, field_validator

from edgefleet_protocol.base import WireModel
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES, parse_json_object, validate
from edgefleet_protocol.control_messages import CommandError, CommandReply, CommandRequest
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.topics import validate_root

MAX_REPLICAS: Final = 10_000
MAX_AUDIT_ROWS: Final = 1000
RECENT_EVENTS: Final = 200
"""How many of its newest events the orchestrator keeps for the ``events`` verb."""


class ErrorCode(StrEnum):
    """The closed set of ``error.code`` values in a failed command reply."""

    BAD_REQUEST = "bad_request"  # payload or arguments break the contract (details: field, reason)
    UNKNOWN_VERB = "unknown_verb"  # no such verb (details: verb, verbs)
    BAD_REPLY_TO = "bad_reply_to"  # reply_to is outside <root>/replies/ (reply goes to events)
    NOT_FOUND = "not_found"  # the named app or node does not exist
    CONFLICT = (
        "conflict"  # the request contradicts the current state (e.g. draining a drained node)
    )
    # The manifest breaks the orchestrator's compliance policy (details: app, violations).
    POLICY_VIOLATION = "policy_violation"
    # The operator's role or scope does not allow it (details: needs, grant).
    FORBIDDEN = "forbidden"
    INTERNAL = "internal"  # the orchestrator failed; the request may be retried with its request_id
    RATE_LIMITED = "rate_limited"  # the client sent commands faster than its limit; not run
    TOO_LARGE = "too_large"  # a desired document would exceed the agent's payload limit


# -- argument models, one per verb ------------------------------------------------------------


def _whole_number(value: Any) -> Any:
    """A JSON integer, or a JSON number with no fraction (``3.0``: JavaScript clients send
    whole numbers so); never a string or a boolean, which a sloppy flow must not turn into
    a count."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


WholeInt = Annotated[int, BeforeValidator(_whole_number)]
"""An integer argument as docs/protocol.md's conventions define it: ``3`` and ``3.0`` are 3;
``3.5``, ``"3"`` and ``true`` are refused."""


class NoArgs(WireModel):
    """``apps`` and ``nodes`` take no arguments (envelope fields are ignored here)."""


class DeployArgs(WireModel):
    """``deploy``: an application manifest, either as an object or as YAML/JSON text.

    Text is parsed here, at the boundary, so the orchestrator always receives an object; the
    manifest's own schema is checked by the orchestrator (with unknown fields refused).
    """

    manifest: dict[str, Any]

    @field_validator("manifest", mode="before")
    @classmethod
    def _text_to_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            return manifest_from_text(value)
        return value


class AppArgs(WireModel):
    """``delete`` and ``app``: one application by id."""

    app: Identifier


class ScaleArgs(WireModel):
    """``scale``: set an app's replica count; 0 keeps the app but runs nothing."""

    app: Identifier
    # `true` or "3" from a sloppy flow must not silently become a replica count; 3.0 is 3.
    replicas: WholeInt = Field(ge=0, le=MAX_REPLICAS)


class NodeArgs(WireModel):
    """``node``, ``cordon`` and ``uncordon``: one node by id."""

    node: Identifier


class DrainArgs(WireModel):
    """``drain``: cordon a node and move its replicas away, at most ``max_unavailable`` of
    an app's replicas at a time (default: the orchestrator's setting, 1)."""

    node: Identifier
    max_unavailable: WholeInt | None = Field(default=None, ge=1, le=MAX_REPLICAS)


class UndoArgs(WireModel):
    """``rollout-undo``: revert the app's rollout in progress, or roll its workload back to
    ``to_revision`` (default: the revision before the current one)."""

    app: Identifier
    to_revision: WholeInt | None = Field(default=None, ge=1, le=2**53 - 1)


class PlanArgs(DeployArgs):
    """``plan``: the same ``manifest`` as ``deploy``; answered with what that deploy would
    change (fields, revision, rollout) and where the replicas would go, changing nothing."""


ROLLOUT_VERBS: dict[str, type[BaseModel]] = {
    "rollout-status": AppArgs,
    "rollout-history": AppArgs,
    "rollout-promote": AppArgs,
    "rollout-pause": AppArgs,
    "rollout-resume": AppArgs,
    "rollout-undo": UndoArgs,
}
"""The staged-rollout verbs (docs/protocol.md, "Rollouts")."""


class AuditArgs(WireModel):
    """``audit``: the newest audit entries (who, verb, target, result, time), newest last;
    only those of ``operator`` when given. Non-admins see only their own."""

    limit: WholeInt = Field(default=50, ge=1, le=MAX_AUDIT_ROWS)
    operator: Identifier | None = None


class EventsArgs(WireModel):
    """``events``: the orchestrator's newest events (it keeps the last
    :data:`RECENT_EVENTS` since it started), oldest first; only those naming ``node`` /
    ``app`` / of ``kind`` when given. Scoped as the operator's grant allows."""

    limit: WholeInt = Field(default=50, ge=1, le=RECENT_EVENTS)
    node: Identifier | None = None
    app: Identifier | None = None
    kind: str | None = Field(default=None, min_length=1, max_length=64)


class SecretSetArgs(WireModel):
    """``secret-set``: store secret ``name``, sealed to the orchestrator's sealing key
    (``orchestrator/status`` ``sealing_key``) by the client: never a value in clear."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    sealed: str = Field(min_length=1, max_length=128 * 1024)


VERBS: dict[str, type[BaseModel]] = {
    "deploy": DeployArgs,
    "plan": PlanArgs,
    "delete": AppArgs,
    "scale": ScaleArgs,
    "apps": NoArgs,
    "app": AppArgs,
    "nodes": NoArgs,
    "node": NodeArgs,
    "cordon": NodeArgs,
    "uncordon": NodeArgs,
    "drain": DrainArgs,
    "audit": AuditArgs,
    "events": EventsArgs,
    "secret-set": SecretSetArgs,
    **ROLLOUT_VERBS,
}
"""Every verb the orchestrator answers, with the model its arguments must satisfy."""


def parse_command(
    verb: str, payload: bytes | bytearray | str, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> tuple[CommandRequest, BaseModel]:
    """Split a command payload into its envelope and the verb's validated arguments.

    The envelope is validated first so that, when only the arguments are wrong, the caller
    already knows the ``request_id`` and ``reply_to`` to answer on: use
    :func:`parse_envelope` for that, then this function.
    """
    args_model = VERBS.get(verb)
    if args_model is None:
        raise ProtocolError(
            "verb", f"unknown command {verb!r}; known verbs: {', '.join(sorted(VERBS))}"
        )
    data = parse_json_object(payload, max_bytes=max_bytes)
    request = validate(CommandRequest, data)
    return request, validate(args_model, data)


def parse_envelope(
    payload: bytes | bytearray | str, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> CommandRequest:
    """Only the envelope of a command: who to answer, even when the arguments are bad."""
    return validate(CommandRequest, parse_json_object(payload, max_bytes=max_bytes))


_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


@dataclass(frozen=True, slots=True)
class Salvage:
    """Who to answer about a command whose envelope was refused, as far as it can be read."""

    request_id: str
    """The payload's ``request_id`` if it is a valid one, else ``"unknown"``."""
    reply_to: str | None
    """The payload's ``reply_to`` if it passes :func:`check_reply_to`, else ``None``."""
    code: ErrorCode
    """``bad_reply_to`` when the refusal is about ``reply_to`` (answered on events only),
    else ``bad_request``."""


def salvage_envelope(
    root: str,
    payload: bytes | bytearray | str,
    refusal: ProtocolError,
    operator: str | None = None,
) -> Salvage:
    """Read what can be read of a command :func:`parse_envelope` refused, so the refusal
    reaches the caller's reply topic whenever one is readable (a bad ``v`` with a good
    ``request_id`` and ``reply_to`` is answered there), and a bad ``reply_to`` is a
    ``bad_reply_to`` whatever else is wrong."""
    if refusal.field == "reply_to":
        code, reply_to = ErrorCode.BAD_REPLY_TO, None
    else:
        code, reply_to = ErrorCode.BAD_REQUEST, None
    try:
        data = parse_json_object(payload)
    except ProtocolError:
        return Salvage("unknown", None, code)
    raw_id = data.get("request_id")
    request_id = raw_id if isinstance(raw_id, str) and _REQUEST_ID.fullmatch(raw_id) else None
    raw_reply = data.get("reply_to")
    if code is ErrorCode.BAD_REQUEST and isinstance(raw_reply, str) and len(raw_reply) <= 512:
        try:
            reply_to = check_reply_to(root, raw_reply, operator)
        except ProtocolError:
            reply_to = None
    return Salvage(request_id or "unknown", reply_to, code)


def check_reply_to(root: str, reply_to: str, operator: str | None = None) -> str:
    """Return ``reply_to`` if it names a plain topic in the sender's reply subtree, else raise.

    The subtree of ``operator`` is ``<root>/replies/<operator>/`` — the only one its broker
    account may read, so nobody can aim a reply (with its payload values) at another
    operator's. Without an operator (an accountless command, dev config) it is the whole of
    ``<root>/replies/``. At least one non-empty level must follow the prefix; no level may
    be empty or a wildcard.
    """
    base = validate_root(root) + "/replies/"
    prefix = base if operator is None else f"{base}{operator}/"
    if not isinstance(reply_to, str) or not reply_to.startswith(prefix):
        raise ProtocolError("reply_to", f"{reply_to!r} must be a topic under {prefix!r}")
    rest = reply_to[len(prefix) :].split("/")
    if any(not level for level in rest):
        raise ProtocolError("reply_to", f"{reply_to!r} has an empty topic level")
    if any(c in reply_to for c in "+#\0"):
        raise ProtocolError("reply_to", "must be a plain topic: no '+', '#' or NUL")
    return reply_to


def resolve_reply_to(
    root: str,
    request: CommandRequest,
    response_topic: str | None = None,
    operator: str | None = None,
) -> str | None:
    """The topic to answer on: ``reply_to`` in the payload, else the MQTT 5 Response Topic.

    ``None`` means "no reply topic" (the command still runs and is audited).
    Raises :class:`ProtocolError` (field ``reply_to``) if the chosen topic breaks the rule
    of :func:`check_reply_to` for ``operator``.
    """
    topic = request.reply_to if request.reply_to is not None else response_topic
    return None if topic is None else check_reply_to(root, topic, operator)


def error_reply(
    request_id: str,
    code: ErrorCode,
    message: str,
    *,
    verb: str | None = None,
    details: dict[str, Any] | None = None,
) -> CommandReply:
    """A failed reply in the documented shape ``{v, request_id, ok:false, error:{...}}``."""
    return CommandReply(
        request_id=request_id,
        verb=verb,
        ok=False,
        error=CommandError(code=code.value, message=message, details=details or {}),
    )


def rejection_reply(request_id: str, verb: str, exc: ProtocolError) -> CommandReply:
    """The reply to a command that :func:`parse_command` refused."""
    code = ErrorCode.UNKNOWN_VERB if exc.field == "verb" else ErrorCode.BAD_REQUEST
    details: dict[str, Any] = exc.as_dict()
    if code is ErrorCode.UNKNOWN_VERB:
        details["verbs"] = sorted(VERBS)
    return error_reply(request_id, code, str(exc), verb=verb, details=details)


# -- manifest text ----------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors/aliases: an alias chain can expand exponentially when the
    object is later serialised (a "billion laughs"), and a self-alias makes a cycle."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in manifests", mark
            )
        return super().compose_node(parent, index)


def manifest_from_text(text: str) -> dict[str, Any]:
    """Parse manifest text (YAML 1.1, which also reads JSON) into a JSON-compatible object.

    Raises ``ValueError`` (which pydantic reports under the ``manifest`` field).
    """
    if not text.strip():
        raise ValueError("manifest text is empty")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(f"manifest is not valid YAML/JSON: {_yaml_reason(exc)}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML's constructors let these through for values such as `2001-02-30` (a date
        # that does not exist); they are still just bad input.
        raise ValueError(f"manifest has a value YAML cannot read: {exc}") from None
    except RecursionError:
        raise ValueError("manifest is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"manifest must be a mapping, got {type(data).__name__}")
    _require_json_compatible(data, "manifest")
    return data


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _require_json_compatible(value: Any, path: str, depth: int = 0) -> None:
    # YAML can produce dates, bytes, sets and non-string keys; none survive a JSON round
    # trip, so refuse them here with their path rather than fail later in a store or reply.
    if depth > 64:
        raise ValueError(f"at {path}: nested more than 64 levels deep")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"at {path}: {value!r} is not a JSON number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _require_json_compatible(item, f"{path}.{i}", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"at {path}: key {key!r} must be a string (quote it)")
            _require_json_compatible(item, f"{path}.{key}", depth + 1)
        return
    raise ValueError(f"at {path}: a {type(value).__name__} is not JSON (quote it as a string)")
