"""The SQLite store on real files: round trips, refusals, migrations, locking, atomicity."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edgefleet_orchestrator.store.base import (
    DEFAULT_MAX_REPLIES,
    Assignment,
    NodeGeneration,
    Store,
    StoreError,
)
from edgefleet_orchestrator.store.sqlite import (
    DB_FILE,
    LOCK_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SqliteStore,
    open_store,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def manifest(name: str, replicas: int = 1) -> str:
    return json.dumps({"name": name, "replicas": replicas, "image": "nginx:1.27"})


def assignment(replica: str, app: str, node: str = "n1", site: str = "s1") -> Assignment:
    return Assignment(replica=replica, app=app, node=node, site=site, cpu=0.25, memory_mb=64)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SqliteStore]:
    opened = open_store(data_dir, synchronous="NORMAL")
    yield opened
    opened.close()


def fill(store: SqliteStore) -> None:
    store.put_app("web", manifest("web", 2))
    store.put_app("db", manifest("db"))
    store.replace_assignments("web", [assignment("web-0", "web"), assignment("web-1", "web", "n2")])
    store.replace_assignments("db", [assignment("db-0", "db", "n3", "s2")])
    store.put_generation("n1", "s1", 4, "h4", '{"generation": 4}')
    store.put_generation("n3", "s2", 1, "h1", '{"generation": 1}')
    store.remember_reply("req-1", "deploy", '{"ok": true}', operator="op")
    store.set_cordon("n2", True)


# -- round trips -----------------------------------------------------------------------------


def test_everything_written_is_read_back_after_reopening(data_dir: Path) -> None:
    clock = Clock(1_234.5)
    with open_store(data_dir, clock=clock) as first:
        fill(first)
        before = first.load()
    with open_store(data_dir) as second:
        after = second.load()
        assert second.get_reply("req-1", operator="op") == '{"ok": true}'
    assert after == before
    assert dict(after.apps)["web"].manifest_json == manifest("web", 2)
    assert after.apps["web"].updated_at == 1_234.5
    assert [a.replica for a in after.assignments_of("web")] == ["web-0", "web-1"]
    assert after.assignments["db-0"] == assignment("db-0", "db", "n3", "s2")
    assert after.generations["n1"] == NodeGeneration("n1", "s1", 4, "h4", '{"generation": 4}')
    assert after.cordoned == frozenset({"n2"})


def test_the_sqlite_store_works_through_the_seam_alone(store: SqliteStore) -> None:
    seam: Store = store  # mypy checks that SqliteStore satisfies the protocol
    with seam.transaction():
        assert seam.put_app("web", manifest("web")) == 1
        seam.replace_assignments("web", [assignment("web-0", "web")])
    assert seam.load().assignments_of("web") == [assignment("web-0", "web")]


def test_a_new_data_dir_is_created_and_opens_empty(tmp_path: Path) -> None:
    with open_store(tmp_path / "a" / "b") as store:
        snapshot = store.load()
    assert (tmp_path / "a" / "b" / DB_FILE).is_file()
    assert (snapshot.apps, snapshot.assignments, snapshot.generations) == ({}, {}, {})
    assert snapshot.cordoned == frozenset()


def test_the_database_is_in_wal_mode(store: SqliteStore, data_dir: Path) -> None:
    store.put_app("web", manifest("web"))
    with sqlite3.connect(data_dir / DB_FILE) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    other.close()
    assert (data_dir / (DB_FILE + "-wal")).exists()


def test_app_version_rises_only_when_the_manifest_text_changes(data_dir: Path) -> None:
    clock = Clock(10.0)
    with open_store(data_dir, clock=clock, synchronous="NORMAL") as store:
        assert store.put_app("web", manifest("web", 1)) == 1
        clock.now = 20.0
        assert store.put_app("web", manifest("web", 1)) == 1
        assert store.load().apps["web"].updated_at == 10.0
        assert store.put_app("web", manifest("web", 3)) == 2
        record = store.load().apps["web"]
    assert (record.version, record.updated_at, record.manifest_json) == (
        2,
        20.0,
        manifest("web", 3),
    )


def test_deleting_an_app_deletes_only_its_assignments(store: SqliteStore) -> None:
    fill(store)
    assert store.delete_app("web") is True
    assert store.delete_app("web") is False
    snapshot = store.load()
    assert set(snapshot.apps) == {"db"}
    assert set(snapshot.assignments) == {"db-0"}


def test_replacing_assignments_swaps_the_whole_set_of_one_app(store: SqliteStore) -> None:
    fill(store)
    store.replace_assignments("web", [assignment("web-2", "web", "n9")])
    snapshot = store.load()
    assert [a.replica for a in snapshot.assignments_of("web")] == ["web-2"]
    assert set(snapshot.assignments) == {"web-2", "db-0"}
    store.replace_assignments("web", [])
    assert store.load().assignments_of("web") == []


@pytest.mark.parametrize(
    ("batch", "error", "match"),
    [
        ([assignment("x-0", "other")], ValueError, "name other apps"),
        ([assignment("web-0", "web"), assignment("web-0", "web")], ValueError, "repeat replica"),
        ([assignment("db-0", "web")], StoreError, "already assigned to app 'db'"),
    ],
    ids=["foreign app", "duplicate replica", "replica owned by another app"],
)
def test_bad_assignment_batches_are_refused_and_change_nothing(
    store: SqliteStore, batch: list[Assignment], error: type[Exception], match: str
) -> None:
    fill(store)
    before = store.load()
    with pytest.raises(error, match=match):
        store.replace_assignments("web", batch)
    assert store.load() == before


def test_assignments_of_an_unknown_app_are_refused(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="'ghost': it is not stored"):
        store.replace_assignments("ghost", [assignment("ghost-0", "ghost")])


@pytest.mark.parametrize(
    ("generation", "doc_hash", "match"),
    [
        (3, "h3", r"would go backwards \(3 < 4\)"),
        (4, "other", "already stored with another document"),
    ],
    ids=["lower generation", "same generation, other document"],
)
def test_a_generation_never_goes_backwards_or_changes_under_the_same_number(
    store: SqliteStore, generation: int, doc_hash: str, match: str
) -> None:
    store.put_generation("n1", "s1", 4, "h4", "{}")
    with pytest.raises(StoreError, match=match):
        store.put_generation("n1", "s1", generation, doc_hash, '{"x": 1}')
    assert store.load().generations["n1"] == NodeGeneration("n1", "s1", 4, "h4", "{}")


def test_the_same_generation_and_document_again_is_a_no_op_and_a_higher_one_replaces(
    store: SqliteStore,
) -> None:
    store.put_generation("n1", "s1", 4, "h4", "{}")
    store.put_generation("n1", "s1", 4, "h4", "{}")
    store.put_generation("n1", "s1", 5, "h5", '{"g": 5}')
    assert store.load().generations["n1"] == NodeGeneration("n1", "s1", 5, "h5", '{"g": 5}')


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.put_app("web", "{not json"), "manifest_json is not valid JSON"),
        (lambda s: s.put_generation("n", "s", 1, "h", ""), "doc_json is not valid JSON"),
        (lambda s: s.put_generation("n", "s", -1, "h", "{}"), "must be >= 0"),
        (
            lambda s: s.remember_reply("r", "v", "nope", operator="op"),
            "reply_json is not valid JSON",
        ),
    ],
    ids=["manifest", "document", "negative generation", "reply"],
)
def test_malformed_arguments_are_refused_with_the_field_named(
    store: SqliteStore, call: object, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        call(store)  # type: ignore[operator]
    assert store.load().apps == {}


def test_cordon_flags_report_whether_they_changed(store: SqliteStore) -> None:
    assert store.set_cordon("n1", True) is True
    assert store.set_cordon("n1", True) is False
    assert store.load().cordoned == frozenset({"n1"})
    assert store.set_cordon("n1", False) is True
    assert store.set_cordon("n1", False) is False
    assert store.load().cordoned == frozenset()


# -- command replies -------------------------------------------------------------------------


def test_the_first_reply_for_a_request_id_is_the_one_kept(store: SqliteStore) -> None:
    assert store.get_reply("req-1", operator="op") is None
    assert store.remember_reply("req-1", "deploy", '{"ok": true}', operator="op") == '{"ok": true}'
    assert store.remember_reply("req-1", "deploy", '{"ok": false}', operator="op") == '{"ok": true}'
    assert store.get_reply("req-1", operator="op") == '{"ok": true}'


def test_each_operator_has_its_own_request_id_namespace(store: SqliteStore) -> None:
    # #12 defect 5: bob reusing alice's request_id neither squats it nor reads her reply.
    store.remember_reply("r-1", "deploy", '{"who": "alice"}', operator="alice")
    assert store.get_reply("r-1", operator="bob") is None
    assert store.remember_reply("r-1", "apps", '{"who": "bob"}', operator="bob") == (
        '{"who": "bob"}'
    )
    assert store.get_reply("r-1", operator="alice") == '{"who": "alice"}'


def test_replies_beyond_the_limit_are_pruned_oldest_first(data_dir: Path) -> None:
    with open_store(data_dir, max_replies=3, synchronous="NORMAL") as store:
        for i in range(5):
            store.remember_reply(f"req-{i}", "scale", json.dumps({"i": i}), operator="op")
        store.remember_reply(
            "req-4", "scale", '{"again": true}', operator="op"
        )  # a retry adds nothing
        kept = [i for i in range(5) if store.get_reply(f"req-{i}", operator="op") is not None]
    assert kept == [2, 3, 4]


def test_the_default_reply_limit_keeps_the_newest_ten_thousand(store: SqliteStore) -> None:
    total = DEFAULT_MAX_REPLIES + 5
    with store.transaction():
        for i in range(total):
            store.remember_reply(f"req-{i}", "scale", "{}", operator="op")
    assert DEFAULT_MAX_REPLIES == 10_000
    assert [store.get_reply(f"req-{i}", operator="op") for i in range(6)] == [None] * 5 + ["{}"]
    assert store.get_reply(f"req-{total - 1}", operator="op") == "{}"


# -- atomicity -------------------------------------------------------------------------------


def test_an_exception_inside_a_transaction_leaves_the_previous_state(store: SqliteStore) -> None:
    fill(store)
    before = store.load()
    seen_inside: list[set[str]] = []

    def pass_that_fails() -> None:
        with store.transaction():
            store.put_app("cache", manifest("cache"))
            store.replace_assignments("web", [])
            store.put_generation("n1", "s1", 5, "h5", "{}")
            store.set_cordon("n1", True)
            seen_inside.append(set(store.load().apps))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pass_that_fails()
    assert seen_inside == [{"web", "db", "cache"}]
    assert store.load() == before


def test_a_failed_inner_block_undoes_only_its_own_writes(store: SqliteStore) -> None:
    def inner_block_that_fails() -> None:
        with store.transaction():
            store.put_app("db", manifest("db"))
            store.put_generation("n1", "s1", 2, "h", "{}")
            store.put_generation("n1", "s1", 1, "h", "{}")

    with store.transaction():
        store.put_app("web", manifest("web"))
        with pytest.raises(StoreError, match="backwards"):
            inner_block_that_fails()
        store.put_app("cache", manifest("cache"))
    snapshot = store.load()
    assert set(snapshot.apps) == {"web", "cache"}
    assert snapshot.generations == {}


def test_a_process_killed_mid_transaction_leaves_the_last_commit(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        fill(store)
        before = store.load()
    script = textwrap.dedent(
        f"""
        import os
        from edgefleet_orchestrator.store.sqlite import open_store
        store = open_store({str(data_dir)!r})
        with store.transaction():
            store.delete_app("web")
            store.put_app("half", "{{}}")
            store.put_generation("n1", "s1", 9, "h9", "{{}}")
            os._exit(3)  # dies like a kill: no rollback, no close, no atexit
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert done.returncode == 3
    with open_store(data_dir) as store:
        assert store.load() == before


# -- refusals at open ------------------------------------------------------------------------


def write_db(data_dir: Path, content: bytes) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILE
    path.write_bytes(content)
    return path


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(data_dir: Path) -> None:
    junk = os.urandom(8192)
    path = write_db(data_dir, junk)
    with pytest.raises(StoreError) as caught:
        open_store(data_dir)
    message = str(caught.value)
    assert str(path) in message
    assert "is not a SQLite database" in message
    assert "restore it from a backup, or start with an empty data dir" in message
    assert path.read_bytes() == junk


def zero_third_page(whole: bytes) -> bytes:
    # A b-tree page full of zeros: quick_check reports it (on SQLite 3.40 as a row naming
    # the page rather than an exception; either way the store must refuse).
    return whole[: 2 * 4096] + bytes(4096) + whole[3 * 4096 :]


@pytest.mark.parametrize(
    "damage",
    [
        lambda whole: whole[:100],
        lambda whole: whole[:4096],
        lambda whole: whole[: len(whole) // 2],
        zero_third_page,
    ],
    ids=[
        "truncated to the header",
        "truncated to the first page",
        "truncated to half",
        "a zeroed page",
    ],
)
def test_a_damaged_database_is_refused_as_corrupt_and_left_alone(
    tmp_path: Path, data_dir: Path, damage: Callable[[bytes], bytes]
) -> None:
    with open_store(tmp_path / "good", synchronous="NORMAL") as good, good.transaction():
        for i in range(100):
            good.put_app(f"app-{i}", json.dumps({"pad": "x" * 1000}))
    damaged = damage((tmp_path / "good" / DB_FILE).read_bytes())
    path = write_db(data_dir, damaged)
    with pytest.raises(StoreError, match="is corrupt") as caught:
        open_store(data_dir)
    assert str(path) in str(caught.value)
    assert "restore it from a backup" in str(caught.value)
    assert path.read_bytes() == damaged


def test_another_applications_sqlite_database_is_refused(data_dir: Path) -> None:
    data_dir.mkdir()
    with sqlite3.connect(data_dir / DB_FILE) as other:
        other.execute("CREATE TABLE customers (id INTEGER)")
    other.close()
    with pytest.raises(StoreError, match=r"not an edgefleet store .*'customers'"):
        open_store(data_dir)


def test_a_database_from_a_newer_schema_is_refused(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        fill(store)
    with sqlite3.connect(data_dir / DB_FILE) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    raw.close()
    with pytest.raises(StoreError) as caught:
        open_store(data_dir)
    assert str(caught.value).endswith(
        f"was created by a newer edgefleet (schema {SCHEMA_VERSION + 7} > {SCHEMA_VERSION});"
        " upgrade edgefleet or use another data dir"
    )


# -- migrations ------------------------------------------------------------------------------

NEXT = SCHEMA_VERSION + 1
ADD_NOTES = Migration(NEXT, "app notes", ("ALTER TABLE apps ADD COLUMN note TEXT",))


def test_an_older_database_is_migrated_in_order_and_keeps_its_data(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        fill(store)
        before = store.load()
    path = data_dir / DB_FILE
    with SqliteStore(path, migrations=(*MIGRATIONS, ADD_NOTES)) as upgraded:
        assert upgraded.schema_version == NEXT
        assert upgraded.load() == before
    with sqlite3.connect(path) as raw:
        columns = [r[1] for r in raw.execute("PRAGMA table_info(apps)")]
        version = raw.execute("PRAGMA user_version").fetchone()[0]
    raw.close()
    assert (version, columns[-1]) == (NEXT, "note")
    # ... and this code, which only knows the schema before it, now refuses the upgraded file.
    with pytest.raises(StoreError, match=rf"newer edgefleet \(schema {NEXT} > {SCHEMA_VERSION}\)"):
        open_store(data_dir)


def test_a_failing_migration_step_leaves_the_previous_version_intact(data_dir: Path) -> None:
    with open_store(data_dir) as store:
        fill(store)
        before = store.load()
    broken = Migration(NEXT, "broken", ("ALTER TABLE apps ADD COLUMN note TEXT", "NOT SQL AT ALL"))
    with pytest.raises(
        StoreError,
        match=rf"migration to {NEXT} \(broken\) failed, the file is still at {SCHEMA_VERSION}",
    ):
        SqliteStore(data_dir / DB_FILE, migrations=(*MIGRATIONS, broken))
    with sqlite3.connect(data_dir / DB_FILE) as raw:
        columns = [r[1] for r in raw.execute("PRAGMA table_info(apps)")]
    raw.close()
    assert "note" not in columns
    with open_store(data_dir) as store:
        assert (store.schema_version, store.load()) == (SCHEMA_VERSION, before)


# -- one orchestrator per data dir -----------------------------------------------------------


def test_a_second_open_of_the_same_data_dir_is_refused_until_the_first_closes(
    data_dir: Path,
) -> None:
    first = open_store(data_dir)
    with pytest.raises(StoreError, match=re.escape(f"another orchestrator is using {data_dir}")):
        open_store(data_dir)
    first.close()
    first.close()  # idempotent
    with open_store(data_dir) as again:
        assert again.load().apps == {}
    assert (data_dir / LOCK_FILE).exists()


def test_another_process_holding_the_data_dir_is_named_by_pid(data_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from edgefleet_orchestrator.store.sqlite import open_store
        store = open_store({str(data_dir)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        expected = re.escape(f"using {data_dir} (pid {holder.pid})")
        with pytest.raises(StoreError, match=expected):
            open_store(data_dir)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
    with open_store(data_dir) as store:  # the lock died with the process
        assert store.load().apps == {}


def test_a_closed_store_refuses_further_use(data_dir: Path) -> None:
    store = open_store(data_dir)
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.load()
    with pytest.raises(StoreError, match="is closed"):
        store.put_app("web", "{}")


def test_a_pass_of_documents_is_written_whole_or_not_at_all_in_order(store: SqliteStore) -> None:
    store.put_generation("n1", "s1", 4, "h4", "{}")
    many = [(f"m{i:04d}", "s2", 1, "h1", "{}") for i in range(1_200)]  # beyond one SELECT
    store.put_generations([*many, ("n1", "s1", 5, "h5", "{}"), ("n1", "s1", 6, "h6", "{}")])
    stored = store.load().generations
    assert stored["n1"] == NodeGeneration("n1", "s1", 6, "h6", "{}")
    assert len(stored) == 1_201
    # Each row is checked against the ones before it too; one refusal writes nothing.
    with pytest.raises(StoreError, match=r"would go backwards \(5 < 7\)"):
        store.put_generations([("new", "s1", 1, "h1", "{}"), ("n1", "s1", 7, "h7", "{}"),
                               ("n1", "s1", 5, "h5", "{}")])  # fmt: skip
    with pytest.raises(StoreError, match="already stored with another document"):
        store.put_generations([("m0001", "s2", 1, "other", "{}")])
    assert store.load().generations == stored
