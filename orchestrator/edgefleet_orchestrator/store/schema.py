"""The SQLite file's schema and how a file is opened: lock, refusals, migrations.

Split from :mod:`edgefleet_orchestrator.store.sqlite` so the store's read/write methods and the
rules for accepting a file on disk can each be read on one screen. Everything here refuses
rather than repairs; see the invariants in :mod:`~edgefleet_orchestrator.store.sqlite`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgefleet_orchestrator.store.base import StoreError

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
    Migration(
        3,
        "rollouts: the last revisions of each app's workload, each app's rollout state",
        (
            """CREATE TABLE revisions (
                app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
                revision INTEGER NOT NULL,
                manifest_json TEXT NOT NULL,
                created_at REAL NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (app, revision))""",
            """CREATE TABLE rollouts (
                app TEXT PRIMARY KEY REFERENCES apps(name) ON DELETE CASCADE,
                state_json TEXT NOT NULL)""",
        ),
    ),
    Migration(
        4,
        "audit trail: who, verb, target, result and time of every command",
        (
            # seq orders entries by arrival; no payload values are ever stored here.
            """CREATE TABLE audit (
                seq INTEGER PRIMARY KEY,
                ts REAL NOT NULL,
                operator TEXT NOT NULL,
                verb TEXT NOT NULL,
                request_id TEXT NOT NULL,
                ok INTEGER NOT NULL,
                code TEXT,
                target_kind TEXT,
                target TEXT)""",
            "CREATE INDEX audit_by_operator ON audit(operator, seq)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def reply_key(operator: str, request_id: str) -> str:
    """``replies.request_id`` holds ``<operator>/<request_id>`` (neither holds ``/``): one
    namespace per operator. Bare ids stored before operators had names match no lookup."""
    if "/" in operator or "/" in request_id:
        raise ValueError(f"operator {operator!r} and request_id {request_id!r} must not hold '/'")
    return f"{operator}/{request_id}"


# -- opening: lock, refusals, migrations ---------------------------------------------------


def take_lock(directory: Path) -> int:
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


def refuse_foreign_file(path: Path) -> None:
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


PRIVATE_MODE = 0o600
"""The database and its ``-wal``/``-shm`` files hold manifests (``env`` values) and stored
replies: readable by the orchestrator's user only."""


def make_private(path: Path) -> None:
    """Create ``path`` 0600 if it is missing, and tighten it and its WAL/SHM files to 0600.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's mode, so creating the
    database file 0600 before SQLite opens it covers them; files left 0644 by an older
    version are tightened here on every open.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_MODE)
        os.close(fd)
        for suffix in ("", "-wal", "-shm"):
            candidate = path.with_name(path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(candidate, PRIVATE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot make {path} private: {exc.strerror or exc}") from exc


def connect(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (Python's implicit
        # transactions would commit behind a savepoint's back).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}; {_WHAT_TO_DO}") from exc
    return conn


def prepare(
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
