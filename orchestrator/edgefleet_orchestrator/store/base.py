"""The ``Store`` seam: the orchestrator's durable state, and the records it holds.

Who calls it: the orchestrator's service shell loads a :class:`StoreSnapshot` at start and
writes through the :class:`Store` after each reconcile pass and each command. The default
implementation is :class:`~edgefleet_orchestrator.store.sqlite.SqliteStore` (embedded SQLite
in WAL mode); a scale-out backend (PostgreSQL) implements the same protocol.

What is durable, and why only this:

- apps — the current manifest of each app as JSON text. The manifest is authoritative: a
  ``scale`` command rewrites the manifest's replica count and stores the whole manifest
  again, so there is never a second, disagreeing copy of the spec.
- assignments — which replica runs on which node, with the resources it reserved, so a
  restart keeps every replica where it runs instead of shuffling the fleet.
- per-node desired generation — the generation, hash and text of the last desired document
  published to each node. Generations must never go backwards (an agent ignores a lower
  one), so they have to survive restarts; the text lets the orchestrator republish every
  document on start without trusting broker persistence.
- command replies by operator and ``request_id`` — so a retried command gets its first
  reply again instead of running twice (bounded; the oldest are pruned). Each operator has
  its own namespace, so nobody can squat or replay another operator's ``request_id``.
- cordon flags — an operator's decision outlives the orchestrator process.
- drains — like cordons, an operator's decision; the node's drain goes on after a restart.
- retiring copies — the old copy of each replica moving make-before-break, so a restart
  neither stops it before its replacement runs nor forgets to stop it afterwards.
- revisions — the last :data:`KEEP_REVISIONS` manifests of each app whose workload
  changed, numbered 1, 2, … (``rollout history``/``undo`` read them).
- rollouts — each app's current or last rollout state (JSON), so a restarted orchestrator
  continues a rollout where it stopped.
- the audit trail — who ran which verb on what, with what result and when, for every
  command (never its arguments or reply); bounded, the oldest pruned.
- control state — small JSON documents by key: the autoscaler's last change per app (so a
  restart does not reopen a cooldown) and when each sized replica was last resized.

Live node state (presence, telemetry) is deliberately not stored: it is rebuilt from the
broker within a heartbeat and would be stale on disk anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol

# The store keeps placement's own record of a replica on a node: one type, no conversions.
from edgefleet_orchestrator.placement.model import Assignment as Assignment

DEFAULT_MAX_REPLIES = 10_000
"""How many command replies are kept for idempotency before the oldest are pruned."""


KEEP_REVISIONS = 10
"""How many revisions of an app are kept; older ones are pruned (``undo`` lists the rest)."""


class StoreError(Exception):
    """The store cannot be used as asked: the message says what is wrong and what to do.

    Raised for refusals at open (not a database, corrupt, newer schema, already in use) and
    for writes the backend refused (disk full, a generation going backwards). The store
    never repairs or rewrites data to make an error go away.
    """


@dataclass(frozen=True, slots=True)
class AppRecord:
    """An app's current manifest. ``version`` rises by one each time the manifest text
    changes (storing the same text again is a no-op)."""

    name: str
    manifest_json: str
    version: int
    updated_at: float


@dataclass(frozen=True, slots=True)
class RetiringCopy:
    """The old copy of a replica that moves make-before-break: it stays in ``node``'s
    desired document until the replacement runs on ``to_node``."""

    replica: str
    app: str
    node: str
    site: str
    cpu: float
    memory_mb: int
    to_node: str
    cause: str
    since: float


@dataclass(frozen=True, slots=True)
class Drain:
    """An operator's drain of ``node`` (``max_unavailable`` ``None``: each app's own)."""

    node: str
    started_at: float
    max_unavailable: int | None = None


@dataclass(frozen=True, slots=True)
class NodeGeneration:
    """The last desired document published to a node."""

    node: str
    site: str
    generation: int
    doc_hash: str
    doc_json: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One command's outcome for the audit trail: who, verb, target, result, time.

    Deliberately without arguments, results or error messages: those can quote payload
    values (a manifest's ``env``), and the trail is read more widely than replies are.
    ``operator`` is the broker user the command came from (its topic says so, never its
    payload); ``code`` is the error code of a refusal, ``None`` when it succeeded.
    """

    ts: float
    operator: str
    verb: str
    request_id: str
    ok: bool
    code: str | None = None
    target_kind: Literal["app", "node"] | None = None
    target: str | None = None
    seq: int = 0
    """The store's order of arrival (0 until stored)."""

    @property
    def result(self) -> str:
        return "ok" if self.ok else (self.code or "failed")

    def as_details(self) -> dict[str, object]:
        """The entry as the JSON object of ``edgefleet audit`` rows and audit events."""
        return {
            "ts": self.ts,
            "operator": self.operator,
            "verb": self.verb,
            "request_id": self.request_id,
            "target_kind": self.target_kind,
            "target": self.target,
            "ok": self.ok,
            "result": self.result,
        }


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    """One revision of an app: the manifest deployed when its workload changed."""

    app: str
    revision: int
    manifest_json: str
    created_at: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """Everything durable, read in one consistent transaction. Mappings are read-only."""

    apps: Mapping[str, AppRecord] = field(default_factory=lambda: MappingProxyType({}))
    assignments: Mapping[str, Assignment] = field(default_factory=lambda: MappingProxyType({}))
    generations: Mapping[str, NodeGeneration] = field(default_factory=lambda: MappingProxyType({}))
    cordoned: frozenset[str] = frozenset()
    retiring: tuple[RetiringCopy, ...] = ()
    drains: Mapping[str, Drain] = field(default_factory=lambda: MappingProxyType({}))
    control: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    revisions: Mapping[str, tuple[RevisionRecord, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    rollouts: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def assignments_of(self, app: str) -> list[Assignment]:
        """The app's assignments, ordered by replica name."""
        return sorted(
            (a for a in self.assignments.values() if a.app == app), key=lambda a: a.replica
        )


class Store(Protocol):
    """Durable orchestrator state. Implementations are used from one caller at a time.

    Every mutating call is atomic on its own. Inside ``with store.transaction():`` the calls
    join one transaction that commits when the block ends and rolls back if it raises, so
    one reconcile pass is written whole or not at all. Transactions nest (an inner block
    that raises undoes only its own writes if the outer block catches the error).
    """

    def load(self) -> StoreSnapshot:
        """Everything durable, as of now (including uncommitted writes of an open
        transaction)."""
        ...

    def put_app(self, name: str, manifest_json: str) -> int:
        """Store the app's current manifest; return its version."""
        ...

    def delete_app(self, name: str) -> bool:
        """Delete the app and its assignments; return whether it existed."""
        ...

    def replace_assignments(self, app: str, assignments: Iterable[Assignment]) -> None:
        """Make ``assignments`` the app's complete set of assignments."""
        ...

    def put_generation(
        self, node: str, site: str, generation: int, doc_hash: str, doc_json: str
    ) -> None:
        """Record the desired document published to ``node``. Refuses (``StoreError``) a
        generation lower than the stored one, or the same generation with another hash."""
        ...

    def put_generations(self, rows: Sequence[tuple[str, str, int, str, str]]) -> None:
        """:meth:`put_generation` for each ``(node, site, generation, doc_hash, doc_json)``
        in order, atomically: all are recorded or (refused, ``StoreError``) none."""
        ...

    def remember_reply(self, request_id: str, verb: str, reply_json: str, *, operator: str) -> str:
        """Keep a command's reply for idempotency; return the reply on record (the first
        one stored for this ``operator`` and ``request_id`` wins). Each operator has its
        own ``request_id`` namespace."""
        ...

    def get_reply(self, request_id: str, *, operator: str) -> str | None:
        """The reply on record for ``operator``'s ``request_id``, or ``None``."""
        ...

    def set_cordon(self, node: str, cordoned: bool) -> bool:
        """Set the node's cordon flag; return whether it changed."""
        ...

    def replace_retiring(self, copies: Iterable[RetiringCopy]) -> None:
        """Make ``copies`` the complete set of retiring copies (every app's)."""
        ...

    def put_drain(self, drain: Drain) -> None:
        """Record (or replace) the drain of ``drain.node``."""
        ...

    def delete_drain(self, node: str) -> bool:
        """Forget the node's drain; return whether there was one."""
        ...

    def put_control(self, key: str, value_json: str) -> None:
        """Store one control-state document (JSON text) under ``key``."""
        ...

    def delete_control(self, key: str) -> bool:
        """Delete one control-state document; return whether it existed."""
        ...

    def put_revision(self, app: str, manifest_json: str, note: str = "") -> int:
        """Record a new revision of the stored app (the next number); prune all but the
        newest :data:`KEEP_REVISIONS`; return its number."""
        ...

    def revisions(self, app: str) -> list[RevisionRecord]:
        """The app's kept revisions, oldest first."""
        ...

    def put_rollout(self, app: str, state_json: str) -> None:
        """Store the app's rollout state (JSON text), replacing the previous one."""
        ...

    def append_audit(self, entry: AuditEntry) -> int:
        """Append one command's audit entry; return its sequence number (oldest pruned)."""
        ...

    def audit_entries(self, *, limit: int, operator: str | None = None) -> list[AuditEntry]:
        """The newest ``limit`` audit entries (of ``operator`` only, when given), oldest
        first."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Group the calls made inside the block into one atomic transaction."""
        ...

    def close(self) -> None:
        """Release the store (and its lock). Idempotent."""
        ...
