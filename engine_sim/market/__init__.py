"""A mechanistic USD-M market with ground truth: leveraged books, liquidations, impact, cascades.

Independent of the engine's rules (it never reads engine_core.config). `run.generate()` makes
a scenario, `run.write_capture()` its Binance-shaped capture, `run.write_truth()` its ground
truth as scoring.LabelledEvent JSON. docs/simulation.md describes the mechanics, the
scenarios, the ground-truth definitions and the calibration sources.
"""
