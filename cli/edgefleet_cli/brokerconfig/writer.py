"""Write a generated set to disk: the only part of brokerconfig that touches files.

Rules: never overwrite a non-empty directory unless asked (a second run would otherwise
silently replace a fleet's CA and lock every gateway out); secrets are created 0600 from
the first byte (no window in which they are world-readable) and re-chmodded when the file
already existed; each file is written to a temp name and renamed into place, so a crash
never leaves half a key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from edgefleet_cli.brokerconfig.bundle import GeneratedFile


class DirectoryNotEmptyError(RuntimeError):
    """The output directory already holds files and ``force`` was not given."""


def check_target(out_dir: Path, *, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DirectoryNotEmptyError(f"{out_dir} exists and is not a directory")
    if not force and out_dir.is_dir() and any(out_dir.iterdir()):
        raise DirectoryNotEmptyError(
            f"{out_dir} is not empty; pass --force to overwrite (this replaces the CA and every "
            "credential in it)"
        )


def write_file(target: Path, content: bytes, mode: int) -> None:
    """Write one file atomically with ``mode`` from its first byte (also for ``keys``)."""
    _write_one(target, content, mode)


def _write_one(target: Path, content: bytes, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by umask; a reused tmp keeps its own
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def write_config_set(out_dir: Path, files: Iterable[GeneratedFile], *, force: bool) -> list[Path]:
    """Write ``files`` under ``out_dir``; returns the paths written, in order."""
    check_target(out_dir, force=force)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written: list[Path] = []
    for generated in files:
        target = out_dir / generated.path
        _write_one(target, generated.content, generated.mode)
        written.append(target)
    return written


BROKER_READS = ("passwd", "acl", "server.key")
"""The secret files mosquitto reads after it dropped to its own user (password and ACL
files are read then, and again on every reload)."""


def closed_parent(out_dir: Path, *, group: str = "mosquitto") -> Path | None:
    """The first directory above ``out_dir`` that the ``group``'s user cannot pass through
    (``/root`` is 0700), or ``None``: mosquitto could not reach the set from there."""
    import grp
    import pwd

    try:
        gid = grp.getgrnam(group).gr_gid
        uid = pwd.getpwnam(group).pw_uid
    except KeyError:
        return None
    for parent in out_dir.resolve().parents:
        info = parent.stat()
        if info.st_uid == uid and info.st_mode & 0o100:
            continue
        if info.st_gid == gid and info.st_mode & 0o010:
            continue
        if not info.st_mode & 0o001:
            return parent
    return None


def share_with_broker(out_dir: Path, *, group: str = "mosquitto") -> str | None:
    """Run as root with a ``mosquitto`` group (Debian's package), let that group read what
    the broker reads: the directory 0750 and ``passwd``, ``acl``, ``server.key`` 0640, all
    still owned by root. mosquitto started as root drops to its own user before it reads
    the password file, so a root-only 0600 set would not start. Returns the group used,
    or ``None`` when nothing was changed (not root, or no such group)."""
    import grp

    if os.geteuid() != 0:
        return None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return None
    os.chown(out_dir, -1, gid)
    os.chmod(out_dir, 0o750)
    for name in BROKER_READS:
        target = out_dir / name
        if target.exists():
            os.chown(target, -1, gid)
            os.chmod(target, 0o640)
    return group
