"""The agent's local proxy: one TCP listener per service port a local workload ``uses``.

:mod:`.balancer` (pure) picks an endpoint for each new connection — locality per the
service's topology, then power of two choices by weight and open connections — and keeps
passive health (a failed connect sets an endpoint aside with backoff) and the counters
telemetry reports. :mod:`.listener` is the asyncio shell that accepts, connects (retrying
another endpoint before any byte reaches the client) and relays. :mod:`.proxies` keeps
the set of listeners in line with what the workloads use, their ports and catalogs in the
agent's local store. The agent service (:mod:`edgefleet_agent.service`) wires it in.
"""
