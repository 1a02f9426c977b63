"""Read the whole store into one immutable :class:`StoreSnapshot` (the start-up load).

Kept apart from the writes in :mod:`~edgefleet_orchestrator.store.sqlite`: this is the one
place that maps rows to records, so a new column changes one function.
"""

from __future__ import annotations

import sqlite3
from types import MappingProxyType

from edgefleet_orchestrator.store.base import (
    AppRecord,
    Assignment,
    Drain,
    NodeGeneration,
    RetiringCopy,
    StoreSnapshot,
)
from edgefleet_orchestrator.store.history import read_history


def read_snapshot(conn: sqlite3.Connection) -> StoreSnapshot:
    """Every table, in one read; the caller holds the transaction and error translation."""
    apps = {
        r[0]: AppRecord(name=r[0], manifest_json=r[1], version=r[2], updated_at=r[3])
        for r in conn.execute("SELECT name, manifest_json, version, updated_at FROM apps")
    }
    assignments = {
        r[0]: Assignment(replica=r[0], app=r[1], node=r[2], site=r[3], cpu=r[4], memory_mb=r[5])
        for r in conn.execute("SELECT replica, app, node, site, cpu, memory_mb FROM assignments")
    }
    generations = {
        r[0]: NodeGeneration(node=r[0], site=r[1], generation=r[2], doc_hash=r[3], doc_json=r[4])
        for r in conn.execute("SELECT node, site, generation, doc_hash, doc_json FROM generations")
    }
    cordoned = frozenset(r[0] for r in conn.execute("SELECT node FROM cordons"))
    retiring = tuple(
        RetiringCopy(
            replica=r[0],
            app=r[1],
            node=r[2],
            site=r[3],
            cpu=r[4],
            memory_mb=r[5],
            to_node=r[6],
            cause=r[7],
            since=r[8],
        )
        for r in conn.execute(
            "SELECT replica, app, node, site, cpu, memory_mb, to_node, cause, since"
            " FROM retiring ORDER BY app, replica, node"
        )
    )
    drains = {
        r[0]: Drain(node=r[0], started_at=r[1], max_unavailable=r[2])
        for r in conn.execute("SELECT node, started_at, max_unavailable FROM drains")
    }
    control = {str(r[0]): str(r[1]) for r in conn.execute("SELECT key, value_json FROM control")}
    revisions, rollouts = read_history(conn)
    return StoreSnapshot(
        apps=MappingProxyType(apps),
        assignments=MappingProxyType(assignments),
        generations=MappingProxyType(generations),
        cordoned=cordoned,
        retiring=retiring,
        drains=MappingProxyType(drains),
        control=MappingProxyType(control),
        revisions=MappingProxyType(revisions),
        rollouts=MappingProxyType(rollouts),
    )
