"""Shared test settings: hypothesis profiles, and loopback helpers (bounded async runs)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          stateful_step_count=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

#: Every test body gets at most this long (each test must finish in < 10 s).
DEADLINE_S = 9.0


def run_bounded(coro: Coroutine[Any, Any, Any], timeout: float = DEADLINE_S) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def arun() -> Callable[..., Any]:
    return run_bounded


async def _wait_until(pred: Callable[[], bool], timeout: float = 3.0, step: float = 0.01) -> bool:
    """Poll `pred` until true or `timeout` elapsed (bounded in count and time)."""
    for _ in range(int(timeout / step) + 1):
        if pred():
            return True
        await asyncio.sleep(step)
    return pred()


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    return _wait_until
