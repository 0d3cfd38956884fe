"""The transition-table machinery shared by the structural, cluster and phase machines.

Each machine declares its inputs as a guard enum and its rules as one literal table of
`Rule(source, when, target, hold)` rows: "from `source`, when guard `when` has held for `hold`
consecutive evaluations, go to `target`". Rows of a source state are in priority order: the
first row whose guard holds is the *candidate*; if the same candidate wins again on the next
evaluation its count grows, otherwise counting starts over. A move happens when the count
reaches the row's hold (the persist rule for escalations, the decay rule for de-escalations).
Hold times are names of config fields, so no threshold is a literal in a rule.

Special holds:
  "at_once"  a single evaluation. Rules that wait for a fixed time use a guard over the
             state's age with "at_once", so a passing blip of another guard cannot restart it.
             A row whose target is its source with "at_once" *holds* the state: the machine
             stays, its age grows and any count being made is dropped.
  "frozen"   the machine is not evaluated at all: state, age and count stay as they were
             (the target must be the source).
A row with `new_epoch=True` opens a new event epoch (phase machine); every backward move must
be such a row and no other may be, so (event_id, state) never decreases.

`compile_table` checks a table once (every guard of the machine's enum, every hold a config
field, the epoch rule) and turns it into tuples for the per-tick path; `advance` is that path.
It looks rows up by state; a state with no entry is the error, naming machine and state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

#: Hold name of a rule that fires on the first evaluation its guard holds.
AT_ONCE = "at_once"
#: Hold name of a rule that suspends the machine while its guard holds.
FROZEN = "frozen"
_FROZEN = 0


@attrs.frozen(kw_only=True, slots=True)
class Rule:
    """From `source`, when `when` has held for config field `hold` evaluations, go to `target`."""

    source: enum.IntEnum
    when: enum.IntEnum
    target: enum.IntEnum
    hold: str
    new_epoch: bool = False


class TableError(ValueError):
    """A transition table that refers to an unknown guard, state or config field."""


class TransitionError(LookupError):
    """A machine was asked to move from a state its table does not know."""


@attrs.frozen(kw_only=True, slots=True)
class Compiled:
    """A checked table: per state (by value), its rows as (guard, target, hold) ints."""

    name: str
    rows: tuple[tuple[tuple[int, int, int], ...], ...]
    #: (source, target) of every row that opens a new event epoch.
    epoch_moves: frozenset[tuple[int, int]] = frozenset()


def compile_table(name: str, states: type[enum.IntEnum], guards: type[enum.IntEnum],
                  rules: Iterable[Rule], holds: object, *, epochs: bool = False) -> Compiled:
    """Validate a table against its state and guard enums and config section.

    `epochs=True` for a machine with event epochs: its backward rows, and only those, must be
    `new_epoch` rows. Other machines may not have `new_epoch` rows.
    """
    values = sorted(int(s) for s in states)
    if values != list(range(len(values))):
        raise TableError(f"{name}: states must be numbered 0..{len(values) - 1}, got {values}")
    out: list[list[tuple[int, int, int]]] = [[] for _ in values]
    epoch_moves: set[tuple[int, int]] = set()
    for r in rules:
        hold: int
        where = f"{name}: rule {r.source.name} -> {r.target.name}"
        if not isinstance(r.source, states) or not isinstance(r.target, states):
            raise TableError(f"{where} mixes states of another machine")
        if not isinstance(r.when, guards):
            raise TableError(f"{where} uses unknown guard {r.when!r} (not a {guards.__name__})")
        if r.hold == FROZEN:
            if r.target is not r.source:
                raise TableError(f"{where}: a frozen row must keep its state")
            hold = _FROZEN
        elif r.hold == AT_ONCE:
            hold = 1
        else:
            field = getattr(holds, r.hold, None)
            if not isinstance(field, int) or isinstance(field, bool) or field < 1:
                raise TableError(f"{where} has no hold field {r.hold!r} in its config")
            hold = field
        if not epochs and r.new_epoch:
            raise TableError(f"{where}: this machine has no event epochs")
        if epochs and r.new_epoch != (r.target < r.source):
            raise TableError(f"{where}: a move is backward exactly when it opens a new epoch "
                             f"(new_epoch={r.new_epoch})")
        if r.new_epoch:
            epoch_moves.add((int(r.source), int(r.target)))
        out[int(r.source)].append((int(r.when), int(r.target), hold))
    return Compiled(name=name, rows=tuple(tuple(rows) for rows in out),
                    epoch_moves=frozenset(epoch_moves))


def advance(state: int, age: int, pending: int, count: int, guards: Sequence[bool],
            compiled: Compiled) -> tuple[int, int, int, int]:
    """One evaluation: returns (state, age in it, pending target or -1, consecutive count).

    `guards[g]` is the value of guard `g` (by its enum value) this evaluation.
    """
    try:
        rows = compiled.rows[state]
    except IndexError:
        raise TransitionError(f"{compiled.name}: no rows for state {state} "
                              f"(guards {tuple(guards)})") from None
    for guard, target, hold in rows:
        if guards[guard]:
            if hold == _FROZEN:
                return state, age, pending, count
            n = count + 1 if pending == target else 1
            if n >= hold:
                return target, (age + 1 if target == state else 0), -1, 0
            return state, age + 1, target, n
    return state, age + 1, -1, 0

