"""The default :class:`~edgefleet_orchestrator.store.base.Store`: one embedded SQLite file.

Who calls it: the orchestrator's service shell, through :func:`open_store` at start.

Invariants:

- One orchestrator per data dir. An exclusive ``flock`` on ``<data-dir>/orchestrator.lock``
  is held from open to close; a second opener is refused rather than left to interleave
  generations with the first. The kernel drops the lock when the process dies, so a crash
  never leaves a stale lock behind.
- Refuse, never repair. A file that is not a SQLite database, fails ``PRAGMA quick_check``,
  belongs to another application, or was written by a newer schema is refused with a
  :class:`~edgefleet_orchestrator.store.base.StoreError` that names the path and what to do. The
  store does not rewrite anything to make an error go away.
- Every write is atomic; ``transaction()`` groups writes (nested blocks become savepoints).
- Generations never go backwards: ``put_generation`` refuses a lower generation, or the same
  generation with a different document, because an agent would ignore or no-op either.

Durability: WAL journal with ``synchronous=FULL`` by default. ``NORMAL`` is the usual WAL
choice and is safe against corruption and against the process crashing, but after a power
cut it may lose the last commits. That is not harmless here: the orchestrator publishes a
desired document right after committing its generation, so a lost commit would let the
next start reissue a generation number the agent already holds with different content (it
would treat it as a no-op) or a lower one (it would ignore it). FULL fsyncs the WAL on each
commit; commits are one per coalesced reconcile pass, so the cost is one fsync per pass
(0.2 ms against 0.1 ms for NORMAL on the development VM's ext4; more on slow flash).
Pass ``synchronous="NORMAL"`` where that trade is acceptable (tests, simulations).

Not thread-safe: use one store from one caller at a time (a worker thread is fine —
the connection is opened with ``check_same_thread=False`` so ``asyncio.to_thread`` works).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Literal

from edgefleet_orchestrator.store.audit import AuditWrites
from edgefleet_orchestrator.store.base import (
    DEFAULT_MAX_REPLIES,
    Assignment,
    Drain,
    RetiringCopy,
    StoreError,
    StoreSnapshot,
)
from edgefleet_orchestrator.store.generations import GenerationRow, write_generations
from edgefleet_orchestrator.store.history import HistoryWrites
from edgefleet_orchestrator.store.schema import (
    APPLICATION_ID,
    LOCK_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    connect,
    make_private,
    migrate,
    prepare,
    refuse_foreign_file,
    reply_key,
    take_lock,
)
from edgefleet_orchestrator.store.snapshot import read_snapshot

__all__ = [
    "APPLICATION_ID",
    "DB_FILE",
    "LOCK_FILE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "SqliteStore",
    "migrate",
    "open_store",
]

DB_FILE = "orchestrator.db"


def open_store(
    data_dir: str | os.PathLike[str],
    *,
    max_replies: int = DEFAULT_MAX_REPLIES,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    clock: Callable[[], float] = time.time,
) -> SqliteStore:
    """Open (creating if needed) the store in ``data_dir``; see :class:`SqliteStore`."""
    directory = Path(data_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create data dir {directory}: {exc.strerror or exc}") from exc
    return SqliteStore(
        directory / DB_FILE, max_replies=max_replies, synchronous=synchronous, clock=clock
    )


class SqliteStore(HistoryWrites, AuditWrites):
    """Durable orchestrator state in one SQLite file; the lock lives beside it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_replies: int = DEFAULT_MAX_REPLIES,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        clock: Callable[[], float] = time.time,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        if max_replies < 1:
            raise ValueError(f"max_replies must be at least 1, got {max_replies}")
        self.path = Path(path)
        self._max_replies = max_replies
        self._clock = clock
        self._depth = 0
        self._lock_fd: int | None = take_lock(self.path.parent)
        self._conn: sqlite3.Connection | None = None
        try:
            refuse_foreign_file(self.path)
            make_private(self.path)
            self._conn = connect(self.path)
            self.schema_version = prepare(self._conn, self.path, migrations, synchronous)
            make_private(self.path)  # the WAL/SHM files prepare() just created
        except BaseException:
            self.close()
            raise

    # -- reads ------------------------------------------------------------------------------

    def load(self) -> StoreSnapshot:
        conn = self._live()
        with self._sql("load"):
            return read_snapshot(conn)

    def get_reply(self, request_id: str, *, operator: str) -> str | None:
        conn = self._live()
        with self._sql("get_reply"):
            row = conn.execute(
                "SELECT reply_json FROM replies WHERE request_id = ?",
                (reply_key(operator, request_id),),
            ).fetchone()
        return None if row is None else str(row[0])

    # -- writes -----------------------------------------------------------------------------

    def put_app(self, name: str, manifest_json: str) -> int:
        _require_json("manifest_json", manifest_json)
        with self._write("put_app") as conn:
            row = conn.execute(
                "SELECT manifest_json, version FROM apps WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] == manifest_json:
                return int(row[1])
            version = 1 if row is None else int(row[1]) + 1
            conn.execute(
                "INSERT INTO apps (name, manifest_json, version, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET manifest_json = excluded.manifest_json,"
                " version = excluded.version, updated_at = excluded.updated_at",
                (name, manifest_json, version, self._clock()),
            )
            return version

    def delete_app(self, name: str) -> bool:
        with self._write("delete_app") as conn:
            # The foreign key cascades too; deleting explicitly keeps that visible here.
            conn.execute("DELETE FROM assignments WHERE app = ?", (name,))
            return conn.execute("DELETE FROM apps WHERE name = ?", (name,)).rowcount > 0

    def replace_assignments(self, app: str, assignments: Iterable[Assignment]) -> None:
        batch = list(assignments)
        strangers = sorted({a.app for a in batch if a.app != app})
        if strangers:
            raise ValueError(f"assignments for app {app!r} name other apps: {strangers}")
        # Counted once (list.count per replica made a 10,000-replica daemon app's pass
        # spend seconds here).
        dupes = sorted(r for r, n in Counter(a.replica for a in batch).items() if n > 1)
        if dupes:
            raise ValueError(f"assignments for app {app!r} repeat replica(s) {dupes}")
        with self._write("replace_assignments") as conn:
            if conn.execute("SELECT 1 FROM apps WHERE name = ?", (app,)).fetchone() is None:
                raise StoreError(f"cannot assign replicas of app {app!r}: it is not stored")
            for a in batch:
                owner = conn.execute(
                    "SELECT app FROM assignments WHERE replica = ? AND app != ?", (a.replica, app)
                ).fetchone()
                if owner is not None:
                    raise StoreError(
                        f"replica {a.replica!r} of app {app!r} is already assigned to app"
                        f" {owner[0]!r}; replica names must be unique"
                    )
            conn.execute("DELETE FROM assignments WHERE app = ?", (app,))
            conn.executemany(
                "INSERT INTO assignments (replica, app, node, site, cpu, memory_mb)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(a.replica, a.app, a.node, a.site, a.cpu, a.memory_mb) for a in batch],
            )

    def put_generation(
        self, node: str, site: str, generation: int, doc_hash: str, doc_json: str
    ) -> None:
        self.put_generations([(node, site, generation, doc_hash, doc_json)])

    def put_generations(self, rows: Sequence[GenerationRow]) -> None:
        for node, _, generation, _, doc_json in rows:
            if generation < 0:
                raise ValueError(f"generation for node {node!r} must be >= 0, got {generation}")
            _require_json("doc_json", doc_json)
        with self._write("put_generations") as conn:
            write_generations(conn, rows)

    def remember_reply(self, request_id: str, verb: str, reply_json: str, *, operator: str) -> str:
        _require_json("reply_json", reply_json)
        key = reply_key(operator, request_id)
        with self._write("remember_reply") as conn:
            conn.execute(
                "INSERT INTO replies (request_id, verb, reply_json, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(request_id) DO NOTHING",
                (key, verb, reply_json, self._clock()),
            )
            # Keep the newest max_replies rows. seq values are contiguous (a new row takes
            # max+1, a duplicate request takes none, only this prune deletes, oldest first),
            # so "max - limit" is the cut; both lookups use the primary key, no scan.
            conn.execute(
                "DELETE FROM replies WHERE seq <= (SELECT MAX(seq) FROM replies) - ?",
                (self._max_replies,),
            )
            row = conn.execute(
                "SELECT reply_json FROM replies WHERE request_id = ?", (key,)
            ).fetchone()
            return str(row[0])

    def set_cordon(self, node: str, cordoned: bool) -> bool:
        with self._write("set_cordon") as conn:
            if cordoned:
                sql = "INSERT INTO cordons (node) VALUES (?) ON CONFLICT(node) DO NOTHING"
            else:
                sql = "DELETE FROM cordons WHERE node = ?"
            return conn.execute(sql, (node,)).rowcount > 0

    def replace_retiring(self, copies: Iterable[RetiringCopy]) -> None:
        batch = sorted(copies, key=lambda c: (c.app, c.replica, c.node))
        keys = [(c.app, c.replica, c.node) for c in batch]
        if len(set(keys)) != len(keys):
            raise ValueError("retiring copies repeat an (app, replica, node)")
        with self._write("replace_retiring") as conn:
            conn.execute("DELETE FROM retiring")
            conn.executemany(
                "INSERT INTO retiring (replica, app, node, site, cpu, memory_mb, to_node, cause,"
                " since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.replica,
                        c.app,
                        c.node,
                        c.site,
                        c.cpu,
                        c.memory_mb,
                        c.to_node,
                        c.cause,
                        c.since,
                    )
                    for c in batch
                ],
            )

    def put_drain(self, drain: Drain) -> None:
        if drain.max_unavailable is not None and drain.max_unavailable < 1:
            raise ValueError(f"max_unavailable must be at least 1, got {drain.max_unavailable}")
        with self._write("put_drain") as conn:
            conn.execute(
                "INSERT INTO drains (node, started_at, max_unavailable) VALUES (?, ?, ?)"
                " ON CONFLICT(node) DO UPDATE SET started_at = excluded.started_at,"
                " max_unavailable = excluded.max_unavailable",
                (drain.node, drain.started_at, drain.max_unavailable),
            )

    def delete_drain(self, node: str) -> bool:
        with self._write("delete_drain") as conn:
            return conn.execute("DELETE FROM drains WHERE node = ?", (node,)).rowcount > 0

    def put_control(self, key: str, value_json: str) -> None:
        _require_json("value_json", value_json)
        with self._write("put_control") as conn:
            conn.execute(
                "INSERT INTO control (key, value_json) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json",
                (key, value_json),
            )

    def delete_control(self, key: str) -> bool:
        with self._write("delete_control") as conn:
            return conn.execute("DELETE FROM control WHERE key = ?", (key,)).rowcount > 0

    # -- transactions and lifetime ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._live()
        depth = self._depth
        savepoint = f"sp{depth}"
        # The outermost block is the real transaction (IMMEDIATE: take the write lock now,
        # not at the first write); inner blocks are savepoints so they can fail alone.
        if depth == 0:
            begin, commit = "BEGIN IMMEDIATE", "COMMIT"
        else:
            begin, commit = f"SAVEPOINT {savepoint}", f"RELEASE {savepoint}"
        with self._sql("begin"):
            conn.execute(begin)
        self._depth = depth + 1
        try:
            yield
        except BaseException:
            self._depth = depth
            self._undo(conn, depth, savepoint)
            raise
        self._depth = depth
        try:
            conn.execute(commit)
        except sqlite3.Error as exc:
            self._undo(conn, depth, savepoint)
            raise StoreError(f"{self.path}: commit failed, nothing was written: {exc}") from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        lock_fd, self._lock_fd = self._lock_fd, None
        try:
            if conn is not None:
                conn.close()
        finally:
            if lock_fd is not None:
                os.close(lock_fd)  # closing the descriptor releases the flock

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        conn = self._live()
        with self.transaction(), self._sql(operation):
            yield conn

    @contextlib.contextmanager
    def _sql(self, operation: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {operation} failed: {exc}") from exc

    @staticmethod
    def _undo(conn: sqlite3.Connection, depth: int, savepoint: str) -> None:
        with contextlib.suppress(sqlite3.Error):  # the original error is the one to report
            if depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")


def _require_json(what: str, text: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be JSON text, got {type(text).__name__}")
    try:
        json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
