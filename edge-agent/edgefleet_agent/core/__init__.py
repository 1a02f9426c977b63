"""Pure: the agent's decisions — admitting a desired document, planning steps against what
runs, reports, the health and telemetry state machines, backoff — and the ``Runtime`` seam
they decide over. No I/O, no clock of their own.
"""
