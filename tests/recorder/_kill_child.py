"""Child process of test_sigkill: records numbered lines until killed (never exits itself)."""

from __future__ import annotations

import sys

from engine_adapters.recorder import Recorder

H = 3_600_000
T0 = 1_796_180_400_000


def main(out: str) -> None:
    i = 0

    def clock() -> int:  # virtual: 2 ms per line, and a new UTC hour every 20,000 lines
        return T0 + (i // 20_000) * H + (i % 20_000) * 2

    r = Recorder(out, "kill", clock_ms=clock, buffer_bytes=64 * 1024)
    members = 0
    pad = "p" * 120
    while True:
        r.write_ws(clock(), f'{{"seq":{i},"pad":"{pad}"}}')
        i += 1
        if r.members_written != members:
            members = r.members_written
            # the lines of every complete member are in the OS now: a SIGKILL cannot take them
            # back (not `lines_written`: at an hour rotation the line that opened the new file
            # is only buffered when the old file's last member goes out)
            sys.stdout.write(f"{r.lines_flushed}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
