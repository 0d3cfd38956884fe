"""Binance USD-M adapters: stream URLs, WS/REST clients, payload rendering and parsing."""
