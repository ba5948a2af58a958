"""Dispatching rules: at each decision, the candidate with the best key (ties: the lower job number).

| rule | picks the operation |
|---|---|
| fifo | whose job has waited longest for it (ready first) |
| spt / lpt | shortest / longest on its machine |
| mwkr | of the job with the most work left (this operation included) |
| mor / lor | of the job with the most / fewest operations left |
| edd | of the job due first (jobs without a due date last) |
| cr | of the job with the smallest critical ratio (time to due date / work left) |
| random | at random (seeded) |
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable

from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.schedule import Schedule
from scheduling.engine.simulator import NON_DELAY, Candidate, Downtimes, Shop

RULES = ("fifo", "spt", "lpt", "mwkr", "mor", "lor", "edd", "cr", "random")
# Rules that do not depend on due dates: the ones worth comparing on makespan alone.
MAKESPAN_RULES = ("fifo", "spt", "lpt", "mwkr", "mor", "lor")


def _key(rule: str, shop: Shop) -> Callable[[Candidate], tuple]:
    jobs = shop.instance.jobs
    if rule == "fifo":
        return lambda c: (shop.job_ready[c.job], c.job)
    if rule == "spt":
        return lambda c: (c.duration, c.job)
    if rule == "lpt":
        return lambda c: (-c.duration, c.job)
    if rule == "mwkr":
        return lambda c: (-shop.work_left(c.job), c.job)
    if rule == "mor":
        return lambda c: (-shop.ops_left(c.job), c.job)
    if rule == "lor":
        return lambda c: (shop.ops_left(c.job), c.job)
    if rule == "edd":
        return lambda c: (jobs[c.job].due if jobs[c.job].due is not None else math.inf, c.job)
    if rule == "cr":

        def ratio(c: Candidate) -> tuple:
            due = jobs[c.job].due
            if due is None:
                return (math.inf, c.job)
            return ((due - shop.now) / max(1, shop.work_left(c.job)), c.job)

        return ratio
    raise ValueError(phrase(gettext_noop("Unknown rule '%(rule)s'; known: %(rules)s"), rule=rule, rules=", ".join(RULES)))


def chooser(rule: str, shop: Shop, seed: int = 0) -> Callable[[list[Candidate]], Candidate]:
    """A function that picks one of the candidates as `rule` would, in this shop."""
    if rule == "random":
        rng = _random.Random(seed)
        return lambda candidates: candidates[rng.randrange(len(candidates))]
    key = _key(rule, shop)
    return lambda candidates: min(candidates, key=key)


def dispatch(
    instance: Instance, rule: str, *, seed: int = 0, scheme: str = NON_DELAY, downtimes: Downtimes | None = None
) -> Schedule:
    """The schedule `rule` builds (with breakdowns, as they happen, when `downtimes` is given)."""
    shop = Shop(instance, scheme=scheme, downtimes=downtimes)
    pick = chooser(rule, shop, seed)
    while not shop.done:
        shop.place(pick(shop.candidates()))
    return shop.schedule()
