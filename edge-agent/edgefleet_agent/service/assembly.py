"""Assemble an agent from settings, failing fast on anything the settings got wrong.

The CLI calls :func:`prepare` before starting the event loop, so a missing profile, an
unwritable state dir or an unusable runtime ends the process with exit code 2 and a message
naming the setting, instead of an agent that starts and then limps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.service.agent import Agent
from edgefleet_agent.service.capabilities import load_device_profile
from edgefleet_agent.service.runtime_factory import build_runtimes
from edgefleet_agent.settings import AgentSettings, SettingsError
from edgefleet_agent.store import LocalStore

if TYPE_CHECKING:
    from edgefleet_protocol.profiles import Profile


@dataclass
class Prepared:
    settings: AgentSettings
    profile: Profile | None
    runtimes: dict[str, Runtime]
    store: LocalStore

    def build(self) -> Agent:
        """The agent; call inside the running event loop."""
        return Agent(self.settings, store=self.store, runtimes=self.runtimes, profile=self.profile)


def prepare(settings: AgentSettings) -> Prepared:
    profile = None
    if settings.profile_path is not None:
        from edgefleet_protocol.profiles import ProfileError

        try:
            profile = load_device_profile(settings.profile_path)
        except ProfileError as exc:
            raise SettingsError("profile", str(exc)) from None
    state_dir = settings.state_dir
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError("state_dir", f"cannot create {state_dir}: {exc.strerror}") from None
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise SettingsError("state_dir", f"{state_dir} is not writable by this user")
    try:
        runtimes = build_runtimes(settings)
    except ImportError as exc:
        raise SettingsError(
            "runtime", f"runtime {settings.runtime!r} cannot be loaded here: {exc}"
        ) from None
    try:
        store = LocalStore(state_dir)
    except OSError as exc:
        raise SettingsError("state_dir", f"cannot open the local store: {exc}") from None
    return Prepared(settings, profile, runtimes, store)
