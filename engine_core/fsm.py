"""The transition-table machinery shared by the structural, cluster and phase machines.

Each machine declares its rules as one literal table of `Rule(source, when, target, hold)`
rows: "from `source`, when guard `when` has held for `hold` consecutive evaluations, go to
`target`". Rows of a source state are in priority order: the first row whose guard holds is
the *candidate*; if the same candidate wins again on the next evaluation its count grows,
otherwise counting starts over. A move happens when the count reaches the row's hold (the
persist rule for escalations, the decay rule for de-escalations). Hold times are names of
config fields, so no threshold is a literal in a rule.

The hold name "at_once" means a single evaluation; rules that wait for a fixed time use a guard
over the state's age with "at_once", so a passing blip of another guard cannot restart the wait.

`compile_table` checks the table once (every guard known, every hold a config field) and
turns it into tuples for the per-tick path; `advance` is that path.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

#: Hold name of a rule that fires on the first evaluation its guard holds.
AT_ONCE = "at_once"

#: Compiled rules: state -> ((guard, target, hold), ...) in priority order.
Compiled = dict[int, tuple[tuple[str, int, int], ...]]


@attrs.frozen(kw_only=True, slots=True)
class Rule:
    """From `source`, when `when` has held for config field `hold` evaluations, go to `target`."""

    source: enum.IntEnum
    when: str
    target: enum.IntEnum
    hold: str


class TableError(ValueError):
    """A transition table that refers to an unknown guard, state or config field."""


def compile_table(name: str, states: type[enum.IntEnum], rules: Iterable[Rule],
                  guards: Iterable[str], holds: object) -> Compiled:
    """Validate a table against its guards and config section; index it by source state."""
    known = set(guards)
    out: dict[int, list[tuple[str, int, int]]] = {int(s): [] for s in states}
    for r in rules:
        if not isinstance(r.source, states) or not isinstance(r.target, states):
            raise TableError(f"{name}: rule {r} mixes states of another machine")
        if r.when not in known:
            raise TableError(f"{name}: rule {r.source.name} -> {r.target.name} uses unknown "
                             f"guard {r.when!r}")
        hold = 1 if r.hold == AT_ONCE else getattr(holds, r.hold, None)
        if not isinstance(hold, int) or hold < 1:
            raise TableError(f"{name}: rule {r.source.name} -> {r.target.name} has no hold "
                             f"field {r.hold!r} in its config")
        out[int(r.source)].append((r.when, int(r.target), hold))
    return {s: tuple(rows) for s, rows in out.items()}


def advance(state: int, pending: int, count: int, guards: Mapping[str, bool],
            compiled: Compiled) -> tuple[int, int, int]:
    """One evaluation: returns (state, pending target or -1, consecutive count)."""
    for guard, target, hold in compiled[state]:
        if guards[guard]:
            n = count + 1 if pending == target else 1
            if n >= hold:
                return target, -1, 0
            return state, target, n
    return state, -1, 0


def legal_moves(rules: Iterable[Rule]) -> frozenset[tuple[int, int]]:
    """Every (source, target) pair a table allows; staying put is always legal."""
    return frozenset((int(r.source), int(r.target)) for r in rules)
