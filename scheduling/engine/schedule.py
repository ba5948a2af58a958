"""A schedule, its independent check and its figures.

`validate` knows nothing of how a schedule was made: every method's output (rules, Q-learning,
CP-SAT, rescheduling after breakdowns) goes through it before it is stored or written, so a
bug in a method shows as a refusal, never as a wrong Gantt chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduling.engine.instance import Instance


class ScheduleError(ValueError):
    """A schedule that breaks a rule of its problem; `problems` lists each broken rule."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(problems[0] + more)


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
    problems: list[str] = []

    def problem(text: str) -> None:
        if len(problems) < limit:
            problems.append(text)

    seen: dict[tuple[int, int], ScheduledOp] = {}
    for o in schedule.operations:
        if not 0 <= o.job < instance.n_jobs or not 0 <= o.op < len(instance.jobs[o.job].operations):
            problem(f"Job {o.job} has no operation {o.op}.")
            continue
        if (o.job, o.op) in seen:
            problem(f"Job {o.job}, operation {o.op} is scheduled twice.")
            continue
        seen[(o.job, o.op)] = o
        duration = instance.jobs[o.job].operations[o.op].duration_on(o.machine)
        if duration is None:
            problem(f"Job {o.job}, operation {o.op} runs on machine {o.machine}, which cannot run it.")
        elif o.end - o.start != duration:
            problem(f"Job {o.job}, operation {o.op} lasts {o.end - o.start}, not its {duration}.")
        if o.start < 0:
            problem(f"Job {o.job}, operation {o.op} starts before 0.")
    for j, job in enumerate(instance.jobs):
        previous_end = job.release
        for k in range(len(job.operations)):
            o = seen.get((j, k))
            if o is None:
                problem(f"Job {j}, operation {k} is not scheduled.")
                break
            if o.start < previous_end:
                what = "its release" if k == 0 else f"operation {k - 1} ends"
                problem(f"Job {j}, operation {k} starts at {o.start}, before {what} ({previous_end}).")
            previous_end = o.end
    busy: dict[int, list[tuple[int, int, str]]] = {}
    for o in seen.values():
        if o.end > o.start:  # a zero-length operation occupies nothing
            busy.setdefault(o.machine, []).append((o.start, o.end, f"job {o.job}, operation {o.op}"))
    for d in schedule.downtimes:
        busy.setdefault(d.machine, []).append((d.start, d.end, f"a breakdown ({d.start}–{d.end})"))
    for machine, spans in busy.items():
        spans.sort()
        latest_end, latest = -1, ""
        for start, end, what in spans:
            if start < latest_end:
                problem(f"Machine {machine} runs {latest} and {what} at the same time ({start}–{min(end, latest_end)}).")
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
