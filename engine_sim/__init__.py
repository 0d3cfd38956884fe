"""The harness: simulated markets with ground truth and a loopback fake Binance exchange.

Used by tests, benchmarks and the `demo` command. Never imported by `engine_core` or
`engine_adapters` (an import-linter contract enforces it); `engine_app` may import it for
`demo` only.
"""
