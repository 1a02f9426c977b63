"""Workload runtimes behind one seam (:class:`~edgefleet_agent.runtimes.base.Runtime`)."""
