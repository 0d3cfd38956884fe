"""The tick clock of the engine: how long a tick is and which tick a receive time belongs to.

Defined once, here. Every source (WS feed, REST poller, capture file, archive, bus) assigns a
message to the first tick boundary after its receive time, so the same capture always lands
in the same ticks.
"""

from __future__ import annotations

TICK_MS = 250
"""Length of one tick in milliseconds; tick `t` covers receive times `[(t-1)*250, t*250)`."""


def tick_of_recv_ms(recv_ms: int) -> int:
    """The tick a message received at `recv_ms` belongs to: the first boundary after it.

    >>> tick_of_recv_ms(0), tick_of_recv_ms(249), tick_of_recv_ms(250)
    (1, 1, 2)
    """
    return recv_ms // TICK_MS + 1
