"""Shared fixtures and tier gating.

Tiers: ``broker`` tests need mosquitto, ``docker`` tests need a dockerd that answers.
Locally a missing one skips its tier with a printed reason; with ``CI=true`` a missing one
fails the test instead, so CI can never go green by skipping the real parts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness.docker_probe import docker_available
from harness.mosquitto import MissingTool, Mosquitto, start_mosquitto
from harness.tiers import require

REPO = Path(__file__).resolve().parent.parent
# The tests' process workloads are scripts and the venv's python (a symlink into root's
# home) in root-only temp dirs: agents the tests start run them as the agent itself. The
# default (an unprivileged workload user) is tested in tests/runtime/test_workload_options.
os.environ.setdefault("EDGEFLEET_WORKLOAD_USER", "-")
sys.path.insert(0, str(REPO))  # the bench package, for its tests and smoke runs


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real mosquitto (the dev config) for the whole test session."""
    try:
        broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    except MissingTool as exc:
        require(False, str(exc))
        raise
    yield broker
    broker.stop()


@pytest.fixture
def broker_url(mosquitto: Mosquitto) -> str:
    return mosquitto.url


@pytest.fixture
def topic_root() -> str:
    """A topic root of this test's own, so tests never see each other's retained state."""
    return f"edgefleet-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def docker_ready() -> None:
    ok, reason = docker_available()
    require(ok, reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests under tests/integration and tests/e2e talk to a broker; tests/docker to dockerd.
    for item in items:
        path = str(item.path)
        if any(f"{os.sep}{tier}{os.sep}" in path for tier in ("integration", "e2e", "chaos")):
            item.add_marker(pytest.mark.broker)
        if Path(path).relative_to(Path(__file__).parent).parts[0] == "conformance":
            item.add_marker(pytest.mark.conformance)
            item.add_marker(pytest.mark.broker)
        if f"{os.sep}docker{os.sep}" in path:
            item.add_marker(pytest.mark.docker)


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per tier, so a CI log shows at a glance that the real parts ran."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            keywords = getattr(report, "keywords", {})
            tier = (
                "docker" if "docker" in keywords else "broker" if "broker" in keywords else "unit"
            )
            counts.setdefault(tier, {}).setdefault(outcome, 0)
            counts[tier][outcome] += 1
    for tier in ("unit", "broker", "docker"):
        if tier in counts:
            parts = ", ".join(f"{n} {k}" for k, n in sorted(counts[tier].items()))
            terminalreporter.write_line(f"tier {tier}: {parts}")
