"""The install paths a user takes, for real: a wheel built from this checkout, installed
into a fresh virtual environment the way the README says, and the systemd units.

1. ``pip install 'edgefleet[agent]'`` brings what a gateway needs and nothing of the
   control plane or the bench (no typer, rich, amqtt, matplotlib, scipy, numpy);
   ``edgefleet-agent`` runs, and ``edgefleet`` says in one line what to install instead
   of a traceback. The installed size is printed (the README records it).
2. Adding the ``orchestrator`` extra makes ``edgefleet`` and ``edgefleet orchestrator
   run`` answer.
3. ``systemd-analyze verify`` accepts both units (pointed at the fresh venv's scripts),
   and refuses a unit whose ExecStart does not exist, so the check is not vacuous.

One venv for all three (about 40 s: dependencies come from pip's configured index and
cache). Skipped locally, failed in CI, when systemd-analyze is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness.tiers import require

REPO = Path(__file__).resolve().parents[2]
NOT_ON_A_GATEWAY = {"typer", "rich", "amqtt", "matplotlib", "scipy", "numpy", "pyinstrument"}
UNITS = {
    "edgefleet-agent.service": REPO / "edge-agent" / "edgefleet-agent.service",
    "edgefleet-orchestrator.service": REPO / "orchestrator" / "edgefleet-orchestrator.service",
}


def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
    )
    if ok:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def installed(venv: Path) -> set[str]:
    listing = run(venv / "bin" / "python", "-m", "pip", "list", "--format=freeze").stdout
    return {line.split("==")[0].lower().replace("_", "-") for line in listing.splitlines()}


def size_mb(venv: Path) -> float:
    site = next((venv / "lib").glob("python3*/site-packages"))
    skip = ("pip", "setuptools", "_distutils_hack", "pkg_resources")
    total = sum(
        f.stat().st_size
        for f in site.rglob("*")
        if f.is_file() and not f.relative_to(site).parts[0].startswith(skip)
    )
    return total / 1e6


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the checkout's wheel and the agent extra only."""
    work = tmp_path_factory.mktemp("install")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "wheels", REPO)
    (wheel,) = (work / "wheels").glob("edgefleet-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[agent]")
    return venv


def test_the_agent_extra_installs_what_a_gateway_needs_and_nothing_else(venv: Path) -> None:
    packages = installed(venv)
    assert {"edgefleet", "docker", "psutil", "tinydb", "aiomqtt", "pydantic"} <= packages
    assert not packages & NOT_ON_A_GATEWAY, packages & NOT_ON_A_GATEWAY
    print(f"\nedgefleet[agent] installed size: {size_mb(venv):.1f} MB (without pip/setuptools)")
    agent = run(venv / "bin" / "edgefleet-agent", "config", "--node", "gw-1", "--site", "a")
    assert '"node": "gw-1"' in agent.stdout
    assert "edgefleet-agent" in run(venv / "bin" / "edgefleet-agent", "--version").stdout
    cli = run(venv / "bin" / "edgefleet", "--help", ok=False)
    assert cli.returncode == 2
    assert "pip install 'edgefleet[orchestrator]'" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_the_orchestrator_extra_adds_the_operator_cli_and_the_service(venv: Path) -> None:
    (wheel,) = venv.parent.glob("wheels/edgefleet-*.whl")
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[orchestrator]")
    help_text = run(venv / "bin" / "edgefleet", "--help").stdout
    assert "deploy" in help_text and "orchestrator" in help_text
    assert (
        "--metrics-addr" in run(venv / "bin" / "edgefleet", "orchestrator", "run", "--help").stdout
    )


def test_systemd_units_verify_against_the_installed_scripts(venv: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (apt-get install systemd)")
    assert analyze is not None
    for name, source in UNITS.items():
        unit = tmp_path / name
        unit.write_text(source.read_text().replace("/opt/edgefleet/.venv/bin", str(venv / "bin")))
        done = run(analyze, "verify", unit, ok=False)
        assert done.returncode == 0, f"{name}: {done.stderr}"
    broken = tmp_path / "broken.service"
    broken.write_text(UNITS["edgefleet-agent.service"].read_text())
    done = run(analyze, "verify", broken, ok=False)
    assert done.returncode != 0 and "is not executable" in done.stderr
