"""Production-scheduling pages: the list and its upload form, a problem's runs and comparison, a run's Gantt chart."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from scheduling import services
from scheduling.engine.instance import job_shop
from scheduling.models import ScheduleRun, ShopProblem

FT06 = """# ft06, Fisher and Thompson
6 6
2 1 0 3 1 6 3 7 5 3 4 6
1 8 2 5 4 10 5 10 0 10 3 4
2 5 3 4 5 8 0 9 1 1 4 7
1 5 0 5 2 5 3 3 4 8 5 9
2 9 1 3 4 5 5 4 0 3 3 1
1 3 3 3 5 9 0 10 4 4 2 1
"""


@pytest.fixture
def problem(member, production):
    return services.problem_create(
        actor=member, department=production, name="Press shop", instance=job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    )


def test_anonymous_is_sent_to_log_in(client, problem):
    run = services.run_start(actor=problem.created_by, problem=problem, method="spt", time_limit=1)
    for url in ("/scheduling/", f"/scheduling/problems/{problem.pk}/", f"/scheduling/runs/{run.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


def test_an_outsider_gets_404_for_problems_and_runs(client, outsider, member, problem):
    run = services.run_start(actor=member, problem=problem, method="spt", time_limit=1)
    client.force_login(outsider)
    assert problem.name not in client.get("/scheduling/").content.decode()
    assert client.get(f"/scheduling/problems/{problem.pk}/").status_code == 404
    assert client.get(f"/scheduling/runs/{run.pk}/").status_code == 404
    assert client.post(f"/scheduling/problems/{problem.pk}/", {"method": "spt", "time_limit": 1, "seed": 0}).status_code == 404
    assert client.post(f"/scheduling/problems/{problem.pk}/delete/").status_code == 404
    assert ScheduleRun.objects.count() == 1 and ShopProblem.objects.count() == 1


def test_an_empty_list_says_what_to_do(client, member):
    client.force_login(member)
    page = client.get("/scheduling/").content.decode()
    assert "No shop problem in Production yet" in page and "Add a problem from a file" in page


def test_a_member_adds_a_problem_from_an_orlib_file(client, member):
    client.force_login(member)
    upload = SimpleUploadedFile("ft06.txt", FT06.encode())
    response = client.post("/scheduling/", {"name": "ft06", "file": upload, "format": ""})
    problem = ShopProblem.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scheduling/problems/{problem.pk}/"
    assert (problem.n_jobs, problem.n_machines, problem.source) == (6, 6, "upload")


def test_a_malformed_file_is_a_form_error_with_line_and_column(client, member):
    client.force_login(member)
    bad = FT06.replace("2 1 0 3 1 6", "2 1 0 x 1 6")
    response = client.post("/scheduling/", {"name": "broken", "file": SimpleUploadedFile("b.txt", bad.encode())})
    assert response.status_code == 400
    page = response.content.decode()
    assert "line 3" in page and "column" in page and not ShopProblem.objects.exists()


def test_a_viewer_sees_the_problem_but_may_not_schedule_it(client, viewer, problem):
    client.force_login(viewer)
    page = client.get(f"/scheduling/problems/{problem.pk}/").content.decode()
    assert "Members of the department schedule its problems" in page
    assert client.post(f"/scheduling/problems/{problem.pk}/", {"method": "spt", "time_limit": 1, "seed": 0}).status_code == 403
    assert not ScheduleRun.objects.exists()


def test_a_member_queues_a_run_and_a_comparison(client, member, problem):
    client.force_login(member)
    response = client.post(
        f"/scheduling/problems/{problem.pk}/", {"method": "qlearning", "time_limit": 2, "seed": 1, "compare": "on"}
    )
    assert response.status_code == 302
    assert sorted(ScheduleRun.objects.values_list("method", flat=True)) == sorted(
        ["qlearning", "fifo", "spt", "lpt", "mwkr", "mor", "lor", "cpsat"]
    )
    bad = client.post(f"/scheduling/problems/{problem.pk}/", {"method": "spt", "time_limit": 0, "seed": 0})
    assert bad.status_code == 400 and "time_limit" in bad.context["form"].errors


def test_a_finished_run_shows_its_gantt_chart_and_the_comparison(client, member, problem):
    for method in ("spt", "qlearning"):
        run = services.run_start(actor=member, problem=problem, method=method, time_limit=1)
        services.run_execute(run.pk)
    client.force_login(member)
    page = client.get(f"/scheduling/runs/{run.pk}/").content.decode()
    assert 'id="fig-gantt"' in page and 'id="fig-utilisation"' in page and 'id="fig-learning"' in page
    assert "data-makespan>7<" in page
    problem_page = client.get(f"/scheduling/problems/{problem.pk}/").content.decode()
    assert "data-comparison" in problem_page and "Q-learning" in problem_page


def test_a_maintainer_deletes_a_problem(client, owner, member, problem):
    client.force_login(member)
    assert client.post(f"/scheduling/problems/{problem.pk}/delete/").status_code == 403
    client.force_login(owner)
    assert client.post(f"/scheduling/problems/{problem.pk}/delete/").status_code == 302
    assert not ShopProblem.objects.exists()


def test_a_member_cancels_a_queued_run_from_its_page(client, member, outsider, problem):
    run = services.run_start(actor=member, problem=problem, method="qlearning", time_limit=5)
    client.force_login(outsider)
    assert client.post(f"/scheduling/runs/{run.pk}/cancel/").status_code == 404
    client.force_login(member)
    assert "Cancel" in client.get(f"/scheduling/runs/{run.pk}/").content.decode()
    assert client.post(f"/scheduling/runs/{run.pk}/cancel/").status_code == 302
    assert ScheduleRun.objects.get(pk=run.pk).status == "cancelled"
