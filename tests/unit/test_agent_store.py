"""The local store: atomic writes, the session counter, desired documents across restarts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from edgefleet_agent import store as store_module
from edgefleet_agent.core.revert import Reverted
from edgefleet_agent.store import STORE_FILE, LocalStore, write_atomically
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash


def desired(generation: int, command: str = "sleep") -> Desired:
    spec = WorkloadSpec(runtime="process", command=[command, "60"])
    workload = DesiredWorkload(name="w1", app="a", spec=spec, spec_hash=spec_hash(spec))
    return Desired(node="n1", generation=generation, issued_at=1.0, workloads=[workload])


def test_the_session_counter_rises_on_every_start(tmp_path: Path) -> None:
    sessions = []
    for _ in range(3):
        store = LocalStore(tmp_path)
        sessions.append(store.next_session())
        store.close()
    assert sessions == [1, 2, 3]


def test_the_desired_document_survives_a_restart(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.save_desired(desired(4), accepted_at=123.0)
    store.close()
    loaded = LocalStore(tmp_path).load_desired()
    assert loaded is not None
    assert (loaded.desired, loaded.accepted_at) == (desired(4), 123.0)
    assert spec_hash(desired(4).workloads[0].spec) in LocalStore(tmp_path).known_specs()


def test_a_crash_during_a_write_leaves_the_old_content_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    store.save_desired(desired(1), accepted_at=1.0)
    before = (tmp_path / STORE_FILE).read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.save_desired(desired(2, command="true"), accepted_at=2.0)
    monkeypatch.undo()
    assert (tmp_path / STORE_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [STORE_FILE]  # no temp file left behind
    reloaded = LocalStore(tmp_path).load_desired()
    assert reloaded is not None
    assert reloaded.desired.generation == 1
    same = store.load_desired()  # the store that failed reads the file again, not its memory
    assert same is not None and same.desired.generation == 1


def test_reads_after_a_write_do_not_read_the_file_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    store.save_desired(desired(1), accepted_at=1.0)
    reads: list[Path] = []
    real = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    with store.batch():
        store.save_desired(desired(2, "new"), accepted_at=2.0)
        store.forget_specs_except({w.spec_hash for w in desired(2, "new").workloads})
    stored = store.load_desired()
    assert stored is not None and stored.desired == desired(2, "new")
    assert reads == []
    monkeypatch.undo()
    fresh = LocalStore(tmp_path).load_desired()
    assert fresh is not None and fresh.desired == desired(2, "new")


def test_a_torn_temp_file_from_a_crash_is_ignored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.save_desired(desired(3), accepted_at=1.0)
    store.close()
    # What a crash mid-write leaves: a half-written temp file beside the intact store.
    (tmp_path / f".{STORE_FILE}.999.tmp").write_bytes(b'{"desired": {"1": {"docu')
    loaded = LocalStore(tmp_path).load_desired()
    assert loaded is not None
    assert loaded.desired.generation == 3


def test_an_unreadable_store_is_moved_aside_and_the_agent_starts_empty(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"\x00\x01 not json")
    store = LocalStore(tmp_path)
    assert store.recovered_from is not None
    assert "moved aside" in store.recovered_from
    assert store.load_desired() is None
    assert store.next_session() == 1
    assert any(p.name.startswith(f"{STORE_FILE}.corrupt-") for p in tmp_path.iterdir())


def test_write_atomically_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_atomically(target, b"old")
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"


def test_write_atomically_writes_everything_a_short_write_left_and_keeps_the_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(store_module.os, "write", lambda fd, data: real_write(fd, data[:3]))
    target = tmp_path / "f.json"
    write_atomically(target, b"0123456789")
    assert target.read_bytes() == b"0123456789"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    def no_fsync(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(store_module.os, "fsync", no_fsync)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"0123456789", "a failed write leaves the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"], "and no temp file"


def test_aliases_and_spec_pruning(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.set_alias("w1", from_hash="sha256:a", to_hash="sha256:b")
    store.set_alias("w1", from_hash="sha256:a", to_hash="sha256:c")
    assert store.aliases() == {"w1": ("sha256:a", "sha256:c")}
    store.drop_aliases(["w1"])
    assert store.aliases() == {}
    store.save_desired(desired(1), accepted_at=1.0)
    store.save_desired(desired(2, command="true"), accepted_at=2.0)
    assert len(store.known_specs()) == 2
    keep = desired(2, command="true").workloads[0].spec_hash
    store.forget_specs_except([keep])
    assert list(store.known_specs()) == [keep]


def test_a_rollout_revert_survives_a_restart_until_it_is_cleared(
    tmp_path: Path,
) -> None:
    old = WorkloadSpec(runtime="process", command=["/bin/app", "v1"])
    back = Reverted("web-0", "sha256:bad", old, spec_hash(old), "never healthy", 12.5)
    store = LocalStore(tmp_path)
    store.save_reverted([back])
    store.close()
    again = LocalStore(tmp_path)
    assert again.reverted() == {"web-0": back}
    again.save_reverted([])
    assert again.reverted() == {}
    again.close()


def test_a_batch_writes_its_changes_once_and_reads_see_them_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgefleet_agent.store as store_module

    store = LocalStore(tmp_path)
    store.save_desired(desired(1, "old"), accepted_at=1.0)
    writes: list[Path] = []
    real = store_module.write_atomically

    def counted(path: Path, data: bytes) -> None:
        writes.append(path)
        real(path, data)

    monkeypatch.setattr(store_module, "write_atomically", counted)
    new = desired(2, "new")
    with store.batch():
        store.save_desired(new, accepted_at=2.0)
        seen = store.load_desired()
        assert seen is not None and seen.desired == new, "reads in the batch see its changes"
        store.forget_specs_except({w.spec_hash for w in new.workloads})
        assert writes == [], "nothing is written before the batch ends"
    assert len(writes) == 1
    again = LocalStore(tmp_path)
    stored = again.load_desired()
    assert stored is not None and stored.desired == new and stored.accepted_at == 2.0
    assert set(again.known_specs()) == {w.spec_hash for w in new.workloads}


def test_a_batch_that_raises_writes_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.save_desired(desired(1), accepted_at=1.0)

    def half_way() -> None:
        with store.batch():
            store.save_desired(desired(2, "other"), accepted_at=2.0)
            raise RuntimeError("the caller failed half way")

    with pytest.raises(RuntimeError):
        half_way()
    stored = LocalStore(tmp_path).load_desired()
    assert stored is not None and stored.desired.generation == 1
    in_memory = store.load_desired()
    assert in_memory is not None and in_memory.desired.generation == 1
