"""Pure: what the orchestrator knows of the fleet — the node registry built from node
messages, per-replica facts (spec, whether it runs), and the notes decisions leave for the
audit trail. No I/O; ``now`` is always passed in.
"""
