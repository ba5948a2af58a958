"""Reactive rescheduling: re-plan at each breakdown by simulating what each way of going on would give.

A plan made without breakdowns (Q-learning's, CP-SAT's, any) meets a shop where machines fail.
Right shift keeps its order and loses time; a dispatching rule re-decides everything and loses
the plan's quality. This scheduler keeps both within reach:

- it starts by **following the plan**: every machine takes the plan's operations in the plan's
  order, each as early as its job and its machine allow (without breakdowns: the plan itself;
  with them and nothing else: right shift);
- **whenever a breakdown begins**, it simulates the rest of the schedule from the shop's state
  with each strategy — follow the plan; the plan's priorities with the freedom to let another
  operation go first when the planned one is not ready (Giffler–Thompson's active scheme,
  ordered by planned start); each dispatching rule; the learnt Q-learning policy when there is
  one — knowing the repairs under way (their end) but not the failures to come, and goes on with
  the strategy whose simulated makespan is shortest on average, until the next breakdown.

The failures to come are unknown, but their rates are: each strategy is simulated under
`samples` draws of future failures (MTBF/MTTR per machine, seeded, independent of the real
ones), after the repairs under way. Simulating without future failures would favour following
the plan to the letter, which is the most fragile when the next machine fails.

This is rolling re-planning with a rollout per strategy, the classic reaction of a scheduling
system to a disturbance. Its cost is (number of breakdowns) × (strategies) × (one simulation);
`info` counts the re-plans, the switches and the strategy used at the end.
"""

from __future__ import annotations

from collections.abc import Callable

from scheduling.engine.instance import Instance
from scheduling.engine.rules import chooser
from scheduling.engine.schedule import Schedule
from scheduling.engine.simulator import ACTIVE, NON_DELAY, Candidate, Downtimes, Shop

PLAN = "plan"
PLAN_ORDER = "plan-order"
POLICY = "policy"
RULES = ("spt", "mwkr", "mor")  # the rules that are best under breakdowns on the public shops (others rarely win)
SAMPLES = 3


class _Future:
    """Breakdowns as a planner can foresee them at `now`: those begun (with their repair's end), then
    a fresh seeded draw of failures after `now` (exponential, so a fresh draw is as likely as any)."""

    def __init__(self, real: Downtimes, instance: Instance, now: int, seed: list[int]):
        self.real, self.now = real, now
        self.draw = Downtimes(instance, seed, start=now)

    def upto(self, machine: int, time: int) -> list[tuple[int, int]]:
        known = [span for span in self.real.upto(machine, self.now) if span[0] <= self.now]
        after = known[-1][1] if known else self.now
        return known + [span for span in self.draw.upto(machine, max(time, after)) if span[0] >= after]


GAP_LOOKAHEAD = 8  # later operations of a machine's plan looked at to fill a gap


def _follow(shop: Shop, plan: Schedule) -> Callable[[], Candidate]:
    """The next operation of the plan to place: on each machine the first unplaced one in the plan's
    order (when its job is ready for it), or a later one of that machine's plan that fits, whole, in
    the gap before the first can start at the earliest (so the plan's next is never delayed by it);
    of all these, the one that can start first.

    Without breakdowns a plan has no such gap to fill (its operations start as early as its orders
    allow), and this rebuilds it. With breakdowns it is right shift that fills the gaps they open."""
    sequences: dict[int, list] = {}
    for o in sorted(plan.operations, key=lambda o: (o.start, o.job)):
        sequences.setdefault(o.machine, []).append(o)
    position = dict.fromkeys(sequences, 0)

    def earliest(o) -> int:
        """A lower bound of when `o` can start on its machine: its job's earlier operations still to run."""
        job, done = o.job, shop.next[o.job]
        ahead = shop.work_from[job][done] - shop.work_from[job][o.op]
        return max(shop.machine_free[o.machine], shop.job_ready[job] + ahead)

    def step() -> Candidate:
        best = None
        for machine, ops in sequences.items():
            k = position[machine]
            while k < len(ops) and ops[k].op < shop.next[ops[k].job]:  # placed already (by any strategy)
                k += 1
            position[machine] = k
            if k == len(ops):
                continue
            first = ops[k]
            if first.op == shop.next[first.job]:
                c = shop.on(first.job, machine)
                if best is None or (c.start, first.start) < best[0]:
                    best = ((c.start, first.start), c)
                limit = c.start
            else:
                limit = earliest(first)
            for later in ops[k + 1 : k + 1 + GAP_LOOKAHEAD]:
                if later.op != shop.next[later.job]:
                    continue
                c = shop.on(later.job, machine)
                if c.start + c.duration <= limit and (best is None or (c.start, later.start) < best[0]):
                    best = ((c.start, later.start), c)
        shop.now = best[1].start
        return best[1]

    return step


def _strategy(shop: Shop, name: str, plan: Schedule, planned: dict, policy) -> Callable[[], Candidate]:
    """The strategy's next choice in `shop`: the plan, the plan's priorities, a rule, or the learnt policy."""
    if name == PLAN:
        return _follow(shop, plan)
    if name == PLAN_ORDER:
        scheme, pick = ACTIVE, lambda candidates: min(candidates, key=lambda c: (planned[(c.job, c.op)], c.job))
    elif name == POLICY:
        from scheduling.engine import qlearning

        scheme, pick = NON_DELAY, qlearning.chooser(policy, shop)
    else:
        scheme, pick = NON_DELAY, chooser(name, shop)

    def step() -> Candidate:
        shop.scheme = scheme
        return pick(shop.candidates())

    return step


def _finish(shop: Shop, name: str, plan: Schedule, planned: dict, policy) -> int:
    step = _strategy(shop, name, plan, planned, policy)
    while not shop.done:
        shop.place(step())
    return shop.makespan


def replan(
    instance: Instance, plan: Schedule, downtimes: Downtimes, *, policy=None, samples: int = SAMPLES, seed: int = 0
) -> tuple[Schedule, dict]:
    """The schedule this reaction makes under `downtimes`, and what it did (re-plans, switches)."""
    planned = {(o.job, o.op): o.start for o in plan.operations}
    strategies = (PLAN, PLAN_ORDER, *RULES, *((POLICY,) if policy is not None else ()))
    shop = Shop(instance, downtimes=downtimes)
    what_if = Shop(instance)
    current, begun, replans, switches = PLAN, 0, 0, 0
    step = _strategy(shop, current, plan, planned, policy)
    while not shop.done:
        now = shop.now
        known = sum(1 for m in range(instance.n_machines) for b, _e in downtimes.upto(m, now) if b <= now)
        if known > begun:  # a breakdown has begun since the last decision: choose how to go on
            begun, replans = known, replans + 1
            best = None
            for name in strategies:
                span = 0
                for sample in range(samples):
                    what_if.load(shop)
                    what_if.downtimes = _Future(downtimes, instance, now, [seed, replans, sample])
                    span += _finish(what_if, name, plan, planned, policy)
                if best is None or span < best[0]:
                    best = (span, name)
            if best[1] != current:
                current, switches = best[1], switches + 1
            step = _strategy(shop, current, plan, planned, policy)
        shop.place(step())
    return shop.schedule(), {"replans": replans, "switches": switches, "final_strategy": current}
