"""The Q-learning scheduler: valid, never behind the best fixed rule, repeatable, within its time, reusable."""

import time

import pytest

from scheduling.engine import qlearning
from scheduling.engine.instance import Instance, Machine
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
