"""Every number a node puts on the wire has a finite bound (issue #12 defect 1): the
largest documented value is accepted, anything beyond it (and inf/NaN spelled as huge
literals) is refused at the edge with the field named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, TopicKind, decode_for_kind
from edgefleet_protocol.bounds import (
    MAX_BANDWIDTH_MBPS,
    MAX_CPU_CORES,
    MAX_CPU_PCT,
    MAX_DISK_MB,
    MAX_LATENCY_MS,
    MAX_LOAD,
    MAX_MEMORY_MB,
    MAX_METRIC,
    MAX_SAFE_INT,
    MAX_TIMESTAMP,
)

BASE: dict[TopicKind, dict[str, Any]] = {
    TopicKind.NODE_STATUS: {"node": "n", "site": "s", "state": "online", "session": 1, "since": 1},
    TopicKind.NODE_CAPABILITIES: {
        "node": "n",
        "site": "s",
        "arch": "x86_64",
        "cpu_cores": 2,
        "memory_mb": 1024,
        "disk_mb": 10,
        "runtimes": ["process"],
    },
    TopicKind.NODE_TELEMETRY: {"node": "n", "site": "s", "ts": 1},
    TopicKind.NODE_REPORTED: {"node": "n", "observed_generation": 1, "session": 1, "ts": 1},
    TopicKind.NODE_DESIRED: {"node": "n", "generation": 1, "issued_at": 1},
}

REPORT = {"spec_hash": "x", "state": "running", "since": 1}

# (kind, path into the payload, largest accepted value)
BOUNDS: list[tuple[TopicKind, tuple[str, ...], float]] = [
    (TopicKind.NODE_STATUS, ("session",), MAX_SAFE_INT),
    (TopicKind.NODE_STATUS, ("since",), MAX_TIMESTAMP),
    (TopicKind.NODE_CAPABILITIES, ("cpu_cores",), MAX_CPU_CORES),
    (TopicKind.NODE_CAPABILITIES, ("memory_mb",), MAX_MEMORY_MB),
    (TopicKind.NODE_CAPABILITIES, ("disk_mb",), MAX_DISK_MB),
    (TopicKind.NODE_CAPABILITIES, ("network", "bandwidth_mbps"), MAX_BANDWIDTH_MBPS),
    (TopicKind.NODE_CAPABILITIES, ("network", "latency_ms"), MAX_LATENCY_MS),
    (TopicKind.NODE_TELEMETRY, ("ts",), MAX_TIMESTAMP),
    (TopicKind.NODE_TELEMETRY, ("cpu_pct",), MAX_CPU_PCT),
    (TopicKind.NODE_TELEMETRY, ("memory_pct",), 100),
    (TopicKind.NODE_TELEMETRY, ("disk_pct",), 100),
    (TopicKind.NODE_TELEMETRY, ("load1",), MAX_LOAD),
    (TopicKind.NODE_TELEMETRY, ("latency_ms", "cam"), MAX_LATENCY_MS),
    (TopicKind.NODE_TELEMETRY, ("metrics", "m"), MAX_METRIC),
    (TopicKind.NODE_TELEMETRY, ("workloads", "w", "cpu_pct"), MAX_CPU_PCT),
    (TopicKind.NODE_TELEMETRY, ("workloads", "w", "memory_mb"), MAX_MEMORY_MB),
    (TopicKind.NODE_TELEMETRY, ("workloads", "w", "memory_pct"), 1000),
    (TopicKind.NODE_TELEMETRY, ("workloads", "w", "metrics", "m"), MAX_METRIC),
    (TopicKind.NODE_REPORTED, ("observed_generation",), MAX_SAFE_INT),
    (TopicKind.NODE_REPORTED, ("session",), MAX_SAFE_INT),
    (TopicKind.NODE_REPORTED, ("ts",), MAX_TIMESTAMP),
    (TopicKind.NODE_REPORTED, ("workloads", "w", "restarts"), MAX_SAFE_INT),
    (TopicKind.NODE_REPORTED, ("workloads", "w", "since"), MAX_TIMESTAMP),
    (TopicKind.NODE_REPORTED, ("workloads", "w", "ports", "http"), 65535),
    (TopicKind.NODE_DESIRED, ("generation",), MAX_SAFE_INT),
    (TopicKind.NODE_DESIRED, ("issued_at",), MAX_TIMESTAMP),
]


def payload(kind: TopicKind, path: tuple[str, ...], value: Any) -> str:
    body: dict[str, Any] = json.loads(json.dumps({"v": 1, **BASE[kind]}))
    here = body
    for i, key in enumerate(path[:-1]):
        fresh = dict(REPORT) if kind is TopicKind.NODE_REPORTED and i == 1 else {}
        here = here.setdefault(key, fresh)
    here[path[-1]] = value
    return json.dumps(body)


def ident(case: tuple[TopicKind, tuple[str, ...], float]) -> str:
    return f"{case[0].value}:{'.'.join(case[1])}"


@pytest.mark.parametrize("case", BOUNDS, ids=ident)
def test_the_bound_itself_is_accepted(case: tuple[TopicKind, tuple[str, ...], float]) -> None:
    kind, path, bound = case
    decode_for_kind(kind, payload(kind, path, bound))


@pytest.mark.parametrize("case", BOUNDS, ids=ident)
@pytest.mark.parametrize("beyond", ["over", "1e308", "1e400"])
def test_beyond_the_bound_is_refused_with_the_field_named(
    case: tuple[TopicKind, tuple[str, ...], float], beyond: str
) -> None:
    kind, path, bound = case
    text = payload(kind, path, "HUGE")
    literal = {"over": repr(bound * 2 if bound else 1), "1e308": "1e308", "1e400": "1e400"}
    text = text.replace('"HUGE"', literal[beyond])
    with pytest.raises(ProtocolError) as caught:
        decode_for_kind(kind, text)
    assert path[-1] in str(caught.value)


def test_the_issue_repro_is_refused() -> None:
    repro = (
        '{"v":1,"node":"gw-q","site":"dev","arch":"x86_64","cpu_cores":1e308,'
        '"memory_mb":4096,"disk_mb":1000,"runtimes":["process"]}'
    )
    with pytest.raises(ProtocolError, match="cpu_cores"):
        decode_for_kind(TopicKind.NODE_CAPABILITIES, repro)
