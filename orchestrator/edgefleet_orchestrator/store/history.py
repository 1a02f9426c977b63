"""The SQLite side of revisions and rollout state (migration 3), as a mixin of
:class:`~edgefleet_orchestrator.store.sqlite.SqliteStore`.

Kept apart so the store's main module stays readable; the methods follow the same rules
(every write atomic, joins an open transaction). Who calls them: the deploy and rollout
command handlers (revisions) and the pass runner (rollout state, stored with the pass).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from edgefleet_orchestrator.store.base import KEEP_REVISIONS, RevisionRecord, StoreError


class HistoryWrites:
    """Revisions and rollout state; needs the host store's ``_write``/``_live``/``_clock``."""

    _clock: Callable[[], float] = time.time

    def _write(self, operation: str) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _live(self) -> sqlite3.Connection:
        raise NotImplementedError

    def put_revision(self, app: str, manifest_json: str, note: str = "") -> int:
        with self._write("put_revision") as conn:
            if conn.execute("SELECT 1 FROM apps WHERE name = ?", (app,)).fetchone() is None:
                raise StoreError(f"cannot record a revision of app {app!r}: it is not stored")
            row = conn.execute(
                "SELECT MAX(revision) FROM revisions WHERE app = ?", (app,)
            ).fetchone()
            # Numbers keep rising after pruning: a revision number is never reused.
            revision = int(row[0] or 0) + 1
            conn.execute(
                "INSERT INTO revisions (app, revision, manifest_json, created_at, note)"
                " VALUES (?, ?, ?, ?, ?)",
                (app, revision, manifest_json, self._clock(), note),
            )
            conn.execute(
                "DELETE FROM revisions WHERE app = ? AND revision <= ?",
                (app, revision - KEEP_REVISIONS),
            )
            return revision

    def revisions(self, app: str) -> list[RevisionRecord]:
        conn = self._live()
        rows = conn.execute(
            "SELECT app, revision, manifest_json, created_at, note FROM revisions"
            " WHERE app = ? ORDER BY revision",
            (app,),
        ).fetchall()
        return [RevisionRecord(r[0], int(r[1]), r[2], float(r[3]), r[4]) for r in rows]

    def put_rollout(self, app: str, state_json: str) -> None:
        with self._write("put_rollout") as conn:
            conn.execute(
                "INSERT INTO rollouts (app, state_json) VALUES (?, ?)"
                " ON CONFLICT(app) DO UPDATE SET state_json = excluded.state_json",
                (app, state_json),
            )


def read_history(
    conn: sqlite3.Connection,
) -> tuple[dict[str, tuple[RevisionRecord, ...]], dict[str, str]]:
    """Every app's revisions (oldest first) and rollout state, for the snapshot."""
    revisions: dict[str, list[RevisionRecord]] = {}
    for r in conn.execute(
        "SELECT app, revision, manifest_json, created_at, note FROM revisions"
        " ORDER BY app, revision"
    ):
        revisions.setdefault(r[0], []).append(
            RevisionRecord(r[0], int(r[1]), r[2], float(r[3]), r[4])
        )
    rollouts = {str(r[0]): str(r[1]) for r in conn.execute("SELECT app, state_json FROM rollouts")}
    return {a: tuple(rs) for a, rs in revisions.items()}, rollouts
