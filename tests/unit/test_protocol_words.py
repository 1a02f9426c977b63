"""Small pieces of the protocol package pinned exactly (each was a surviving mutant of
`make mutate`, mutate/results/): what an operator reads in an event or a reply."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol import bounds as b
from pydantic import TypeAdapter, ValidationError


def test_a_protocol_error_reads_field_colon_reason_and_serialises_both() -> None:
    err = ProtocolError("workloads.0.name", "is not a valid workload id")
    assert str(err) == "workloads.0.name: is not a valid workload id"
    assert err.as_dict() == {"field": "workloads.0.name", "reason": "is not a valid workload id"}
    assert isinstance(err, ValueError)


def test_every_protocol_module_exports_exactly_names_it_defines() -> None:
    """`from edgefleet_protocol.x import *` must work: each ``__all__`` is a list of names
    the module has."""
    import edgefleet_protocol

    for info in pkgutil.iter_modules(edgefleet_protocol.__path__):
        module = importlib.import_module(f"edgefleet_protocol.{info.name}")
        names = vars(module).get("__all__", ())  # a module that sets it sets a list
        assert isinstance(names, list | tuple), module.__name__
        missing = [n for n in names if not hasattr(module, n)]
        assert not missing, (module.__name__, missing)
    assert all(hasattr(edgefleet_protocol, n) for n in edgefleet_protocol.__all__)


# -- bounds (docs/protocol.md "Bounds"): the figures themselves, and both ends -----------------


def test_the_bounds_are_the_documented_figures() -> None:
    assert (b.MAX_SAFE_INT, b.MAX_TIMESTAMP) == (9_007_199_254_740_991, 1e10)
    assert (b.MAX_CPU_CORES, b.MAX_MEMORY_MB, b.MAX_DISK_MB) == (1024, 4_194_304, 1_073_741_824)
    assert (b.MAX_BANDWIDTH_MBPS, b.MAX_LATENCY_MS) == (1_000_000, 3_600_000)
    assert (b.MAX_CPU_PCT, b.MAX_LOAD, b.MAX_METRIC) == (102_400, 1_000_000, 1e15)


@pytest.mark.parametrize(
    ("kind", "lowest", "highest"),
    [
        (b.Counter, 0, 9_007_199_254_740_991),
        (b.Timestamp, 0, 1e10),
        (b.Percent, 0, 100),
        (b.CpuPercent, 0, 102_400),
        (b.LatencyMs, 0, 3_600_000),
        (b.Metric, -1e15, 1e15),
        (b.Port, 1, 65_535),
    ],
    ids=["counter", "timestamp", "percent", "cpu-percent", "latency", "metric", "port"],
)
def test_each_bounded_number_takes_both_ends_and_nothing_beyond(
    kind: Any, lowest: float, highest: float
) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    assert adapter.validate_python(lowest) == lowest
    assert adapter.validate_python(highest) == highest
    step = 1 if isinstance(highest, int) else highest / 1e6
    for beyond in (lowest - step, highest + step):
        with pytest.raises(ValidationError):
            adapter.validate_python(beyond)
