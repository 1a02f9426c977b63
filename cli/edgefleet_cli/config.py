"""What the operator gives the CLI: connection settings (flags, ``EDGEFLEET_*`` variables,
a config file, defaults), manifest files, and the errors that map to exit codes.

Pure but for reading the files it is pointed at. Used by the commands
(:mod:`edgefleet_cli.commands`) and :mod:`edgefleet_cli.client`. Every expected failure is a
:class:`CliError` carrying its exit code and its lines for stderr, so the command layer
prints them and never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefleet_protocol import CommandReply, ProtocolError
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.commands import manifest_from_text
from edgefleet_protocol.ids import validate_id
from edgefleet_protocol.topics import DEFAULT_ROOT, validate_root

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
DEFAULT_TIMEOUT_S = 10.0
CONFIG_KEYS = ("broker", "root", "timeout", "user")
ENV = {key: f"EDGEFLEET_{key.upper()}" for key in CONFIG_KEYS}
ENV_CONFIG = "EDGEFLEET_CONFIG"
ENV_USERNAME = "EDGEFLEET_BROKER_USERNAME"
ENV_PASSWORD = "EDGEFLEET_BROKER_PASSWORD"
_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
HINT = "is `edgefleet orchestrator run` running? check --broker and --root"

# -- errors ------------------------------------------------------------------------------------


class CliError(Exception):
    """An expected failure: ``lines`` go to stderr, the process exits with ``exit_code``."""

    exit_code = 1

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.lines = list(lines)


class CommandRefused(CliError):
    exit_code = 1


class UsageError(CliError):
    exit_code = 2


class WaitTimedOut(CliError):
    exit_code = 3


class Unreachable(CliError):
    """The broker or the orchestrator cannot be reached."""

    exit_code = 4


def refusal_lines(reply: CommandReply) -> list[str]:
    """``error: <code>: <message>``, then the details that add to the message."""
    error = reply.error
    if error is None:
        return ["error: the orchestrator refused the command without saying why"]
    lines = [f"error: {error.code}: {error.message}"]
    for key, value in error.details.items():
        if key in ("apps", "verbs") and isinstance(value, list):
            known = ", ".join(str(v) for v in value) or "none"
            lines.append(f"  known {key}: {known}")
        elif str(value) not in error.message:
            text = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"  {key}: {text}")
    return lines


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientSettings:
    broker: BrokerSettings
    root: str = DEFAULT_ROOT
    user: str = "cli"
    timeout_s: float = DEFAULT_TIMEOUT_S
    broker_source: str = "default"
    """Where the broker URL came from (``--broker``, a variable, the config file), or
    ``default``: then no broker was configured and errors say so."""

    @property
    def operator(self) -> str | None:
        """Who the orchestrator takes commands to be from: the broker user, whose account
        the production ACL lets publish only to ``commands/<user>/<verb>``. ``None`` on a
        broker without accounts (the dev config): commands then go to the accountless
        ``commands/<verb>`` and run as the ``anonymous`` operator."""
        return self.broker.username or None

    @property
    def reply_prefix(self) -> str:
        """``replies/<broker user>`` (the only reply subtree the orchestrator answers that
        account in, and the only one it may read), or ``replies/<user>`` without one."""
        return f"{self.root}/replies/{self.operator or self.user}"


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "edgefleet" / "cli.toml"


def read_config_file(path: Path, *, explicit: bool) -> dict[str, Any]:
    """The keys of a ``cli.toml``. A missing default file is no config; a missing file the
    operator named, a TOML error or an unknown key is a usage error naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"error: config file {path} does not exist") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"error: cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"error: {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"error: {path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(CONFIG_KEYS)}"
        )
    for key in ("broker", "root", "user"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"error: {path}: {key} must be a string")
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise UsageError(f"error: {path}: timeout must be a number of seconds")
    return data


def resolve_settings(
    flags: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]
) -> ClientSettings:
    """Flags > ``EDGEFLEET_*`` variables > config file > defaults, for each key on its own.

    The reply-topic user falls back to the broker user name (the production ACL lets an
    operator read ``replies/<broker user>/#`` only), then ``$USER``, then ``cli``.
    """

    def pick(key: str) -> tuple[Any, str] | None:
        if flags.get(key) is not None:
            return flags[key], f"--{key}"
        if env.get(ENV[key]):
            return env[ENV[key]], ENV[key]
        if file.get(key) is not None:
            return file[key], f"config file key {key!r}"
        return None

    chosen_broker = pick("broker")
    if chosen_broker is None and (env.get(ENV_USERNAME) or env.get(ENV_PASSWORD)):
        # The generated .env sets all three: one without the others is a file that was
        # not read completely (an unquoted one from before: the URL's & ended the line).
        raise UsageError(
            f"error: {ENV_USERNAME}/{ENV_PASSWORD} are set but {ENV['broker']} is not: the "
            "client .env file was not read completely; regenerate it with `edgefleet broker "
            "config` (values are quoted now) or set EDGEFLEET_BROKER yourself",
        )
    url, source = chosen_broker or (DEFAULT_BROKER, "default")
    broker_source = source
    try:
        broker = BrokerSettings.from_url(str(url))
    except ProtocolError as exc:
        raise UsageError(f"error: {source}: {exc.reason}") from None
    if broker.username:
        try:
            validate_id(broker.username, kind="operator")
        except ProtocolError as exc:
            raise UsageError(
                f"error: {source}: the broker user names the operator in the command topic "
                f"(commands/<user>/<verb>): {exc.reason}"
            ) from None
    for option in (broker.ca_file, broker.cert_file, broker.key_file):
        if option is not None and not Path(option).is_file():
            raise UsageError(f"error: {source}: no such file {option}")
    root, source = pick("root") or (DEFAULT_ROOT, "default")
    try:
        validate_root(str(root))
    except ProtocolError as exc:
        raise UsageError(f"error: {source}: {exc.reason}") from None
    timeout_s = _timeout(pick("timeout"))
    chosen = pick("user")
    if chosen is not None:
        user = str(chosen[0])
        if _USER.fullmatch(user) is None:
            raise UsageError(
                f"error: {chosen[1]}: user {user!r} must be 1-64 of A-Z a-z 0-9 _ . - "
                "(it becomes a topic level)"
            )
    else:
        candidates = (broker.username, env.get("USER"))
        user = next((c for c in candidates if c and _USER.fullmatch(c)), "cli")
    return ClientSettings(
        broker=broker, root=str(root), user=user, timeout_s=timeout_s, broker_source=broker_source
    )


def _timeout(chosen: tuple[Any, str] | None) -> float:
    if chosen is None:
        return DEFAULT_TIMEOUT_S
    value, source = chosen
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"error: {source}: {value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise UsageError(f"error: {source}: timeout must be more than 0 and at most 3600 s")
    return seconds


def load_settings(flags: Mapping[str, Any], config: Path | None) -> ClientSettings:
    """Settings from this process's flags, environment and config file."""
    env = dict(os.environ)
    explicit = config or (Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else None)
    path = explicit or default_config_path(env)
    return resolve_settings(flags, env, read_config_file(path, explicit=explicit is not None))


# -- manifests ---------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest file (``-``: stdin) as an object. Unreadable, or not YAML/JSON, is a usage
    error naming the line; the manifest's schema is the orchestrator's to check."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"error: cannot read {path}: {reason}") from None
    try:
        return manifest_from_text(text)
    except ValueError as exc:
        raise UsageError(f"error: {path}: {exc}") from None
