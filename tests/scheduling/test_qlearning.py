"""The Q-learning scheduler: valid, never behind the best fixed rule, repeatable, within its time, reusable."""

import time

import pytest

from scheduling.engine import qlearning
from scheduling.engine.instance import Instance, Machine, job_shop
from scheduling.engine.rules import MAKESPAN_RULES, dispatch
from scheduling.engine.schedule import validate
from tests.scheduling.test_engine import public, shop_with_everything


@pytest.mark.parametrize("name", ["ft06", "la01", "orb01"])
def test_it_learns_a_valid_schedule_no_worse_than_the_best_rule(name):
    instance = public(name)
    result = qlearning.solve(instance, time_limit=30, seed=1, episodes=300)
    validate(instance, result.schedule)
    best_rule = min(dispatch(instance, rule).makespan for rule in MAKESPAN_RULES)
    assert result.info["best_rule"] == best_rule
    assert result.schedule.makespan <= best_rule
    assert result.info["episodes"] == 300 and result.info["curve"][-1][2] <= best_rule
    assert result.info["kept"]  # which phase gave the schedule: a rule, an episode or the greedy policy


def test_learning_beats_every_fixed_rule_on_a_larger_shop():
    instance = public("la16")
    result = qlearning.solve(instance, time_limit=60, seed=3, episodes=800)
    assert result.schedule.makespan < result.info["best_rule"], result.info["kept"]


def test_the_same_seed_and_episodes_give_the_same_schedule():
    instance = public("ft10")
    first = qlearning.solve(instance, time_limit=60, seed=7, episodes=120)
    again = qlearning.solve(instance, time_limit=60, seed=7, episodes=120)
    assert first.schedule.as_json() == again.schedule.as_json() and first.policy.table == again.policy.table


def test_the_time_limit_is_held():
    instance = public("ta01")
    started = time.monotonic()
    result = qlearning.solve(instance, time_limit=1.0, seed=0)
    assert time.monotonic() - started < 2.0 and result.info["episodes"] > 0
    with pytest.raises(ValueError, match="more than 0"):
        qlearning.solve(instance, time_limit=0)


def test_a_learnt_policy_is_saved_and_applied_to_another_problem():
    learnt = qlearning.solve(public("la01"), time_limit=30, seed=2, episodes=200).policy
    policy = qlearning.Policy.from_json(learnt.to_json())
    assert policy.table == learnt.table
    other = public("la02")
    validate(other, qlearning.apply(other, policy))
    with pytest.raises(ValueError, match="other state features"):
        qlearning.Policy.from_json(learnt.to_json().replace(qlearning.FEATURES, "progress3"))


def test_training_under_breakdowns_gives_a_valid_schedule_and_policy():
    instance = shop_with_everything()
    result = qlearning.solve(instance, time_limit=30, seed=1, episodes=100, breakdowns_seed=40)
    validate(instance, result.schedule)
    broken = Instance(jobs=instance.jobs, machines=tuple(Machine(m.name, 8, 3) for m in instance.machines))
    validate(broken, qlearning.apply(broken, result.policy, breakdowns_seed=5))


def test_a_policy_is_applied_through_the_state_layout_it_records():
    instance = public("la01")
    fifo = [0, 0, 0, 0, 0, 1.0]
    states = [(p, b, d) for p in range(3) for b in (0, 1) for d in (0, 1)]
    family_policy = qlearning.Policy(features=qlearning.FAMILY_FEATURES, table=dict.fromkeys(states, fifo))
    # FIFO in every state of the family layout: the schedule FIFO builds
    assert qlearning.apply(instance, family_policy).makespan == dispatch(instance, "fifo").makespan
    again = qlearning.Policy.from_json(family_policy.to_json())
    assert again.features == qlearning.FAMILY_FEATURES and again.table == family_policy.table
    old_layout = qlearning.Policy(table=dict.fromkeys(states, fifo))
    assert qlearning.apply(instance, old_layout).makespan == dispatch(instance, "mwkr").makespan  # states it never met


def test_the_family_state_sees_the_bottleneck_and_the_spread_of_lengths():
    from scheduling.engine.simulator import Shop

    shop = Shop(job_shop([[(0, 10), (1, 50)], [(1, 40), (0, 10)], [(0, 60)]]))  # M0: 80 to do, M1: 90
    assert shop.machine_left == [80, 90]
    candidates = shop.candidates()  # at 0: J0 and J2 on M0, J1 on M1, the bottleneck
    assert qlearning.family_state_of(shop, candidates) == (0, 1, 1)  # lengths 10–60, mean operation 34
    shop.place(candidates[1])  # J1 on M1
    assert shop.machine_left == [80, 50]
    rest = shop.candidates()  # J0 and J2 on M0, now the bottleneck; lengths 10 and 60
    assert qlearning.family_state_of(shop, rest) == (0, 1, 1)
    shop.place(rest[1])  # J2 (60) on M0: M0 has 20 left, M1 50
    assert shop.machine_left == [20, 50]
    third = shop.candidates()  # at 60: J0 and J1 on M0, both 10 long; M1 has more left; 2 of 5 placed
    assert [c.job for c in third] == [0, 1] and qlearning.family_state_of(shop, third) == (1, 0, 0)
