"""The bus through the command line: `run nats://`, `live --from`, `capture --to`.

Every test talks to the module's loopback nats-server (tests/bus/conftest.py); engines and
recorders run as the user runs them (`main([...])` or a subprocess killed with SIGKILL).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine_adapters.bus import BusConsumer, BusPublisher
from engine_adapters.bus.port import ws_line
from engine_adapters.storage import verify
from engine_adapters.storage.journal import iter_journal
from engine_app.cli import main
from engine_sim.fake_exchange import FakeBinance
from engine_sim.nats_server import NatsServer
from engine_sim.simulation import MarketSimulator, Regime, Segment

SYMBOLS = "BTCUSDT,ETHUSDT"
ROOT = Path(__file__).resolve().parents[2]


def files_of(dd: Path) -> bytes:
    """The log segments and alerts.jsonl of a data dir, concatenated."""
    return b"".join(p.read_bytes() for p in sorted((dd / "log").iterdir())) + \
        (dd / "alerts.jsonl").read_bytes()


async def publish(url: str, lines: list[bytes], *, pace_s: float = 0.0, **kw: Any) -> None:
    pub = await BusPublisher(url + "?max_bytes=64M", **kw).start()
    for i, line in enumerate(lines):
        pub.write_line(line)
        if pace_s and i % 50 == 49:
            await asyncio.sleep(pace_s)
    assert await pub.flush(10)
    await pub.close()


def run_cli(*argv: str) -> int:
    return main(["run", *argv, "--fsync", "none", "--json"])


def test_two_runs_from_the_bus_write_the_files_log(
        tmp_path: Path, subject_url: str, capture_bytes: list[bytes], nats_server: NatsServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "c.jsonl"
    cap.write_bytes(b"".join(capture_bytes))
    asyncio.run(publish(subject_url, capture_bytes))
    assert run_cli(str(cap), "--data-dir", str(tmp_path / "file")) == 0
    for name in ("a", "b"):  # no durable=: each run reads the whole stream afresh
        assert run_cli(subject_url, "--symbols", SYMBOLS, "--data-dir", str(tmp_path / name)) == 0
    want = files_of(tmp_path / "file")
    assert len(want) > 10_000
    assert files_of(tmp_path / "a") == want and files_of(tmp_path / "b") == want
    assert verify(tmp_path / "a").exit_code == 0

    async def consumers() -> list[str]:  # the runs' ephemeral consumers were removed
        import nats

        nc = await nats.connect(nats_server.url)
        try:
            infos = await nc.jetstream().consumers_info(
                "CAPTURE_" + subject_url.rsplit("/", 1)[1].replace(".", "_").upper())
            return [i.name for i in infos]
        finally:
            await nc.close()

    assert asyncio.run(consumers()) == []


def test_run_with_a_durable_resumes_and_usage_errors_say_what_is_missing(
        tmp_path: Path, subject_url: str, capture_bytes: list[bytes],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert len(capture_bytes) > 2000
    asyncio.run(publish(subject_url, capture_bytes[:2000]))
    url = subject_url + "?durable=nightly"
    assert run_cli(url, "--symbols", SYMBOLS, "--data-dir", str(tmp_path / "d1")) == 0
    first = json.loads(capsys.readouterr().out)
    asyncio.run(publish(subject_url, capture_bytes[2000:]))
    assert run_cli(url, "--symbols", SYMBOLS, "--data-dir", str(tmp_path / "d2")) == 0
    second = json.loads(capsys.readouterr().out)
    assert first["capture_lines"] == 2000  # each line once
    assert second["capture_lines"] == len(capture_bytes) - 2000

    assert run_cli(subject_url, "--data-dir", str(tmp_path / "x")) == 64
    assert "--symbols is required" in capsys.readouterr().err
    assert run_cli(subject_url.rsplit("/", 1)[0] + "/no.such", "--symbols", SYMBOLS,
                   "--data-dir", str(tmp_path / "y")) == 2
    err = capsys.readouterr().err
    assert "no stream CAPTURE_NO_SUCH for subject no.such" in err
    assert not (tmp_path / "y").exists()  # nothing written for a stream that is not there
    assert run_cli(subject_url + "?seq=0", "--symbols", SYMBOLS) == 64


def test_a_retention_gap_is_said_and_enters_the_records(
        tmp_path: Path, subject_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [ws_line(1_795_564_800_000 + 250 * i, "x" * 200 + str(i)) for i in range(400)]

    async def fill() -> None:
        pub = await BusPublisher(subject_url + "?max_bytes=20K", lines_per_message=1).start()
        for line in lines:
            pub.write_line(line)
        assert await pub.flush(8)
        await pub.close()

    asyncio.run(fill())
    dd = tmp_path / "gap"
    assert run_cli(subject_url, "--symbols", SYMBOLS, "--data-dir", str(dd)) == 0
    err = capsys.readouterr().err
    m = re.search(r"warning: (\d+) message\(s\) skipped: stream \S+ no longer holds", err)
    assert m is not None and 0 < int(m.group(1)) < 400, err
    assert "noted as LIQUIDATION_GAP for every symbol" in err
    session = json.loads((dd / "manifest.json").read_text())["sessions"][-1]
    assert session["health_notices"] == 2  # one gap, one notice per symbol


def _live_argv(url: str, dd: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine_app", "live", "--from", url, "--symbols", SYMBOLS,
            "--data-dir", str(dd), "--json", "--fsync", "none", *extra]


def _journal(dd: Path) -> list[tuple[int, Any]]:
    """Each tick's input events in step order. Not `local_seq`: a session numbers arrivals
    from 0 (a restart renumbers them; the order within a tick is the same)."""
    return [(jt.tick_id, [(b.token_id, [(e.source, e.exchange_ts, e.payload) for e in b.events])
                          for b in jt.batches]) for jt in iter_journal(dd)]


def test_live_from_killed_mid_stream_and_restarted_steps_every_line_once(
        tmp_path: Path, subject_url: str, capture_bytes: list[bytes]) -> None:
    cap = tmp_path / "c.jsonl"
    cap.write_bytes(b"".join(capture_bytes))
    assert run_cli(str(cap), "--data-dir", str(tmp_path / "file")) == 0
    dd = tmp_path / "live"
    url = subject_url + "?seq=1&durable=eng"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    kill_after = random.uniform(0.5, 1.5)

    async def main_() -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *_live_argv(url, dd), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        # the recorder publishes while the engine follows (about 5 s for the capture)
        pub = asyncio.create_task(publish(subject_url, capture_bytes, pace_s=0.1,
                                          lines_per_message=16))
        # kill a moment after the engine has stepped its first ticks (not after a fixed
        # delay from spawn: start-up on a loaded box varies by seconds)
        for _ in range(200):
            if proc.returncode is not None or any((dd / "journal").glob("*")):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(kill_after)
        assert proc.returncode is None
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await pub
        again = await asyncio.create_subprocess_exec(
            *_live_argv(url, dd, "--duration", "6"), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        _, err = await again.communicate()
        assert again.returncode is not None
        return again.returncode, err

    rc, err = asyncio.run(main_())
    assert rc == 0, err.decode()[-2000:]
    assert b"after tick" in err  # resumed from its log
    want, got = _journal(tmp_path / "file"), _journal(dd)
    starts = [jt.tick_id for jt in iter_journal(dd) if jt.session_start]
    assert len(starts) == 2, starts  # killed mid-stream: two sessions
    # every tick's input is the file's, none lost or doubled; live never steps the last
    # tick (no later message arrives to end it) where `run` drains it at the end of file
    assert len(got) == len(want) - 1 and got == want[:-1]
    assert verify(dd).exit_code == 0


def test_capture_to_the_bus_buffers_while_the_server_restarts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with NatsServer(store_dir=tmp_path / "js") as server:  # its own server: it restarts
        url = f"{server.url}/rec.test?max_bytes=64M"
        start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
        busy = Regime(activity=2.0, vol_bps_s=4.0, liq_prob=0.5, liq_size=0.05)
        sim = MarketSimulator(("BTCUSDT", "ETHUSDT"), [Segment(name="busy", seconds=30,
                                                               leader=busy, bystander=busy)],
                              seed=4, start_ms=start_ms, oi_poll_ms=1000)
        out = tmp_path / "rec.jsonl"

        async def record() -> tuple[int | None, bytes]:
            async with FakeBinance(("BTCUSDT", "ETHUSDT")) as fake:
                player = fake.play(sim.events())
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "engine_app", "capture", "--symbols", SYMBOLS,
                    "--ws-url", fake.ws_base, "--rest-url", fake.rest_base, "--duration", "9",
                    "--out", str(out), "--to", url, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
                try:
                    # mid-recording, whenever the recorder got going (a loaded machine can
                    # take seconds to start it): its file already holds lines
                    waited = 0.0
                    while waited < 30 and (not out.exists() or out.read_bytes().count(b"\n")
                                           < 50):
                        await asyncio.sleep(0.25)
                        waited += 0.25
                    await asyncio.sleep(0.5)
                    server.stop()  # the bus goes away mid-recording ...
                    await asyncio.sleep(1.5)
                    await asyncio.to_thread(server.start)  # ... and comes back
                    _, err = await proc.communicate()
                finally:
                    player.cancel()
                    await asyncio.gather(player, return_exceptions=True)
                return proc.returncode, err

        rc, err_b = asyncio.run(record())
        err = err_b.decode()
        assert rc == 0, err[-2000:]
        m = re.search(r"bus rec\.test: ([\d,]+) lines published in [\d,]+ messages; not "
                      r"published: ([\d,]+) still buffered, ([\d,]+) dropped \(buffer full\); "
                      r"(\d+) disconnect", err)
        assert m is not None, err[-2000:]
        published, pending, dropped, disconnects = (int(g.replace(",", "")) for g in m.groups())
        file_lines = out.read_bytes().splitlines(keepends=True)
        assert disconnects >= 1 and pending == 0 and dropped == 0
        assert published == len(file_lines) > 200

        async def stream() -> list[bytes]:
            c = await BusConsumer(url.split("?")[0] + "?durable=check").start()
            got = [line async for line in c.lines()]
            await c.close()
            return got

        assert asyncio.run(stream()) == file_lines  # in order, none lost, none twice


def test_a_new_live_consumer_follows_from_now_not_from_the_streams_start(
        tmp_path: Path, subject_url: str, capture_bytes: list[bytes]) -> None:
    import engine_core as ec
    from engine_adapters.bus import BusUrl
    from engine_app.live import LiveOptions
    from engine_app.live_bus import BusLiveRunner

    old, new = capture_bytes[:1000], capture_bytes[1000:1600]
    asyncio.run(publish(subject_url, old))  # a week of history, say: not for a live engine
    opts = LiveOptions(data_dir=tmp_path / "live", cfg=ec.Config(),
                       symbols=("BTCUSDT", "ETHUSDT"), duration_s=3.0, fsync="none")
    runner = BusLiveRunner(BusUrl.parse(subject_url + "?durable=fresh"), opts,
                           say=lambda _m: None)

    async def main_() -> Any:
        async def later() -> None:
            await asyncio.sleep(1.0)  # the engine is following by now
            await publish(subject_url, new)

        task = asyncio.create_task(later())
        session = await runner.run()
        await task
        return session

    session = asyncio.run(main_())
    assert session.counts.frames + session.counts.rest_responses == len(new) > 0
