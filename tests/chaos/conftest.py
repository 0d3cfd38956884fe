"""Shared helpers of the chaos tests: run a coroutine with a hard deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

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
