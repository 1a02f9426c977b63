"""The agent's local state: a tinydb file in the state dir that survives restarts and
crashes, so a gateway converges to its last desired state before, and without, any broker.

It holds the session counter, the last accepted desired document, the specs of hashes the
agent has applied (to tell a resources-only change from a real one) and live resource
updates (a running container keeps its old hash label; the agent remembers it now means
the new one).

Writes are atomic (:class:`AtomicJSONStorage`): the whole database goes to a temp file in
the same directory, is fsynced, renamed over the old file, and the directory is fsynced.
A crash at any point leaves either the old or the new file, never a torn one. A file that
is nevertheless unreadable (disk fault, hand edit) is moved aside and the agent starts
empty, saying so (:attr:`LocalStore.recovered_from`), rather than refusing to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefleet_protocol import Desired, ProtocolError, ServiceEndpoints, WorkloadSpec, validate
from edgefleet_protocol.signing import PublicKeyRef
from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from edgefleet_agent.core.revert import Reverted

STORE_FILE = "agent-store.json"


class StoreCorrupt(Exception):
    """The store file exists but is not a readable database."""


def fsync_directory(directory: Path | str) -> None:
    """Make a rename in ``directory`` durable (POSIX: the directory entry is data too)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


PRIVATE_MODE = 0o600
"""The store holds desired documents (workload ``env`` values included): owner only."""


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers and crashes see old or new, never half.

    The file is created 0600 whatever the umask: it holds ``env`` values. Plain strings and
    file descriptors, no ``pathlib`` objects or buffered file: the fleet simulator makes
    thousands of these writes per deploy, and building paths was a third of each.
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
        try:
            os.fchmod(fd, PRIVATE_MODE)  # a leftover temp file keeps its old mode otherwise
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(directory or ".")


class AtomicJSONStorage(Storage):
    """A tinydb storage that rewrites its file atomically on every write.

    It keeps what it last read or wrote, and reads that instead of the file: the agent is
    the file's only writer while it runs (each change read and parsed the whole store
    again; in the fleet simulator a fifth of adopting a desired document). A write that
    fails, or a batch that is dropped, forgets it, so the next read is the file's again.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = Path(path)
        self._batching = False
        self._held: dict[str, dict[str, Any]] | None = None  # a batch's unwritten content
        self._known: dict[str, dict[str, Any]] | None = None  # the file's content

    def begin(self) -> None:
        """From now on, writes are held in memory (and reads see them) until :meth:`end`."""
        self._batching, self._held = True, None

    def end(self, *, keep: bool = True) -> None:
        """Write what the batch changed, once (``keep``), or forget it."""
        held, self._batching, self._held = self._held, False, None
        if not keep:
            self._known = None  # tinydb changed what it read in place
        elif held is not None:
            self.write(held)

    def read(self) -> dict[str, dict[str, Any]] | None:
        if self._held is not None:
            return self._held
        if self._known is not None:
            return self._known
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return None
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreCorrupt(f"{self._path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise StoreCorrupt(f"{self._path} does not hold a database object")
        self._known = data
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if self._batching:
            self._held = data
            return
        self._known = None  # until the file holds it
        write_atomically(self._path, json.dumps(data, separators=(",", ":")).encode())
        self._known = data

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class StoredDesired:
    desired: Desired
    accepted_at: float


class LocalStore:
    """The agent's durable state. Not thread-safe; the agent's one event loop owns it."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / STORE_FILE
        self.recovered_from: str | None = None
        with contextlib.suppress(FileNotFoundError):
            os.chmod(self.path, PRIVATE_MODE)  # a store written 0644 by an older agent
        try:
            AtomicJSONStorage(str(self.path)).read()
        except StoreCorrupt as exc:
            aside = self.path.with_name(f"{STORE_FILE}.corrupt-{int(time.time())}")
            os.replace(self.path, aside)
            self.recovered_from = f"{exc}; moved aside to {aside.name} and started empty"
        self._db = TinyDB(str(self.path), storage=AtomicJSONStorage)
        self._meta = self._db.table("meta")
        self._desired = self._db.table("desired")
        self._specs = self._db.table("specs")
        self._aliases = self._db.table("aliases")
        self._trust = self._db.table("trust")
        self._reverted = self._db.table("reverted")
        self._services = self._db.table("services")
        self._proxy_ports = self._db.table("proxy_ports")

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several changes, one atomic write at the end (none if the block raises).

        Why: adopting a desired document changed four tables one write each (the document,
        its specs, the specs no longer needed): four whole-file rewrites and fsyncs per
        document on a gateway's flash, and in the fleet simulator thousands of them per
        deploy. One write is also all-or-nothing for the lot.
        """
        storage = self._db.storage
        assert isinstance(storage, AtomicJSONStorage)
        storage.begin()
        try:
            yield
        except BaseException:
            storage.end(keep=False)
            raise
        storage.end()

    # -- session ----------------------------------------------------------------------------

    def next_session(self) -> int:
        """Count one more agent start and return its number (1 on the very first start)."""
        doc = self._meta.get(doc_id=1)
        session = int(doc["session"]) + 1 if doc else 1
        self._meta.upsert({"session": session}, Query().session.exists())
        return session

    # -- desired ----------------------------------------------------------------------------

    def load_desired(self) -> StoredDesired | None:
        """The last accepted desired document, or ``None`` (never had one, or unreadable)."""
        docs = self._desired.all()
        if not docs:
            return None
        try:
            desired = validate(Desired, docs[0]["document"])
            return StoredDesired(desired, float(docs[0]["accepted_at"]))
        except (ProtocolError, KeyError, TypeError, ValueError):
            return None

    def save_desired(self, desired: Desired, *, accepted_at: float) -> None:
        """Persist ``desired`` (one atomic write) and remember its specs by hash."""
        self._desired.truncate()
        self._desired.insert(
            {"document": desired.model_dump(mode="json"), "accepted_at": accepted_at}
        )
        self.remember_specs({w.spec_hash: w.spec for w in desired.workloads})

    # -- trust ------------------------------------------------------------------------------

    def load_trust(self) -> tuple[PublicKeyRef | None, str | None]:
        """The orchestrator key in force after a rotation, and the root it was reached
        under; ``(None, None)`` before any rotation (or when unreadable)."""
        docs = self._trust.all()
        if not docs:
            return None, None
        try:
            key = validate(PublicKeyRef, docs[0]["key"])
            return key, str(docs[0]["root"])
        except (ProtocolError, KeyError, TypeError):
            return None, None

    def save_trust(self, key: PublicKeyRef, *, root: str) -> None:
        """Persist the key in force (before the document it signed is adopted)."""
        self._trust.truncate()
        self._trust.insert({"key": key.model_dump(mode="json"), "root": root})

    # -- specs by hash ----------------------------------------------------------------------

    def remember_specs(self, specs: Mapping[str, WorkloadSpec]) -> None:
        known = self.known_specs()
        new = {h: s for h, s in specs.items() if h not in known}
        if new:
            self._specs.insert_multiple(
                {"hash": h, "spec": s.model_dump(mode="json")} for h, s in new.items()
            )

    def known_specs(self) -> dict[str, WorkloadSpec]:
        specs: dict[str, WorkloadSpec] = {}
        for doc in self._specs.all():
            with contextlib.suppress(ProtocolError, KeyError):
                specs[str(doc["hash"])] = validate(WorkloadSpec, doc["spec"])
        return specs

    def forget_specs_except(self, keep: Iterable[str]) -> None:
        """Drop specs of hashes neither desired nor running any more (bounded growth)."""
        wanted = set(keep)
        self._specs.remove(~Query().hash.one_of(sorted(wanted)))

    # -- live resource updates --------------------------------------------------------------

    def aliases(self) -> dict[str, tuple[str, str]]:
        """workload name -> (hash the runtime labels it with, hash it really runs)."""
        return {str(d["name"]): (str(d["from"]), str(d["to"])) for d in self._aliases.all()}

    def set_alias(self, name: str, *, from_hash: str, to_hash: str) -> None:
        self._aliases.upsert({"name": name, "from": from_hash, "to": to_hash}, Query().name == name)

    def drop_aliases(self, names: Iterable[str]) -> None:
        doomed = sorted(set(names))
        if doomed:
            self._aliases.remove(Query().name.one_of(doomed))

    # -- rollout reverts --------------------------------------------------------------------

    def reverted(self) -> dict[str, Reverted]:
        """Workloads running their previous spec after a failed rollout guard, by name (an
        unreadable record is dropped: the guard then judges the spec again)."""
        out: dict[str, Reverted] = {}
        doc = self._reverted.get(doc_id=1)
        items = doc.get("items", []) if doc is not None else []
        for d in items if isinstance(items, list) else []:
            with contextlib.suppress(ProtocolError, KeyError, TypeError, ValueError):
                out[str(d["name"])] = Reverted(
                    name=str(d["name"]),
                    spec_hash=str(d["spec_hash"]),
                    previous_spec=validate(WorkloadSpec, d["previous_spec"]),
                    previous_hash=str(d["previous_hash"]),
                    reason=str(d["reason"]),
                    at=float(d["at"]),
                )
        return out

    def save_reverted(self, reverted: Iterable[Reverted]) -> None:
        """Make ``reverted`` the complete set (one atomic write)."""
        rows = [
            {
                "name": r.name,
                "spec_hash": r.spec_hash,
                "previous_spec": r.previous_spec.model_dump(mode="json"),
                "previous_hash": r.previous_hash,
                "reason": r.reason,
                "at": r.at,
            }
            for r in reverted
        ]
        doc = self._reverted.get(doc_id=1)
        if doc is None or doc.get("items") != rows:
            self._reverted.upsert(Document({"items": rows}, doc_id=1))

    # -- service discovery ------------------------------------------------------------------
    # The catalogs of the services local workloads use, and the proxy ports they were given,
    # so the local proxies (and the environment of restarted workloads) work after a reboot
    # with no broker.

    def services(self) -> dict[str, ServiceEndpoints]:
        found: dict[str, ServiceEndpoints] = {}
        for doc in self._services.all():
            with contextlib.suppress(ProtocolError, KeyError):
                entry = validate(ServiceEndpoints, doc["entry"])
                found[entry.service] = entry
        return found

    def save_service(self, entry: ServiceEndpoints) -> None:
        self._services.upsert(
            {"service": entry.service, "entry": entry.model_dump(mode="json")},
            Query().service == entry.service,
        )

    def forget_service(self, service: str) -> None:
        self._services.remove(Query().service == service)

    def proxy_ports(self) -> dict[tuple[str, str], int]:
        """(service, port name) -> the local proxy port it was given."""
        rows = self._proxy_ports.all()
        return {(str(d["service"]), str(d["name"])): int(d["port"]) for d in rows}

    def set_proxy_port(self, service: str, name: str, port: int) -> None:
        q = Query()
        row = {"service": service, "name": name, "port": port}
        self._proxy_ports.upsert(row, (q.service == service) & (q.name == name))
