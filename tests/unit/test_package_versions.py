"""Every edgefleet package reports the version of the installed ``edgefleet`` distribution.

Why: the version is what an operator compares across a fleet — the agent puts it in its
status and capabilities (``agent_version``), the orchestrator in its status (``version``)
and in Home Assistant's device info — and ``pip show edgefleet`` is where they look it up.
One number, from pyproject.toml, everywhere.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

PACKAGES = ["edgefleet_protocol", "edgefleet_orchestrator", "edgefleet_agent", "edgefleet_cli"]


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_reports_the_installed_distributions_version(name: str) -> None:
    assert importlib.import_module(name).__version__ == importlib.metadata.version("edgefleet")
