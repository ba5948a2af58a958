"""The exact reference: OR-Tools CP-SAT with a time limit, reporting its lower bound and gap.

The model: one start per operation; an interval per (operation, machine option), optional with
exactly one present when the operation has several options (flexible job shop); a job's
operations in order, the first not before the job's release; no two intervals at once on a
machine; minimise the makespan, or the weighted tardiness (sum of weight × max(0, end − due)
over the jobs with a due date).

Search. `workers=1` (the default) is one core: CP-SAT then runs a single sequential search,
which on the job shop is much weaker than its portfolio (a dozen strategies and LNS workers in
parallel; it needs 8 workers or more to be strong). With one worker we rely on a good hint (a
dispatching rule's schedule, `hint=`) and on CP-SAT's default single-worker search: in a quick
experiment (la16/21/26/36, ta01/11/21, 5 s, hinted) it was best, with a mean gap of 3.6 % to the
best-known makespans against 4.4 % for PSEUDO_COST_SEARCH, 5.2 % for
PORTFOLIO_WITH_QUICK_RESTART_SEARCH and 7.0 % for `interleave_search` (a deterministic
portfolio on one thread, too thin at one worker); without the hint the default reached 4.5 %.

Determinism. With one worker the search is deterministic for a given seed and model: what
stops it early decides the rest.
- Solved to optimality (or infeasibility) before the limit: the same result every run.
- Cut by `time_limit` (wall-clock): the result depends on how much the machine did in that
  time (its speed, its load), so two runs may differ. `work_limit` sets CP-SAT's deterministic
  time limit (its own count of work done, in units close to a second) instead: cut by it, the
  same seed gives the same schedule and bound on any machine. The wall-clock limit still holds
  as a safety net, and wins when it comes first.
- Stopped by `should_stop`: as wall-clock, not reproducible.
- With several workers, CP-SAT's threads share solutions and bounds as they come, which makes
  the search non-deterministic: a run proven optimal gives the same objective value, but maybe
  another optimal schedule; anything else may differ. (`interleave_search` would make several
  workers deterministic, at a cost in strength; not exposed.)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ortools.sat.python import cp_model

from scheduling.engine.cpsat_result import STATUS_WORDS, CpSatResult
from scheduling.engine.instance import Instance, Phrase, gettext_noop, phrase
from scheduling.engine.schedule import Schedule, ScheduledOp, validate

OBJECTIVES = ("makespan", "weighted_tardiness")
OBJECTIVE_WORDS = {"makespan": gettext_noop("makespan"), "weighted_tardiness": gettext_noop("weighted tardiness")}

# How often `should_stop` is asked while no new solution comes (seconds).
STOP_POLL_SECONDS = 0.1

# Model building and reading the answer back come out of the caller's time limit; CP-SAT gets
# what is left, less this margin, so the whole call holds the limit within a second.
TIME_MARGIN_SECONDS = 0.05

# Weights are floats; CP-SAT wants integer coefficients. They are scaled by the smallest of
# these that makes them all whole, or rounded at the last (three decimals).
WEIGHT_SCALES = (1, 10, 100, 1000)


def solve(
    instance: Instance,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
    hint: Schedule | None = None,
    objective: str = "makespan",
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    work_limit: float | None = None,
) -> CpSatResult:
    """Solve `instance` with CP-SAT within `time_limit` seconds of wall-clock (model building included).

    `hint`: a valid schedule of `instance` (a dispatching rule's, say), given to CP-SAT as a
    solution to start from; with one worker it helps at short limits on mid-size instances
    (see the module's note), though not everywhere. `progress(fraction,
    message)` is called at each better solution and at the end; `should_stop()` is asked at
    each solution and every `STOP_POLL_SECONDS`: when it says True the search ends and the best
    schedule so far comes back. `work_limit`: see the module's note on determinism. The
    returned schedule has passed `schedule.validate`.
    """
    started = time.monotonic()
    if objective not in OBJECTIVES:
        message = gettext_noop("Unknown objective '%(objective)s': use one of %(objectives)s.")
        raise ValueError(phrase(message, objective=objective, objectives=", ".join(OBJECTIVES)))
    if not time_limit > 0:
        raise ValueError(gettext_noop("The time limit must be positive."))
    if workers < 1:
        raise ValueError(gettext_noop("At least one worker is needed."))
    instance.check()
    if hint is not None:
        validate(instance, hint)

    built = _build(instance, objective)
    if hint is not None:
        built.add_hint(hint)

    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.0, time_limit - (time.monotonic() - started) - TIME_MARGIN_SECONDS)
    params.num_workers = workers
    params.random_seed = seed
    params.log_search_progress = False
    if work_limit is not None:
        params.max_deterministic_time = work_limit

    callback = _Callback(built, started, time_limit, progress, should_stop)
    poller = _StopPoller(solver, should_stop, callback) if should_stop is not None else None
    if poller:
        poller.start()
    try:
        status = solver.solve(built.model, callback)
    finally:
        if poller:
            poller.finish()

    status_name = solver.status_name(status)
    optimal = status == cp_model.OPTIMAL
    schedule = None
    value: int | float | None = None
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        schedule = validate(instance, built.read(solver))
        value = built.objective_value(solver.objective_value)
    raw_bound = solver.best_objective_bound
    if optimal and value is not None:
        bound: int | float = value
    elif math.isfinite(raw_bound):
        bound = built.objective_value(raw_bound)
        if objective == "makespan":
            bound = math.ceil(bound - 1e-9)
    else:
        bound = 0
    gap = None
    if value is not None:
        gap = 0.0 if optimal or value == 0 else max(0.0, (value - bound) / value)
    wall = time.monotonic() - started
    if progress:
        message = gettext_noop("%(status)s: %(objective)s %(value)s, bound %(bound)s, %(seconds)s s")
        progress(
            1.0,
            phrase(
                message,
                status=STATUS_WORDS.get(status_name, status_name),
                objective=OBJECTIVE_WORDS[objective],
                value=_show(value),
                bound=_show(bound),
                seconds=f"{wall:.1f}",
            ),
        )
    return CpSatResult(
        schedule=schedule,
        makespan=schedule.makespan if schedule else None,
        lower_bound=bound,
        optimal=optimal,
        status=status_name,
        gap=gap,
        wall_seconds=wall,
        objective=objective,
        objective_value=value,
        stopped=callback.stopped or bool(poller and poller.stopped),
    )


class _Model:
    """The CP-SAT model of one instance, and how to read a schedule back from a solution."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.model = cp_model.CpModel()
        # Per (job, op): start, end, and per option (machine, duration, presence or None).
        self.starts: dict[tuple[int, int], cp_model.IntVar] = {}
        self.ends: dict[tuple[int, int], cp_model.LinearExprT] = {}
        self.options: dict[tuple[int, int], list[tuple[int, int, cp_model.IntVar | None]]] = {}
        self.makespan: cp_model.IntVar | None = None
        self.job_ends: list[cp_model.LinearExprT] = []
        self.scale = 1
        self.tardiness: list[tuple[int, cp_model.IntVar]] = []

    def add_hint(self, hint: Schedule) -> None:
        for o in hint.operations:
            key = (o.job, o.op)
            self.model.add_hint(self.starts[key], o.start)
            end = self.ends[key]
            if isinstance(end, cp_model.IntVar):
                self.model.add_hint(end, o.end)
            for machine, _duration, present in self.options[key]:
                if present is not None:
                    self.model.add_hint(present, machine == o.machine)
        ends = [job.release for job in self.instance.jobs]
        for o in hint.operations:
            ends[o.job] = max(ends[o.job], o.end)
        if self.makespan is not None:
            self.model.add_hint(self.makespan, hint.makespan)
        for j, var in self.tardiness:
            self.model.add_hint(var, max(0, ends[j] - self.instance.jobs[j].due))

    def read(self, solver: cp_model.CpSolver) -> Schedule:
        operations = []
        for (j, k), start in self.starts.items():
            s = solver.value(start)
            for machine, duration, present in self.options[(j, k)]:
                if present is None or solver.boolean_value(present):
                    operations.append(ScheduledOp(job=j, op=k, machine=machine, start=s, end=s + duration))
                    break
        return Schedule(operations=operations)

    def objective_value(self, raw: float) -> int | float:
        if self.scale == 1:
            return round(raw) if abs(raw - round(raw)) < 1e-6 else raw
        return raw / self.scale


def _build(instance: Instance, objective: str) -> _Model:
    built = _Model(instance)
    model = built.model
    horizon = sum(max(d for _m, d in op.options) for job in instance.jobs for op in job.operations)
    horizon += max(job.release for job in instance.jobs)
    on_machine: list[list[cp_model.IntervalVar]] = [[] for _ in instance.machines]
    for j, job in enumerate(instance.jobs):
        shortest = [min(d for _m, d in op.options) for op in job.operations]
        # Each operation's window: after its job's release and the shortest run of what comes
        # before, leaving room for the shortest run of what comes after.
        earliest = job.release
        remaining = sum(shortest)
        previous_end = None
        for k, op in enumerate(job.operations):
            remaining -= shortest[k]
            name = f"j{j}o{k}"
            start = model.new_int_var(earliest, horizon - remaining - shortest[k], f"{name}s")
            if len(op.options) == 1:
                machine, duration = op.options[0]
                on_machine[machine].append(model.new_fixed_size_interval_var(start, duration, f"{name}m{machine}"))
                end = start + duration
                built.options[(j, k)] = [(machine, duration, None)]
            else:
                end = model.new_int_var(earliest + shortest[k], horizon - remaining, f"{name}e")
                choices = []
                for machine, duration in op.options:
                    present = model.new_bool_var(f"{name}m{machine}p")
                    on_machine[machine].append(
                        model.new_optional_fixed_size_interval_var(start, duration, present, f"{name}m{machine}")
                    )
                    model.add(end == start + duration).only_enforce_if(present)
                    choices.append((machine, duration, present))
                model.add_exactly_one(p for _m, _d, p in choices)
                built.options[(j, k)] = choices
            if previous_end is not None:
                model.add(start >= previous_end)
            built.starts[(j, k)] = start
            built.ends[(j, k)] = end
            previous_end = end
            earliest += shortest[k]
        built.job_ends.append(previous_end)
    for intervals in on_machine:
        if len(intervals) > 1:
            model.add_no_overlap(intervals)

    if objective == "makespan":
        built.makespan = model.new_int_var(0, horizon, "makespan")
        model.add_max_equality(built.makespan, built.job_ends)
        model.minimize(built.makespan)
    else:
        weights = [job.weight for job in instance.jobs if job.due is not None]
        built.scale = next(
            (s for s in WEIGHT_SCALES if all(abs(w * s - round(w * s)) < 1e-9 for w in weights)), WEIGHT_SCALES[-1]
        )
        terms = []
        for j, job in enumerate(instance.jobs):
            if job.due is None:
                continue
            late = model.new_int_var(0, max(0, horizon - job.due), f"j{j}late")
            model.add(late >= built.job_ends[j] - job.due)
            built.tardiness.append((j, late))
            terms.append(round(job.weight * built.scale) * late)
        model.minimize(sum(terms))
    return built


class _Callback(cp_model.CpSolverSolutionCallback):
    """Reports each better solution, and ends the search when `should_stop` says so."""

    def __init__(self, built: _Model, started: float, time_limit: float, progress, should_stop):
        super().__init__()
        self.built, self.started, self.time_limit = built, started, time_limit
        self.progress, self.should_stop = progress, should_stop
        self.stopped = False

    def on_solution_callback(self) -> None:
        if self.progress:
            elapsed = time.monotonic() - self.started
            value = self.built.objective_value(self.objective_value)
            bound = self.built.objective_value(self.best_objective_bound)
            message = gettext_noop("best %(value)s, bound %(bound)s, %(seconds)s s")
            shown = phrase(message, value=_show(value), bound=_show(bound), seconds=f"{elapsed:.1f}")
            self.progress(min(elapsed / self.time_limit, 0.99), shown)
        if self.should_stop and not self.stopped and self.should_stop():
            self.stopped = True
            self.stop_search()


class _StopPoller:
    """Asks `should_stop` between solutions too: a long search may find none for a while."""

    def __init__(self, solver: cp_model.CpSolver, should_stop: Callable[[], bool], callback: _Callback):
        self.solver, self.should_stop, self.callback = solver, should_stop, callback
        self.done = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="cpsat-stop-poller", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def finish(self) -> None:
        self.done.set()
        self.thread.join()

    def _run(self) -> None:
        # Asked again after a stop: one sent before CP-SAT started searching is lost.
        while not self.done.wait(STOP_POLL_SECONDS):
            if self.callback.stopped or self.should_stop():
                self.stopped = True
                self.solver.stop_search()


def _show(value) -> str | Phrase:
    if value is None:
        return gettext_noop("none")
    return f"{value:g}" if isinstance(value, float) else str(value)
