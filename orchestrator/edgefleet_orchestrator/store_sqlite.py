"""The default :class:`~edgefleet_orchestrator.store.Store`: one embedded SQLite file.

Who calls it: the orchestrator's service shell, through :func:`open_store` at start.

Invariants:

- One orchestrator per data dir. An exclusive ``flock`` on ``<data-dir>/orchestrator.lock``
  is held from open to close; a second opener is refused rather than left to interleave
  generations with the first. The kernel drops the lock when the process dies, so a crash
  never leaves a stale lock behind.
- Refuse, never repair. A file that is not a SQLite database, fails ``PRAGMA quick_check``,
  belongs to another application, or was written by a newer schema is refused with a
  :class:`~edgefleet_orchestrator.store.StoreError` that names the path and what to do. The
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
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from edgefleet_orchestrator.store import (
    DEFAULT_MAX_REPLIES,
    AppRecord,
    Assignment,
    Drain,
    NodeGeneration,
    RetiringCopy,
    StoreError,
    StoreSnapshot,
)

DB_FILE = "orchestrator.db"
LOCK_FILE = "orchestrator.lock"
APPLICATION_ID = 0x45464C54  # "EFLT": marks the file as ours in the SQLite header
_SQLITE_MAGIC = b"SQLite format 3\x00"
_WHAT_TO_DO = (
    "restore it from a backup, or start with an empty data dir (apps must then be redeployed)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. Steps run in order, each in its own transaction together with the
    ``user_version`` bump, so a failed step leaves the previous version intact."""

    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "apps, assignments, generations, command replies, cordons",
        (
            """CREATE TABLE apps (
                name TEXT PRIMARY KEY,
                manifest_json TEXT NOT NULL,
                version INTEGER NOT NULL,
                updated_at REAL NOT NULL)""",
            """CREATE TABLE assignments (
                replica TEXT PRIMARY KEY,
                app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
                node TEXT NOT NULL,
                site TEXT NOT NULL,
                cpu REAL NOT NULL,
                memory_mb INTEGER NOT NULL)""",
            "CREATE INDEX assignments_by_app ON assignments(app)",
            """CREATE TABLE generations (
                node TEXT PRIMARY KEY,
                site TEXT NOT NULL,
                generation INTEGER NOT NULL,
                doc_hash TEXT NOT NULL,
                doc_json TEXT NOT NULL)""",
            # seq orders replies by arrival, so pruning "the oldest" never depends on clocks.
            """CREATE TABLE replies (
                seq INTEGER PRIMARY KEY,
                request_id TEXT NOT NULL UNIQUE,
                verb TEXT NOT NULL,
                reply_json TEXT NOT NULL,
                created_at REAL NOT NULL)""",
            "CREATE TABLE cordons (node TEXT PRIMARY KEY)",
        ),
    ),
    Migration(
        2,
        "scaling: retiring copies, drains, control state",
        (
            # A retiring copy shares its replica name with the moved assignment (on another
            # node), so the key is (app, replica, node), not the replica alone.
            """CREATE TABLE retiring (
                app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
                replica TEXT NOT NULL,
                node TEXT NOT NULL,
                site TEXT NOT NULL,
                cpu REAL NOT NULL,
                memory_mb INTEGER NOT NULL,
                to_node TEXT NOT NULL,
                cause TEXT NOT NULL,
                since REAL NOT NULL,
                PRIMARY KEY (app, replica, node))""",
            """CREATE TABLE drains (
                node TEXT PRIMARY KEY,
                started_at REAL NOT NULL,
                max_unavailable INTEGER)""",
            "CREATE TABLE control (key TEXT PRIMARY KEY, value_json TEXT NOT NULL)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


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


class SqliteStore:
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
        self._lock_fd: int | None = _take_lock(self.path.parent)
        self._conn: sqlite3.Connection | None = None
        try:
            _refuse_foreign_file(self.path)
            self._conn = _connect(self.path)
            self.schema_version = _prepare(self._conn, self.path, migrations, synchronous)
        except BaseException:
            self.close()
            raise

    # -- reads ------------------------------------------------------------------------------

    def load(self) -> StoreSnapshot:
        conn = self._live()
        with self._sql("load"):
            apps = {
                r[0]: AppRecord(name=r[0], manifest_json=r[1], version=r[2], updated_at=r[3])
                for r in conn.execute("SELECT name, manifest_json, version, updated_at FROM apps")
            }
            assignments = {
                r[0]: Assignment(
                    replica=r[0], app=r[1], node=r[2], site=r[3], cpu=r[4], memory_mb=r[5]
                )
                for r in conn.execute(
                    "SELECT replica, app, node, site, cpu, memory_mb FROM assignments"
                )
            }
            generations = {
                r[0]: NodeGeneration(
                    node=r[0], site=r[1], generation=r[2], doc_hash=r[3], doc_json=r[4]
                )
                for r in conn.execute(
                    "SELECT node, site, generation, doc_hash, doc_json FROM generations"
                )
            }
            cordoned = frozenset(r[0] for r in conn.execute("SELECT node FROM cordons"))
            retiring = tuple(
                RetiringCopy(
                    replica=r[0],
                    app=r[1],
                    node=r[2],
                    site=r[3],
                    cpu=r[4],
                    memory_mb=r[5],
                    to_node=r[6],
                    cause=r[7],
                    since=r[8],
                )
                for r in conn.execute(
                    "SELECT replica, app, node, site, cpu, memory_mb, to_node, cause, since"
                    " FROM retiring ORDER BY app, replica, node"
                )
            )
            drains = {
                r[0]: Drain(node=r[0], started_at=r[1], max_unavailable=r[2])
                for r in conn.execute("SELECT node, started_at, max_unavailable FROM drains")
            }
            control = {
                str(r[0]): str(r[1]) for r in conn.execute("SELECT key, value_json FROM control")
            }
        return StoreSnapshot(
            apps=MappingProxyType(apps),
            assignments=MappingProxyType(assignments),
            generations=MappingProxyType(generations),
            cordoned=cordoned,
            retiring=retiring,
            drains=MappingProxyType(drains),
            control=MappingProxyType(control),
        )

    def get_reply(self, request_id: str) -> str | None:
        conn = self._live()
        with self._sql("get_reply"):
            row = conn.execute(
                "SELECT reply_json FROM replies WHERE request_id = ?", (request_id,)
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
        replicas = [a.replica for a in batch]
        dupes = sorted({r for r in replicas if replicas.count(r) > 1})
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
        if generation < 0:
            raise ValueError(f"generation for node {node!r} must be >= 0, got {generation}")
        _require_json("doc_json", doc_json)
        with self._write("put_generation") as conn:
            row = conn.execute(
                "SELECT generation, doc_hash FROM generations WHERE node = ?", (node,)
            ).fetchone()
            if row is not None:
                stored, stored_hash = int(row[0]), str(row[1])
                if generation < stored:
                    raise StoreError(
                        f"generation for node {node!r} would go backwards ({generation} <"
                        f" {stored}); the agent would ignore that document"
                    )
                if generation == stored and doc_hash != stored_hash:
                    raise StoreError(
                        f"generation {generation} for node {node!r} is already stored with"
                        " another document; a changed document needs a higher generation"
                    )
            conn.execute(
                "INSERT INTO generations (node, site, generation, doc_hash, doc_json)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(node) DO UPDATE SET site = excluded.site,"
                " generation = excluded.generation, doc_hash = excluded.doc_hash,"
                " doc_json = excluded.doc_json",
                (node, site, generation, doc_hash, doc_json),
            )

    def remember_reply(self, request_id: str, verb: str, reply_json: str) -> str:
        _require_json("reply_json", reply_json)
        with self._write("remember_reply") as conn:
            conn.execute(
                "INSERT INTO replies (request_id, verb, reply_json, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(request_id) DO NOTHING",
                (request_id, verb, reply_json, self._clock()),
            )
            # Keep the newest max_replies rows. seq values are contiguous (a new row takes
            # max+1, a duplicate request takes none, only this prune deletes, oldest first),
            # so "max - limit" is the cut; both lookups use the primary key, no scan.
            conn.execute(
                "DELETE FROM replies WHERE seq <= (SELECT MAX(seq) FROM replies) - ?",
                (self._max_replies,),
            )
            row = conn.execute(
                "SELECT reply_json FROM replies WHERE request_id = ?", (request_id,)
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


# -- opening: lock, refusals, migrations ---------------------------------------------------


def _take_lock(directory: Path) -> int:
    lock_path = directory / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {lock_path}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        by = f" (pid {holder})" if holder.isdigit() else ""
        raise StoreError(
            f"another orchestrator is using {directory}{by}: stop it, or give this one another"
            " data dir"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StoreError(f"cannot lock {lock_path}: {exc.strerror or exc}") from exc
    # The pid is only for the message above; the flock is what excludes.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _refuse_foreign_file(path: Path) -> None:
    # Checked before SQLite sees the file: an empty file is a new database to SQLite, but a
    # file with any other bytes must at least carry the SQLite header.
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database; {_WHAT_TO_DO}")


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (Python's implicit
        # transactions would commit behind a savepoint's back).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}; {_WHAT_TO_DO}") from exc
    return conn


def _prepare(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration], synchronous: str
) -> int:
    try:
        problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is corrupt or not a database ({exc}); {_WHAT_TO_DO}") from exc
    if problems != ["ok"]:
        detail = "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
        raise StoreError(f"{path} is corrupt (quick_check: {detail}); {_WHAT_TO_DO}")
    try:
        _refuse_unknown_schema(conn, path, migrations)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite refused WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        return migrate(conn, path, migrations)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot prepare {path}: {exc}") from exc


def _refuse_unknown_schema(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]
) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    supported = migrations[-1].version if migrations else 0
    if app_id != APPLICATION_ID and (app_id != 0 or version != 0 or tables):
        raise StoreError(
            f"{path} is a SQLite database but not an edgefleet store (application_id"
            f" {app_id:#x}, tables {sorted(tables)}); point the orchestrator at its own data dir"
        )
    if version > supported:
        raise StoreError(
            f"{path} was created by a newer edgefleet (schema {version} > {supported});"
            " upgrade edgefleet or use another data dir"
        )


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> int:
    """Apply every step above the file's ``user_version``, in order; return the version.

    Each step and its version bump commit together, so an interrupted upgrade resumes at
    the failed step next time instead of half-applying it.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for step in migrations:
        if step.version <= current:
            continue
        if step.version != current + 1:
            raise StoreError(f"migration list skips from {current} to {step.version}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in step.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {step.version}")
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(
                    f"{path}: schema migration to {step.version} ({step.summary}) failed, the"
                    f" file is still at {current}: {exc}"
                ) from exc
            raise
        current = step.version
    return current


def _require_json(what: str, text: str) -> None:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be JSON text, got {type(text).__name__}")
    try:
        json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
