"""Percentiles, rates and target rows: the arithmetic every benchmark figure goes through."""

from __future__ import annotations

import pytest

from bench import stats
from bench.failover import parse_runs
from bench.lite_fleet import fleet_specs
from bench.run import footprint_rows


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        (list(map(float, range(101))), 99, 99.0),
        ([0.0, 10.0], 25, 2.5),
    ],
)
def test_percentiles_interpolate_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert stats.percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 101), ([1.0], -1)])
def test_a_percentile_of_nothing_or_out_of_range_is_refused(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile(values, q)


def test_a_summary_orders_its_percentiles() -> None:
    summary = stats.summarize([0.1 * i for i in range(1, 201)])
    assert summary["p50_s"] <= summary["p90_s"] <= summary["p99_s"] <= summary["max_s"]
    assert summary["max_s"] == 20.0


def test_cdf_points_keep_both_ends_and_stay_small() -> None:
    values = [float(i) for i in range(10_000)]
    points = stats.cdf_points(values, points=50)
    assert len(points) == 50
    assert points[0] == 0.0 and points[-1] == 9999.0
    assert points == sorted(points)
    assert stats.cdf_points([3.0, 1.0]) == [1.0, 3.0]


SAMPLES = [(0.0, 0), (1.0, 100), (2.0, 300), (3.0, 300)]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [(0.0, 2.0, 150.0), (0.5, 1.5, 150.0), (1.0, 2.0, 200.0), (2.0, 3.0, 0.0)],
)
def test_a_rate_interpolates_the_count_at_both_ends_of_its_window(
    start: float, end: float, expected: float
) -> None:
    assert stats.rate(SAMPLES, start, end) == pytest.approx(expected)


@pytest.mark.parametrize(("start", "end"), [(2.0, 2.0), (-1.0, 1.0), (1.0, 4.0)])
def test_a_rate_without_samples_around_its_window_is_refused(start: float, end: float) -> None:
    with pytest.raises(ValueError, match=r"window|samples"):
        stats.rate(SAMPLES, start, end)


@pytest.mark.parametrize(
    ("value", "op", "target", "met"),
    [
        (2.9, "<=", 3.0, True),
        (3.1, "<=", 3.0, False),
        (0.8, ">=", 0.8, True),
        (0.7, ">=", 0.8, False),
    ],
)
def test_a_row_with_a_target_says_whether_it_was_met(
    value: float, op: stats.Op, target: float, met: bool
) -> None:
    assert stats.row("case", "figure", value, op, target)["met"] is met


def test_a_row_without_a_target_is_context_not_a_verdict() -> None:
    assert stats.row("case", "figure", 1.0) == {
        "case": "case", "figure": "figure", "value": 1.0, "met": None,
    }  # fmt: skip
    assert stats.row("case", "figure", 1.0, key=True)["key"] is True


def test_failover_runs_are_read_as_mode_and_grace() -> None:
    assert parse_runs("kill:0, cut:30") == [("kill", 0.0), ("cut", 30.0)]
    for bad in ("drop:0", "kill", "kill:"):
        with pytest.raises(ValueError, match="MODE:GRACE"):
            parse_runs(bad)


def test_a_lite_fleet_names_its_nodes_uniquely_and_refuses_impossible_sizes() -> None:
    specs = fleet_specs(12_000, 7)
    assert len({s.node for s in specs}) == 12_000
    assert {s.site for s in specs} == {f"site-{i:03d}" for i in range(7)}
    for count, sites in ((0, 1), (-3, 1), (5, 0)):
        with pytest.raises(ValueError, match="at least 1"):
            fleet_specs(count, sites)


def test_footprint_rows_become_numbers_beside_their_targets() -> None:
    written = {
        "rows": [
            {"case": "0 workloads", "figure": "rss_mb = 31.5", "target": "<= 45.0", "met": True},
            {"case": "0 workloads", "figure": "cpu_pct = 0.2", "target": "(none)", "met": True},
        ]
    }
    rows = footprint_rows(written)["rows"]
    assert rows[0] == stats.row("0 workloads", "rss_mb", 31.5, "<=", 45.0)
    assert rows[1] == stats.row("0 workloads", "cpu_pct", 0.2)
