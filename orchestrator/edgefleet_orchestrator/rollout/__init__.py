"""Pure: staged rollouts. A rollout moves an app's replicas from one workload spec to the
next in canary, waves and ``max_parallel`` steps, judges their health, and fails or
reverts by the manifest's ``update`` block. :mod:`.machine` is the state machine
``(state, view, now) -> (state, notes)``; :mod:`.state` its durable value; :mod:`.specs`
tells the reconcile pass which spec each replica runs. No I/O.
"""
