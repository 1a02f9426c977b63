"""Benchmark scenarios (run as ``python -m bench.<scenario>``) and their recorded results."""
