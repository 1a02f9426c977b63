"""Pure: how many replicas, how big, and which move — autoscaling, vertical sizing, drain,
rebalancing and make-before-break moves. Called by the reconcile pass; no I/O.
"""
