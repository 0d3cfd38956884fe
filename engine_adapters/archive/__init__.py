"""The Binance public-data archive: its layout, verified downloads and the import to a capture.

`layout` names the files, `fetch` downloads them (aiohttp, resumable, checksummed), `rows`
renders each kind's CSV rows as the Binance messages the engine parses, and `importer`
merges every stream into one time-ordered capture. Documented in docs/research.md and
docs/capture-format.md ("Archive imports").
"""
