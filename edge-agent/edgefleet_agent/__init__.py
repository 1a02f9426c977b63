"""edgefleet edge agent: runs on each gateway, applies its desired state, reports back."""

__version__ = "0.1.0"
