"""One Q-learning policy trained over a family of generated job shops, measured on shops it never saw.

- **The family**: Taillard-style job shops (scheduling.engine.generate) whose numbers of jobs and
  machines are drawn from two ranges, optionally with breakdowns. With breakdowns, each machine's
  MTBF and MTTR come from its load (`with_breakdowns`): about FAILURES failures over the time its
  operations take, each repaired in about one of its mean operations.
- **Training** (`train`): Monte-Carlo control with exploring starts over the shops, one shop per
  episode in turn (qlearning.compare: the policy's schedule of the shop, and one more per other
  action taken in one state it met — an episode here builds len(ACTIONS) schedules). The state
  layout is qlearning.FAMILY_FEATURES (coarse: progress, bottleneck, lengths). After each pass
  over the shops the greedy policy is measured on them (the learning curve), and the policy
  kept is the one of the best point, the untrained policy (MWKR everywhere) included: the
  updates change the policy other states are measured against, so the last table is not always
  the best one. Deterministic for a seed and a number of episodes; under a time budget alone the
  number of episodes depends on the machine. What it gives on held-out shops, and what the
  earlier ε-greedy Q-learning over the same shops gave (worse than MWKR): docs/benchmarks.md,
  bench/policy.py.
- **Held-out measure** (`evaluate`): the policy builds schedules, without learning, on other
  generated shops of the same family (odd generation seeds; training shops have even ones), and
  each is compared with the best fixed rule *on that shop* (the best of the six makespan rules,
  chosen afterwards: a demanding reference). The gap is (policy − best rule) / best rule: negative
  where the policy wins. The untrained policy (an empty table, which falls back on MWKR everywhere)
  is measured on the same shops, so what the training added is plain — it may be nothing or worse.
  The held-out shops depend on the family only, not on the training seed, so two policies of the
  same family are measured on the same shops.
- **Compatibility** (`check`): what really stops a policy from being applied, and what only makes
  it extrapolate (see its docstring).

No Django here: plain data in, plain data out.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from scheduling.engine import qlearning
from scheduling.engine.generate import generate
from scheduling.engine.instance import Instance, Machine, Phrase, gettext_noop, ngettext, phrase
from scheduling.engine.rules import MAKESPAN_RULES, dispatch
from scheduling.engine.simulator import ACTIVE, NON_DELAY, Downtimes

# Limits of one training (a stated refusal, not a worker busy for hours).
MAX_SECONDS = 600.0
MAX_EPISODES = 200_000
MAX_JOBS = 100
MAX_MACHINES = 20
MAX_INSTANCES = 200
MAX_HELD_OUT = 50
ALPHA_FLOOR = 0.02  # the step size of qlearning.compare once a state has had 50 updates (1/n before)
FAILURES = 1.0  # with breakdowns: expected failures of a machine over its load…
MAX_DOWN = 0.1  # …but down no more than this share of the time (small shops have short loads)
KIND = "generated job shops"


class FamilyError(ValueError):
    """A family or a training budget that cannot be used; `field` names it.

    `message` is a Phrase (English as a str; scheduling.policies puts it in the reader's language).
    """

    def __init__(self, message: Phrase, field: str):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Family:
    """Generated job shops: jobs and machines drawn from inclusive ranges; `instances` to train on,
    `held_out` others to measure on; machines that break down or not."""

    jobs: tuple[int, int] = (5, 10)
    machines: tuple[int, int] = (3, 5)
    instances: int = 8
    breakdowns: bool = False
    held_out: int = 10

    def check(self) -> Family:
        """Self when usable; FamilyError naming the field otherwise."""
        for name, (low, high), top in (("jobs", self.jobs, MAX_JOBS), ("machines", self.machines, MAX_MACHINES)):
            if not (isinstance(low, int) and isinstance(high, int) and 2 <= low <= high <= top):
                message = gettext_noop(
                    "%(name)s must be a range of whole numbers from 2 to %(top)s, the first no more than the second."
                )
                raise FamilyError(phrase(message, name=name, top=top), name)
        for name, value, top in (("instances", self.instances, MAX_INSTANCES), ("held_out", self.held_out, MAX_HELD_OUT)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise FamilyError(
                    phrase(gettext_noop("%(name)s must be a whole number from 1 to %(top)s."), name=name, top=top), name
                )
        return self

    def as_dict(self) -> dict:
        return {**asdict(self), "jobs": list(self.jobs), "machines": list(self.machines)}

    @classmethod
    def from_dict(cls, data: dict) -> Family:
        """The family of `as_dict` (or of a request), checked."""
        try:
            family = cls(
                jobs=tuple(data.get("jobs", cls.jobs)),
                machines=tuple(data.get("machines", cls.machines)),
                instances=data.get("instances", cls.instances),
                breakdowns=bool(data.get("breakdowns", False)),
                held_out=data.get("held_out", cls.held_out),
            )
        except TypeError:
            family = None
        for name in ("jobs", "machines"):
            if family is None or len(getattr(family, name)) != 2:
                raise FamilyError(phrase(gettext_noop("%(name)s is a pair [lowest, highest]."), name=name), name)
        return family.check()


def with_breakdowns(instance: Instance, failures: float = FAILURES, max_down: float = MAX_DOWN) -> Instance:
    """`instance` whose machines break down: MTTR = the machine's mean operation, MTBF = its load / `failures`,
    at least MTTR × (1 − max_down) / max_down.

    The load is the time the machine's operations take (their first option); a machine with no
    operation never breaks.
    """
    load = [0] * instance.n_machines
    count = [0] * instance.n_machines
    for job in instance.jobs:
        for op in job.operations:
            load[op.machine] += op.duration
            count[op.machine] += 1
    machines = []
    for k, machine in enumerate(instance.machines):
        if not (count[k] and load[k]):
            machines.append(Machine(machine.name))
            continue
        mttr = max(1.0, load[k] / count[k])
        mtbf = max(load[k] / failures, mttr * (1 - max_down) / max_down)
        machines.append(Machine(machine.name, mtbf=round(mtbf, 1), mttr=round(mttr, 1)))
    return replace(instance, machines=tuple(machines))


def _shop(family: Family, rng: random.Random, seed: int) -> Instance:
    shop = generate(rng.randint(*family.jobs), rng.randint(*family.machines), seed=seed)
    return with_breakdowns(shop) if family.breakdowns else shop


def training_shops(family: Family, seed: int) -> list[Instance]:
    """The shops a training with `seed` learns on (even generation seeds)."""
    rng = random.Random(seed)
    return [_shop(family, rng, 2 * (seed * MAX_INSTANCES + i)) for i in range(family.instances)]


def held_out_shops(family: Family) -> list[Instance]:
    """The shops every policy of this family is measured on (odd generation seeds: never trained on)."""
    rng = random.Random(f"held out {family.jobs} {family.machines}")
    return [_shop(family, rng, 2 * k + 1) for k in range(family.held_out)]


def held_out_keys(family: Family) -> list[str]:
    """A name per held-out shop ("jobs x machines:seed", "+b" with breakdowns): equal keys, equal shops."""
    suffix = "+b" if family.breakdowns else ""
    return [f"{s.n_jobs}x{s.n_machines}:{2 * k + 1}{suffix}" for k, s in enumerate(held_out_shops(family))]


def _gap(makespan: int, reference: int) -> float:
    return (makespan - reference) / reference if reference else 0.0


def _draw(shop: Instance, seed: int) -> Downtimes | None:
    return Downtimes(shop, seed) if any(m.mtbf for m in shop.machines) else None


def rule_makespans(shop: Instance, *, scheme: str = NON_DELAY, breakdowns_seed: int | None = None) -> dict[str, int]:
    """Each makespan rule's makespan on `shop` (under the breakdowns of `breakdowns_seed`, where its machines break)."""
    makespans = {}
    for rule in MAKESPAN_RULES:
        downtimes = _draw(shop, breakdowns_seed) if breakdowns_seed is not None else None
        makespans[rule] = dispatch(shop, rule, scheme=scheme, downtimes=downtimes).makespan
    return makespans


def references(shops: list[Instance], *, scheme: str = NON_DELAY, draw_seed: int = 0) -> list[dict]:
    """Per shop: the best fixed rule and its makespan (shop k under the breakdowns of seed draw_seed + k)."""
    rows = []
    for k, shop in enumerate(shops):
        rules = rule_makespans(shop, scheme=scheme, breakdowns_seed=draw_seed + k)
        best = min(rules, key=lambda rule: (rules[rule], rule))
        rows.append({"jobs": shop.n_jobs, "machines": shop.n_machines, "best_rule": best, "best_rule_makespan": rules[best]})
    return rows


def gaps(
    policy: qlearning.Policy, shops: list[Instance], refs: list[dict], *, draw_seed: int = 0, scheme: str | None = None
) -> list[dict]:
    """Per shop: the policy's makespan (the same breakdowns as its reference) and its gap to the best rule."""
    scheme = scheme or policy.trained_on.get("scheme", NON_DELAY)
    rows = []
    for k, (shop, ref) in enumerate(zip(shops, refs, strict=True)):
        seed = draw_seed + k if _draw(shop, draw_seed + k) is not None else None
        made = qlearning.apply(shop, policy, scheme=scheme, breakdowns_seed=seed).makespan
        rows.append({**ref, "policy_makespan": made, "gap": round(_gap(made, ref["best_rule_makespan"]), 6)})
    return rows


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 6) if values else 0.0


def check_budget(seconds: float, episodes: int | None) -> None:
    """FamilyError naming `seconds` or `episodes` when a training budget is out of bounds."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_SECONDS:
        message = gettext_noop("The time budget must be more than 0 and at most %(max)s seconds.")
        raise FamilyError(phrase(message, max=f"{MAX_SECONDS:g}"), "seconds")
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or not 0 < episodes <= MAX_EPISODES):
        raise FamilyError(
            phrase(gettext_noop("episodes must be a whole number from 1 to %(max)s."), max=MAX_EPISODES), "episodes"
        )


@dataclass
class Training:
    policy: qlearning.Policy
    info: dict  # episodes, seconds, stopped (episodes | time | cancel), curve [[episodes, training gap]], states


def train(
    family: Family,
    *,
    seconds: float,
    episodes: int | None = None,
    seed: int = 0,
    params: qlearning.Params | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Training:
    """One policy learnt on the family's training shops within `seconds` (or `episodes`, whichever ends first).

    The learning curve holds the mean gap of the greedy policy on the training shops, before any
    episode and after each pass over them; the policy kept is that of the lowest point (the first
    one on a tie). A stop (`should_stop`) ends it early with the policy kept so far. Of `params`,
    only the scheme is used.
    """
    family.check()
    check_budget(seconds, episodes)
    params = params or qlearning.Params()
    shops = training_shops(family, seed)
    started = time.monotonic()
    deadline = started + seconds
    policy = qlearning.Policy(features=qlearning.FAMILY_FEATURES)
    refs = references(shops, scheme=params.scheme, draw_seed=seed)
    rng = random.Random(seed)
    counts: dict[tuple, int] = {}

    def measure() -> None:
        nonlocal kept
        curve.append([done, _mean([row["gap"] for row in gaps(policy, shops, refs, draw_seed=seed, scheme=params.scheme)])])
        if curve[-1][1] < kept[1]:
            kept = (done, curve[-1][1], {state: list(values) for state, values in policy.table.items()})

    curve: list[list] = []
    done = 0
    kept: tuple[int, float, dict] = (0, float("inf"), {})
    measure()
    stopped = "time"
    while True:
        if episodes is not None and done >= episodes:
            stopped = "episodes"
            break
        if time.monotonic() >= deadline:
            break
        if should_stop and should_stop():
            stopped = "cancel"
            break
        breakdowns_seed = seed * 1_000_003 + done if family.breakdowns else None
        qlearning.compare(
            shops[done % len(shops)], policy, counts, rng, alpha_floor=ALPHA_FLOOR, scheme=params.scheme,
            breakdowns_seed=breakdowns_seed,
        )  # fmt: skip
        done += 1
        if done % len(shops) == 0:
            measure()
        if progress:
            share = done / episodes if episodes is not None else (time.monotonic() - started) / seconds
            message = gettext_noop("%(episodes)s on %(shops)s, best training gap %(gap)s")
            episodes_done = ngettext("%(n)s episode", "%(n)s episodes", done)
            on = ngettext("%(n)s shop", "%(n)s shops", len(shops))
            progress(min(0.95, share), phrase(message, episodes=episodes_done, shops=on, gap=f"{kept[1]:.1%}"))
    if curve[-1][0] != done:
        measure()
    policy.table = kept[2]
    policy.trained_on = {
        "kind": KIND, "flexible": False, "breakdowns": family.breakdowns, "jobs": list(family.jobs),
        "machines": list(family.machines), "instances": family.instances, "episodes": done, "seed": seed,
        "scheme": params.scheme, "features": policy.features, "actions": list(policy.actions),
    }  # fmt: skip
    info = {
        "episodes": done, "seconds": round(time.monotonic() - started, 3), "stopped": stopped, "curve": curve,
        "states": len(policy.table), "training_gap": kept[1], "kept_at": kept[0],
    }  # fmt: skip
    return Training(policy=policy, info=info)


def evaluate(policy: qlearning.Policy, family: Family) -> dict:
    """The policy on the family's held-out shops against the best fixed rule of each, and the untrained policy there.

    `metrics`: mean_gap (the policy), mean_gap_untrained (an empty table: MWKR everywhere),
    wins (the share of shops where the policy is at least as short as the best rule), worst_gap.
    `instances`: one row per shop. `keys`: the shops' names (held_out_keys).
    """
    family.check()
    shops = held_out_shops(family)
    scheme = policy.trained_on.get("scheme", NON_DELAY)
    refs = references(shops, scheme=scheme)
    rows = gaps(policy, shops, refs)
    untrained = gaps(qlearning.Policy(trained_on={"scheme": scheme}), shops, refs)
    for row, plain in zip(rows, untrained, strict=True):
        row["untrained_gap"] = plain["gap"]
    values = [row["gap"] for row in rows]
    metrics = {
        "mean_gap": _mean(values),
        "mean_gap_untrained": _mean([row["untrained_gap"] for row in rows]),
        "wins": round(sum(1 for v in values if v <= 0) / len(values), 4),
        "worst_gap": round(max(values), 6),
    }
    return {"metrics": metrics, "instances": rows, "keys": held_out_keys(family)}


def read(text: str | bytes) -> qlearning.Policy:
    """A policy from its JSON (a file, a stored artifact), refused with a ValueError saying why it is unusable."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("table"), list):
            raise TypeError
        policy = qlearning.Policy.from_json(text if isinstance(text, str) else text.decode())
    except (TypeError, KeyError, UnicodeDecodeError, json.JSONDecodeError):
        message = gettext_noop("This is not a scheduling policy (a JSON object with features, actions and a table).")
        raise ValueError(message) from None
    _check_layout(policy)
    return policy


def _check_layout(policy: qlearning.Policy) -> None:
    if policy.features != qlearning.FAMILY_FEATURES or tuple(policy.actions) != qlearning.ACTIONS:
        message = gettext_noop(
            "The policy reads the shop through other state features or chooses among other actions "
            "(%(features)s; %(actions)s) than this scheduler (%(ours)s; %(our_actions)s): its Q-values would be "
            "read as other situations and other rules. Train a new policy."
        )
        raise ValueError(
            phrase(
                message,
                features=policy.features,
                actions=", ".join(policy.actions),
                ours=qlearning.FAMILY_FEATURES,
                our_actions=", ".join(qlearning.ACTIONS),
            )
        )
    width = len(qlearning.FAMILY_FEATURES.split(","))
    for state, values in policy.table.items():
        if len(state) != width or len(values) != len(qlearning.ACTIONS):
            message = gettext_noop(
                "The policy's table does not fit its layout: state %(state)s with %(count)s values, where "
                "states have %(width)s features and a value per action (%(actions)s)."
            )
            raise ValueError(phrase(message, state=list(state), count=len(values), width=width, actions=len(qlearning.ACTIONS)))
    if policy.trained_on.get("scheme", NON_DELAY) not in (NON_DELAY, ACTIVE):
        message = gettext_noop("The policy was learnt with an unknown dispatching scheme '%(scheme)s'.")
        raise ValueError(phrase(message, scheme=policy.trained_on["scheme"]))


def check(policy: qlearning.Policy, instance: Instance, *, breakdowns: bool = False) -> list[tuple[str, dict]]:
    """Whether `policy` can schedule `instance`: a ValueError saying why not, else notes on what is new to it.

    What is really incompatible, and refused:
    - another state layout or action set than this scheduler's (a policy from another version of
      it): each row of the table would be read as another situation, each column as another rule;
    - a table whose rows do not fit its own layout, or an unknown dispatching scheme (a damaged or
      hand-made file).
    What is not: the state (progress, bottleneck, spread of the candidates' lengths) is
    size-independent and defined on any checked problem — classic or flexible, with or without due
    dates or breakdowns — and the actions are rules that every shop can apply; unknown states fall
    back on MWKR. So a problem outside the training family is scheduled, and each difference is a
    note (code, values): "jobs" / "machines" (outside the trained range), "flexible" (alternative
    machines, never seen), "breakdowns" (`breakdowns` is true and the policy learnt without them).
    """
    _check_layout(policy)
    instance.check()
    trained = policy.trained_on
    notes: list[tuple[str, dict]] = []
    for name, value in (("jobs", instance.n_jobs), ("machines", instance.n_machines)):
        low, high = (trained.get(name) or [value, value])[:2]
        if not low <= value <= high:
            notes.append((name, {"value": value, "low": low, "high": high}))
    if instance.flexible and not trained.get("flexible"):
        notes.append(("flexible", {}))
    if breakdowns and not trained.get("breakdowns"):
        notes.append(("breakdowns", {}))
    return notes
