"""Files that hold manifests, ``env`` values or stored replies are owner-only (issue #12
defect 6): the orchestrator's SQLite file and its WAL/SHM, the agent's store and its
process registry. Created 0600 whatever the umask, and tightened when an older version
left them 0644."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgefleet_agent.runtimes.process_registry import load_registry, save_registry
from edgefleet_agent.store import STORE_FILE, LocalStore
from edgefleet_orchestrator.store.sqlite import DB_FILE, open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual umask, which made these files 0644 before the fix."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_orchestrator_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    store = open_store(tmp_path / "data")
    try:
        store.put_app("a", '{"name": "a"}')
        db = tmp_path / "data" / DB_FILE
        files = [db, db.with_name(DB_FILE + "-wal"), db.with_name(DB_FILE + "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()


def test_an_existing_world_readable_database_is_tightened_on_open(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    db = tmp_path / DB_FILE
    os.chmod(db, 0o644)
    store = open_store(tmp_path)
    try:
        assert mode(db) == 0o600
    finally:
        store.close()


def test_the_agent_store_is_owner_only_and_an_old_one_is_tightened(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.next_session()
    store.close()
    path = tmp_path / STORE_FILE
    assert mode(path) == 0o600
    os.chmod(path, 0o644)
    LocalStore(tmp_path).close()
    assert mode(path) == 0o600


def test_the_process_registry_is_owner_only_and_an_old_one_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "processes.json"
    save_registry(path, "n1", {})
    assert mode(path) == 0o600
    os.chmod(path, 0o644)
    assert load_registry(path, "n1") == {}
    assert mode(path) == 0o600
