"""Archive trees in the real layout, built per test, and the loopback server that serves them."""

from __future__ import annotations

import datetime as dt

DAY1 = dt.date(2024, 8, 4)
DAY2 = dt.date(2024, 8, 5)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
