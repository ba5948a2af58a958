"""One entry point for every scheduling method: `solve(instance, method, time_limit=…, seed=…)`.

The CLI (`manage.py solve_jssp`), the services and bench/ name a method by one of `METHODS`
and get a `SolveResult`. Each method lives in its own module, imported when it is asked for,
so that this registry loads without them (and without OR-Tools until CP-SAT is used):

- `qlearning`: scheduling.engine.qlearning.solve(instance, *, time_limit, seed, …) -> Result(schedule,
  policy, info) (or a (schedule, info) pair);
- `cpsat`: scheduling.engine.cpsat.solve(instance, *, time_limit, seed, workers) -> CpSatResult
  (schedule, lower_bound, optimal, status);
- the dispatching rules: scheduling.engine.rules.dispatch(instance, rule, *, seed, downtimes)
  -> Schedule (they are quick and take no time limit).

The schedule comes back as the method made it: callers check it with schedule.validate
before storing or writing it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from scheduling.engine.cpsat_result import STATUS_WORDS
from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.rules import RULES
from scheduling.engine.schedule import Schedule

METHODS = ("qlearning", "cpsat", *RULES)


class MethodError(RuntimeError):
    """A method that cannot run here (unknown, or its module or a package it needs is missing)."""


class NoScheduleFound(RuntimeError):
    """The method ran but found no schedule (CP-SAT out of time before its first solution, say)."""


@dataclass(frozen=True)
class SolveResult:
    schedule: Schedule
    method: str
    extra: dict = field(default_factory=dict)  # what the method reports besides the schedule (bounds, episodes, …)


def _module(name: str, method: str) -> ModuleType:
    path = f"scheduling.engine.{name}"
    try:
        return importlib.import_module(path)
    except ModuleNotFoundError as e:
        if e.name == path:
            message = gettext_noop("The method '%(method)s' is not available in this installation (%(path)s is missing).")
            raise MethodError(phrase(message, method=method, path=path)) from e
        message = gettext_noop("The method '%(method)s' needs the Python package '%(package)s', which is not installed.")
        raise MethodError(phrase(message, method=method, package=e.name)) from e


def solve(
    instance: Instance,
    method: str,
    *,
    time_limit: float,
    seed: int,
    workers: int = 1,
    breakdowns_seed: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SolveResult:
    """The schedule `method` makes for `instance` within about `time_limit` seconds.

    MethodError for a name not in METHODS or a method that cannot run here; NoScheduleFound when
    the method ran and found none. `workers` is CP-SAT's thread count (1: repeatable with `seed`).
    `breakdowns_seed` draws breakdowns (simulator.Downtimes): the rules and Q-learning schedule
    through them as they happen; CP-SAT's plan, made without them, is repaired by right shift
    (extra["planned_makespan"] keeps the plan's). `progress` and `should_stop` reach Q-learning.
    """
    if method not in METHODS:
        message = gettext_noop("Unknown method '%(method)s': use one of %(methods)s.")
        raise MethodError(phrase(message, method=method, methods=", ".join(METHODS)))
    extra: dict = {}
    if method == "qlearning":
        result = _module("qlearning", method).solve(
            instance,
            time_limit=time_limit,
            seed=seed,
            breakdowns_seed=breakdowns_seed,
            progress=progress,
            should_stop=should_stop,
        )
        if isinstance(result, tuple):  # (schedule, info)
            schedule, info = result
        else:  # qlearning.Result(schedule, policy, info)
            schedule, info = result.schedule, result.info
            extra["policy"] = json.loads(result.policy.to_json())  # plain data: stored with the run, reusable
        extra.update(info if isinstance(info, dict) else {"info": info})
    elif method == "cpsat":
        rules = _module("rules", method)
        # The best fixed rule's schedule as CP-SAT's starting point (a few ms; it speeds the search
        # up on larger shops) and as the schedule kept should CP-SAT find none in time.
        hints = {rule: rules.dispatch(instance, rule) for rule in rules.MAKESPAN_RULES}
        best_rule = min(hints, key=lambda rule: hints[rule].makespan)
        result = _module("cpsat_process", method).solve(
            instance, time_limit=time_limit, seed=seed, workers=workers, hint=hints[best_rule],
            progress=progress, should_stop=should_stop,
        )  # fmt: skip
        schedule = result.schedule
        extra.update(
            lower_bound=result.lower_bound, optimal=result.optimal, status=result.status, stopped=result.stopped,
            best_rule=hints[best_rule].makespan, kept="CP-SAT",
        )  # fmt: skip
        if schedule is None:
            schedule = hints[best_rule]
            message = gettext_noop("rule %(rule)s (CP-SAT found no schedule within the time limit)")
            extra["kept"] = phrase(message, rule=best_rule)
        if schedule is not None and breakdowns_seed is not None:
            simulator = _module("simulator", method)
            extra["planned_makespan"] = schedule.makespan
            schedule = simulator.right_shift(instance, schedule, simulator.Downtimes(instance, breakdowns_seed))
    else:
        downtimes = None
        if breakdowns_seed is not None:
            downtimes = _module("simulator", method).Downtimes(instance, breakdowns_seed)
        schedule = _module("rules", method).dispatch(instance, method, seed=seed, downtimes=downtimes)
    if schedule is None:
        seconds = f"{time_limit:g}"
        if extra.get("status"):
            message = gettext_noop("The method '%(method)s' found no schedule within %(seconds)s seconds (status %(status)s).")
            status = STATUS_WORDS.get(extra["status"], extra["status"])
            raise NoScheduleFound(phrase(message, method=method, seconds=seconds, status=status))
        message = gettext_noop("The method '%(method)s' found no schedule within %(seconds)s seconds.")
        raise NoScheduleFound(phrase(message, method=method, seconds=seconds))
    return SolveResult(schedule=schedule, method=method, extra=extra)
