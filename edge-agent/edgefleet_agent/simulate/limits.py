"""What the fleet simulator needs from the machine before it starts: profiles, file
descriptors, and a place for the nodes' local stores.

Both fail fast with a :class:`SettingsError` naming the setting, so ``edgefleet-agent
simulate`` exits 2 with one line instead of a fleet that starts and then limps:

* :func:`load_fleet_profiles` reads the profiles directory (every file must validate, and
  every profile named by ``--profile`` must exist);
* :func:`ensure_fd_limit` raises the soft ``RLIMIT_NOFILE`` to the hard limit when the fleet
  needs more than the soft one, decides how many nodes can be faultable, and refuses a
  fleet the hard limit cannot hold;
* :func:`temporary_state_root` makes the default home of the nodes' stores, on tmpfs when
  there is one (a store write is an fsync; thousands of them must not wait for a disk), and
  removes what simulators killed before they could clean up left there;
* :func:`settle_heap` keeps the garbage collector off the long-lived objects of a started
  fleet, and :func:`keep_heap` collects when the fleet is quiet, not in a burst (see there).
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from edgefleet_protocol.profiles import Profile, ProfileError, load_profiles

from edgefleet_agent.settings import SettingsError
from edgefleet_agent.simulate.settings import faultable_within, fd_budget

TMPFS = Path("/dev/shm")
STATE_PREFIX = "edgefleet-sim-"
UNLIMITED = 1 << 20
"""What an ``RLIM_INFINITY`` hard limit counts as (the kernel's nr_open default)."""


def load_fleet_profiles(directory: Path, weights: Mapping[str, int]) -> dict[str, Profile]:
    """The profiles the fleet is built from: all of ``directory``, or those in ``weights``."""
    try:
        profiles = load_profiles(directory)
    except ProfileError as exc:
        raise SettingsError("profiles", str(exc)) from None
    except OSError as exc:
        raise SettingsError("profiles", f"cannot read {directory}: {exc.strerror}") from None
    if not profiles:
        raise SettingsError("profiles", f"{directory} holds no device profiles (*.yaml)")
    unknown = sorted(set(weights) - set(profiles))
    if unknown:
        raise SettingsError(
            "profile",
            f"unknown profile {unknown[0]!r} in {directory} "
            f"(available: {', '.join(sorted(profiles))})",
        )
    return {pid: profiles[pid] for pid in weights} if weights else profiles


def fd_limits() -> tuple[int, int]:
    """(soft, hard) ``RLIMIT_NOFILE``, with "unlimited" counted as :data:`UNLIMITED`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = UNLIMITED if hard == resource.RLIM_INFINITY else hard
    soft = hard if soft == resource.RLIM_INFINITY else soft
    return soft, hard


def ensure_fd_limit(count: int, faultable: int | None) -> int:
    """Make room for ``count`` nodes; returns how many are faultable (``None``: as many as
    the hard limit allows)."""
    soft, hard = fd_limits()
    chosen = faultable_within(count, hard) if faultable is None else faultable
    needed = fd_budget(count, chosen)
    if needed > hard:
        advice = "lower --count" if chosen == 0 else "lower --faultable or --count"
        raise SettingsError(
            "count",
            f"{count} simulated nodes ({chosen} faultable) need about {needed} open files, "
            f"but the hard RLIMIT_NOFILE is {hard}: {advice}, or raise the hard limit "
            "(ulimit -Hn, systemd LimitNOFILE=)",
        )
    if needed > soft:
        _, raw_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, raw_hard))
    return chosen


def temporary_state_root(base: Path | None = None) -> Path:
    """A fresh directory ``edgefleet-sim-<pid>-*`` in ``base`` (default: tmpfs, else the
    temp dir); the caller removes it. Directories of simulator processes that no longer
    exist are removed first: a SIGKILLed simulator cannot clean up, and tmpfs is memory."""
    if base is None:
        usable = TMPFS.is_dir() and os.access(TMPFS, os.W_OK | os.X_OK)
        base = TMPFS if usable else Path(tempfile.gettempdir())
    for stale in base.glob(f"{STATE_PREFIX}*-*"):
        pid = stale.name.removeprefix(STATE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{STATE_PREFIX}{os.getpid()}-", dir=base))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: an existence check, nothing is sent
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


YOUNG_COLLECTION_AFTER = 10_000
"""Allocations between two young-generation collections in a started fleet (Python's
default is 700): thousands of agents allocate fast, and each collection has a fixed cost."""
OLDER_COLLECTION_AFTER = 100
"""Collections of a generation between two of the next older one (default 10): with 1,000
agents a middle-generation collection walked 100,000 objects, 0.35 s of a deploy's 2.7 CPU s."""


def settle_heap() -> int:
    """Collect once, then move every object alive now out of the collector's reach
    (:func:`gc.freeze`), and collect every generation less often; returns how many
    objects were frozen.

    Why: a real agent is a process of its own with a small heap, but the simulator holds
    hundreds to thousands of agents in one, and every full collection walks all of their
    long-lived objects (settings, stores, sessions, models): measured with 500 agents during
    a deploy, collections took 0.7 to 1.4 s of the fleet's 2.3 to 3.2 CPU seconds, a cost no
    real gateway pays; frozen, 0.5 s; with young collections every 10,000 allocations,
    0.2 s. With 1,000 agents and the older generations collected every 100 younger ones
    instead of 10: 0.33 s instead of 0.68 s of collections, fleet 2.2 instead of 2.7 CPU s.
    Called once the fleet is up, so what the agents allocate from then on
    (documents, reports) is still collected; the frozen objects are the fleet's own and
    live until the process ends (reference counting still frees them; only reference
    cycles among them are never collected).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, OLDER_COLLECTION_AFTER, OLDER_COLLECTION_AFTER)
    return gc.get_freeze_count()


KEEPER_TICK_S = 0.5
"""How often :func:`keep_heap` looks at the loop and the count of new objects."""
QUIET_LAG_S = 0.05
"""A tick that ran at most this late found the loop idle (a burst makes every tick late)."""
QUIET_CPU = 0.5
"""... and the process used at most this share of one core since the last tick."""
COLLECT_AT_LEAST = 10_000
"""Fewer new objects than this are not worth a collection (Python's own trigger is 700)."""
COLLECT_AT_MOST = 1_000_000
"""A burst longer than this many new objects is collected anyway: a bound on the memory
reference cycles can hold and on how long one collection pauses the fleet."""


async def keep_heap(
    *, tick_s: float = KEEPER_TICK_S, cap: int = COLLECT_AT_MOST, floor: int = COLLECT_AT_LEAST
) -> None:
    """Young collections at quiet moments instead of every few thousand allocations
    (:func:`settle_heap` must have run; runs until cancelled, then leaves the collector on).

    Why: in a deploy, the fleet's thousands of agents each keep a hundred or so new objects
    (documents, stored state, reports in flight); measured at 5,000 agents (bench results
    2026-12-06b, second pass): 76 young collections in the 10 s deploy window, 0.93 CPU s of
    the fleet's 6.5, and not one object freed by them (reference counting frees the
    garbage; the collector only finds cycles). Each collection is slow, most likely
    because a young object's references point into a heap of millions of other agents'
    objects (cache misses), a cost a real gateway's small heap does not have. Here the
    collector is off while the loop is busy; it collects the young generation once the
    fleet is quiet (a tick on time and little CPU), or after ``cap`` new objects whatever
    the load, and the older generations as CPython would (every
    :data:`OLDER_COLLECTION_AFTER` younger ones).
    """
    gc.disable()
    try:
        last_wall, last_cpu = time.monotonic(), time.process_time()
        while True:
            await asyncio.sleep(tick_s)
            wall, cpu = time.monotonic(), time.process_time()
            late = wall - last_wall - tick_s
            busy = (cpu - last_cpu) / max(wall - last_wall, 1e-9)
            last_wall, last_cpu = wall, cpu
            young, middle, old = gc.get_count()
            quiet = late <= QUIET_LAG_S and busy <= QUIET_CPU
            if young >= cap or (quiet and young >= floor):
                gc.collect(collection_due(middle, old))
                last_wall, last_cpu = time.monotonic(), time.process_time()
    finally:
        gc.enable()


def collection_due(middle: int, old: int, every: int = OLDER_COLLECTION_AFTER) -> int:
    """The generation to collect now, as CPython's own trigger picks it: the oldest one
    whose younger neighbour was collected ``every`` times since it last was."""
    if old >= every:
        return 2
    if middle >= every:
        return 1
    return 0
