"""A capture played from the bus gives the same log as the same capture played from its file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import engine_core as ec
from engine_adapters.bus import BusPublisher, SourceGap
from engine_adapters.bus.bridge import BusLineReader, iter_bus_capture
from engine_app.bootstrap import open_session, run_capture, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def play(dd: Path, feed: Any) -> bytes:
    session = open_session(DataDir.at(dd), ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION,
                           fsync="none")
    try:
        feed(session)
    finally:
        session.close()
    return b"".join(p.read_bytes() for p in sorted((dd / "log").iterdir())) + \
        (dd / "alerts.jsonl").read_bytes()


def test_run_from_the_bus_writes_the_files_log(tmp_path: Path, subject_url: str,
                                               capture_bytes: list[bytes]) -> None:
    cap = tmp_path / "c.jsonl"
    cap.write_bytes(b"".join(capture_bytes))

    async def publish() -> None:
        pub = await BusPublisher(subject_url + "?max_bytes=64M").start()
        for line in capture_bytes:
            pub.write_line(line)
        assert await pub.flush(8)
        await pub.close()

    asyncio.run(asyncio.wait_for(publish(), 9))
    gaps: list[SourceGap] = []
    from_file = play(tmp_path / "file", lambda s: run_capture(s, cap))
    reader = BusLineReader(subject_url + "?durable=run", queue_lines=100, on_gap=gaps.append)
    from_bus = play(tmp_path / "bus", lambda s: run_lines(s, iter_bus_capture(reader)))
    assert len(from_file) > 10_000 and from_bus == from_file
    assert gaps == [] and reader.stats is not None
    assert reader.stats.lines == len(capture_bytes)
