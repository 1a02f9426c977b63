"""Assemble an agent from settings, failing fast on anything the settings got wrong.

The CLI calls :func:`prepare` before starting the event loop, so a missing profile, an
unwritable state dir or an unusable runtime ends the process with exit code 2 and a message
naming the setting, instead of an agent that starts and then limps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol import ProtocolError, decode
from edgefleet_protocol.policy import CompliancePolicy, load_policy
from edgefleet_protocol.sealing import SealError, private_bytes, private_from_bytes
from edgefleet_protocol.signing import TrustAnchor

from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.security.context import Security
from edgefleet_agent.security.secrets import secret_env
from edgefleet_agent.security.trust import initial_state
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
    security: Security | None = None

    def build(self) -> Agent:
        """The agent; call inside the running event loop."""
        return Agent(
            self.settings,
            store=self.store,
            runtimes=self.runtimes,
            profile=self.profile,
            security=self.security,
        )


SEALING_KEY_FILE = "sealing.key"


def load_sealing_key(path: Path) -> X25519PrivateKey:
    """This node's X25519 key (secrets for its workloads are sealed to its public half):
    made on the first start, kept 0600 in the state dir; unreadable is a settings error."""
    try:
        return private_from_bytes(path.read_bytes())
    except FileNotFoundError:
        key = X25519PrivateKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, private_bytes(key))
            os.fsync(fd)
        finally:
            os.close(fd)
        return key
    except (OSError, SealError) as exc:
        raise SettingsError("state_dir", f"cannot use the sealing key {path}: {exc}") from None


def load_local_policy(path: Path) -> CompliancePolicy:
    """The gateway's policy file, or ``SettingsError`` naming the file and the bad rule."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError("policy_file", f"cannot read {path}: {exc.strerror}") from None
    try:
        return load_policy(raw, source=str(path))
    except ProtocolError as exc:
        raise SettingsError("policy_file", str(exc)) from None


def load_trust_anchor(path: Path) -> TrustAnchor:
    """The trust anchor file, or ``SettingsError`` naming what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError("trust_anchor", f"cannot read {path}: {exc.strerror}") from None
    try:
        return decode(TrustAnchor, raw)
    except ProtocolError as exc:
        raise SettingsError("trust_anchor", f"{path} is not a trust anchor: {exc}") from None


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
    sealing_key = load_sealing_key(state_dir / SEALING_KEY_FILE)
    try:
        runtimes = build_runtimes(settings, secrets=secret_env(sealing_key))
    except ImportError as exc:
        raise SettingsError(
            "runtime", f"runtime {settings.runtime!r} cannot be loaded here: {exc}"
        ) from None
    anchor = None
    if settings.trust_anchor is not None:
        anchor = load_trust_anchor(settings.trust_anchor)
    try:
        store = LocalStore(state_dir)
    except OSError as exc:
        raise SettingsError("state_dir", f"cannot open the local store: {exc}") from None
    policy = None
    if settings.policy_file is not None:
        policy = load_local_policy(settings.policy_file)
    trust = None
    if anchor is not None:
        trust = initial_state(anchor, *store.load_trust())
    security = Security(trust=trust, policy=policy, sealing_key=sealing_key)
    return Prepared(settings, profile, runtimes, store, security)
