"""Shared test settings: hypothesis profiles (dev default, ci in CI, nightly on demand)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          stateful_step_count=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
