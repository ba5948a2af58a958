"""The improvement phase: tabu search on the critical path with Q-learning-chosen moves."""

import pytest

from scheduling.engine import qlearning
from scheduling.engine.improve import _Shop, improve
from scheduling.engine.rules import dispatch
from scheduling.engine.schedule import validate
from tests.scheduling.test_engine import public, shop_with_everything


@pytest.mark.parametrize("name", ["ft06", "la01", "ft10", "orb01"])
def test_it_shortens_a_rule_s_schedule_and_stays_valid(name):
    instance = public(name)
    start = dispatch(instance, "mwkr")
    improved, info = improve(instance, start, time_limit=30, seed=1, iterations=3000)
    validate(instance, improved)
    assert improved.makespan <= start.makespan and info["before"] == start.makespan and info["after"] == improved.makespan
    assert improved.makespan >= instance.best_known
    if name in ("ft10", "orb01"):
        assert improved.makespan < start.makespan
    assert sum(info["moves_used"].values()) == info["iterations"]


def test_ft06_reaches_its_optimum():
    instance = public("ft06")
    improved, _info = improve(instance, dispatch(instance, "spt"), time_limit=30, seed=3, iterations=5000)
    assert improved.makespan == 55


def test_the_estimate_is_exact_or_a_lower_bound_of_the_swapped_makespan():
    instance = public("la16")
    shop = _Shop(instance, dispatch(instance, "mwkr"))
    for u, v in shop.moves():
        estimate = shop.estimate(u, v)
        shop.swap(u, v)
        actual = shop.evaluate()
        assert estimate <= actual
        shop.swap(v, u)
        shop.evaluate()


def test_the_same_seed_and_iterations_give_the_same_schedule():
    instance = public("la16")
    start = dispatch(instance, "spt")
    first, _ = improve(instance, start, time_limit=30, seed=4, iterations=800)
    again, _ = improve(instance, start, time_limit=30, seed=4, iterations=800)
    assert first.as_json() == again.as_json()


def test_a_flexible_shop_is_left_as_constructed():
    instance = shop_with_everything()
    start = dispatch(instance, "spt")
    kept, info = improve(instance, start, time_limit=1)
    assert kept is start and "flexible" in info["skipped"]


def test_q_learning_reports_what_each_phase_gave():
    instance = public("la16")
    result = qlearning.solve(instance, time_limit=60, seed=1, episodes=100, improve_iterations=2000)
    validate(instance, result.schedule)
    info = result.info
    assert info["construction_makespan"] <= info["best_rule"]
    assert info["improvement"]["before"] == info["construction_makespan"]
    assert result.schedule.makespan == min(info["improvement"]["after"], info["construction_makespan"])
    assert result.schedule.makespan < info["construction_makespan"] and "improvement phase" in info["kept"]
    again = qlearning.solve(instance, time_limit=60, seed=1, episodes=100, improve_iterations=2000)
    assert again.schedule.as_json() == result.schedule.as_json()
