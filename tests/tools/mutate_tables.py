"""Mutation check of the rule tables: does `tests/unit/core` notice a wrong row?

    .venv/bin/python tests/tools/mutate_tables.py [--only structural,alerts] [-v]

For every row of every table (structural, cluster, phase, tier, quality flags, alerts) it makes one
mutant: the row's `target` replaced by the next member of the same enum (cyclically; an alert
row never becomes NO_ALERT). Each mutant is written into a private copy of the tree (never into
the working tree others are using), `pytest tests/unit/core -x -q` runs against that copy, and
the mutant is *killed* if the tests fail. It prints every survivor and `killed/total`; the exit
status is 0 only when every mutant is killed. Before mutating, it checks that the copy's tests
pass and that the copy (not the installed tree) is the one imported.

Not collected by pytest (no test_ prefix): it runs the unit suite ~60 times (a few minutes).
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: (machine, module, table name) of every table.
TABLES = [
    ("structural", "engine_core.structural", "TABLE"),
    ("cluster", "engine_core.cluster", "TABLE"),
    ("phase", "engine_core.phase", "TABLE"),
    ("tier", "engine_core.tier", "TABLE"),
    ("quality", "engine_core.quality", "TABLE"),
    ("alerts", "engine_core.alerts", "TABLE"),
]
COPY = ["engine_core", "tests/__init__.py", "tests/conftest.py", "tests/unit/__init__.py",
        "tests/unit/core", "tests/property", "pyproject.toml"]


def rows(module: str, table: str) -> list[tuple[int, int, int, str, str]]:
    """(line, col, end col, original text, mutant text) of each row's target, in table order."""
    mod = importlib.import_module(module)
    values = getattr(mod, table)
    path = Path(mod.__file__ or "")
    source = path.read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body
                if isinstance(n, ast.Assign | ast.AnnAssign)
                and any(isinstance(t, ast.Name) and t.id == table
                        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])))
    assert isinstance(node.value, ast.Tuple), f"{module}.{table} is not a literal tuple"
    lines = source.splitlines()
    out = []
    for call, row in zip(node.value.elts, values, strict=True):
        assert isinstance(call, ast.Call)
        kw = next(k for k in call.keywords if k.arg == "target")
        v = kw.value
        assert isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name), ast.dump(v)
        target = row.target
        members = [m for m in type(target) if not (isinstance(m, enum.IntEnum) and m.name
                                                     == "NO_ALERT")]
        new = members[(members.index(target) + 1) % len(members)]
        assert v.end_lineno == v.lineno and v.end_col_offset is not None
        text = lines[v.lineno - 1][v.col_offset:v.end_col_offset]
        out.append((v.lineno, v.col_offset, v.end_col_offset, text, f"{v.value.id}.{new.name}"))
    return out


def run_tests(tree: Path, show: bool = False) -> bool:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "tests/unit/core", "-x", "-q",
                        "-p", "no:randomly", "-p", "no:cacheprovider"], cwd=tree, env=env,
                       capture_output=True, text=True, check=False)
    if show and r.returncode:
        print(r.stdout[-3000:], r.stderr[-3000:])
    return r.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated machine names")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    with tempfile.TemporaryDirectory(prefix="mutate-tables-") as tmp:
        tree = Path(tmp)
        for rel in COPY:
            src, dst = ROOT / rel, tree / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        env = dict(os.environ, PYTHONPATH=str(tree))
        where = subprocess.run([sys.executable, "-c", "import engine_core; print(engine_core"
                                ".__file__)"], cwd=tree, env=env, capture_output=True,
                               text=True, check=True).stdout.strip()
        if not where.startswith(str(tree)):
            print(f"the copy is not the tree imported ({where}); aborting")
            return 2
        if not run_tests(tree, show=True):
            print("tests/unit/core fails on the unmutated copy; aborting")
            return 2
        killed = total = 0
        t0 = time.perf_counter()
        for machine, module, table in TABLES:
            if only and machine not in only:
                continue
            rel = module.replace(".", "/") + ".py"
            path = tree / rel
            original = path.read_text()
            lines = original.splitlines(keepends=True)
            for i, (line, col, end, old, new) in enumerate(rows(module, table)):
                mutant = list(lines)
                text = mutant[line - 1]
                assert text[col:end] == old
                mutant[line - 1] = text[:col] + new + text[end:]
                path.write_text("".join(mutant))
                try:
                    dead = not run_tests(tree)
                finally:
                    path.write_text(original)
                total += 1
                killed += dead
                if args.verbose or not dead:
                    print(f"{'killed ' if dead else 'SURVIVED'} {machine} row {i} "
                          f"(line {line}): {old} -> {new}", flush=True)
        print(f"killed {killed}/{total} mutants ({time.perf_counter() - t0:.0f} s)")
        return 0 if killed == total else 1


if __name__ == "__main__":
    sys.exit(main())
