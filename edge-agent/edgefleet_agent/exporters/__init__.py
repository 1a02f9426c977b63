"""Exporters: what the agent shows to local tools (Prometheus ``/metrics`` on loopback).

A thin shell beside :mod:`edgefleet_agent.service`: it only reads the running agent's
state (what it reports, its session counters) at scrape time, from the agent's own event
loop, and a failure here is logged and answered with HTTP 500, never raised into a loop.
"""
