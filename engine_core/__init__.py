"""Deterministic market-structure engine core: pure, no I/O, no clock, no randomness."""
