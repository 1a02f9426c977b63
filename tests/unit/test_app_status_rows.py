"""An app status's replica rows: bounded to about 256 KiB (docs/protocol.md, App status),
the rows not running first, the list always a prefix of that order, and the row memo and
the rollout's specs that decide what each row says.

The bound exists because mosquitto drops a client that publishes a packet over its limit:
a daemon app's status on 10,000 nodes was over 1 MiB and cost the orchestrator its
connection. So the estimate a row is counted at must never be below its JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_orchestrator.fleet.records import NodeRecord
from edgefleet_orchestrator.fleet.replicas import replica_spec
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.status import (
    ROW_TEXT_BUDGET,
    RowMemo,
    app_status,
    listed_rows,
    replica_status,
    row_text_size,
)
from edgefleet_orchestrator.rollout.state import RolloutState
from edgefleet_protocol import ReplicaStatus, Reported, spec_hash
from edgefleet_protocol.manifest import AppManifest, load_manifest


def row(name: str, state: str = "running", message: str = "", **where: Any) -> ReplicaStatus:
    return ReplicaStatus(name=name, state=state, message=message, **where)  # type: ignore[arg-type]


def test_the_budget_is_256_kib_as_documented() -> None:
    assert ROW_TEXT_BUDGET == 256 * 1024


@pytest.mark.parametrize(
    "field", ["name", "node", "site", "state", "message"], ids=lambda f: f"long {f}"
)
def test_a_row_is_never_counted_below_its_json_whichever_string_is_long(field: str) -> None:
    values: dict[str, Any] = {"name": "web-0", "node": "gw-1", "site": "s1", "state": "failed"}
    values["message"] = "x"
    values[field] = {"state": "node-offline", "message": "m" * 2048}.get(field, "a" * 60)
    r = ReplicaStatus(**values)
    assert len(json.dumps(r.model_dump(mode="json", exclude_none=True))) <= row_text_size(r)


@pytest.mark.parametrize("field", ["name", "node", "site", "message"])
def test_each_character_of_a_string_counts_once(field: str) -> None:
    base: dict[str, Any] = {"name": "web-0", "node": "gw-1", "site": "s1", "state": "failed"}
    longer = dict(base, **{field: base.get(field, "") + "abc"})
    assert row_text_size(ReplicaStatus(**longer)) - row_text_size(ReplicaStatus(**base)) == 3


def test_a_row_without_node_or_site_costs_just_their_lengths_less() -> None:
    bare = row("web-0")
    placed = row("web-0", node="n", site="s")
    assert row_text_size(placed) - row_text_size(bare) == 2
    assert row_text_size(row("web-0", state="pending")) - row_text_size(bare) == 0


def _filler(leave: int) -> list[ReplicaStatus]:
    """Troubled rows that leave between ``300`` and about 1.4 KiB of ``leave`` unused."""
    one = row_text_size(row("r-00000", "failed", "m" * 1000))
    count = (leave - 300) // one
    return [row(f"r-{i:05d}", "failed", "m" * 1000) for i in range(count)]


def _topped_up(room: int, name: str, state: str) -> ReplicaStatus:
    """A row that costs exactly ``room``."""
    empty = row_text_size(row(name, state))
    assert 0 <= room - empty <= 2048
    return row(name, state, "m" * (room - empty))


def test_rows_that_fill_the_budget_exactly_are_all_listed_in_their_own_order() -> None:
    head = [row("a-running", "running", "m" * 2048)]
    body = _filler(ROW_TEXT_BUDGET - row_text_size(head[0]))
    room = ROW_TEXT_BUDGET - sum(map(row_text_size, head + body))
    rows = head + body + [_topped_up(room, "z-last", "failed")]
    assert sum(map(row_text_size, rows)) == ROW_TEXT_BUDGET

    listed, omitted = listed_rows(rows)

    assert (listed, omitted) == (rows, 0)  # the running row stays first: nothing reordered


def test_over_budget_the_rows_not_running_come_first_and_a_row_that_just_fits_is_listed() -> None:
    troubled = _filler(ROW_TEXT_BUDGET)
    room = ROW_TEXT_BUDGET - sum(map(row_text_size, troubled))
    fits = _topped_up(room, "a-fits", "running")
    rows = [fits, *troubled, row("b-over", "running", "m" * 10)]

    listed, omitted = listed_rows(rows)

    assert listed == [*troubled, fits]
    assert omitted == 1


def test_the_list_stops_at_the_first_row_that_does_not_fit_even_if_a_later_one_would() -> None:
    troubled = _filler(ROW_TEXT_BUDGET)
    room = ROW_TEXT_BUDGET - sum(map(row_text_size, troubled))
    too_big = _topped_up(room + 1, "a-too-big", "running")
    small = row("b-small", "running")
    assert row_text_size(small) < room

    listed, omitted = listed_rows([too_big, small, *troubled])

    assert listed == troubled
    assert omitted == 2


APP = load_manifest(
    json.dumps({"name": "web", "replicas": 2,
                "workload": {"runtime": "simulated", "resources": {"cpu": 0.25, "memory_mb": 64}}})
)  # fmt: skip


def placed(replica: str, node: str) -> Assignment:
    return Assignment(replica=replica, app="web", node=node, site="s1", cpu=0.25, memory_mb=64)


def node(name: str, **runs: str) -> NodeRecord:
    """An online node whose agent reports each ``replica=spec_hash`` running."""
    workloads = {
        r: {"app": "web", "spec_hash": h, "state": "running", "since": 1.0, "message": ""}
        for r, h in runs.items()
    }
    reported = Reported.model_validate(
        {"v": 1, "node": name, "observed_generation": 1, "session": 1, "ts": 1.0,
         "workloads": workloads}
    )  # fmt: skip
    return NodeRecord(node=name, site="s1", state="online", reported=reported)  # type: ignore[arg-type]


def hash_of(app: AppManifest) -> str:
    return spec_hash(replica_spec(app, 0.25, 64))


def test_a_fresh_memo_answers_and_keeps_each_replicas_row_across_a_round() -> None:
    nodes = {"n1": node("n1", **{"web-0": hash_of(APP)}), "n2": node("n2")}
    memo = RowMemo()
    first = memo.row(placed("web-0", "n1"), hash_of(APP), nodes)
    second = memo.row(placed("web-1", "n2"), hash_of(APP), nodes)
    assert first == replica_status(placed("web-0", "n1"), hash_of(APP), nodes)
    memo.new_round()
    assert memo.row(placed("web-0", "n1"), hash_of(APP), nodes) is first
    assert memo.row(placed("web-1", "n2"), hash_of(APP), nodes) is second


def test_during_a_rollout_each_replica_is_judged_by_the_spec_the_rollout_gives_it() -> None:
    # web-0 was released to the new version and runs it; web-1 still runs the old one,
    # which is what it should run until released: both count as running.
    new_app = APP.model_copy(
        update={"workload": APP.workload.model_copy(update={"env": {"LEVEL": "2"}})}
    )
    rollout = RolloutState(
        app="web", revision=2, from_revision=1, from_workload=APP.workload,
        to_workload=new_app.workload, phase="canary", started_at=1.0, phase_since=1.0,
        last_progress_at=1.0, released={"web-0": 1.0},
    )  # fmt: skip
    nodes = {
        "n1": node("n1", **{"web-0": hash_of(new_app)}),
        "n2": node("n2", **{"web-1": hash_of(APP)}),
    }
    status = app_status(
        new_app, [placed("web-0", "n1"), placed("web-1", "n2")], [], nodes, now=2.0,
        rollout=rollout,
    )  # fmt: skip
    assert [(r.name, r.state) for r in status.replicas] == [
        ("web-0", "running"),
        ("web-1", "running"),
    ]
    assert (status.state, status.running) == ("healthy", 2)
