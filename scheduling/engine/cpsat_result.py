"""CP-SAT's answer as plain data, in a module of its own: reading it needs no OR-Tools
(scheduling.engine.cpsat_process hands it across processes; scheduling.engine.cpsat makes it)."""

from __future__ import annotations

from dataclasses import dataclass

from scheduling.engine.instance import gettext_noop
from scheduling.engine.schedule import Schedule

# CP-SAT's status names as a reader sees them (progress, a run's failure): marked for translation.
STATUS_WORDS = {
    "OPTIMAL": gettext_noop("OPTIMAL"),
    "FEASIBLE": gettext_noop("FEASIBLE"),
    "INFEASIBLE": gettext_noop("INFEASIBLE"),
    "UNKNOWN": gettext_noop("UNKNOWN"),
    "MODEL_INVALID": gettext_noop("MODEL_INVALID"),
}


@dataclass(frozen=True)
class CpSatResult:
    """What CP-SAT found and proved within its limits.

    `schedule` is None only when no schedule was found (status UNKNOWN: the limit came first;
    INFEASIBLE cannot happen on a checked instance). `lower_bound` is the proven bound on the
    objective (an int for the makespan; for weighted tardiness, in its units); `gap` is
    (objective − bound) / objective, 0 when proven optimal, None without a schedule.
    `status` is CP-SAT's name (OPTIMAL, FEASIBLE, UNKNOWN, ...); `stopped` says `should_stop`
    ended the search.
    """

    schedule: Schedule | None
    makespan: int | None
    lower_bound: int | float
    optimal: bool
    status: str
    gap: float | None
    wall_seconds: float
    objective: str = "makespan"
    objective_value: int | float | None = None
    stopped: bool = False
