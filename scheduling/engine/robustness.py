"""How a schedule holds up when machines break: N seeded replications of the shop's breakdowns.

For each replication (breakdowns drawn from seed, seed + 1, …, the same draws for every
reaction), three reactions are compared:
- **right shift**: the plan's order is kept on every machine and operations move later;
- **re-dispatch by the best rule**: the rule that gave the shortest plan decides again as
  breakdowns happen;
- **re-dispatch by the learnt policy** (Q-learning runs): the policy decides again;
- **re-plan at each breakdown** (scheduling.engine.reactive): follow the plan, and whenever a
  breakdown begins, go on with whichever of the plan, the rules and the learnt policy a
  simulation from that moment says finishes first.
The answer holds each reaction's makespans and their mean, 10th and 90th percentiles.
"""

from __future__ import annotations

import statistics

from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.rules import MAKESPAN_RULES, dispatch
from scheduling.engine.schedule import Schedule, validate
from scheduling.engine.simulator import Downtimes, right_shift

MAX_REPLICATIONS = 200


def _summary(values: list[int]) -> dict:
    ordered = sorted(values)

    def pick(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"makespans": values, "mean": round(statistics.mean(values), 2), "p10": pick(0.1), "p90": pick(0.9)}


def evaluate(instance: Instance, plan: Schedule, *, replications: int, seed: int, policy=None) -> dict:
    """The plan's makespan under `replications` draws of breakdowns, for each reaction."""
    if not 1 <= replications <= MAX_REPLICATIONS:
        raise ValueError(phrase(gettext_noop("replications must be 1 to %(max)s."), max=MAX_REPLICATIONS))
    if not any(m.mtbf for m in instance.machines):
        raise ValueError(gettext_noop("No machine has an MTBF and MTTR: there is nothing to break down."))
    best_rule = min(MAKESPAN_RULES, key=lambda rule: dispatch(instance, rule).makespan)
    from scheduling.engine.reactive import replan

    shifted, redispatched, learnt, replanned = [], [], [], []
    for r in range(replications):
        shifted.append(validate(instance, right_shift(instance, plan, Downtimes(instance, seed + r))).makespan)
        redispatched.append(validate(instance, dispatch(instance, best_rule, downtimes=Downtimes(instance, seed + r))).makespan)
        if policy is not None:
            from scheduling.engine import qlearning

            learnt.append(validate(instance, qlearning.apply(instance, policy, breakdowns_seed=seed + r)).makespan)
        replanned.append(validate(instance, replan(instance, plan, Downtimes(instance, seed + r), policy=policy)[0]).makespan)
    out = {
        "replications": replications,
        "seed": seed,
        "plan": plan.makespan,
        "right_shift": _summary(shifted),
        "best_rule": best_rule,
        "redispatch_rule": _summary(redispatched),
    }
    if learnt:
        out["redispatch_policy"] = _summary(learnt)
    out["replan"] = _summary(replanned)
    return out
