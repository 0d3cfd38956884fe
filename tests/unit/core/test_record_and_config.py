"""The 64-byte record codec and the versioned config."""

from __future__ import annotations

import attrs
import pytest

import engine_core as ec
from engine_core.record import BODY, crc32c


def sample(**kw: int) -> ec.Record:
    base = {f: 0 for f in ec.FIELDS}
    base.update(tick_id=7_182_270_915, token_id=3, fsm=2, tier=1, cluster=1, phase=1, alerts=5,
                event_id=9, quality=0x8001, trigger_cost=4523, pressure=10000, liq_imbalance=-10000,
                oi_velocity=-2_000_000, funding_rate=70000, spread_bps=65535,
                mark_vs_mid_bps=-32767)
    base.update(kw)
    return ec.Record(**base)


def test_round_trip_and_size() -> None:
    r = sample()
    b = r.to_bytes()
    assert len(b) == ec.RECORD_SIZE == 64
    assert ec.Record.from_bytes(b) == r
    assert int.from_bytes(b[60:], "little") == crc32c(b[:60])
    assert b[10] == 1  # rec_type token


def test_crc_check_vector_and_zero_record_never_validates() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    with pytest.raises((ec.ChecksumError, ValueError)):
        ec.Record.from_bytes(bytes(64))


@pytest.mark.parametrize("pos", range(64))
def test_every_single_byte_flip_is_detected(pos: int) -> None:
    b = bytearray(sample().to_bytes())
    b[pos] ^= 0x40
    with pytest.raises(ValueError):
        ec.Record.from_bytes(bytes(b))


def test_layout_offsets_match_docs() -> None:
    b = sample().to_bytes()
    assert int.from_bytes(b[0:8], "little") == 7_182_270_915
    assert b[11:16] == bytes([2, 1, 1, 1, 5])
    assert int.from_bytes(b[22:24], "little") == 4523
    assert int.from_bytes(b[48:52], "little", signed=True) == -2_000_000
    assert BODY.size == 60


def test_decoded_view_names() -> None:
    d = sample().as_dict()
    assert d["fsm"] == "FRAGILE" and d["tier"] == "TIER_EXPANSION"
    assert d["alerts"] == ["STRUCTURAL_FRAGILE", "STRUCTURAL_UNWIND"]


def test_config_digest_is_stable_and_sensitive() -> None:
    a, b = ec.Config(), ec.Config()
    assert a.digest() == b.digest() and len(a.digest()) == 16
    c = a.evolve(structural={"persist_ticks": 9})
    assert c.digest() != a.digest()
    assert ec.Config.from_dict(a.to_dict()) == a
    assert ec.Config.from_toml_str("[alerts]\nticks_per_bucket = 120\n").alerts.ticks_per_bucket \
        == 120


@pytest.mark.parametrize("text,fragment", [
    ("[tier]\npersist_ticks = 'x'\n", "$.tier.persist_ticks"),
    ("[tier]\nbogus = 1\n", "unknown key(s): bogus"),
    ("[nope]\n", "unknown key(s): nope"),
    ("[structural]\npressure_exit = 0.9\n", "must be below pressure_enter"),
    ("[features]\nfast_window_ticks = 0\n", "positive number of ticks"),
    ("version = 99\n", "version 99"),
    ("[tier\n", "not valid TOML"),
    ("[tier]\nexpansion_volume_ratio = true\n", "expected a number"),
])
def test_bad_config_is_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(ec.ConfigError) as exc:
        ec.Config.from_toml_str(text)
    assert fragment in str(exc.value)


def test_config_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ec.Config().tier.persist_ticks = 3  # type: ignore[misc]


def test_tick_records_carry_exactly_their_encodings() -> None:
    import pickle

    from tests.property.streams import run_stream

    ev = [ec.TradeReceived(symbol="BTCUSDT", exchange_ts=1_795_564_800_000, price=1.0, qty=2.0,
                           buyer_is_maker=False)]
    _, recs, _ = run_stream(("BTCUSDT", "ETHUSDT"), 7_182_259_201, [ev, [], ev])
    for tick in recs:
        assert isinstance(tick, ec.TickRecords)
        assert tick.data == b"".join(r.to_bytes() for r in tick)
        again = pickle.loads(pickle.dumps(tick))
        assert again == tick and again.data == tick.data


def test_tick_records_decode_their_views_from_the_bytes_on_demand() -> None:
    from tests.property.streams import run_stream

    ev = [ec.TradeReceived(symbol="BTCUSDT", exchange_ts=1_795_564_800_000, price=1.0, qty=2.0,
                           buyer_is_maker=False)]
    _, recs, _ = run_stream(("BTCUSDT", "ETHUSDT", "SOLUSDT"), 7_182_259_201, [ev, [], ev])
    tick = recs[-1]
    assert isinstance(tick, ec.TickRecords)
    # one record at a time, straight from the bytes, before any view is kept
    one = [tick[i] for i in range(len(tick))]
    assert tick[-1] == one[-1]
    with pytest.raises(IndexError, match="record index 3 out of range for a tick of 3"):
        tick[3]
    assert tick.fsm == tuple(r.fsm for r in one)
    views = tick.views()
    assert list(views) == one and [ec.Record.from_bytes(tick.data[i * 64:(i + 1) * 64])
                                   for i in range(3)] == one
    # a sequence equal to the tuple of its records, hashed alike; built from views too
    assert tick == views and views == tick and hash(tick) == hash(views)
    assert ec.TickRecords(views, b"") == tick
    assert tick != views[:2] and tick[0:2] == views[0:2]
    with pytest.raises(ValueError, match="whole 64-byte records"):
        ec.TickRecords(None, tick.data[:-1])
