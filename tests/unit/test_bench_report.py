"""The summary a ``make bench`` run writes: every figure beside its target, a missed target
marked and followed by where its time went, a scenario that could not run shown as failed
(never as a figure), and the plots as real PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report, stats

PROFILE = """
  _     ._   __/__   _ _  _  _ _/_   Recorded: 07:49:55  Samples:  4438
 /_//_/// /_\\ / //_// / //_'/ //     Duration: 5.456     CPU time: 5.453
/   _/                      v5.1.3

Profile at /work/main/bench/orchestrator_profiled.py:43

5.456 _UnixSelectorEventLoop.run_forever  asyncio/base_events.py:593
`- 1.158 Orchestrator._consume  edgefleet_orchestrator/service/orchestrator.py:215

Self time, top functions:

  _     ._   __/__   _ _  _  _ _/_   Recorded: 07:49:55  Samples:  4438
/   _/                      v5.1.3

1.798 [self]  asyncio/base_events.py
"""


def facts(**scenarios: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {
            "date": "2026-01-01T00:00:00+00:00", "host": "box", "cores": 2, "cpu_model": "cpu",
            "memory_mb": 4096, "python": "3.11.7", "mosquitto": "mosquitto version 2.0.11",
            "load_start": [0.5, 0.4, 0.3],
        },
        "scale": "default", "wall_s": 12.0, "load_end": [1.0, 0.5, 0.3],
        "scenarios": {
            name: {"wall_s": 1.0, "load": [0.1, 0.1, 0.1], **result}
            for name, result in scenarios.items()
        },
    }  # fmt: skip


def test_each_target_and_key_figure_sits_in_the_summary_with_its_verdict() -> None:
    text = report.markdown(
        facts(
            ingest={
                "rows": [
                    stats.row("orchestrator / paho", "ratio", 0.07, ">=", 0.8),
                    stats.row("bare paho subscriber", "msgs_per_s", 32000, key=True),
                    stats.row("bare aiomqtt subscriber", "msgs_per_s", 7000),
                ],
                "consumers": {},
                "nodes": 1000,
            }
        ),
        {},
    )
    assert "| ingest | orchestrator / paho | ratio | 0.07 | >= 0.8 | **NO** |" in text
    assert "| ingest | bare paho subscriber | msgs_per_s | 32,000 |  |  |" in text
    # Context without a target stays out of the summary table, in its section.
    assert "| ingest | bare aiomqtt subscriber |" not in text
    assert "Other figures: bare aiomqtt subscriber: msgs_per_s = 7,000." in text


def test_a_missed_target_is_followed_by_where_the_time_went() -> None:
    text = report.markdown(
        facts(
            placement_throughput={
                "rows": [stats.row("1000 x 10000", "placements/s", 4000, ">=", 10_000)],
                "runs": {},
                "profile": PROFILE,
                "where": "Ranker.__init__ scores every node for every app.",
            }
        ),
        {},
    )
    assert "**Target missed**: 1000 x 10000 (placements/s)." in text
    assert "Ranker.__init__ scores every node for every app." in text
    assert "`- 1.158 Orchestrator._consume" in text
    assert "1.798 [self]  asyncio/base_events.py" in text


def test_a_met_target_gets_no_profile_section() -> None:
    text = report.markdown(
        facts(x={"rows": [stats.row("c", "f", 1.0, "<=", 3.0)], "profile": PROFILE}), {}
    )
    assert "Target missed" not in text
    assert "Orchestrator._consume" not in text


def test_a_scenario_that_could_not_run_shows_its_error_and_no_figure() -> None:
    text = report.markdown(facts(convergence={"error": "BenchError: cannot reach the broker"}), {})
    assert (
        "| convergence | | **failed to run** | BenchError: cannot reach the broker | | **NO** |"
        in text
    )


def test_a_profile_excerpt_drops_pyinstrument_banners_and_keeps_the_tree() -> None:
    cut = report.excerpt(PROFILE)
    assert "Recorded" not in cut and "v5.1.3" not in cut and "Profile at" not in cut
    assert cut.splitlines()[0].startswith("5.456 _UnixSelectorEventLoop.run_forever")
    assert "Self time, top functions:" in cut


def test_the_busiest_process_is_named_with_its_share_of_the_window() -> None:
    assert report.busiest({"fleet": 6.0, "orchestrator": 2.0, "wall_s": 8.0}) == "fleet 75%"
    assert report.busiest(None) is None


def test_plots_are_written_as_png_files(tmp_path: Path) -> None:
    convergence = {
        "fleet": "lite",
        "sizes": [{"nodes": 10, "cases": [{"case": "daemon", "cdf_s": [0.1, 0.2, 0.3]}]}],
        "rows": [],
    }
    quality = {"instances": [{"instance": "binpack-0", "ratio": 1.5}], "rows": []}
    made = report.plot_all(
        facts(convergence=convergence, placement_quality=quality), tmp_path / "run"
    )
    assert set(made) == {"convergence", "placement_quality"}
    for name in made.values():
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_booleans_read_as_words_not_numbers() -> None:
    assert report._fmt(True) == "yes"
    assert report._fmt(False) == "no"
    assert report._fmt(1234567) == "1,234,567"
