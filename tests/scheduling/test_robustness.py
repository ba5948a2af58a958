"""Robustness under breakdowns: right shift against re-dispatch, over seeded replications."""

import pytest
from rest_framework.test import APIClient

from scheduling import services
from scheduling.engine import qlearning
from scheduling.engine.generate import generate
from scheduling.engine.instance import job_shop
from scheduling.engine.robustness import evaluate
from scheduling.engine.rules import dispatch
from scheduling.models import ScheduleRun


def breaking_shop():
    return generate(8, 5, seed=3, mtbf=120, mttr=15)


def test_each_reaction_is_measured_on_the_same_draws_and_repeats():
    instance = breaking_shop()
    plan = dispatch(instance, "mwkr")
    policy = qlearning.solve(instance, time_limit=30, seed=1, episodes=50).policy
    first = evaluate(instance, plan, replications=12, seed=5, policy=policy)
    assert first == evaluate(instance, plan, replications=12, seed=5, policy=policy)
    for key in ("right_shift", "redispatch_rule", "redispatch_policy", "replan"):
        values = first[key]["makespans"]
        assert len(values) == 12 and first[key]["p10"] <= first[key]["mean"] <= first[key]["p90"]
    assert min(first["right_shift"]["makespans"]) >= plan.makespan  # breakdowns only delay a fixed plan
    assert first["best_rule"] in ("fifo", "spt", "lpt", "mwkr", "mor", "lor")


def test_nothing_to_break_or_too_many_replications_is_refused():
    plain = job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    with pytest.raises(ValueError, match="nothing to break down"):
        evaluate(plain, dispatch(plain, "spt"), replications=5, seed=0)
    with pytest.raises(ValueError, match="1 to 200"):
        evaluate(breaking_shop(), dispatch(breaking_shop(), "spt"), replications=0, seed=0)


def test_a_run_with_replications_stores_the_distributions_and_draws_them(client, member, production):
    problem = services.problem_create(actor=member, department=production, name="Breaking cell", instance=breaking_shop())
    api = APIClient()
    api.force_authenticate(member)
    response = api.post(
        "/api/v1/schedule-runs/",
        {"problem": str(problem.pk), "method": "qlearning", "time_limit": 1, "replications": 10},
        format="json",
    )
    assert response.status_code == 202, response.json()
    run = services.run_execute(response.json()["id"])
    summary = run.info["robustness"]
    assert summary["replications"] == 10 and len(summary["redispatch_policy"]["makespans"]) == 10
    assert len(summary["replan"]["makespans"]) == 10
    client.force_login(member)
    assert 'id="fig-robustness"' in client.get(f"/scheduling/runs/{run.pk}/").content.decode()


def test_replications_need_machines_that_break_and_a_sane_count(member, production):
    plain = services.problem_create(
        actor=member, department=production, name="Plain", instance=job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    )
    api = APIClient()
    api.force_authenticate(member)
    for problem, count in ((plain, 5), (plain, 500)):
        response = api.post(
            "/api/v1/schedule-runs/", {"problem": str(problem.pk), "method": "spt", "replications": count}, format="json"
        )
        assert response.status_code == 400 and "replications" in response.json()["fields"], response.json()
    assert not ScheduleRun.objects.exists()


def test_re_planning_rebuilds_the_plan_without_breakdowns_and_never_loses_to_its_own_strategies():
    from scheduling.engine.reactive import replan
    from scheduling.engine.schedule import validate
    from scheduling.engine.simulator import Downtimes, right_shift

    instance = breaking_shop()
    plain = generate(8, 5, seed=3)
    plan = qlearning.solve(plain, time_limit=30, seed=1, episodes=30, improve_iterations=200).schedule

    # No breakdown ever begins: following the plan rebuilds it (a gap it fills only shortens it).
    class Never:
        def upto(self, machine, time):
            return []

    calm, info = replan(plain, plan, Never())
    assert validate(plain, calm).makespan <= plan.makespan and info["replans"] == 0
    hits = 0
    for r in range(8):
        schedule, info = replan(instance, plan, Downtimes(instance, 40 + r))
        validate(instance, schedule)
        assert schedule.interrupted or schedule.downtimes  # breakdowns did happen
        hits += info["replans"] > 0
        # Each re-plan picks the strategy its simulation says is best, so a seed's outcome repeats.
        assert schedule.makespan == replan(instance, plan, Downtimes(instance, 40 + r))[0].makespan
    assert hits == 8
    shifted = sum(right_shift(instance, plan, Downtimes(instance, 40 + r)).makespan for r in range(8))
    replanned = sum(replan(instance, plan, Downtimes(instance, 40 + r))[0].makespan for r in range(8))
    assert replanned <= shifted  # on these draws re-planning recovers time that right shift loses
