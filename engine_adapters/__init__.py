"""Ports' implementations: Binance ingest (WS + REST), storage (log, journal), alert sinks."""
