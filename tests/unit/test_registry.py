"""The fleet registry: lifecycle, sessions, rejections, telemetry merging, staleness."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_orchestrator.fleet.registry import (
    DEFAULT_STALE_AFTER_S,
    NodeRecord,
    Registry,
    StateChange,
)
from edgefleet_protocol import Capabilities, Desired, NodeStatus, Reported, Telemetry
from edgefleet_protocol.topics import TopicKind
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

STATUS, CAPS, TELEMETRY, REPORTED = (
    TopicKind.NODE_STATUS,
    TopicKind.NODE_CAPABILITIES,
    TopicKind.NODE_TELEMETRY,
    TopicKind.NODE_REPORTED,
)


def status(state: str, session: int, node: str = "n1", site: str = "s1") -> NodeStatus:
    return NodeStatus(node=node, site=site, state=state, session=session, since=float(session))


def caps(node: str = "n1", site: str = "s1", memory_mb: int = 1024) -> Capabilities:
    return Capabilities(
        node=node, site=site, arch="arm64", cpu_cores=4, memory_mb=memory_mb, disk_mb=8000,
        runtimes=["docker"],
    )  # fmt: skip


def telemetry(ts: float = 0.0, *, full: bool = False, **values: Any) -> Telemetry:
    return Telemetry.model_validate({"node": "n1", "site": "s1", "ts": ts, "full": full, **values})


def reported(session: int, generation: int, site: str | None = "s1") -> Reported:
    return Reported(node="n1", site=site, observed_generation=generation, session=session, ts=0.0)


def online_registry(at: float = 0.0, **options: Any) -> Registry:
    registry = Registry(**options)
    registry.ingest(STATUS, "s1", "n1", status("online", 1), at)
    return registry


# -- lifecycle ---------------------------------------------------------------------------

LIFECYCLE = [
    # (steps as (state, session, at), final (state, session, offline_since), last result)
    pytest.param(
        [("online", 1, 10.0)],
        ("online", 1, None),
        {"changed": True, "scheduling_relevant": True, "ignored": False},
        id="a first online status makes a new node online",
    ),
    pytest.param(
        [("online", 1, 10.0), ("offline", 1, 20.0)],
        ("offline", 1, 20.0),
        {"changed": True, "scheduling_relevant": True, "ignored": False},
        id="an offline status of the same session takes it offline and records when",
    ),
    pytest.param(
        [("online", 1, 10.0), ("online", 2, 20.0), ("offline", 1, 30.0)],
        ("online", 2, None),
        {"changed": False, "scheduling_relevant": False, "ignored": True},
        id="a late will of an older session is ignored",
    ),
    pytest.param(
        [("online", 3, 10.0), ("online", 2, 20.0)],
        ("online", 3, None),
        {"changed": False, "scheduling_relevant": False, "ignored": True},
        id="an online status of an older session is ignored too",
    ),
    pytest.param(
        [("online", 1, 10.0), ("offline", 1, 20.0), ("online", 2, 30.0)],
        ("online", 2, None),
        {"changed": True, "scheduling_relevant": True, "ignored": False},
        id="a newer session's online replaces an offline older one",
    ),
    pytest.param(
        [("online", 1, 10.0), ("offline", 1, 20.0), ("online", 1, 30.0)],
        ("online", 1, None),
        {"changed": True, "scheduling_relevant": True, "ignored": False},
        id="a reconnect within the same session brings it back online",
    ),
    pytest.param(
        [("online", 1, 10.0), ("online", 2, 20.0)],
        ("online", 2, None),
        {"changed": True, "scheduling_relevant": False, "ignored": False},
        id="a restart seen only as a newer online session changes no state",
    ),
    pytest.param(
        [("online", 1, 10.0), ("offline", 2, 20.0)],
        ("offline", 2, 20.0),
        {"changed": True, "scheduling_relevant": True, "ignored": False},
        id="the will of a newer session we never saw online takes it offline",
    ),
    pytest.param(
        [("online", 1, 10.0), ("online", 1, 20.0)],
        ("online", 1, None),
        {"changed": False, "scheduling_relevant": False, "ignored": False},
        id="a repeated status changes nothing",
    ),
    pytest.param(
        [("offline", 4, 10.0), ("offline", 4, 20.0)],
        ("offline", 4, 10.0),
        {"changed": False, "scheduling_relevant": False, "ignored": False},
        id="offline_since keeps the first moment the node was seen offline",
    ),
]


@pytest.mark.parametrize(("steps", "final", "last"), LIFECYCLE)
def test_status_lifecycle(
    steps: list[tuple[str, int, float]],
    final: tuple[str, int, float | None],
    last: dict[str, bool],
) -> None:
    registry = Registry()
    results = [registry.ingest(STATUS, "s1", "n1", status(s, n), at) for s, n, at in steps]
    record = registry.nodes["n1"]
    assert (record.state, record.session, record.offline_since) == final
    result = results[-1]
    assert result.rejection is None
    assert result.changed is last["changed"]
    assert result.scheduling_relevant is last["scheduling_relevant"]
    assert (result.ignored is not None) is last["ignored"]
    assert record.last_seen == steps[-1][2]  # even an ignored message counts as seen
    assert result.record == record


def test_an_ignored_late_will_says_which_sessions_it_compared() -> None:
    registry = Registry()
    registry.ingest(STATUS, "s1", "n1", status("online", 7), 0.0)
    result = registry.ingest(STATUS, "s1", "n1", status("offline", 6), 1.0)
    assert result.ignored == (
        "offline status of node n1 (site s1) from session 6 is older than its current session 7"
    )


@pytest.mark.parametrize(
    ("steps", "event"),
    [
        ([("online", 1)], "node n1 (site s1) is online (session 1)"),
        ([("online", 1), ("offline", 1)], "node n1 (site s1) is offline (session 1)"),
        (
            [("online", 1), ("online", 2)],
            "node n1 (site s1) started a new session 2 (was 1) and is online",
        ),
        ([("online", 1), ("online", 1)], None),
    ],
    ids=["online", "offline", "restart", "repeat"],
)
def test_lifecycle_moves_come_with_an_audit_sentence(
    steps: list[tuple[str, int]], event: str | None
) -> None:
    registry = Registry()
    results = [registry.ingest(STATUS, "s1", "n1", status(s, n), 0.0) for s, n in steps]
    assert results[-1].event == event


def test_a_node_known_only_from_capabilities_is_unknown_and_not_schedulable() -> None:
    registry = Registry()
    result = registry.ingest(CAPS, "s1", "n1", caps(), 5.0, retained=True)
    record = registry.nodes["n1"]
    assert (result.changed, result.scheduling_relevant) == (True, True)
    assert (record.state, record.capabilities, record.schedulable) == ("unknown", caps(), False)


# -- rejections --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "site", "node", "model", "reason"),
    [
        (
            STATUS, "s1", "n1", status("online", 1, node="n2"),
            "payload names node 'n2' but arrived on the status topic of node 'n1'",
        ),
        (
            TELEMETRY, "s1", "n1", Telemetry(node="n1", site="s9", ts=0.0),
            "payload names site 's9' but arrived on the telemetry topic of site 's1'",
        ),
        (
            STATUS, "s2", "n1", status("online", 1, site="s2"),
            "node 'n1' is already registered under site 's1', not 's2': node ids are unique"
            " fleet-wide (forget the node first if it really moved)",
        ),
        (
            CAPS, "s1", "n1", status("online", 1),
            "a capabilities topic needs a Capabilities payload, got NodeStatus",
        ),
        (
            TopicKind.NODE_DESIRED, "s1", "n1", Desired(node="n1", generation=1, issued_at=0.0),
            "desired messages are not registry input",
        ),
    ],
    ids=["node mismatch", "site mismatch", "node under a second site", "wrong model", "not ours"],
)  # fmt: skip
def test_contradicting_messages_are_rejected_with_a_reason_and_change_nothing(
    kind: TopicKind, site: str, node: str, model: BaseModel, reason: str
) -> None:
    registry = online_registry(at=1.0)
    before = dict(registry.nodes)
    result = registry.ingest(kind, site, node, model, 2.0)
    assert result.rejection == reason
    assert (result.changed, result.scheduling_relevant, result.status_relevant) == (False,) * 3
    assert dict(registry.nodes) == before


def test_a_report_without_a_site_is_accepted_on_any_site_topic() -> None:
    registry = online_registry()
    result = registry.ingest(REPORTED, "s1", "n1", reported(1, 3, site=None), 1.0)
    assert result.rejection is None
    assert registry.nodes["n1"].reported == reported(1, 3, site=None)


def test_a_forgotten_node_may_reappear_under_another_site() -> None:
    registry = online_registry()
    forgotten = registry.forget("n1")
    assert forgotten is not None
    assert forgotten.site == "s1"
    assert registry.forget("n1") is None
    result = registry.ingest(STATUS, "s2", "n1", status("online", 2, site="s2"), 1.0)
    assert result.rejection is None
    assert registry.nodes["n1"].site == "s2"


# -- capabilities and reports ------------------------------------------------------------


def test_capabilities_changes_are_scheduling_relevant_and_repeats_are_not() -> None:
    registry = online_registry()
    first = registry.ingest(CAPS, "s1", "n1", caps(memory_mb=1024), 1.0)
    again = registry.ingest(CAPS, "s1", "n1", caps(memory_mb=1024), 2.0)
    bigger = registry.ingest(CAPS, "s1", "n1", caps(memory_mb=2048), 3.0)
    assert [(r.changed, r.scheduling_relevant) for r in (first, again, bigger)] == [
        (True, True),
        (False, False),
        (True, True),
    ]
    capabilities = registry.nodes["n1"].capabilities
    assert capabilities is not None
    assert capabilities.memory_mb == 2048


def test_reports_are_status_relevant_not_scheduling_relevant() -> None:
    registry = online_registry()
    first = registry.ingest(REPORTED, "s1", "n1", reported(1, 1), 1.0)
    again = registry.ingest(REPORTED, "s1", "n1", reported(1, 1), 2.0)
    newer = registry.ingest(REPORTED, "s1", "n1", reported(1, 2), 3.0)
    assert [(r.status_relevant, r.scheduling_relevant) for r in (first, again, newer)] == [
        (True, False),
        (False, False),
        (True, False),
    ]


def test_a_report_from_an_older_session_is_ignored() -> None:
    registry = Registry()
    registry.ingest(STATUS, "s1", "n1", status("online", 5), 0.0)
    registry.ingest(REPORTED, "s1", "n1", reported(5, 9), 1.0)
    result = registry.ingest(REPORTED, "s1", "n1", reported(4, 7), 2.0)
    assert result.ignored is not None
    assert "session 4 is older than its current session 5" in result.ignored
    assert not result.status_relevant
    stored = registry.nodes["n1"].reported
    assert stored is not None
    assert stored.observed_generation == 9


# -- telemetry ---------------------------------------------------------------------------

FULL = {
    "cpu_pct": 10.0, "memory_pct": 20.0, "disk_pct": 30.0, "load1": 1.0,
    "latency_ms": {"gw": 5.0}, "metrics": {"a": 1.0},
    "workloads": {"w1": {"cpu_pct": 5.0, "metrics": {"rps": 3.0}}},
}  # fmt: skip


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [telemetry(1, full=True, **FULL), telemetry(2, cpu_pct=50.0)],
            {"cpu_pct": 50.0, "memory_pct": 20.0, "disk_pct": 30.0, "load1": 1.0},
        ),
        (
            [
                telemetry(1, full=True, **FULL),
                telemetry(2, latency_ms={"cloud": 40.0}, metrics={"b": 2.0}),
            ],
            {"latency_ms": {"gw": 5.0, "cloud": 40.0}, "metrics": {"a": 1.0, "b": 2.0}},
        ),
        (
            [
                telemetry(1, full=True, **FULL),
                telemetry(2, workloads={"w1": {"memory_mb": 100.0, "metrics": {"q": 1.0}}}),
                telemetry(3, workloads={"w2": {"cpu_pct": 1.0}}),
            ],
            {
                "workloads": {
                    "w1": {"cpu_pct": 5.0, "memory_mb": 100.0, "metrics": {"rps": 3.0, "q": 1.0}},
                    "w2": {"cpu_pct": 1.0},
                }
            },
        ),
        (
            [telemetry(1, full=True, **FULL), telemetry(2, full=True, cpu_pct=1.0)],
            {
                "cpu_pct": 1.0, "memory_pct": None, "disk_pct": None, "load1": None,
                "latency_ms": {}, "metrics": {}, "workloads": {}, "ts": 2.0,
            },
        ),
        (
            [telemetry(7, memory_pct=40.0)],
            {"cpu_pct": None, "memory_pct": 40.0, "latency_ms": {}, "ts": 7.0},
        ),
    ],
    ids=[
        "a partial message overwrites only its scalars",
        "probe and metric dicts merge by key",
        "workload usage merges by workload name, field by field",
        "a full message replaces everything",
        "a partial message on an empty view",
    ],
)  # fmt: skip
def test_telemetry_merges_report_by_exception(
    messages: list[Telemetry], expected: dict[str, Any]
) -> None:
    registry = online_registry()
    for at, message in enumerate(messages, start=1):
        registry.ingest(TELEMETRY, "s1", "n1", message, float(at))
    view = registry.nodes["n1"].telemetry
    for name, value in expected.items():
        actual = getattr(view, name)
        if name == "workloads":
            actual = {k: u.model_dump(exclude_defaults=True) for k, u in actual.items()}
        elif isinstance(value, dict):
            actual = dict(actual)
        assert actual == value, name


@pytest.mark.parametrize(
    ("before", "after", "relevant"),
    [
        ({"gw": 10.0}, {"gw": 10.9}, False),
        ({"gw": 10.0}, {"gw": 11.5}, True),
        ({"gw": 10.0}, {"gw": 8.5}, True),
        ({}, {"gw": 5.0}, True),
        ({"gw": 0.0}, {"gw": 0.0}, False),
        ({"gw": 0.0}, {"gw": 1.0}, True),
    ],
    ids=["a 9% wobble", "a 15% rise", "a 15% drop", "a new probe", "zero stays zero", "from zero"],
)
def test_only_latency_moves_beyond_ten_percent_are_scheduling_relevant(
    before: dict[str, float], after: dict[str, float], relevant: bool
) -> None:
    registry = online_registry()
    registry.ingest(TELEMETRY, "s1", "n1", telemetry(1, full=True, latency_ms=before), 1.0)
    result = registry.ingest(TELEMETRY, "s1", "n1", telemetry(2, latency_ms=after), 2.0)
    assert result.scheduling_relevant is relevant


def test_a_full_message_dropping_a_probe_is_scheduling_relevant_and_cpu_is_not() -> None:
    registry = online_registry()
    registry.ingest(TELEMETRY, "s1", "n1", telemetry(1, full=True, latency_ms={"gw": 3.0}), 1.0)
    cpu = registry.ingest(TELEMETRY, "s1", "n1", telemetry(2, cpu_pct=99.0), 2.0)
    dropped = registry.ingest(TELEMETRY, "s1", "n1", telemetry(3, full=True), 3.0)
    assert (cpu.changed, cpu.scheduling_relevant) == (True, False)
    assert dropped.scheduling_relevant is True


# -- staleness ---------------------------------------------------------------------------


def test_an_online_node_goes_stale_after_the_limit_and_comes_back_with_telemetry() -> None:
    registry = online_registry(at=0.0, stale_after_s=90.0)
    assert registry.sweep(90.0) == []
    changes = registry.sweep(91.0)
    assert changes == [
        StateChange(
            node="n1",
            site="s1",
            previous="online",
            current="stale",
            reason="node n1 (site s1) is stale: nothing heard for 91 s (limit 90 s)",
        )
    ]
    assert (registry.nodes["n1"].state, registry.nodes["n1"].offline_since) == ("stale", 91.0)
    assert registry.sweep(200.0) == []  # reported once
    back = registry.ingest(TELEMETRY, "s1", "n1", telemetry(300, cpu_pct=1.0), 300.0)
    assert (back.scheduling_relevant, back.event) == (
        True,
        "node n1 (site s1) is heard again after being stale",
    )
    assert (registry.nodes["n1"].state, registry.nodes["n1"].offline_since) == ("online", None)


@pytest.mark.parametrize(
    ("kind", "model", "retained", "stale_at_91"),
    [
        (TELEMETRY, telemetry(60, cpu_pct=1.0), False, False),
        (STATUS, status("online", 1), False, False),
        (STATUS, status("online", 1), True, True),
        (CAPS, caps(), False, True),
        (REPORTED, reported(1, 1), False, True),
    ],
    ids=[
        "live telemetry keeps it fresh",
        "a live status keeps it fresh",
        "a replayed retained status does not",
        "capabilities do not",
        "reports do not",
    ],
)
def test_only_live_status_and_telemetry_count_as_signs_of_life(
    kind: TopicKind, model: BaseModel, retained: bool, stale_at_91: bool
) -> None:
    registry = online_registry(at=0.0, stale_after_s=90.0)
    registry.ingest(kind, "s1", "n1", model, 60.0, retained=retained)
    assert registry.nodes["n1"].last_seen == 60.0
    assert bool(registry.sweep(91.0)) is stale_at_91


@pytest.mark.parametrize(
    ("retained", "state"), [(True, "stale"), (False, "online")], ids=["retained", "live"]
)
def test_a_same_session_online_revives_a_stale_node_only_when_live(
    retained: bool, state: str
) -> None:
    registry = online_registry(at=0.0, stale_after_s=10.0)
    registry.sweep(11.0)
    registry.ingest(STATUS, "s1", "n1", status("online", 1), 12.0, retained=retained)
    assert registry.nodes["n1"].state == state


def test_a_will_after_staleness_keeps_the_time_the_node_was_lost() -> None:
    registry = online_registry(at=0.0, stale_after_s=10.0)
    registry.sweep(11.0)
    result = registry.ingest(STATUS, "s1", "n1", status("offline", 1), 50.0)
    record = registry.nodes["n1"]
    assert (record.state, record.offline_since) == ("offline", 11.0)
    assert result.scheduling_relevant is True


def test_offline_and_unknown_nodes_never_go_stale() -> None:
    registry = Registry(stale_after_s=10.0)
    registry.ingest(STATUS, "s1", "n1", status("offline", 1), 0.0)
    registry.ingest(CAPS, "s1", "n2", caps(node="n2"), 0.0)
    assert registry.sweep(1_000.0) == []
    assert registry.nodes["n2"].state == "unknown"


def test_the_stale_limit_must_be_positive_and_defaults_to_three_heartbeats() -> None:
    assert Registry().stale_after_s == DEFAULT_STALE_AFTER_S == 180.0
    with pytest.raises(ValueError, match="stale_after_s must be positive"):
        Registry(stale_after_s=0)


# -- cordons -----------------------------------------------------------------------------


def test_cordons_loaded_at_start_apply_when_the_node_appears_and_survive_forget() -> None:
    registry = Registry(cordoned=["n1"])
    registry.ingest(STATUS, "s1", "n1", status("online", 1), 0.0)
    assert (registry.nodes["n1"].cordoned, registry.nodes["n1"].schedulable) == (True, False)
    registry.forget("n1")
    registry.ingest(STATUS, "s1", "n1", status("online", 2), 1.0)
    assert registry.nodes["n1"].cordoned is True


def test_set_cordon_reports_whether_it_changed_and_updates_the_record() -> None:
    registry = online_registry()
    assert registry.set_cordon("n1", True) is True
    assert registry.set_cordon("n1", True) is False
    assert registry.nodes["n1"].schedulable is False
    assert registry.set_cordon("n1", False) is True
    assert registry.nodes["n1"].schedulable is True
    assert registry.set_cordon("ghost", True) is True  # held until the node appears
    assert "ghost" not in registry.nodes


def test_records_handed_out_never_change_under_the_reader() -> None:
    registry = online_registry()
    held: NodeRecord = registry.nodes["n1"]
    registry.ingest(STATUS, "s1", "n1", status("offline", 1), 5.0)
    registry.set_cordon("n1", True)
    assert (held.state, held.cordoned) == ("online", False)
    with pytest.raises(TypeError):
        registry.nodes["x"] = held  # type: ignore[index]


# -- properties over arbitrary status sequences -------------------------------------------

statuses = st.lists(
    st.tuples(st.sampled_from(["online", "offline"]), st.integers(0, 5), st.booleans()),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(steps=statuses)
def test_sessions_never_go_backwards_and_offline_since_tracks_the_state(
    steps: list[tuple[str, int, bool]],
) -> None:
    registry = Registry(stale_after_s=3.0)
    highest = -1
    for at, (state, session, retained) in enumerate(steps):
        message = status(state, session)
        result = registry.ingest(STATUS, "s1", "n1", message, float(at), retained=retained)
        registry.sweep(float(at))
        record = registry.nodes["n1"]
        assert (result.ignored is not None) is (session < highest)
        highest = max(highest, session)
        assert record.session == highest
        assert (record.offline_since is None) is (record.state == "online")
