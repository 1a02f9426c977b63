"""What the simulator needs before it starts: readable profiles, and file descriptors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from edgefleet_agent.settings import SettingsError
from edgefleet_agent.simulate.limits import (
    ensure_fd_limit,
    fd_limits,
    load_fleet_profiles,
    temporary_state_root,
)
from edgefleet_agent.simulate.settings import fd_budget

PROFILES_DIR = Path(__file__).resolve().parents[2] / "device-profiles"


def test_all_profiles_of_the_directory_are_used_unless_some_are_named() -> None:
    every = load_fleet_profiles(PROFILES_DIR, {})
    assert len(every) == len(list(PROFILES_DIR.glob("*.yaml")))
    chosen = load_fleet_profiles(PROFILES_DIR, {"teltonika-rutx11": 2})
    assert list(chosen) == ["teltonika-rutx11"]


def test_an_unknown_profile_is_refused_listing_the_available_ones() -> None:
    with pytest.raises(SettingsError) as caught:
        load_fleet_profiles(PROFILES_DIR, {"raspberry-pi-9": 1})
    assert caught.value.setting == "profile"
    assert "unknown profile 'raspberry-pi-9'" in str(caught.value)
    assert "raspberry-pi-4b-4gb" in str(caught.value)


@pytest.mark.parametrize(
    ("prepare", "says"),
    [
        ("missing", "does not exist or is not a directory"),
        ("empty", "holds no device profiles"),
        ("broken", "is not valid YAML"),
        ("a-file", "does not exist or is not a directory"),
    ],
)
def test_a_profiles_directory_that_cannot_be_used_is_refused(
    tmp_path: Path, prepare: str, says: str
) -> None:
    directory = tmp_path / "profiles"
    if prepare == "a-file":
        directory.write_text("not a directory")
    elif prepare != "missing":
        directory.mkdir()
    if prepare == "broken":
        (directory / "board.yaml").write_text("id: [unclosed\n")
    if prepare == "broken":
        shutil.copy(PROFILES_DIR / "teltonika-rutx11.yaml", directory)  # good ones do not help
    with pytest.raises(SettingsError) as caught:
        load_fleet_profiles(directory, {})
    assert caught.value.setting == "profiles"
    assert says in str(caught.value)


def test_a_fleet_beyond_the_hard_fd_limit_is_refused_saying_how_many_it_needs() -> None:
    _, hard = fd_limits()
    count = hard  # one fd per node plus the reserve cannot fit
    with pytest.raises(SettingsError) as caught:
        ensure_fd_limit(count, 0)
    message = str(caught.value)
    assert f"need about {fd_budget(count, 0)} open files" in message
    assert f"hard RLIMIT_NOFILE is {hard}" in message


def test_too_many_faultable_nodes_are_refused_with_the_advice_to_lower_them() -> None:
    _, hard = fd_limits()
    count = hard // 2
    with pytest.raises(SettingsError, match="lower --faultable or --count"):
        ensure_fd_limit(count, count)


def test_auto_fits_the_faultable_nodes_under_the_limit_and_raises_the_soft_limit() -> None:
    _, hard = fd_limits()
    count = hard // 3
    faultable = ensure_fd_limit(count, None)
    assert 0 < faultable < count
    assert fd_budget(count, faultable) <= hard
    soft, _ = fd_limits()
    assert soft >= fd_budget(count, faultable)


def test_a_new_state_root_is_tagged_with_this_pid_and_clears_dead_simulators_leftovers(
    tmp_path: Path,
) -> None:
    dead = tmp_path / "edgefleet-sim-999999999-abc"  # above any pid_max: no such process
    alive = tmp_path / f"edgefleet-sim-{os.getpid()}-def"
    untagged = tmp_path / "edgefleet-sim-ghi"
    for directory in (dead, alive, untagged):
        (directory / "node").mkdir(parents=True)
    root = temporary_state_root(tmp_path)
    assert root.is_dir() and root.name.startswith(f"edgefleet-sim-{os.getpid()}-")
    assert not dead.exists()
    assert alive.exists() and untagged.exists()


def test_a_settled_heap_keeps_the_fleets_objects_out_of_collections_in_its_own_process() -> None:
    """Run in a child: freezing the heap is for the simulator's own process, never for a
    test process that happens to import it."""
    code = (
        "import gc, json\n"
        "from edgefleet_agent.simulate.limits import settle_heap, YOUNG_COLLECTION_AFTER\n"
        "from edgefleet_agent.simulate.limits import OLDER_COLLECTION_AFTER\n"
        "fleet = [{'node': i} for i in range(5000)]  # long-lived, like started agents\n"
        "frozen = settle_heap()\n"
        "print(json.dumps([frozen, gc.get_freeze_count(), list(gc.get_threshold()),\n"
        "                  [YOUNG_COLLECTION_AFTER, OLDER_COLLECTION_AFTER,\n"
        "                   OLDER_COLLECTION_AFTER], gc.isenabled()]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    frozen, count, young, wanted, enabled = json.loads(done.stdout)
    assert frozen == count >= 5000, "every object alive at the call is frozen"
    assert young == wanted and wanted[0] > 700 and wanted[1] > 10, "collections come less often"
    assert enabled, "what the agents allocate afterwards is still collected"
