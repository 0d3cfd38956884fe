"""`archive import`: one time-ordered capture the unchanged ingest path reads."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_adapters.archive.importer import import_archive, merge_chunks
from engine_adapters.archive.layout import ArchiveFile, checksum_text
from engine_adapters.binance.messages import FrameParser
from engine_adapters.binance.rest_payloads import parse_rest
from engine_adapters.capture import (
    DepthLine,
    RestLine,
    WsLine,
    iter_capture,
)
from engine_adapters.depth_bands import archive_bands
from engine_adapters.storage.journal import iter_journal
from engine_app.cli import main
from engine_core.events import MarkPriceReceived, OpenInterestReceived, TradeReceived
from engine_core.normalize import validate
from engine_sim.archive_tree import build_tree
from tests.archive.conftest import DAY1, DAY2, SYMBOLS


def _tree(root: Path, **kw: object) -> None:
    build_tree(root, symbols=SYMBOLS, dates=[DAY1, DAY2], hours=0.5, seed=7, **kw)  # type: ignore[arg-type]


def test_header_and_headerless_files_give_the_same_capture(tmp_path: Path) -> None:
    _tree(tmp_path / "a")
    _tree(tmp_path / "b", headerless={"aggTrades", "metrics", "bookDepth", "markPriceKlines",
                                      "fundingRate", "bookTicker", "indexPriceKlines"})
    ra = import_archive(tmp_path / "a", tmp_path / "a.jsonl")
    rb = import_archive(tmp_path / "b", tmp_path / "b.jsonl")
    assert ra.lines == rb.lines > 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_capture_is_time_ordered_and_parses_through_the_live_parsers(tmp_path: Path) -> None:
    _tree(tmp_path / "t", missing={("metrics", "ETHUSDT", DAY1)})
    rep = import_archive(tmp_path / "t", tmp_path / "cap.jsonl.gz")
    assert rep.missing == (("metrics", "ETHUSDT", str(DAY1)),)
    stats = {(k, s): st for k, s, st in rep.per_stream}
    # the tree repeats the metrics row on the hour: dropped, counted
    assert stats[("metrics", "BTCUSDT")].duplicates == 2
    assert stats[("metrics", "ETHUSDT")].duplicates == 1
    parser = FrameParser(symbols=SYMBOLS)
    seen: Counter[str] = Counter()
    last = 0
    depth = 0
    for item in iter_capture(tmp_path / "cap.jsonl.gz"):
        if isinstance(item, WsLine):
            parsed = parser.parse(item.raw)
        elif isinstance(item, RestLine):
            parsed = parse_rest(item.path, item.query, item.status, item.raw)
        else:  # a depth line: the archive's bookDepth bands, read into a DepthReceived
            assert isinstance(item, DepthLine) and item.source == "archive.bookDepth"
            d = archive_bands(item.symbol, item.recv_ms, item.bands)
            assert d.edges_bps == (100, 200, 300, 400, 500) and validate(d) is None
            assert item.recv_ms >= last
            last = item.recv_ms
            depth += 1
            continue
        assert item.recv_ms >= last
        last = item.recv_ms
        assert not parsed.rejects and len(parsed.events) == 1
        ev = parsed.events[0]
        seen[type(ev).__name__] += 1
        if isinstance(ev, MarkPriceReceived):
            assert ev.next_funding_ts % 28_800_000 == 0 and ev.next_funding_ts > ev.exchange_ts
            assert ev.funding_rate != 0.0
        if isinstance(ev, OpenInterestReceived):
            assert ev.exchange_ts % 300_000 == 0
    # 30 min per day: 6 OI polls (1 day missing for ETH), 30 minutes of marks, 60 depths
    assert seen["OpenInterestReceived"] == 6 * 3
    assert seen["MarkPriceReceived"] == 30 * 4
    assert depth == 60 * 4
    assert seen["TradeReceived"] == stats[("aggTrades", "BTCUSDT")].lines + stats[
        ("aggTrades", "ETHUSDT")].lines
    assert rep.refused == 0


def test_symbol_and_date_filters(tmp_path: Path) -> None:
    _tree(tmp_path / "t")
    rep = import_archive(tmp_path / "t", tmp_path / "c.jsonl", symbols=["ETHUSDT"],
                         start=DAY2, end=DAY2)
    lo = int(dt.datetime(2024, 8, 5, tzinfo=dt.UTC).timestamp() * 1000)
    docs = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert docs and all(d["recv_ms"] >= lo for d in docs)
    assert all("BTCUSDT" not in json.dumps(d) for d in docs)
    assert rep.symbols == ("ETHUSDT",)


def _rewrite(root: Path, af: ArchiveFile, text: str) -> None:
    af.local(root).parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(af.name[:-4] + ".csv", text)
    af.local(root).write_bytes(buf.getvalue())
    af.local(root).with_name(af.name + ".CHECKSUM").write_text(
        checksum_text(buf.getvalue(), af.name))


def test_a_bad_row_is_refused_with_its_file_and_line(tmp_path: Path) -> None:
    _tree(tmp_path / "t")
    af = ArchiveFile(kind="aggTrades", symbol="BTCUSDT", period=str(DAY1))
    t0 = int(dt.datetime(2024, 8, 4, tzinfo=dt.UTC).timestamp() * 1000)
    _rewrite(tmp_path / "t", af, "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
             f"transact_time,is_buyer_maker\n1,10.0,1.0,1,1,{t0},true\n2,10.0,1.0,2,2,"
             f'abc,true\n3,"1"0,1.0,3,3,{t0 + 5},false\n4,10.5,2.0,4,4,{t0 + 9},False\n')
    rep = import_archive(tmp_path / "t", tmp_path / "c.jsonl", symbols=["BTCUSDT"],
                         start=DAY1, end=DAY1)
    st = {(k, s): st for k, s, st in rep.per_stream}[("aggTrades", "BTCUSDT")]
    assert st.refused == 2 and st.lines == 2
    assert st.examples[0].endswith("line 3: not an aggTrades row")
    assert "line 4" in st.examples[1]
    trades = [e for x in (tmp_path / "c.jsonl").read_text().splitlines()
              if '"ws"' in x and "aggTrade" in x
              for e in FrameParser().parse(json.loads(x)["raw"]).events]
    assert [(t.trade_id, t.buyer_is_maker) for t in trades if isinstance(t, TradeReceived)] \
        == [(1, True), (4, False)]


def test_the_merge_holds_one_chunk_per_stream() -> None:
    pulled: Counter[int] = Counter()
    written: list[str] = []

    def stream(k: int) -> Iterator[tuple[list[int], list[str]]]:
        for c in range(50):
            # no read-ahead: when this stream needs chunk c, no other stream is past chunk c+1
            assert max(pulled.values(), default=0) <= c + 1
            pulled[k] += 1
            ts = [c * 100 + i * 10 + k for i in range(10)]
            yield ts, [f"{t}:{k}\n" for t in ts]

    n = merge_chunks([stream(k) for k in range(3)], written.append)
    lines = "".join(written).splitlines()
    assert n == len(lines) == 1500
    keys = [(int(x.split(":")[0]), int(x.split(":")[1])) for x in lines]
    assert keys == sorted(keys)


def test_import_cli_reports_missing_days_and_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path / "t", missing={("bookDepth", "BTCUSDT", DAY2)})
    rc = main(["archive", "import", str(tmp_path / "t"), "--out", str(tmp_path / "c.jsonl.gz"),
               "--json"])
    out = capsys.readouterr()
    assert rc == 0
    assert "missing day (not filled): bookDepth BTCUSDT 2024-08-05" in out.err
    assert json.loads(out.out)["missing"] == [{"kind": "bookDepth", "symbol": "BTCUSDT",
                                              "day": "2024-08-05"}]
    assert main(["archive", "import", str(tmp_path / "nope"), "--out", "x.jsonl"]) == 2
    assert main(["archive", "import", str(tmp_path / "t"), "--out", "x.jsonl",
                 "--start", "2024-08-05", "--end", "2024-08-01"]) == 64
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["archive", "import", str(empty), "--out", "x.jsonl"]) == 2
    assert "no archive file" in capsys.readouterr().err


def test_reordered_header_columns_render_the_same_lines(tmp_path: Path) -> None:
    t0 = int(dt.datetime(2024, 8, 4, tzinfo=dt.UTC).timestamp() * 1000)
    rows = [(i, f"{10 + i / 8:.3f}", "0.5", i, i, t0 + i, "true" if i % 2 else "false")
            for i in range(1, 40)]
    std = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
    af = ArchiveFile(kind="aggTrades", symbol="BTCUSDT", period=str(DAY1))
    _rewrite(tmp_path / "a", af, std + "\n" + "\n".join(",".join(map(str, r)) for r in rows))
    order = (5, 0, 6, 1, 2, 3, 4)  # transact_time first: the column-mapping path
    names = std.split(",")
    _rewrite(tmp_path / "b", af, ",".join(names[i] for i in order) + "\n" + "\n".join(
        ",".join(str(r[i]) for i in order) for r in rows))
    import_archive(tmp_path / "a", tmp_path / "a.jsonl")
    import_archive(tmp_path / "b", tmp_path / "b.jsonl")
    text = (tmp_path / "a.jsonl").read_text()
    assert text == (tmp_path / "b.jsonl").read_text() and text.count("\n") == 39


def test_run_reads_the_depth_lines_into_the_engine(tmp_path: Path) -> None:
    # one day: between two days the virtual clock would step a day of empty ticks
    build_tree(tmp_path / "t", symbols=SYMBOLS, dates=[DAY1], hours=0.5, seed=7)
    import_archive(tmp_path / "t", tmp_path / "cap.jsonl.gz")
    dd = tmp_path / "dd"
    assert main(["run", str(tmp_path / "cap.jsonl.gz"), "--data-dir", str(dd)]) == 0
    quarantined = (dd / "quarantine.jsonl").read_text() if (dd / "quarantine.jsonl").exists() \
        else ""
    assert '"channel":"depth"' not in quarantined and "depth" not in quarantined
    journaled = Counter(type(ev.payload).__name__ for tick in iter_journal(dd)
                        for b in tick.batches for ev in b.events)
    assert journaled["DepthReceived"] == 60 * 2  # a snapshot every 30 s, 2 symbols, 30 min
