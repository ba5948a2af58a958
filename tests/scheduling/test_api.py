"""The production-scheduling API: anonymous and outsider on every endpoint, bad problems, runs on a real worker."""

import pytest
from rest_framework.test import APIClient

from lepton.jobs.models import Job
from lepton.models import AuditEvent
from scheduling import services
from scheduling.engine.instance import job_shop
from scheduling.models import ScheduleRun, ShopProblem
from tests.conftest import wait_for_job
from tests.factories import MembershipFactory, UserFactory

NOWHERE = "00000000-0000-0000-0000-000000000000"
SMALL = {
    "machines": [{"name": "lathe"}, {"name": "mill", "mtbf": 50, "mttr": 5}],
    "jobs": [
        {"name": "A", "due": 12, "operations": [[[0, 3]], [[1, 2]]]},
        {"name": "B", "release": 1, "operations": [[[1, 2]], [[0, 4], [1, 6]]]},
    ],
}


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


@pytest.fixture
def problem(member, production):
    return services.problem_create(
        actor=member, department=production, name="Press shop", instance=job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    )


@pytest.fixture
def maintainer(production):
    user = UserFactory(username="max-maintainer")
    MembershipFactory(user=user, department=production, role="maintainer")
    return user


def _endpoints(problem, run_id=NOWHERE):
    return [
        ("get", "/api/v1/shop-problems/"),
        ("post", "/api/v1/shop-problems/"),
        ("get", f"/api/v1/shop-problems/{problem.pk}/"),
        ("delete", f"/api/v1/shop-problems/{problem.pk}/"),
        ("get", "/api/v1/schedule-runs/"),
        ("post", "/api/v1/schedule-runs/"),
        ("get", f"/api/v1/schedule-runs/{run_id}/"),
        ("get", f"/api/v1/schedule-runs/{run_id}/export/"),
        ("post", f"/api/v1/schedule-runs/{run_id}/cancel/"),
    ]


def test_anonymous_gets_401_everywhere(problem):
    for method, path in _endpoints(problem):
        response = getattr(api(), method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)


def test_an_outsider_sees_nothing_and_changes_nothing(member, outsider, problem):
    run = services.run_start(actor=member, problem=problem, method="spt", time_limit=1)
    client = api(outsider)
    for method, path in _endpoints(problem, run.pk):
        body = {"department": "production", "name": "x", **SMALL, "problem": str(problem.pk), "method": "spt"}
        response = getattr(client, method)(path, body, format="json")
        if path.endswith("-problems/") or path.endswith("-runs/"):
            if method == "get":
                assert response.json()["results"] == [], path
            else:
                assert response.status_code == 404, (method, path)
        else:
            assert response.status_code == 404, (method, path)
    assert ShopProblem.objects.count() == 1 and ScheduleRun.objects.count() == 1


def test_a_member_adds_a_problem_as_json_and_a_viewer_may_not(member, viewer):
    response = api(member).post("/api/v1/shop-problems/", {"department": "production", "name": "Cell 4", **SMALL}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["n_jobs"], body["n_machines"], body["n_operations"], body["flexible"]) == (2, 2, 4, True)
    assert body["machines"][1] == {"name": "mill", "mtbf": 50, "mttr": 5}
    assert AuditEvent.objects.filter(action="problem.create").count() == 1
    refused = api(viewer).post("/api/v1/shop-problems/", {"department": "production", "name": "Cell 5", **SMALL}, format="json")
    assert refused.status_code == 403 and ShopProblem.objects.count() == 1


@pytest.mark.parametrize(
    "change, field, words",
    [
        (lambda d: d["jobs"][0]["operations"][0][0].__setitem__(0, 7), "jobs.0.operations.0.machine", "machine 7 does not exist"),
        (lambda d: d["jobs"][1]["operations"][0][0].__setitem__(1, -2), "jobs.1.operations.0.duration", "negative"),
        (lambda d: d["jobs"][0].__setitem__("operations", []), "jobs.0.operations", "visits no machine"),
        (lambda d: d.__setitem__("jobs", []), "problem", "empty"),
        (lambda d: d["jobs"][0]["operations"].__setitem__(0, [["a", 3]]), "jobs.0.operations.0", "two whole numbers"),
        (lambda d: d["machines"][1].__setitem__("mttr", None), "machines.1.mtbf", "both mtbf and mttr"),
    ],
    ids=["machine-range", "negative", "no-machine", "empty", "not-numbers", "half-rates"],
)
def test_a_bad_problem_is_a_400_naming_the_field_and_stores_nothing(member, change, field, words):
    import copy

    data = copy.deepcopy(SMALL)
    change(data)
    response = api(member).post("/api/v1/shop-problems/", {"department": "production", "name": "Bad", **data}, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"] and words in response.json()["detail"], response.json()
    assert not ShopProblem.objects.exists()


def test_a_problem_too_large_is_refused_with_the_limits(member):
    data = {"machines": [{"name": f"M{i}"} for i in range(2)], "jobs": [{"operations": [[[0, 1]]]}] * 1001}
    response = api(member).post("/api/v1/shop-problems/", {"department": "production", "name": "Huge", **data}, format="json")
    assert response.status_code == 400 and "above the limits (1000 jobs" in response.json()["detail"]


def test_deleting_needs_a_maintainer_and_no_run_in_progress(member, maintainer, problem):
    assert api(member).delete(f"/api/v1/shop-problems/{problem.pk}/").status_code == 403
    run = services.run_start(actor=member, problem=problem, method="spt", time_limit=1)
    response = api(maintainer).delete(f"/api/v1/shop-problems/{problem.pk}/")
    assert response.status_code == 409 and response.json()["error"] == "run_in_progress"
    ScheduleRun.objects.filter(pk=run.pk).update(status="failed")
    assert api(maintainer).delete(f"/api/v1/shop-problems/{problem.pk}/").status_code == 204
    assert not ShopProblem.objects.exists() and AuditEvent.objects.filter(action="problem.delete").exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"method": "magic"}, "method"),
        ({"method": "spt", "time_limit": 0}, "time_limit"),
        ({"method": "spt", "time_limit": -5}, "time_limit"),
        ({"method": "spt", "time_limit": 99999}, "time_limit"),
        ({"method": "spt", "seed": -1}, "seed"),
        ({"method": "spt", "breakdowns_seed": 4}, "breakdowns_seed"),
    ],
)
def test_bad_run_requests_are_400s_and_queue_nothing(member, problem, body, field):
    response = api(member).post("/api/v1/schedule-runs/", {"problem": str(problem.pk), **body}, format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.json()
    assert not ScheduleRun.objects.exists() and not Job.objects.exists()


def test_a_viewer_may_not_start_a_run(viewer, problem):
    response = api(viewer).post("/api/v1/schedule-runs/", {"problem": str(problem.pk), "method": "spt"}, format="json")
    assert response.status_code == 403 and not ScheduleRun.objects.exists()


@pytest.mark.slow
def test_runs_are_scheduled_by_a_worker_and_exported(member, problem, celery_worker, dispatcher):
    client = api(member)
    ids = {}
    for method in ("spt", "qlearning", "cpsat"):
        response = client.post(
            "/api/v1/schedule-runs/", {"problem": str(problem.pk), "method": method, "time_limit": 2}, format="json"
        )
        assert response.status_code == 202, response.json()
        ids[method] = response.json()["id"]
    for method, pk in ids.items():
        run = ScheduleRun.objects.get(pk=pk)
        assert wait_for_job(run.job, timeout=60).status == "succeeded", run.job.error_message
        detail = client.get(f"/api/v1/schedule-runs/{pk}/").json()
        assert detail["status"] == "succeeded" and detail["makespan"] == 7, (method, detail)
        assert len(detail["operations"]) == 4
    cpsat = client.get(f"/api/v1/schedule-runs/{ids['cpsat']}/").json()
    assert cpsat["optimal"] and cpsat["lower_bound"] == 7 and cpsat["gap"] == 0
    exported = client.get(f"/api/v1/schedule-runs/{ids['spt']}/export/")
    assert exported["Content-Type"].startswith("text/csv")
    assert exported.content.decode().splitlines()[0] == "job,op,machine,start,end"
    as_json = client.get(f"/api/v1/schedule-runs/{ids['spt']}/export/?as=json").json()
    assert as_json["makespan"] == 7 and set(as_json["operations"][0]) == {"job", "op", "machine", "start", "end"}
    listed = client.get(f"/api/v1/schedule-runs/?problem={problem.pk}").json()
    assert {r["method"] for r in listed["results"]} == {"spt", "qlearning", "cpsat"}


def test_a_queued_run_is_cancelled_at_once_and_a_finished_one_refuses(member, viewer, problem):
    run = services.run_start(actor=member, problem=problem, method="qlearning", time_limit=5)
    assert api(viewer).post(f"/api/v1/schedule-runs/{run.pk}/cancel/").status_code == 403
    response = api(member).post(f"/api/v1/schedule-runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled", response.json()
    assert "before it started" in ScheduleRun.objects.get(pk=run.pk).error_message
    again = api(member).post(f"/api/v1/schedule-runs/{run.pk}/cancel/")
    assert again.status_code == 409 and again.json()["error"] == "finished"


def test_a_run_reports_progress_in_percent_as_jobs_do(member, problem):
    run = services.run_start(actor=member, problem=problem, method="qlearning", time_limit=1)
    seen = []
    services.run_execute(run.pk, progress=lambda percent, message: seen.append(percent))
    assert seen and all(0 <= p <= 100 for p in seen) and max(seen) > 1, seen
