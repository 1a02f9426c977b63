"""Exporters: what the orchestrator shows to the tools operators already run.

A thin shell beside :mod:`edgefleet_orchestrator.service`: it reads the service's live
state and counters and serves them elsewhere (Prometheus ``/metrics`` today). It only
reads; nothing here changes what the orchestrator decides, and a failure here is logged
and answered (HTTP 500), never raised into the service.
"""
