"""Capture lines through a real loopback JetStream: same bytes out, whatever the consumer does.

Every test talks to a nats-server started by the module fixture (engine_sim.nats_server), on
a stream of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from engine_adapters.bus import BusConsumer, BusPublisher, SourceGap, SourceLine
from engine_adapters.bus.port import ws_line
from engine_adapters.bus.publisher import BusStreamError

Run = Callable[..., Any]


def small(url: str) -> str:
    """A stream that reserves 64 MiB, not the 20 GiB default (many streams share one disk)."""
    return url if "max_bytes" in url else url + "?max_bytes=64M"


async def publish(url: str, lines: list[bytes], **kw: Any) -> BusPublisher:
    pub = await BusPublisher(small(url), **kw).start()
    for line in lines:
        pub.write_line(line)
    assert await pub.flush(8)
    await pub.close()
    return pub


async def consume(url: str, *, stop_after: int | None = None, **kw: Any) -> list[bytes]:
    c = await BusConsumer(url, **kw).start()
    out: list[bytes] = []
    async for line in c.lines():
        out.append(line)
        if stop_after is not None and len(out) >= stop_after:
            break
    await c.close()
    return out


def test_two_consumers_read_the_capture_file_byte_for_byte(
        arun: Run, subject_url: str, capture_bytes: list[bytes]) -> None:
    async def main() -> tuple[list[bytes], list[bytes], Any]:
        pub = await publish(subject_url, capture_bytes)
        fast = await consume(subject_url + "?durable=fast", batch=5000)
        slow = await consume(subject_url + "?durable=slow", batch=3)
        return fast, slow, pub.stats

    fast, slow, stats = arun(main())
    assert len(capture_bytes) > 1000
    assert b"".join(fast) == b"".join(capture_bytes)
    assert slow == fast
    assert (stats.published, stats.dropped, stats.pending) == (len(capture_bytes), 0, 0)


def test_a_consumer_stopped_mid_message_resumes_at_the_next_line(
        arun: Run, subject_url: str, capture_bytes: list[bytes]) -> None:
    url = subject_url + "?durable=eng"

    async def main() -> list[list[bytes]]:
        await publish(subject_url, capture_bytes, lines_per_message=50)
        parts = []
        for stop in (77, 1, 500, None):  # 77 and 578 are inside a message, 78 too
            parts.append(await consume(url, stop_after=stop, batch=4))
        return parts

    parts = arun(main())
    assert [len(p) for p in parts[:3]] == [77, 1, 500]
    assert b"".join(b"".join(p) for p in parts) == b"".join(capture_bytes)


def test_a_killed_consumer_re_reads_only_its_unacknowledged_batch(
        arun: Run, subject_url: str, capture_bytes: list[bytes]) -> None:
    url = subject_url + "?durable=k"

    async def main() -> tuple[list[bytes], list[bytes]]:
        await publish(subject_url, capture_bytes, lines_per_message=10)
        c = await BusConsumer(url, batch=5).start()
        first: list[bytes] = []
        async for line in c.lines():
            first.append(line)
            if len(first) == 333:
                break
        await c._nc.close()  # the process dies: no ack of the batch in hand, no cursor
        return first, await consume(url)

    first, second = arun(main())
    redone = len(first) + len(second) - len(capture_bytes)
    assert 0 < redone <= 5 * 10  # at most the batch in hand (5 messages of 10 lines)
    assert first + second[redone:] == capture_bytes
    assert second == capture_bytes[len(capture_bytes) - len(second):]


def test_a_server_restart_mid_publish_is_buffered_and_the_overflow_counted(
        arun: Run, nats_server: Any, subject_url: str, capture_bytes: list[bytes]) -> None:
    lines = capture_bytes[:2200]

    async def main() -> tuple[Any, Any, list[bytes]]:
        pub = await BusPublisher(small(subject_url), buffer_limit=700, lines_per_message=20,
                                 retry_wait_s=0.05, ack_timeout_s=0.5).start()
        for line in lines[:600]:
            pub.write_line(line)
        assert await pub.flush(5)
        nats_server.stop()
        for line in lines[600:1600]:  # 700 fit in the buffer, 300 are dropped and counted
            pub.write_line(line)
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        down = pub.stats
        await asyncio.to_thread(nats_server.start)
        assert await pub.flush(6)
        for line in lines[1600:]:
            pub.write_line(line)
        stats = await pub.close(5)
        return down, stats, await consume(subject_url)

    down, stats, got = arun(main())
    assert (down.published, down.pending, down.dropped) == (600, 700, 300)
    assert stats.dropped == 300 and stats.disconnects >= 1 and stats.pending == 0
    assert stats.published == len(lines) - 300 == len(got)
    assert got == lines[:1300] + lines[1600:]  # in order; the dropped lines are the newest


def test_retention_losses_are_reported_as_a_gap(arun: Run, subject_url: str) -> None:
    lines = [ws_line(1_000 + i, "x" * 200 + str(i)) for i in range(400)]

    async def main() -> tuple[list[SourceLine | SourceGap], Any]:
        await publish(subject_url + "?max_bytes=20K", lines, lines_per_message=1)
        c = await BusConsumer(subject_url + "?durable=late").start()
        items = [item async for item in c.items()]
        await c.close()
        return items, c.stats

    items, stats = arun(main())
    gap = items[0]
    assert isinstance(gap, SourceGap) and gap.first == 1 and "retention" in gap.reason
    kept = [i for i in items[1:] if isinstance(i, SourceLine)]
    assert len(kept) == len(items) - 1 and 0 < len(kept) < 400
    assert [i.data for i in kept] == lines[gap.last:]
    assert kept[0].position == gap.last + 1 and stats.skipped == gap.count


def test_start_by_sequence_and_by_time(arun: Run, subject_url: str) -> None:
    lines = [ws_line(1_000 + i, f"m{i}") for i in range(50)]

    async def main() -> tuple[list[bytes], list[bytes]]:
        await publish(subject_url, lines[:30], lines_per_message=1)
        await asyncio.sleep(0.05)
        t = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        await asyncio.sleep(0.05)
        await publish(subject_url, lines[30:], lines_per_message=1)
        by_seq = await consume(subject_url + "?seq=11&durable=s")
        by_time = await consume(subject_url + f"?start={t}&durable=t")
        return by_seq, by_time

    by_seq, by_time = arun(main())
    assert by_seq == lines[10:]
    assert by_time == lines[30:]


def test_the_same_messages_published_twice_are_stored_once(
        arun: Run, subject_url: str, capture_bytes: list[bytes]) -> None:
    lines = capture_bytes[:1000]

    async def twice() -> tuple[Any, Any, list[bytes]]:
        stats = []
        for _ in range(2):  # e.g. a recorder restarted and replaying its last buffer
            pub = BusPublisher(small(subject_url), lines_per_message=25)
            for line in lines:  # queued before start: the packs are the same both times
                pub.write_line(line)
            await pub.start()
            stats.append(await pub.close(5))
        return stats[0], stats[1], await consume(subject_url)

    first, second, got = arun(twice())
    assert (first.messages, first.duplicates) == (40, 0)
    assert (second.messages, second.duplicates, second.published) == (0, 40, 0)
    assert got == lines


def test_a_missing_stream_is_named(arun: Run, subject_url: str) -> None:
    async def main() -> None:
        await BusConsumer(subject_url + "?durable=x").start()

    with pytest.raises(LookupError, match=r"no stream CAPTURE_TEST_S\d+ for subject test\.s\d+"):
        arun(main())


def test_a_stream_the_server_cannot_hold_is_refused_with_what_to_change(
        arun: Run, subject_url: str) -> None:
    async def main() -> None:
        await BusPublisher(subject_url + "?max_bytes=900T").start()

    with pytest.raises(BusStreamError, match=r"max_bytes=989560464998400: .*lower max_bytes="):
        arun(main())
