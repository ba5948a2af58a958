"""A schedule, its independent check and its figures.

`validate` knows nothing of how a schedule was made: every method's output (rules, Q-learning,
CP-SAT, rescheduling after breakdowns) goes through it before it is stored or written, so a
bug in a method shows as a refusal, never as a wrong Gantt chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduling.engine.instance import Instance, Phrase, gettext_noop, phrase


class ScheduleError(ValueError):
    """A schedule that breaks a rule of its problem; `problems` lists each broken rule (Phrases)."""

    def __init__(self, problems: list[Phrase]):
        self.problems = problems
        first = problems[0]
        if len(problems) > 1:
            first = phrase(gettext_noop("%(problem)s (and %(more)s more)"), problem=first, more=len(problems) - 1)
        super().__init__(first)


@dataclass(frozen=True)
class ScheduledOp:
    job: int
    op: int  # index of the operation within its job
    machine: int
    start: int
    end: int


@dataclass(frozen=True)
class Downtime:
    """A machine out of service from start to end (a breakdown and its repair)."""

    machine: int
    start: int
    end: int


@dataclass
class Schedule:
    operations: list[ScheduledOp]
    downtimes: list[Downtime] = field(default_factory=list)
    interrupted: list[ScheduledOp] = field(default_factory=list)  # runs a breakdown cut short; redone later

    @property
    def makespan(self) -> int:
        return max((o.end for o in self.operations), default=0)

    def as_json(self) -> dict:
        """The CLI's and the exports' shape: {"makespan", "operations": [{"job", "op", "machine", "start", "end"}]}."""
        ordered = sorted(self.operations, key=lambda o: (o.start, o.machine, o.job))
        return {
            "makespan": self.makespan,
            "operations": [{"job": o.job, "op": o.op, "machine": o.machine, "start": o.start, "end": o.end} for o in ordered],
        }


def validate(instance: Instance, schedule: Schedule, *, limit: int = 20) -> Schedule:
    """`schedule`, when it is a valid schedule of `instance`; ScheduleError listing up to `limit` problems.

    Rules: every operation exactly once, on one of its machines, for its duration there; a job's
    operations in order, none before the job's release; one operation per machine at a time;
    nothing on a machine while it is down (an operation hit by a breakdown is scheduled again
    after it, so a valid schedule never overlaps a downtime).
    """
    problems: list[Phrase] = []

    def problem(template: str, **params) -> None:
        if len(problems) < limit:
            problems.append(phrase(template, **params))

    seen: dict[tuple[int, int], ScheduledOp] = {}
    for o in schedule.operations:
        if not 0 <= o.job < instance.n_jobs or not 0 <= o.op < len(instance.jobs[o.job].operations):
            problem(gettext_noop("Job %(job)s has no operation %(op)s."), job=o.job, op=o.op)
            continue
        if (o.job, o.op) in seen:
            problem(gettext_noop("Job %(job)s, operation %(op)s is scheduled twice."), job=o.job, op=o.op)
            continue
        seen[(o.job, o.op)] = o
        duration = instance.jobs[o.job].operations[o.op].duration_on(o.machine)
        if duration is None:
            message = gettext_noop("Job %(job)s, operation %(op)s runs on machine %(machine)s, which cannot run it.")
            problem(message, job=o.job, op=o.op, machine=o.machine)
        elif o.end - o.start != duration:
            message = gettext_noop("Job %(job)s, operation %(op)s lasts %(lasts)s, not its %(duration)s.")
            problem(message, job=o.job, op=o.op, lasts=o.end - o.start, duration=duration)
        if o.start < 0:
            problem(gettext_noop("Job %(job)s, operation %(op)s starts before 0."), job=o.job, op=o.op)
    for j, job in enumerate(instance.jobs):
        previous_end = job.release
        for k in range(len(job.operations)):
            o = seen.get((j, k))
            if o is None:
                problem(gettext_noop("Job %(job)s, operation %(op)s is not scheduled."), job=j, op=k)
                break
            if o.start < previous_end:
                if k == 0:
                    message = gettext_noop("Job %(job)s, operation %(op)s starts at %(start)s, before its release (%(end)s).")
                    problem(message, job=j, op=k, start=o.start, end=previous_end)
                else:
                    message = gettext_noop(
                        "Job %(job)s, operation %(op)s starts at %(start)s, before operation %(previous)s ends (%(end)s)."
                    )
                    problem(message, job=j, op=k, start=o.start, previous=k - 1, end=previous_end)
            previous_end = o.end
    busy: dict[int, list[tuple[int, int, Phrase]]] = {}
    for o in seen.values():
        if o.end > o.start:  # a zero-length operation occupies nothing
            what = phrase(gettext_noop("job %(job)s, operation %(op)s"), job=o.job, op=o.op)
            busy.setdefault(o.machine, []).append((o.start, o.end, what))
    for d in schedule.downtimes:
        what = phrase(gettext_noop("a breakdown (%(start)s–%(end)s)"), start=d.start, end=d.end)
        busy.setdefault(d.machine, []).append((d.start, d.end, what))
    for machine, spans in busy.items():
        spans.sort()
        latest_end, latest = -1, None
        for start, end, what in spans:
            if start < latest_end:
                message = gettext_noop("Machine %(machine)s runs %(first)s and %(second)s at the same time (%(start)s–%(end)s).")
                problem(message, machine=machine, first=latest, second=what, start=start, end=min(end, latest_end))
            if end > latest_end:
                latest_end, latest = end, what
    if problems:
        raise ScheduleError(problems)
    return schedule


@dataclass(frozen=True)
class Figures:
    makespan: int
    total_tardiness: int
    weighted_tardiness: float
    utilisation: list[float]  # per machine: busy time / makespan
    tardiness: list[int]  # per job


def figures(instance: Instance, schedule: Schedule) -> Figures:
    """Makespan, tardiness (against due dates, 0 for jobs without one) and machine utilisation."""
    makespan = schedule.makespan
    ends = [instance.jobs[j].release for j in range(instance.n_jobs)]
    busy = [0] * instance.n_machines
    for o in schedule.operations:
        ends[o.job] = max(ends[o.job], o.end)
        busy[o.machine] += o.end - o.start
    tardiness = [max(0, ends[j] - job.due) if job.due is not None else 0 for j, job in enumerate(instance.jobs)]
    return Figures(
        makespan=makespan,
        total_tardiness=sum(tardiness),
        weighted_tardiness=sum(t * job.weight for t, job in zip(tardiness, instance.jobs, strict=True)),
        utilisation=[b / makespan if makespan else 0.0 for b in busy],
        tardiness=tardiness,
    )
