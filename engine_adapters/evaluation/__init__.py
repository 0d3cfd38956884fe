"""Evaluation of alerts against market events: scoring, the labeller, 1-minute bars, reports.

`scoring` is the shared contract (docs/evaluation.md); `bars` builds 1-minute market bars
from the engine's inputs; `labels` labels flushes and squeezes from those bars alone.
"""
