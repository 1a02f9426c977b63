"""Test harness: real mosquitto brokers on free loopback ports, and tier gating."""
