"""edgefleet control plane: registry, placement, scaling, reconcile, command API and CLI."""

__version__ = "0.1.0"
