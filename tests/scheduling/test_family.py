"""A policy trained over a family of generated shops: repeatable, measured honestly on unseen shops, checked before use."""

import json
import random
import statistics

import pytest

from scheduling.engine import family, qlearning
from scheduling.engine.instance import Instance, Job, Machine, Operation, job_shop
from scheduling.engine.rules import MAKESPAN_RULES, dispatch
from scheduling.engine.schedule import validate

SMALL = family.Family(jobs=(4, 6), machines=(3, 4), instances=3, held_out=4)


def test_the_same_seed_and_episodes_give_the_same_policy_and_another_seed_another():
    first = family.train(SMALL, seconds=60, episodes=120, seed=5)
    again = family.train(SMALL, seconds=60, episodes=120, seed=5)
    other = family.train(SMALL, seconds=60, episodes=120, seed=6)
    assert first.policy.to_json() == again.policy.to_json()
    assert {k: v for k, v in first.info.items() if k != "seconds"} == {k: v for k, v in again.info.items() if k != "seconds"}
    assert first.policy.table != other.policy.table
    assert first.info["episodes"] == 120 and first.info["stopped"] == "episodes" and first.info["states"] > 0
    assert first.policy.features == qlearning.FAMILY_FEATURES


def test_the_policy_records_what_it_was_trained_on_and_keeps_it_through_json():
    trained = family.train(SMALL, seconds=60, episodes=40, seed=1).policy
    assert trained.trained_on == {
        "kind": "generated job shops", "flexible": False, "breakdowns": False, "jobs": [4, 6], "machines": [3, 4],
        "instances": 3, "episodes": 40, "seed": 1, "scheme": "non_delay", "features": qlearning.FAMILY_FEATURES,
        "actions": list(qlearning.ACTIONS),
    }  # fmt: skip
    assert family.read(trained.to_json()).trained_on == trained.trained_on
    assert family.read(trained.to_json()).table == trained.table


def test_training_and_held_out_shops_are_different_and_the_held_out_ones_do_not_depend_on_the_seed():
    trained_on = {s.name for s in family.training_shops(SMALL, seed=3)}
    held_out = family.held_out_shops(SMALL)
    assert all(int(name.rsplit(" ", 1)[1]) % 2 == 0 for name in trained_on)  # generate() names the seed
    assert all(int(s.name.rsplit(" ", 1)[1]) % 2 == 1 for s in held_out)
    assert [s.name for s in held_out] == [s.name for s in family.held_out_shops(SMALL)]
    assert {s.name for s in family.training_shops(SMALL, seed=4)} != trained_on
    for shop in held_out:
        assert 4 <= shop.n_jobs <= 6 and 3 <= shop.n_machines <= 4
    assert family.held_out_keys(SMALL) == [f"{s.n_jobs}x{s.n_machines}:{2 * k + 1}" for k, s in enumerate(held_out)]


def test_the_held_out_gaps_are_the_policys_against_the_best_rule_of_each_shop():
    trained = family.train(SMALL, seconds=60, episodes=100, seed=2).policy
    measured = family.evaluate(trained, SMALL)
    expected, untrained = [], []
    for shop in family.held_out_shops(SMALL):  # recomputed here from the rules and the policy's own schedule
        best = min(dispatch(shop, rule).makespan for rule in MAKESPAN_RULES)
        made = validate(shop, qlearning.apply(shop, trained))
        expected.append((made.makespan - best) / best)
        untrained.append((dispatch(shop, "mwkr").makespan - best) / best)  # an empty table falls back on MWKR
    assert [row["gap"] for row in measured["instances"]] == pytest.approx(expected, abs=1e-6)
    metrics = measured["metrics"]
    assert metrics["mean_gap"] == pytest.approx(statistics.fmean(expected), abs=1e-6)
    assert metrics["mean_gap_untrained"] == pytest.approx(statistics.fmean(untrained), abs=1e-6)
    assert metrics["wins"] == pytest.approx(sum(g <= 0 for g in expected) / len(expected), abs=1e-4)
    assert metrics["worst_gap"] == pytest.approx(max(expected), abs=1e-6)
    assert measured["keys"] == family.held_out_keys(SMALL)


def test_the_learning_curve_starts_from_the_untrained_policy_and_the_policy_kept_is_its_lowest_point():
    training = family.train(SMALL, seconds=60, episodes=3 * 4, seed=4)
    curve = training.info["curve"]
    shops = family.training_shops(SMALL, seed=4)
    untrained = []
    for shop in shops:
        best = min(dispatch(shop, rule).makespan for rule in MAKESPAN_RULES)
        untrained.append((dispatch(shop, "mwkr").makespan - best) / best)
    assert curve[0] == [0, pytest.approx(statistics.fmean(untrained), abs=1e-6)]
    assert [point[0] for point in curve] == [0, 3, 6, 9, 12]  # one point per pass over the three shops
    lowest = min(curve, key=lambda point: point[1])
    assert training.info["training_gap"] == lowest[1] and training.info["kept_at"] == lowest[0]
    refs = family.references(shops)
    kept = statistics.fmean(row["gap"] for row in family.gaps(training.policy, shops, refs))
    assert kept == pytest.approx(lowest[1], abs=1e-6)  # the policy returned is the one of that point


def test_learning_lowers_the_gap_on_the_training_shops_for_every_seed():
    # The last point of the curve is the table as learnt (not the one kept), so keeping the best
    # point cannot hide a broken learning. Over seeds 0–11 it fell by 0.9 to 5.7 points here; on
    # held-out shops the gain needs more shops and episodes, and is measured by bench/policy.py
    # (docs/benchmarks.md), not asserted.
    shops = family.Family(jobs=(5, 10), machines=(3, 5), instances=16, held_out=1)
    for seed in (0, 1, 2):
        curve = family.train(shops, seconds=60, episodes=160, seed=seed).info["curve"]
        assert curve[-1][1] < curve[0][1] - 0.005, (seed, curve)


def test_an_episode_compares_every_action_in_one_state_against_the_policy_and_mwkr_keeps_ties():
    shop = family.training_shops(family.Family(jobs=(5, 10), machines=(3, 5), instances=1), seed=0)[0]
    policy = qlearning.Policy(features=qlearning.FAMILY_FEATURES)
    counts = {}
    qlearning.compare(shop, policy, counts, random.Random(5), alpha_floor=0.02)  # draws a state where SPT saves time
    ((state, row),) = policy.table.items()
    assert counts == {state: 1}
    mwkr = dispatch(shop, "mwkr").makespan  # the untrained policy: MWKR everywhere
    made = {}
    for a, name in enumerate(qlearning.ACTIONS):
        only_here = qlearning.Policy(features=qlearning.FAMILY_FEATURES, table={state: [float(b == a) for b in range(6)]})
        made[name] = qlearning.apply(shop, only_here).makespan  # action a in that state, MWKR elsewhere
        assert row[a] == pytest.approx((mwkr - made[name]) / mwkr + (qlearning.TIE if name == "mwkr" else 0), abs=1e-12)
    assert min(made.values()) < mwkr  # a case with something to learn: the policy now takes it
    assert qlearning.apply(shop, policy).makespan == min(made.values())
    tied = qlearning.Policy(features=qlearning.FAMILY_FEATURES)
    qlearning.compare(shop, tied, {}, random.Random(0), alpha_floor=0.02)  # a state where every action is as good
    ((_state, values),) = tied.table.items()
    assert max(values) == values[qlearning.FALLBACK] == qlearning.TIE and sorted(values)[-2] == 0


def test_with_breakdowns_machines_get_an_mtbf_and_mttr_from_their_load():
    shop = job_shop([[(0, 10), (1, 30)], [(1, 50), (0, 20)]])
    broken = family.with_breakdowns(shop)
    lathe, mill = broken.machines
    assert (lathe.mttr, lathe.mtbf) == (15.0, 135.0)  # load 30 over 2 ops; down at most 10 %: 15 × 9
    assert (mill.mttr, mill.mtbf) == (40.0, 360.0)
    busy = family.with_breakdowns(job_shop([[(0, 10)]] * 40))  # a long load: one failure over it
    assert busy.machines[0].mtbf == 400.0 and busy.machines[0].mttr == 10.0
    breaking = family.Family(jobs=(4, 5), machines=(3, 3), instances=2, held_out=2, breakdowns=True)
    assert all(m.mtbf and m.mttr for s in family.held_out_shops(breaking) for m in s.machines)
    training = family.train(breaking, seconds=60, episodes=40, seed=0)
    assert training.policy.trained_on["breakdowns"] is True
    measured = family.evaluate(training.policy, breaking)
    assert measured["keys"][0].endswith("+b") and len(measured["instances"]) == 2


def test_a_time_budget_alone_ends_the_training_and_a_stop_ends_it_early():
    budget = family.train(SMALL, seconds=0.3, seed=0)
    assert budget.info["stopped"] == "time" and budget.info["episodes"] > 0 and budget.info["seconds"] < 1.5
    calls = []
    stopped = family.train(SMALL, seconds=60, episodes=10_000, seed=0, should_stop=lambda: len(calls) > 2 or calls.append(1))
    assert stopped.info["stopped"] == "cancel" and stopped.info["episodes"] < 10_000


@pytest.mark.parametrize(
    "change, field",
    [
        ({"jobs": (1, 5)}, "jobs"),
        ({"jobs": (8, 5)}, "jobs"),
        ({"machines": (2, family.MAX_MACHINES + 1)}, "machines"),
        ({"instances": 0}, "instances"),
        ({"held_out": family.MAX_HELD_OUT + 1}, "held_out"),
    ],
)
def test_a_bad_family_is_refused_naming_the_field(change, field):
    with pytest.raises(family.FamilyError) as refused:
        family.train(family.Family(**{**SMALL.__dict__, **change}), seconds=1, episodes=1)
    assert refused.value.field == field


def test_a_bad_budget_or_a_malformed_family_is_refused_naming_the_field():
    for seconds, episodes, field in ((0, None, "seconds"), (family.MAX_SECONDS + 1, None, "seconds"), (5, 0, "episodes")):
        with pytest.raises(family.FamilyError) as refused:
            family.train(SMALL, seconds=seconds, episodes=episodes)
        assert refused.value.field == field
    with pytest.raises(family.FamilyError) as refused:
        family.Family.from_dict({"jobs": [5], "machines": [3, 4]})
    assert refused.value.field == "jobs"
    assert family.Family.from_dict(SMALL.as_dict()) == SMALL


def test_a_policy_of_another_state_layout_or_action_set_is_refused_with_the_reason():
    text = family.train(SMALL, seconds=60, episodes=20, seed=0).policy.to_json()
    shop = family.held_out_shops(SMALL)[0]
    with pytest.raises(ValueError, match="other state features"):
        family.read(text.replace(qlearning.FAMILY_FEATURES, "progress5,competitors4"))
    with pytest.raises(ValueError, match="other state features"):  # a policy of the earlier family training
        family.read(text.replace(qlearning.FAMILY_FEATURES, qlearning.FEATURES))
    other_actions = qlearning.Policy(actions=("spt", "edd"))
    with pytest.raises(ValueError, match="other state features or chooses among other actions"):
        family.check(other_actions, shop)
    damaged = json.loads(text)
    damaged["table"] = [[[0, 1, 0], [0.5, 0.1]]]  # two values where the layout has one per action
    with pytest.raises(ValueError, match="does not fit its layout"):
        family.read(json.dumps(damaged))
    with pytest.raises(ValueError, match="not a scheduling policy"):
        family.read(b"\x89PNG not json")
    with pytest.raises(ValueError, match="unknown dispatching scheme"):
        family.check(qlearning.Policy(features=qlearning.FAMILY_FEATURES, trained_on={"scheme": "sideways"}), shop)


def test_a_problem_outside_the_family_is_scheduled_with_notes_not_refused():
    trained = family.train(SMALL, seconds=60, episodes=40, seed=0).policy
    assert family.check(trained, family.held_out_shops(SMALL)[0]) == []
    flexible = Instance(
        jobs=tuple(Job(f"J{j}", (Operation(((0, 3), (1, 4))), Operation(((1, 2),)))) for j in range(12)),
        machines=(Machine("lathe"), Machine("mill")),
    )
    notes = family.check(trained, flexible, breakdowns=True)
    assert notes == [
        ("jobs", {"value": 12, "low": 4, "high": 6}),
        ("machines", {"value": 2, "low": 3, "high": 4}),
        ("flexible", {}),
        ("breakdowns", {}),
    ]
    validate(flexible, qlearning.apply(flexible, trained))  # and it does schedule it
