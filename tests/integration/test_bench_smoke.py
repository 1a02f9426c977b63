"""The benchmark suite at tiny sizes, so it cannot rot: every scenario runs for real (real
mosquitto, orchestrator and agent processes, real fleets) through the same runner that
``make bench`` uses, and writes the same JSON, markdown and plots into a temp dir.

The figures of a smoke run mean nothing (tiny fleets, one-second windows); these tests hold
the shape: every scenario produced figures, every target has its verdict, the files exist,
and a benchmark that cannot reach its broker or orchestrator fails with a message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness.mosquitto import free_port
from harness.tiers import require

from bench import run
from bench.fleet_procs import BenchError, Operator, Watcher
from bench.mqtt_lite import LiteClient, LiteError

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SCENARIOS = (
    "placement_throughput",
    "placement_quality",
    "convergence",
    "fleet_size",
    "failover",
    "reconvergence",
    "ingest",
    "outbound",
    "agent_footprint",
)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One smoke run of every scenario, shared by the tests below (about a minute)."""
    from harness.mosquitto import MissingTool, mosquitto_binary

    try:
        mosquitto_binary()
    except MissingTool as exc:
        require(False, str(exc))
    return run.run_all("smoke", set(), tmp_path_factory.mktemp("bench"))


@pytest.mark.timeout(300)
def test_every_scenario_runs_and_reports_figures(smoke: tuple[dict[str, Any], Path]) -> None:
    facts, _ = smoke
    assert list(facts["scenarios"]) == list(SCENARIOS)
    for name, result in facts["scenarios"].items():
        assert "error" not in result, f"{name}: {result.get('error')}"
        assert result["rows"], f"{name} reported no figures"
        for row in result["rows"]:
            assert isinstance(row["value"], int | float), (name, row)
            if "target" in row:
                assert row["met"] in (True, False), (name, row)


def test_convergence_times_every_replica_of_both_apps(smoke: tuple[dict[str, Any], Path]) -> None:
    result = smoke[0]["scenarios"]["convergence"]
    for size in result["sizes"]:
        cases = {c["case"]: c for c in size["cases"]}
        assert cases["daemon"]["running"] == size["nodes"]
        assert cases["replicated"]["running"] == 1000
        for case in cases.values():
            assert 0 < case["p50_s"] <= case["p99_s"] <= case["total_s"]
            assert case["status_s"] >= case["p50_s"]


def test_failover_notices_the_kill_at_once_and_the_silent_cut_only_by_keepalive(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    runs = {r["mode"]: r for r in smoke[0]["scenarios"]["failover"]["runs"]}
    assert runs["kill"]["notice_s"] < 2.0
    # The broker cannot see a silent cut before 1.5 x the agent's keepalive.
    assert runs["cut"]["notice_s"] >= 1.5 * runs["cut"]["keepalive_s"] - 1.0
    for r in runs.values():
        assert r["replaced_s"] >= r["notice_s"]


def test_outbound_times_the_session_against_a_raw_publisher_on_the_same_broker(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    result = smoke[0]["scenarios"]["outbound"]
    (round_,) = result["rounds"]
    assert round_["broker"]["delivered_s"] > 0 and round_["session"]["delivered_s"] > 0
    assert result["ratio_session_to_broker"] == pytest.approx(round_["ratio"], abs=1e-3)
    assert [r["figure"] for r in result["rows"]] == ["delivered_s", "delivered_s", "ratio"]


def test_ingest_measures_every_consumer_against_the_same_load(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    result = smoke[0]["scenarios"]["ingest"]
    assert set(result["consumers"]) == {
        "mosquitto_sub",
        "paho",
        "aiomqtt",
        "session311",
        "session",
        "orchestrator",
    }
    assert all(c["rate"] > 0 for c in result["consumers"].values())
    assert result["ratio_orchestrator_to_paho"] == pytest.approx(
        result["consumers"]["orchestrator"]["rate"] / result["consumers"]["paho"]["rate"], abs=1e-3
    )


def test_quality_compares_with_a_proven_optimum(smoke: tuple[dict[str, Any], Path]) -> None:
    for instance in smoke[0]["scenarios"]["placement_quality"]["instances"]:
        assert instance["optimum_proven"], instance
        assert instance["ratio"] >= 1.0 - 1e-9, instance  # nothing beats the optimum


def test_results_file_markdown_and_plots_are_written(smoke: tuple[dict[str, Any], Path]) -> None:
    facts, stem = smoke
    saved = json.loads(stem.with_suffix(".json").read_text())
    assert saved["machine"]["cores"] >= 1
    assert "mosquitto" in saved["machine"]["mosquitto"]
    text = stem.with_suffix(".md").read_text()
    for name in SCENARIOS:
        assert f"## {name}" in text
    assert "| scenario | case | figure | value | target | met |" in text
    for png in facts["plots"].values():
        assert (stem.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_benchmark_without_a_broker_fails_with_a_message() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    watcher = Watcher(url, ["x/#"])
    with pytest.raises(BenchError, match="cannot reach the broker"):
        await watcher.start()
    await watcher.stop()
    with pytest.raises(LiteError):
        await LiteClient("nobody").connect("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout_s=2)


async def test_a_benchmark_without_an_orchestrator_fails_with_a_message(
    broker_url: str, topic_root: str
) -> None:
    async with Operator(broker_url, topic_root) as op:
        with pytest.raises(BenchError, match="did not answer"):
            await op.call("apps", attempts=2, timeout_s=0.3)


def test_a_scenario_that_raises_records_its_error_not_a_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> dict[str, Any]:
        raise BenchError("cannot reach the broker at mqtt://127.0.0.1:1")

    monkeypatch.setattr(run, "scenarios", lambda scale: {"convergence": unreachable})
    facts, stem = run.run_all("smoke", set(), tmp_path)
    result = facts["scenarios"]["convergence"]
    assert result["error"] == "BenchError: cannot reach the broker at mqtt://127.0.0.1:1"
    assert "rows" not in result
    assert "**failed to run**" in stem.with_suffix(".md").read_text()
