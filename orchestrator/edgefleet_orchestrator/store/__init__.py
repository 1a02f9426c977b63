"""Durable orchestrator state: the :class:`~edgefleet_orchestrator.store.base.Store` seam
(pure types), its SQLite backend, and how control state and a pass are written to it.
"""
