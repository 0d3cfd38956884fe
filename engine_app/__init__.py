"""Composition root and command line: wires the adapters to the pure core."""
