"""A shop problem as plain data: machines, jobs, and each job's operations in order.

Machines and jobs are numbered from 0 in the order given. An operation names the machines
that can run it with the duration on each (`options`): one option is the classic job shop,
several the flexible job shop. Times are whole units (minutes, say), as in the standard
instance files. `check` refuses what no schedule can be made of, naming the place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The engine's modules import the markers from here (phrases: the words every engine shares).
from phrases import Phrase, gettext_noop, ngettext, phrase  # noqa: F401

# Size limits of one problem: a stated refusal, not a worker that runs out of memory.
MAX_JOBS = 1000
MAX_MACHINES = 200
MAX_OPERATIONS = 50_000
MAX_DURATION = 10**7


class InstanceError(ValueError):
    """A problem that cannot be scheduled, or a file that cannot be read; `field` names the place.

    `line` and `column` (1-based) point into the file it was read from, where there was one.
    `template` (marked with gettext_noop) and `params` let scheduling.services word the message
    in the reader's language; `message` is the English one.
    """

    def __init__(self, template: str, *, field: str = "problem", line: int | None = None, column: int | None = None, **params):
        self.field, self.line, self.column = field, line, column
        self.template, self.params = str(template), params
        where = f"line {line}" + (f", column {column}" if column is not None else "") + ": " if line is not None else ""
        super().__init__(where + (self.template % params if params else self.template))
        self.message = str(self)


@dataclass(frozen=True)
class Operation:
    """One step of a job: the machines that can run it, each with its duration."""

    options: tuple[tuple[int, int], ...]

    @property
    def machine(self) -> int:
        """The first (in the classic job shop, the only) machine."""
        return self.options[0][0]

    @property
    def duration(self) -> int:
        return self.options[0][1]

    def duration_on(self, machine: int) -> int | None:
        for m, d in self.options:
            if m == machine:
                return d
        return None


@dataclass(frozen=True)
class Job:
    name: str
    operations: tuple[Operation, ...]
    release: int = 0
    due: int | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Machine:
    name: str
    mtbf: float | None = None  # mean time between failures (exponential), same unit as durations
    mttr: float | None = None  # mean time to repair (exponential)


@dataclass(frozen=True)
class Instance:
    jobs: tuple[Job, ...]
    machines: tuple[Machine, ...]
    name: str = ""
    best_known: int | None = None  # a published optimum or upper bound, where the file's source gives one
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def n_jobs(self) -> int:
        return len(self.jobs)

    @property
    def n_machines(self) -> int:
        return len(self.machines)

    @property
    def n_operations(self) -> int:
        return sum(len(j.operations) for j in self.jobs)

    @property
    def flexible(self) -> bool:
        return any(len(op.options) > 1 for job in self.jobs for op in job.operations)

    def check(self) -> Instance:
        """Self, when it can be scheduled; InstanceError naming the first problem otherwise."""
        if not self.jobs or not self.machines:
            raise InstanceError(gettext_noop("The problem is empty: it needs at least one machine and one job."))
        if len(self.jobs) > MAX_JOBS or len(self.machines) > MAX_MACHINES:
            raise InstanceError(
                gettext_noop(
                    "%(jobs)s jobs on %(machines)s machines is above the limits (%(max_jobs)s jobs, %(max_machines)s machines)."
                ),
                jobs=len(self.jobs),
                machines=len(self.machines),
                max_jobs=MAX_JOBS,
                max_machines=MAX_MACHINES,
            )
        if self.n_operations > MAX_OPERATIONS:
            raise InstanceError(
                gettext_noop("%(n)s operations are above the limit of %(max)s."), n=self.n_operations, max=MAX_OPERATIONS
            )
        for m, machine in enumerate(self.machines):
            for name, value in (("mtbf", machine.mtbf), ("mttr", machine.mttr)):
                if value is not None and not value > 0:
                    raise InstanceError(
                        gettext_noop("Machine %(machine)s: %(key)s must be positive."),
                        field=f"machines.{m}.{name}",
                        machine=machine.name,
                        key=name,
                    )
            if (machine.mtbf is None) != (machine.mttr is None):
                raise InstanceError(
                    gettext_noop("Machine %(machine)s: give both mtbf and mttr, or neither."),
                    field=f"machines.{m}.mtbf",
                    machine=machine.name,
                )
        for j, job in enumerate(self.jobs):
            where = f"jobs.{j}"
            if not job.operations:
                raise InstanceError(gettext_noop("Job %(job)s visits no machine."), field=f"{where}.operations", job=job.name)
            if job.release < 0:
                raise InstanceError(
                    gettext_noop("Job %(job)s: the release time is negative."), field=f"{where}.release", job=job.name
                )
            if job.due is not None and job.due < 0:
                raise InstanceError(gettext_noop("Job %(job)s: the due date is negative."), field=f"{where}.due", job=job.name)
            if not job.weight >= 0:
                raise InstanceError(
                    gettext_noop("Job %(job)s: the weight must be 0 or more."), field=f"{where}.weight", job=job.name
                )
            for k, op in enumerate(job.operations):
                if not op.options:
                    raise InstanceError(
                        gettext_noop("Job %(job)s, operation %(k)s: no machine."),
                        field=f"{where}.operations.{k}",
                        job=job.name,
                        k=k,
                    )
                seen = set()
                for machine, duration in op.options:
                    if not 0 <= machine < len(self.machines):
                        raise InstanceError(
                            gettext_noop(
                                "Job %(job)s, operation %(k)s: machine %(machine)s does not exist (machines are 0 to %(last)s)."
                            ),
                            field=f"{where}.operations.{k}.machine",
                            job=job.name,
                            k=k,
                            machine=machine,
                            last=len(self.machines) - 1,
                        )
                    if machine in seen:
                        raise InstanceError(
                            gettext_noop("Job %(job)s, operation %(k)s: machine %(machine)s is named twice."),
                            field=f"{where}.operations.{k}.machine",
                            job=job.name,
                            k=k,
                            machine=machine,
                        )
                    seen.add(machine)
                    if duration < 0:
                        raise InstanceError(
                            gettext_noop("Job %(job)s, operation %(k)s: the duration %(duration)s is negative."),
                            field=f"{where}.operations.{k}.duration",
                            job=job.name,
                            k=k,
                            duration=duration,
                        )
                    if duration > MAX_DURATION:
                        raise InstanceError(
                            gettext_noop("Job %(job)s, operation %(k)s: the duration %(duration)s is above %(max)s."),
                            field=f"{where}.operations.{k}.duration",
                            job=job.name,
                            k=k,
                            duration=duration,
                            max=MAX_DURATION,
                        )
        return self


def job_shop(rows: list[list[tuple[int, int]]], *, name: str = "", best_known: int | None = None) -> Instance:
    """A classic job shop from rows of (machine, duration) per job; machines numbered from 0."""
    n_machines = 1 + max((m for row in rows for m, _d in row), default=-1)
    jobs = tuple(Job(name=f"J{j}", operations=tuple(Operation(((m, d),)) for m, d in row)) for j, row in enumerate(rows))
    machines = tuple(Machine(name=f"M{m}") for m in range(n_machines))
    return Instance(jobs=jobs, machines=machines, name=name, best_known=best_known)


def to_dict(instance: Instance) -> dict:
    """Plain JSON-able data (the shape ShopProblem stores), for files and child processes."""
    return {
        "name": instance.name,
        "best_known": instance.best_known,
        "machines": [{"name": m.name, "mtbf": m.mtbf, "mttr": m.mttr} for m in instance.machines],
        "jobs": [
            {
                "name": j.name,
                "release": j.release,
                "due": j.due,
                "weight": j.weight,
                "operations": [[list(option) for option in op.options] for op in j.operations],
            }
            for j in instance.jobs
        ],
    }


def from_dict(data: dict) -> Instance:
    """The inverse of `to_dict` (not checked: call `.check()` on data from outside)."""
    return Instance(
        jobs=tuple(
            Job(
                name=j["name"],
                operations=tuple(Operation(tuple((int(m), int(d)) for m, d in options)) for options in j["operations"]),
                release=int(j.get("release") or 0),
                due=j.get("due"),
                weight=float(j.get("weight", 1.0)),
            )
            for j in data["jobs"]
        ),
        machines=tuple(Machine(m["name"], m.get("mtbf"), m.get("mttr")) for m in data["machines"]),
        name=data.get("name", ""),
        best_known=data.get("best_known"),
    )
