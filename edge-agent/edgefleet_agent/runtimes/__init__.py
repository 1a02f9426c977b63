"""Workload runtimes behind one seam (:class:`~edgefleet_agent.core.runtime.Runtime`)."""
