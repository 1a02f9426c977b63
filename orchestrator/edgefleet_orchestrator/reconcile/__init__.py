"""Pure: one reconcile pass over the full fleet view — placement, scaling and moves, then the
per-node desired documents (generation + 1 only on change) and the status views. No I/O.
"""
