"""What every command shares: exit codes, errors, config and symbol parsing, stderr messages.

Kept apart from `cli.py` (the parser and the registration point of the subcommands) so
that command modules import these helpers without importing the parser that imports them
(an import-linter contract forbids the cycle).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import engine_core as ec
from engine_adapters.capture import open_capture
from engine_app.datadir import DataDir

EXIT_OK, EXIT_BREACH, EXIT_CORRUPT, EXIT_USAGE = 0, 1, 2, 64


class UsageError(Exception):
    """Bad command-line usage: exit 64."""


class InputError(Exception):
    """Unreadable or invalid input (a file, a config): exit 2."""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


#: Top-level TOML tables that configure the shell, not the engine (kept out of the digest).
APP_TABLES = ("sinks",)


#: Named config profiles shipped with the engine (`--config archive`): engine_app/resources.
PROFILES = ("archive",)


def profile_path(name: str) -> Path | None:
    """The shipped TOML of a profile name, or None when `name` is not one."""
    if name not in PROFILES:
        return None
    from importlib import resources

    return Path(str(resources.files("engine_app").joinpath(f"resources/{name}.toml")))


def load_config_file(path: str | None) -> tuple[ec.Config, dict[str, Any]]:
    """The engine config and the app's own tables ([sinks]...) from one TOML file.

    `path` may also name a shipped profile ("archive"), unless a file of that name exists.
    A file that does not say `profile = "..."` is recorded as profile "custom".
    """
    if path is None:
        return ec.Config(), {}
    p = Path(path)
    named = profile_path(path) if not p.exists() else None
    p = named or p
    try:
        data = tomllib.loads(p.read_text())
        data.setdefault("profile", "custom")
    except OSError as exc:
        raise InputError(f"cannot read config {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p}: not valid TOML: {exc}") from None
    app = {k: data.pop(k) for k in APP_TABLES if k in data}
    try:
        return ec.Config.from_dict(data), app
    except ec.ConfigError as exc:
        raise InputError(f"{p}: {exc}") from None


def load_config(path: str | None) -> ec.Config:
    return load_config_file(path)[0]


def fsync_policy(text: str) -> str:
    """argparse type of --fsync: none | tick | interval:N, checked before anything is written."""
    from engine_adapters.storage import FsyncPolicy

    try:
        FsyncPolicy.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_symbols(text: str) -> tuple[str, ...]:
    syms = sorted({s.strip().upper() for s in text.split(",") if s.strip()})
    bad = [s for s in syms if not re.fullmatch(r"[A-Z0-9]{2,30}", s)]
    if not syms or bad:
        raise UsageError(f"--symbols wants comma-separated symbol names like BTCUSDT,ETHUSDT"
                         f"{'; bad: ' + ', '.join(bad) if bad else ''}")
    return tuple(syms)


# Patterns with literal prefixes (an alternation of both would lose that and be ~6x slower):
# `"s":"BTCUSDT"` inside a frame (compact, or with one space as json.dumps writes it), and
# `symbol=BTCUSDT` in a REST query.
_SYMBOL_PATTERNS = (re.compile(rb'\\"s\\": ?\\"([A-Z0-9]{2,30})\\"'),
                    re.compile(rb'symbol=([A-Z0-9]{2,30})'))


def symbols_in_capture(paths: Path | Sequence[Path]) -> tuple[str, ...]:
    """The universe of a capture (one file or a recording's files): every symbol named in a
    frame or a REST query. A torn end stops the scan of its file only."""
    found: set[str] = set()
    failed: list[str] = []
    for path in (paths,) if isinstance(paths, Path) else paths:
        tail = b""
        try:
            with open_capture(path) as f:
                # big blocks, not lines: one regex pass per MiB (a symbol cut by a block
                # boundary is found again in the overlap carried into the next block)
                while block := f.read(1 << 22):
                    chunk = tail + block
                    for pat in _SYMBOL_PATTERNS:
                        found.update(m.decode() for m in pat.findall(chunk))
                    tail = block[-64:]
        except (OSError, EOFError, zlib.error) as exc:
            failed.append(f"{path}: {exc}")
    if failed and not found:
        raise InputError(f"cannot read capture {failed[0]}")
    return tuple(sorted(found))


def existing_dir(path: str) -> DataDir:
    dd = DataDir.at(path)
    if not dd.root.is_dir():
        raise InputError(f"{dd.root}: no such data dir")
    if not dd.looks_like_data_dir():
        raise InputError(f"{dd.root}: not a data dir (no log/ inside)")
    return dd
