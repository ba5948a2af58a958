"""The shop simulator: operations placed one decision at a time, machines that break down.

A dispatcher (a rule, the Q-learning agent) sees the operations that can start next (the
candidates) and picks one; `Shop.place` puts it on its machine. Two schemes make the
candidates:

- `non_delay` (the default): at the earliest time any next operation can start, every next
  operation that can start then. No machine waits while work it could do is there.
  job-shop-lib's dispatcher with its default filters makes the same choice.
- `active` (Giffler–Thompson): the operation that would finish first fixes a machine; the
  candidates are the operations for that machine that could start before that finish.
  Every active schedule, the optimum included, can be reached this way.

In a flexible shop an operation goes to the machine where it would finish first.

Breakdowns: each machine with an MTBF and MTTR fails after an exponential up-time and is
repaired after an exponential repair time (`Downtimes`, seeded per machine). The dispatcher
does not know the future: an operation that a failure hits is lost and waits for the repair,
then is dispatched again (restart, the common case for machining). A machine already down
when an operation would start delays that start until it is repaired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.schedule import Downtime, Schedule, ScheduledOp

NON_DELAY, ACTIVE = "non_delay", "active"


class Downtimes:
    """Each machine's breakdowns as (start, end) pairs, drawn lazily from a per-machine seeded stream.

    Machines without MTBF/MTTR never fail. The same seed gives the same breakdowns however
    far ahead a simulation looks. `seed` is a number or a sequence of numbers (numpy's seed
    sequence); `start` is when the machines start running (the first failure comes after it).
    """

    def __init__(self, instance: Instance, seed: int | list[int], *, start: int = 0):
        entropy = list(seed) if isinstance(seed, list | tuple) else [seed]
        self.rates = [(m.mtbf, m.mttr) for m in instance.machines]
        self.rngs = [np.random.default_rng([*entropy, k]) for k in range(instance.n_machines)]
        self.spans: list[list[tuple[int, int]]] = [[] for _ in instance.machines]
        self.clock = [float(start)] * instance.n_machines

    def upto(self, machine: int, time: int) -> list[tuple[int, int]]:
        """The machine's breakdowns, drawn at least until one starts after `time`."""
        mtbf, mttr = self.rates[machine]
        spans = self.spans[machine]
        if mtbf is None:
            return spans
        rng = self.rngs[machine]
        while not spans or spans[-1][0] <= time:
            start = self.clock[machine] + rng.exponential(mtbf)
            repair = max(1, math.ceil(rng.exponential(mttr)))
            begin = max(math.ceil(start), spans[-1][1] if spans else 0)
            spans.append((begin, begin + repair))
            self.clock[machine] = begin + repair
        return spans


@dataclass(frozen=True)
class Candidate:
    job: int
    op: int
    machine: int
    start: int  # earliest start on that machine
    duration: int


class Shop:
    """One simulation: call `candidates()`, `place()` one of them, until `done`."""

    def __init__(self, instance: Instance, *, scheme: str = NON_DELAY, downtimes: Downtimes | None = None):
        if scheme not in (NON_DELAY, ACTIVE):
            raise ValueError(
                phrase(gettext_noop("scheme must be %(non_delay)s or %(active)s"), non_delay=NON_DELAY, active=ACTIVE)
            )
        self.instance, self.scheme, self.downtimes = instance, scheme, downtimes
        self.options = [[op.options for op in job.operations] for job in instance.jobs]
        self.n_ops = [len(job.operations) for job in instance.jobs]
        # Work left from each operation on (shortest option each), for MWKR-like features.
        self.work_from = []
        for job in instance.jobs:
            durations = [min(d for _m, d in op.options) for op in job.operations]
            self.work_from.append([sum(durations[k:]) for k in range(len(durations) + 1)])
        self.total_work = sum(w[0] for w in self.work_from)
        # Each machine's work (first option of each operation), for the bottleneck of qlearning.family_state_of.
        self.machine_work = [0] * instance.n_machines
        for job in instance.jobs:
            for op in job.operations:
                self.machine_work[op.options[0][0]] += op.options[0][1]
        self.reset()

    def reset(self) -> None:
        self.next = [0] * self.instance.n_jobs
        self.job_ready = [job.release for job in self.instance.jobs]
        self.machine_free = [0] * self.instance.n_machines
        self.machine_busy = [0] * self.instance.n_machines
        self.machine_left = list(self.machine_work)  # work not yet placed, counted on the first option
        self.placed: list[ScheduledOp] = []
        self.lost: list[ScheduledOp] = []  # runs a breakdown cut short (work lost)
        self.left = sum(self.n_ops)
        self.now = 0

    @property
    def done(self) -> bool:
        return self.left == 0

    @property
    def makespan(self) -> int:
        return max((o.end for o in self.placed), default=0)

    def _down_until(self, machine: int, time: int) -> int:
        """`time`, or the end of the repair when the machine is down at `time`."""
        if self.downtimes is None:
            return time
        moved = True
        while moved:  # a repair may end just as the next failure starts
            moved = False
            for begin, end in self.downtimes.upto(machine, time):
                if begin <= time < end:
                    time, moved = end, True
                    break
        return time

    def on(self, job: int, machine: int) -> Candidate:
        """The job's next operation as it would start on `machine` (one of its options) now."""
        k = self.next[job]
        duration = dict(self.options[job][k])[machine]
        start = self._down_until(machine, max(self.job_ready[job], self.machine_free[machine]))
        return Candidate(job, k, machine, start, duration)

    def _next_of(self, job: int) -> Candidate:
        k = self.next[job]
        ready = self.job_ready[job]
        best = None
        for machine, duration in self.options[job][k]:
            start = self._down_until(machine, max(ready, self.machine_free[machine]))
            key = (start + duration, start, machine)
            if best is None or key < best[0]:
                best = (key, Candidate(job, k, machine, start, duration))
        return best[1]

    def candidates(self) -> list[Candidate]:
        """The operations the dispatcher may place now (in job order)."""
        nexts = [self._next_of(j) for j in range(self.instance.n_jobs) if self.next[j] < self.n_ops[j]]
        if not nexts:
            return []
        if self.scheme == NON_DELAY:
            now = min(c.start for c in nexts)
            self.now = now
            return [c for c in nexts if c.start == now]
        first = min(nexts, key=lambda c: (c.start + c.duration, c.machine))
        finish = first.start + first.duration
        self.now = min(c.start for c in nexts if c.machine == first.machine)
        return [c for c in nexts if c is first or (c.machine == first.machine and c.start < finish)]

    def place(self, c: Candidate) -> bool:
        """Put `c` on its machine; False when a breakdown cut it short (it is dispatched again later)."""
        start, end = c.start, c.start + c.duration
        if self.downtimes is not None and c.duration > 0:
            for begin, repaired in self.downtimes.upto(c.machine, end):
                if start < begin < end:
                    self.lost.append(ScheduledOp(c.job, c.op, c.machine, start, begin))
                    self.machine_free[c.machine] = repaired
                    self.machine_busy[c.machine] += begin - start
                    return False
        self.placed.append(ScheduledOp(c.job, c.op, c.machine, start, end))
        self.machine_free[c.machine] = end
        self.machine_busy[c.machine] += c.duration
        self.job_ready[c.job] = end
        first, length = self.options[c.job][c.op][0]
        self.machine_left[first] -= length
        self.next[c.job] += 1
        self.left -= 1
        return True

    def load(self, other: Shop) -> None:
        """Take `other`'s state (same instance): what it has placed and where its machines and jobs stand."""
        self.next, self.job_ready = list(other.next), list(other.job_ready)
        self.machine_free, self.machine_busy = list(other.machine_free), list(other.machine_busy)
        self.machine_left = list(other.machine_left)
        self.placed, self.lost = list(other.placed), list(other.lost)
        self.left, self.now = other.left, other.now

    def work_left(self, job: int) -> int:
        return self.work_from[job][self.next[job]]

    def ops_left(self, job: int) -> int:
        return self.n_ops[job] - self.next[job]

    def schedule(self) -> Schedule:
        """The operations placed, the breakdowns until the makespan, and the runs they cut short."""
        return Schedule(
            operations=list(self.placed),
            downtimes=_downtimes_until(self.downtimes, self.instance.n_machines, self.makespan),
            interrupted=list(self.lost),
        )


def _downtimes_until(downtimes: Downtimes | None, n_machines: int, end: int) -> list[Downtime]:
    if downtimes is None:
        return []
    return [Downtime(m, b, min(e, end)) for m in range(n_machines) for b, e in downtimes.upto(m, end) if b < end]


def right_shift(instance: Instance, schedule: Schedule, downtimes: Downtimes) -> Schedule:
    """`schedule` kept in its order on every machine and in every job, moved later where breakdowns hit.

    The classic repair of a fixed plan: nothing is re-sequenced; an operation a failure cuts
    short starts again after the repair.
    """
    order = sorted(schedule.operations, key=lambda o: (o.start, o.machine, o.job))
    by_machine: dict[int, list[ScheduledOp]] = {}
    for o in order:
        by_machine.setdefault(o.machine, []).append(o)
    position = {m: 0 for m in by_machine}
    job_ready = [job.release for job in instance.jobs]
    next_op = [0] * instance.n_jobs
    machine_free = [0] * instance.n_machines
    placed: list[ScheduledOp] = []
    lost: list[ScheduledOp] = []
    remaining = len(order)
    while remaining:
        progressed = False
        for m, ops in by_machine.items():
            while position[m] < len(ops):
                o = ops[position[m]]
                if next_op[o.job] != o.op:
                    break  # its job's earlier operation is not placed yet
                duration = o.end - o.start
                start = max(job_ready[o.job], machine_free[m])
                while True:
                    spans = downtimes.upto(m, start + duration)
                    cut = next(((b, e) for b, e in spans if b <= start < e or (start < b < start + duration)), None)
                    if cut is None or duration == 0:
                        break
                    if cut[0] > start:  # started, then cut short: the work is lost
                        lost.append(ScheduledOp(o.job, o.op, m, start, cut[0]))
                    start = cut[1]
                placed.append(ScheduledOp(o.job, o.op, m, start, start + duration))
                machine_free[m] = job_ready[o.job] = start + duration
                next_op[o.job] += 1
                position[m] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise ValueError(gettext_noop("The schedule's machine orders contradict its jobs' orders (a cycle)."))
    makespan = max((o.end for o in placed), default=0)
    return Schedule(operations=placed, downtimes=_downtimes_until(downtimes, instance.n_machines, makespan), interrupted=lost)
