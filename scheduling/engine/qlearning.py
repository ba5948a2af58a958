"""The Q-learning scheduler: it learns which dispatching decision to take in which state of the shop.

As the founding documents put it, Q(s, a) ← Q(s, a) + α [r + γ max_a' Q(s', a') − Q(s, a)].

- **State**: a compact, size-independent view of the shop at a decision. It holds the share of
  operations already placed, how many operations compete, how busy the machines have been so
  far (utilisation up to now), and whether the competitors' jobs differ much in the work they
  have left. Each is cut into a few buckets, so one table serves any problem size and a
  policy learnt on some shops applies to others.
- **Actions**: which dispatching rule decides this one choice (SPT, LPT, MWKR, MOR, LOR, FIFO).
  The learnt policy mixes them along the schedule, where one fixed rule would use one
  throughout.
- **Reward**: each decision is paid −(growth of the schedule's length) / (mean operation
  length). The last decision also gets + UTILISATION_WEIGHT × the machines' mean utilisation.
  The episode's return is then −makespan (scaled) plus a utilisation bonus: short completion
  and busy machines, as in the seeds.
- **Learning**: ε-greedy episodes on the problem at hand, within a time limit (or a fixed
  number of episodes). ε falls from 1 to 0.05 over the run. Every fixed rule is run first
  and is the baseline, and the best schedule of any episode is kept. The result therefore
  never loses to the best fixed rule, and `info` says honestly which phase gave the
  schedule kept.

A policy trained over a family of shops (scheduling.engine.family) reads the shop through another,
coarser layout (FAMILY_FEATURES, `family_state_of`) and learns by paired Monte-Carlo comparisons
(`compare`), not by the ε-greedy episodes above: over a family, ε-greedy returns were too noisy
and the learnt table, played greedily, was worse than MWKR on unseen shops (docs/benchmarks.md).
A policy records its layout; `apply` and `chooser` read the shop through it.

The improvement phase (scheduling.engine.improve) then takes the best schedule found for most
of the time left: a tabu search on the critical path whose moves Q-learning chooses. `info`
keeps the makespan after construction and after improvement, so each phase's part is plain.

Deterministic for a seed and a number of episodes (`episodes=`, with `improve_iterations=`). Under a time limit alone the
number of episodes depends on the machine's speed, and so can the result. The time limit is
checked after every episode (an episode of a 100×20 shop takes well under a second).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scheduling.engine.instance import Instance, gettext_noop, phrase
from scheduling.engine.rules import MAKESPAN_RULES, dispatch
from scheduling.engine.rules import chooser as rule_chooser
from scheduling.engine.schedule import Schedule
from scheduling.engine.simulator import NON_DELAY, Downtimes, Shop

ACTIONS = ("spt", "lpt", "mwkr", "mor", "lor", "fifo")
FEATURES = "progress5,competitors4,utilisation4,spread3"  # the state's layout: a policy records it
# The layout of policies trained over a family (scheduling.engine.family): fewer, coarser states,
# chosen by measurement on held-out shops (docs/benchmarks.md); solve() keeps FEATURES.
FAMILY_FEATURES = "progress3,bottleneck2,lengths2"
UTILISATION_WEIGHT = 1.0


@dataclass
class Params:
    alpha: float = 0.1
    gamma: float = 1.0  # episodic: the return is the whole schedule's
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    scheme: str = NON_DELAY


@dataclass
class Policy:
    """A learnt Q-table, reusable on other problems (states are size-independent).

    `trained_on` says what a reusable policy learnt on (scheduling.engine.family fills it: the
    family's sizes, breakdowns, episodes); it stays empty for a policy learnt on one problem.
    """

    table: dict[tuple, list[float]] = field(default_factory=dict)
    features: str = FEATURES
    actions: tuple[str, ...] = ACTIONS
    trained_on: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": self.features,
                "actions": list(self.actions),
                "table": [[list(state), values] for state, values in sorted(self.table.items())],
                **({"trained_on": self.trained_on} if self.trained_on else {}),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data = json.loads(text)
        if data.get("features") not in STATES or tuple(data.get("actions", ())) != ACTIONS:
            message = gettext_noop(
                "This policy was learnt on other state features or actions (%(features)s; %(actions)s); "
                "this scheduler uses %(states)s; %(ours)s."
            )
            raise ValueError(
                phrase(
                    message,
                    features=data.get("features"),
                    actions=", ".join(data.get("actions", [])),
                    states=" or ".join(STATES),
                    ours=", ".join(ACTIONS),
                )
            )
        return cls(
            table={tuple(state): list(values) for state, values in data["table"]},
            features=data["features"],
            trained_on=data.get("trained_on") or {},
        )


def _bucket(value: float, edges: tuple[float, ...]) -> int:
    for i, edge in enumerate(edges):
        if value < edge:
            return i
    return len(edges)


def state_of(shop: Shop, candidates: list) -> tuple[int, int, int, int]:
    total = shop.instance.n_operations
    progress = _bucket(1 - shop.left / total, (0.2, 0.4, 0.6, 0.8))
    competitors = _bucket(len(candidates), (2, 3, 5))
    now = max(shop.now, 1)
    utilisation = _bucket(sum(shop.machine_busy) / (shop.instance.n_machines * now), (0.4, 0.6, 0.8))
    works = [shop.work_left(c.job) for c in candidates]
    spread = _bucket((max(works) - min(works)) / max(1, max(works)), (0.2, 0.5)) if len(works) > 1 else 0
    return progress, competitors, utilisation, spread


def family_state_of(shop: Shop, candidates: list) -> tuple[int, int, int]:
    """FAMILY_FEATURES: progress (thirds); whether a candidate's machine has (nearly) the most work left, the
    bottleneck; whether the candidates' lengths differ by half a mean operation or more (SPT and LPT differ)."""
    progress = _bucket(1 - shop.left / shop.instance.n_operations, (1 / 3, 2 / 3))
    left = shop.machine_left
    bottleneck = int(max(left[c.machine] for c in candidates) >= 0.9 * max(left))
    durations = [c.duration for c in candidates]
    lengths = int(max(durations) - min(durations) >= 0.5 * shop.total_work / shop.instance.n_operations)
    return progress, bottleneck, lengths


StateOf = Callable[[Shop, list], tuple]
STATES: dict[str, StateOf] = {FEATURES: state_of, FAMILY_FEATURES: family_state_of}


class _Episode:
    """One pass through the shop, each decision taken by the rule the agent picks."""

    def __init__(self, instance: Instance, scheme: str, downtimes_seed: int | None, state: StateOf = state_of):
        self.state = state
        self.shop = Shop(
            instance,
            scheme=scheme,
            downtimes=Downtimes(instance, downtimes_seed) if downtimes_seed is not None else None,
        )
        self.pick = {name: rule_chooser(name, self.shop) for name in ACTIONS}
        self.scale = max(1.0, self.shop.total_work / max(1, instance.n_operations))

    def run(self, act: Callable[[tuple], int], learn: Callable[[tuple, int, float, tuple | None], None] | None):
        shop = self.shop
        shop.reset()
        length = 0
        candidates = shop.candidates()
        state = self.state(shop, candidates)
        while True:
            action = act(state)
            shop.place(self.pick[ACTIONS[action]](candidates))
            grown = shop.makespan - length
            length = shop.makespan
            reward = -grown / self.scale
            if shop.done:
                utilisation = sum(shop.machine_busy) / (shop.instance.n_machines * max(1, length))
                if learn:
                    learn(state, action, reward + UTILISATION_WEIGHT * utilisation, None)
                return shop.schedule()
            candidates = shop.candidates()
            following = self.state(shop, candidates)
            if learn:
                learn(state, action, reward, following)
            state = following


@dataclass
class Result:
    schedule: Schedule
    policy: Policy
    info: dict


def solve(
    instance: Instance,
    *,
    time_limit: float,
    seed: int = 0,
    episodes: int | None = None,
    improve_share: float = 0.8,
    improve_iterations: int | None = None,
    policy: Policy | None = None,
    params: Params | None = None,
    breakdowns_seed: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Result:
    """Learn on `instance` for `time_limit` seconds (or `episodes`); the best schedule found and the policy.

    `policy` continues from a learnt one. `breakdowns_seed` trains under breakdowns: each
    episode draws its own (seed + episode number), so the policy learns what holds up on
    average. `info` holds the learning curve (episode, makespan, best so far), each rule's
    makespan, the number of episodes, and which phase gave the schedule kept.
    """
    if time_limit <= 0:
        raise ValueError(gettext_noop("The time limit must be more than 0 seconds."))
    params = params or Params()
    started = time.monotonic()
    # Construction (learning episodes) first, then the improvement phase on the best schedule
    # (scheduling.engine.improve) for `improve_share` of the time. With `episodes`, the phase runs
    # `improve_iterations` steps (none when not given), so a seeded run repeats exactly.
    improving = (
        breakdowns_seed is None and not instance.flexible and (improve_iterations if episodes is not None else improve_share > 0)
    )
    deadline = started + time_limit * (1 - improve_share if improving and episodes is None else 1)
    rng = random.Random(seed)
    features = policy.features if policy else FEATURES
    policy = Policy(table={k: list(v) for k, v in (policy.table if policy else {}).items()}, features=features)
    table = policy.table

    def values(state: tuple) -> list[float]:
        row = table.get(state)
        if row is None:
            row = table[state] = [0.0] * len(ACTIONS)
        return row

    rules = {}
    best: tuple[int, Schedule, str] | None = None
    for rule in MAKESPAN_RULES:  # the baseline every learnt schedule is measured against
        schedule = dispatch(instance, rule, scheme=params.scheme)
        rules[rule] = schedule.makespan
        if best is None or schedule.makespan < best[0]:
            best = (schedule.makespan, schedule, phrase(gettext_noop("rule %(rule)s"), rule=rule))
    episode_runner = _Episode(instance, params.scheme, None, STATES[features])
    epsilon = params.epsilon_start

    def act(state: tuple) -> int:
        if rng.random() < epsilon:
            return rng.randrange(len(ACTIONS))
        row = values(state)
        top = max(row)
        return row.index(top)

    def learn(state: tuple, action: int, reward: float, following: tuple | None) -> None:
        row = values(state)
        target = reward + (params.gamma * max(values(following)) if following is not None else 0.0)
        row[action] += params.alpha * (target - row[action])

    curve: list[tuple[int, int, int]] = []
    n = 0
    planned = episodes if episodes is not None else None
    while True:
        if planned is not None and n >= planned:
            break
        if time.monotonic() >= deadline or (should_stop and should_stop()):
            break
        fraction = n / planned if planned else (time.monotonic() - started) / time_limit
        epsilon = params.epsilon_start + (params.epsilon_end - params.epsilon_start) * min(1.0, fraction / 0.8)
        if breakdowns_seed is not None:
            episode_runner = _Episode(instance, params.scheme, breakdowns_seed + n, STATES[features])
        schedule = episode_runner.run(act, learn)
        n += 1
        if breakdowns_seed is None and schedule.makespan < best[0]:
            best = (schedule.makespan, schedule, phrase(gettext_noop("Q-learning episode %(n)s"), n=n))
        if n % 10 == 0 or n == 1:
            curve.append((n, schedule.makespan, best[0]))
            if progress:
                message = gettext_noop("episode %(n)s, makespan %(makespan)s, best %(best)s")
                progress(min(0.99, fraction), phrase(message, n=n, makespan=schedule.makespan, best=best[0]))
    epsilon = 0.0
    greedy = _Episode(instance, params.scheme, None, STATES[features]).run(act, None)  # the policy as learnt, no exploration
    if greedy.makespan < best[0]:
        best = (greedy.makespan, greedy, gettext_noop("the learnt policy (greedy)"))
    constructed = best[0]
    improvement = None
    if improving:
        from scheduling.engine.improve import improve

        improved, improvement = improve(
            instance, best[1], time_limit=max(0.0, started + time_limit - time.monotonic()), seed=seed,
            iterations=improve_iterations if episodes is not None else None, should_stop=should_stop, progress=progress,
        )  # fmt: skip
        if improved.makespan < best[0]:
            after = phrase(gettext_noop("the improvement phase (after %(kept)s)"), kept=best[2])
            best = (improved.makespan, improved, after)
    info = {
        "construction_makespan": constructed,
        "improvement": improvement,
        "episodes": n,
        "seconds": round(time.monotonic() - started, 3),
        "rules": rules,
        "best_rule": min(rules.values()),
        "greedy_makespan": greedy.makespan,
        "kept": best[2],
        "curve": curve,
        "states": len(table),
    }
    return Result(schedule=best[1], policy=policy, info=info)


FALLBACK = ACTIONS.index("mwkr")  # the rule of a state a policy never learnt
TIE = 1e-9  # compare(): MWKR's edge on equal returns


def _greedy(policy: Policy) -> Callable[[tuple], int]:
    def act(state: tuple) -> int:
        row = policy.table.get(state)
        return row.index(max(row)) if row else FALLBACK

    return act


def chooser(policy: Policy, shop: Shop) -> Callable[[list], object]:
    """A pick function for `shop` that lets the learnt policy name the rule of each choice (unknown states: MWKR)."""
    picks = [rule_chooser(name, shop) for name in ACTIONS]
    state, act = STATES[policy.features], _greedy(policy)

    def pick(candidates: list):
        return picks[act(state(shop, candidates))](candidates)

    return pick


def apply(instance: Instance, policy: Policy, *, scheme: str = NON_DELAY, breakdowns_seed: int | None = None) -> Schedule:
    """The schedule a learnt policy builds on a problem, without learning (unknown states: MWKR)."""
    return _Episode(instance, scheme, breakdowns_seed, STATES[policy.features]).run(_greedy(policy), None)


def compare(
    instance: Instance,
    policy: Policy,
    counts: dict[tuple, int],
    rng: random.Random,
    *,
    alpha_floor: float,
    scheme: str = NON_DELAY,
    breakdowns_seed: int | None = None,
) -> None:
    """One Monte-Carlo update of `policy` (in place) on `instance`, with exploring starts: how a family learns.

    The greedy policy schedules the shop; one of the states it met is drawn (as often as it met it);
    then, for every other action a, the shop is scheduled again with a taken in that state and the
    policy followed elsewhere, under the same breakdowns. Each action's return is the makespan it
    saves against the policy's own, relative to it: G_a = (makespan − makespan_a) / makespan (0 for
    the policy's action). Then Q(s, a) += α (G_a − Q(s, a)) for every a, with α = max(1 / n,
    alpha_floor) at the state's n-th update. The comparison is paired — same shop, same breakdowns,
    same policy elsewhere — so a return does not carry the noise of other decisions, as one
    ε-greedy episode's makespan does; the state's action is taken for the whole episode, so the
    return is that of the policy it would become. `counts` holds each state's updates (training only).
    MWKR's return has TIE more, so that where the returns are equal the policy is the fallback's.
    """
    runner = _Episode(instance, scheme, breakdowns_seed, STATES[policy.features])
    act = _greedy(policy)
    met: dict[tuple, int] = {}

    def record(state: tuple, _action: int, _reward: float, _following: tuple | None) -> None:
        met[state] = met.get(state, 0) + 1

    reference = runner.run(act, record).makespan
    states = list(met)
    chosen = rng.choices(states, weights=[met[s] for s in states])[0]
    usual = act(chosen)
    returns = []
    for a in range(len(ACTIONS)):
        made = reference if a == usual else runner.run(lambda s, a=a: a if s == chosen else act(s), None).makespan
        returns.append((reference - made) / max(1, reference) + (TIE if a == FALLBACK else 0.0))
    row = policy.table.setdefault(chosen, [0.0] * len(ACTIONS))
    n = counts[chosen] = counts.get(chosen, 0) + 1
    alpha = max(1 / n, alpha_floor)
    for a, value in enumerate(returns):
        row[a] += alpha * (value - row[a])
