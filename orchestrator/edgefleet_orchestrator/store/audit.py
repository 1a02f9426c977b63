"""The SQLite side of the audit trail (migration 4), as a mixin of
:class:`~edgefleet_orchestrator.store.sqlite.SqliteStore`.

Who calls it: the command intake appends one entry per command answered (who, verb,
target, result, time — never arguments or replies, which can hold payload values); the
``audit`` verb reads them. Bounded like the stored replies: the oldest are pruned.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager

from edgefleet_orchestrator.store.base import AuditEntry

DEFAULT_MAX_AUDIT = 100_000
"""How many audit entries are kept before the oldest are pruned."""


class AuditWrites:
    """Audit entries; needs the host store's ``_write``/``_live``."""

    _max_audit: int = DEFAULT_MAX_AUDIT

    def _write(self, operation: str) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _live(self) -> sqlite3.Connection:
        raise NotImplementedError

    def append_audit(self, entry: AuditEntry) -> int:
        with self._write("append_audit") as conn:
            cursor = conn.execute(
                "INSERT INTO audit (ts, operator, verb, request_id, ok, code, target_kind,"
                " target) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.ts,
                    entry.operator,
                    entry.verb,
                    entry.request_id,
                    int(entry.ok),
                    entry.code,
                    entry.target_kind,
                    entry.target,
                ),
            )
            seq = int(cursor.lastrowid or 0)
            conn.execute("DELETE FROM audit WHERE seq <= ?", (seq - self._max_audit,))
            return seq

    def audit_entries(self, *, limit: int, operator: str | None = None) -> list[AuditEntry]:
        conn = self._live()
        where, params = ("WHERE operator = ?", (operator,)) if operator else ("", ())
        rows = conn.execute(
            "SELECT seq, ts, operator, verb, request_id, ok, code, target_kind, target"
            f" FROM audit {where} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [
            AuditEntry(
                seq=int(r[0]),
                ts=float(r[1]),
                operator=str(r[2]),
                verb=str(r[3]),
                request_id=str(r[4]),
                ok=bool(r[5]),
                code=r[6],
                target_kind=r[7],
                target=r[8],
            )
            for r in reversed(rows)
        ]
