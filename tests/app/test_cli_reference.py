"""docs/cli.md must show exactly what `--help` prints (regenerate it when a flag changes)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cli.md"
BLOCK = re.compile(r"<!-- help: ([a-z][a-z ]*?) -->\s*```[a-z]*\n(.*?)```", re.S)
COMMANDS = ("main", "run", "verify", "replay", "export", "live", "capture", "demo", "report",
            "sweep", "archive", "archive fetch", "archive import", "evaluate")


def help_text(command: str) -> str:
    argv = [sys.executable, "-m", "engine_app", *([] if command == "main" else command.split()),
            "--help"]
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT,
                          check=True).stdout


def documented() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in BLOCK.finditer(DOC.read_text())}


def test_every_command_is_documented() -> None:
    assert set(documented()) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_help_matches_the_program(command: str) -> None:
    assert documented()[command].strip() == help_text(command).strip(), \
        f"docs/cli.md is stale for {command!r}: regenerate it from --help (COLUMNS=100)"
