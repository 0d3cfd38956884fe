"""The log as tables: `read_log` -> numpy structured array, pandas frames, csv/parquet export.

Every segment is checked first (CRC, structure, chain, via `log_reader.scan_log`); a damaged
log raises StorageError rather than yielding half-trusted rows. The token records of the
valid ticks are viewed in place with `RECORD_DTYPE` (field names and offsets from
engine_core/record.py) and copied out without the commit records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine_adapters.storage.log_reader import scan_log
from engine_adapters.storage.segment import StorageError
from engine_core.record import FIELDS, RECORD_SIZE
from engine_core.states import ClusterState, EventPhase, StructuralState, Tier

_TYPES = {"tick_id": "<u8", "token_id": "<u2", "fsm": "u1", "tier": "u1", "cluster": "u1",
          "phase": "u1", "alerts": "u1", "event_id": "<u4", "quality": "<u2",
          "trigger_cost": "<u2", "pressure": "<u2", "fragile": "<u2", "trigger": "<u2",
          "unwind": "<u2", "density": "<u2", "compression": "<u2", "divergence": "<u2",
          "elasticity": "<u2", "state_age": "<u4", "n_events": "<u2",
          "liq_imbalance": "<i2", "oi_velocity": "<i4", "funding_rate": "<i4",
          "spread_bps": "<u2", "mark_vs_mid_bps": "<i2"}
_OFFSETS = {"tick_id": 0, "token_id": 8, "fsm": 11, "tier": 12, "cluster": 13, "phase": 14,
            "alerts": 15, "event_id": 16, "quality": 20, "trigger_cost": 22, "pressure": 24,
            "fragile": 26, "trigger": 28, "unwind": 30, "density": 32, "compression": 34,
            "divergence": 36, "elasticity": 38, "state_age": 40, "n_events": 44,
            "liq_imbalance": 46, "oi_velocity": 48, "funding_rate": 52, "spread_bps": 56,
            "mark_vs_mid_bps": 58}
#: In-place view of a 64-byte token record (the CRC and rec_type are left out).
RECORD_DTYPE = np.dtype({"names": list(FIELDS), "formats": [_TYPES[f] for f in FIELDS],
                         "offsets": [_OFFSETS[f] for f in FIELDS], "itemsize": RECORD_SIZE})
#: Enum-valued columns and their enums, for `decode_names`.
ENUMS: dict[str, Any] = {"fsm": StructuralState, "tier": Tier, "cluster": ClusterState,
                         "phase": EventPhase}
RESEARCH_HINT = "pip install -e .[research]"


def read_log(path: Path | str) -> np.ndarray:
    """All token records of a log (data dir, log dir or one segment) as a packed array."""
    parts = []
    for s, data in scan_log(Path(path)):
        if s.problem is not None:
            raise StorageError(s.path, s.problem_offset or 0, s.problem)
        n = s.header.n_tokens
        arr = np.frombuffer(data, dtype=RECORD_DTYPE, count=s.n_ticks * (n + 1),
                            offset=s.header.header_len).reshape(s.n_ticks, n + 1)
        parts.append(arr[:, :n].reshape(-1))
    packed = np.dtype([(f, _TYPES[f]) for f in FIELDS])
    if not parts:
        return np.zeros(0, dtype=packed)
    return np.concatenate(parts).astype(packed)


def decode_names(arr: np.ndarray, field: str) -> np.ndarray:
    """Enum column as names: decode_names(a, "fsm") -> array(["BUILD", "FRAGILE", ...])."""
    enum = ENUMS[field]
    table = np.array([m.name for m in sorted(enum, key=int)])
    return table[arr[field].astype(np.intp)]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"pandas is needed for frames and exports: {RESEARCH_HINT}") from None
    return pandas


def read_log_frame(path: Path | str, *, names: bool = True) -> Any:
    """The log as a pandas DataFrame, with a `symbol` column and enum names if `names`."""
    pd = _pandas()
    arr = read_log(path)
    df = pd.DataFrame({f: arr[f] for f in FIELDS})
    symbols = _symbols(Path(path))
    df.insert(2, "symbol", np.array(symbols, dtype=object)[arr["token_id"].astype(np.intp)]
              if len(arr) else [])
    if names:
        for f in ENUMS:
            df[f] = decode_names(arr, f) if len(arr) else []
    return df


def _symbols(path: Path) -> tuple[str, ...]:
    for s, _data in scan_log(path):
        return s.header.symbols
    return ()


#: Extra columns for `export`: (data dir, symbols, tick ids, token ids) -> name -> column.
ExtraColumns = Callable[[Path, tuple[str, ...], np.ndarray, np.ndarray], Mapping[str, np.ndarray]]


def export(data_dir: Path | str, fmt: str, out: Path | str, *,
           extra_columns: ExtraColumns | None = None) -> Path:
    """Write the log as csv or parquet; returns the file written.

    `extra_columns` adds columns beside the record fields (the CLI adds the market columns
    of `engine_app.export_columns`: price, OI, funding, liquidations from DIR/bars)."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format must be csv or parquet, got {fmt!r}")
    df = read_log_frame(data_dir)
    if extra_columns is not None:
        root = Path(data_dir)
        root = root if (root / "log").is_dir() else root.parent
        for name, col in extra_columns(root, _symbols(Path(data_dir)), df["tick_id"].to_numpy(),
                                       df["token_id"].to_numpy()).items():
            df[name] = col
    target = Path(out)
    if fmt == "csv":
        df.to_csv(target, index=False)
    else:
        try:
            df.to_parquet(target, index=False)
        except ImportError:
            raise ImportError(f"pyarrow is needed for parquet: {RESEARCH_HINT}") from None
    return target
