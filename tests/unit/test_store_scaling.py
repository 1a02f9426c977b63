"""The store's scaling state (schema 2): retiring copies, drains and control documents
survive a reopen, a schema-1 file is upgraded with its data intact, an app's deletion
takes its retiring copies along, and the reconcile pass's control state round-trips
through the store (an unreadable document is skipped, never fatal)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from edgefleet_orchestrator.placement.model import Assignment as Placed
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.scaling.autoscale import ScaleMemory
from edgefleet_orchestrator.scaling.drain import DrainRequest
from edgefleet_orchestrator.scaling.moves import Retiring
from edgefleet_orchestrator.store.base import Assignment, Drain, RetiringCopy
from edgefleet_orchestrator.store.control import (
    control_from_snapshot,
    documents,
    drain_record,
    retiring_records,
)
from edgefleet_orchestrator.store.sqlite import (
    DB_FILE,
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStore,
    open_store,
)

COPY = RetiringCopy(
    replica="web-0", app="web", node="n1", site="s1", cpu=0.25, memory_mb=64,
    to_node="n2", cause="drain", since=12.5,
)  # fmt: skip


def app_json(name: str) -> str:
    return json.dumps({"name": name, "replicas": 1})


def test_scaling_state_is_read_back_after_reopening(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_app("web", app_json("web"))
        store.replace_assignments("web", [Assignment("web-0", "web", "n2", "s1", 0.25, 64)])
        store.replace_retiring([COPY])
        store.put_drain(Drain("n1", 10.0, 2))
        store.put_drain(Drain("n3", 11.0))
        store.put_control("autoscale/web", '{"last_scaled_at": 9.0}')
        before = store.load()
    with open_store(tmp_path) as again:
        after = again.load()
    assert after == before
    assert after.retiring == (COPY,)
    assert after.drains["n1"] == Drain("n1", 10.0, 2)
    assert after.drains["n3"].max_unavailable is None
    assert after.control == {"autoscale/web": '{"last_scaled_at": 9.0}'}


def test_writes_replace_update_and_delete(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_app("web", app_json("web"))
        store.replace_retiring([COPY])
        store.replace_retiring([])
        store.put_drain(Drain("n1", 10.0, 2))
        store.put_drain(Drain("n1", 10.0, None))
        store.put_control("k", "[1]")
        store.put_control("k", "[2]")
        assert store.load().retiring == ()
        assert store.load().drains["n1"].max_unavailable is None
        assert store.load().control == {"k": "[2]"}
        assert store.delete_drain("n1") and not store.delete_drain("n1")
        assert store.delete_control("k") and not store.delete_control("k")


def test_bad_scaling_writes_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_app("web", app_json("web"))
        with pytest.raises(ValueError, match="repeat"):
            store.replace_retiring([COPY, COPY])
        with pytest.raises(ValueError, match="not valid JSON"):
            store.put_control("k", "{nope")
        with pytest.raises(ValueError, match="at least 1"):
            store.put_drain(Drain("n1", 1.0, 0))
        snapshot = store.load()
        assert (snapshot.retiring, dict(snapshot.drains), dict(snapshot.control)) == ((), {}, {})


def test_deleting_an_app_deletes_its_retiring_copies(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_app("web", app_json("web"))
        store.replace_retiring([COPY])
        store.delete_app("web")
        assert store.load().retiring == ()


def test_a_schema_1_store_is_upgraded_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    with SqliteStore(path, migrations=MIGRATIONS[:1]) as old:
        assert old.schema_version == 1
        old.put_app("web", app_json("web"))
        old.set_cordon("n1", True)
    with open_store(tmp_path) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION
        after = upgraded.load()
        upgraded.put_drain(Drain("n1", 1.0))
    assert after.apps["web"].manifest_json == app_json("web")
    assert after.cordoned == frozenset({"n1"})
    assert (after.retiring, dict(after.drains), dict(after.control)) == ((), {}, {})


def test_control_state_round_trips_through_the_store(tmp_path: Path) -> None:
    control = Control(
        autoscale={
            "web": ScaleMemory(last_scaled_at=50.0, last_direction="up", below_since=40.0),
            "idle": ScaleMemory(),  # nothing durable to keep
        },
        resized_at={"web/web-0": 45.0},
        drains={"n1": DrainRequest("n1", 30.0, 1)},
        retiring=(Retiring(Placed("web-0", "web", "n1", "s1", 0.25, 64), "n2", "drain", 12.5),),
    )
    with open_store(tmp_path) as store:
        store.put_app("web", app_json("web"))
        for key, text in documents(control).items():
            store.put_control(key, text)
        store.replace_retiring(retiring_records(control))
        store.put_drain(drain_record(control.drains["n1"]))
        snapshot = store.load()
    restored, skipped = control_from_snapshot(snapshot)
    assert skipped == []
    assert restored.autoscale == {"web": ScaleMemory(last_scaled_at=50.0, last_direction="up")}, (
        "how long a lull lasted is not durable: it must be seen again after a restart"
    )
    assert restored.resized_at == control.resized_at
    assert restored.drains == control.drains
    assert restored.retiring == control.retiring


def test_an_unreadable_control_document_is_skipped_by_name(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.put_control("autoscale/web", '"just a string"')
        store.put_control("autoscale/db", '{"last_scaled_at": 5, "last_direction": "sideways"}')
        store.put_control("mystery", "{}")
        store.put_control("autoscale/ok", '{"last_scaled_at": 7}')
        restored, skipped = control_from_snapshot(store.load())
    assert restored.autoscale == {"ok": ScaleMemory(last_scaled_at=7.0)}
    assert skipped == [
        "autoscale/db: last_direction is not up/down: 'sideways'",
        "autoscale/web: not a JSON object",
        "mystery: unknown control key",
    ]
