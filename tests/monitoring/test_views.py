"""The dashboards' pages: who may see them, the period picker's refusals, and figures drawn from real rows."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from datalake import services as datalake_services
from datalake.models import VersionStatus
from lepton.jobs.models import Job
from scheduling import services as scheduling_services
from scheduling.engine.instance import job_shop


def publish(actor, dataset, text: str):
    pending = datalake_services.dataset_upload(actor=actor, dataset=dataset, stream=io.BytesIO(text.encode()), filename="s.csv")
    version = datalake_services.version_ingest(pending.pk)
    assert version.status == VersionStatus.PUBLISHED, version.error_message
    return version


@pytest.fixture
def sensors(member, production):
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    publish(member, dataset, "machine,temperature\nM1,70.5\nM2,\nM3,72.0\n")
    publish(member, dataset, "machine,temperature\nM1,70.5\nM2,71.0\nM3,72.0\nM4,69.0\n")
    return dataset


@pytest.fixture
def finished_run(member, production):
    problem = scheduling_services.problem_create(
        actor=member, department=production, name="Press shop", instance=job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    )
    for method in ("spt", "mwkr"):
        run = scheduling_services.run_start(actor=member, problem=problem, method=method, time_limit=1)
        scheduling_services.run_execute(run.pk)
    return run


def test_anonymous_is_sent_to_log_in(client, sensors):
    for url in ("/dashboards/", "/dashboards/platform/", "/dashboards/scheduling/", f"/dashboards/data/{sensors.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], url


def test_an_outsider_sees_neither_another_departments_dashboard_nor_its_dataset(client, outsider, sensors, finished_run):
    client.force_login(outsider)
    assert client.get("/dashboards/?department=production").status_code == 404
    assert client.get(f"/dashboards/data/{sensors.pk}/").status_code == 404
    assert client.get("/dashboards/platform/").status_code == 404  # staff only
    page = client.get("/dashboards/scheduling/").content.decode()  # their own department: nothing finished there
    assert "No finished schedule yet." in page and "Press shop" not in page
    own = client.get("/dashboards/").content.decode()
    assert "Sensors" not in own and "Dashboard of Quality" in own


def test_the_department_dashboard_counts_its_datasets_jobs_and_schedules(client, member, sensors, finished_run):
    client.force_login(member)
    response = client.get("/dashboards/")
    page = response.content.decode()
    assert response.status_code == 200 and "Dashboard of Production" in page
    assert f'href="/dashboards/data/{sensors.pk}/"' in page and "v2 · 4" in page
    assert 'id="dept-jobs"' in page and 'id="dept-sched-0"' in page and 'id="dept-util-0"' in page
    assert 'hx-trigger="every 30s"' in page
    jobs = response.context["data"]["jobs"]
    assert jobs["total"] == Job.objects.filter(department=finished_run.problem.department).count() > 0
    assert [p["makespan"] for p in response.context["data"]["schedules"]["Press shop"]] == [7, 7]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("start=2026-12-05&end=2026-12-01", "end", "The end comes before the start"),
        ("start=2020-01-01&end=2026-12-01", "start", "at most 366 days"),
        ("start=yesterday", "start", "Enter a valid date"),
    ],
)
def test_a_period_that_cannot_be_shown_is_a_form_error(client, member, sensors, query, field, message):
    client.force_login(member)
    response = client.get(f"/dashboards/?{query}")
    assert response.status_code == 400
    assert message in str(response.context["form"].errors[field])
    assert "data" not in response.context


def test_a_period_in_the_past_shows_no_job_and_says_what_to_do(client, member, sensors, finished_run):
    client.force_login(member)
    old = timezone.localdate() - timedelta(days=100)
    response = client.get(f"/dashboards/?start={old - timedelta(days=3)}&end={old}")
    assert response.status_code == 200 and response.context["data"]["jobs"]["total"] == 0
    assert "No job was queued in this period" in response.content.decode()


def test_the_data_dashboard_charts_rows_nulls_and_checks_over_versions(client, member, viewer, sensors):
    client.force_login(viewer)
    response = client.get(f"/dashboards/data/{sensors.pk}/")
    figures = {f["id"]: f["figure"] for f in response.context["figures"]}
    assert figures["data-rows"]["data"][0]["y"] == [3, 4]
    nulls = {trace["name"]: trace["y"] for trace in figures["data-nulls"]["data"]}
    assert nulls["temperature"] == [pytest.approx(1 / 3), 0.0]
    assert "data-checks" in figures and any(key.startswith("data-hist-") for key in figures)


def test_the_platform_dashboard_is_for_staff(client, staff, member, sensors, finished_run):
    client.force_login(member)
    assert client.get("/dashboards/platform/").status_code == 404
    client.force_login(staff)
    response = client.get("/dashboards/platform/")
    page = response.content.decode()
    assert response.status_code == 200
    for fid in ("platform-jobs", "platform-gpu", "platform-storage", "platform-api-rate", "platform-users"):
        assert f'id="{fid}"' in page, fid
    quotas = {q["department"].slug: q for q in response.context["data"]["quotas"]}
    assert quotas["production"]["storage_used"] > 0
    assert response.context["data"]["users"]["distinct"] == 0  # visits are written in bulk, once a minute


def test_the_scheduling_dashboard_shows_the_latest_gantt_and_the_methods(client, member, finished_run):
    client.force_login(member)
    page = client.get("/dashboards/scheduling/").content.decode()
    assert 'id="fig-gantt"' in page and 'id="sched-methods"' in page and "Press shop" in page


def test_the_department_dashboard_reads_datasets_in_a_fixed_number_of_queries(client, member, production, sensors):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(member)
    client.get("/dashboards/")
    with CaptureQueriesContext(connection) as few:
        client.get("/dashboards/")
    for n in range(4):
        publish(member, datalake_services.dataset_create(actor=member, department=production, name=f"Line {n}"), "a\n1\n")
    with CaptureQueriesContext(connection) as many:
        assert "Line 3" in client.get("/dashboards/").content.decode()
    assert len(many) == len(few)


def test_every_dashboard_loads_the_vendored_plotly_that_draws_its_figures(client, staff, sensors, finished_run):
    client.force_login(staff)
    for url in ("/dashboards/?department=production", "/dashboards/platform/", "/dashboards/scheduling/",
                f"/dashboards/data/{sensors.pk}/"):  # fmt: skip
        html = client.get(url).content.decode()
        assert "data-plotly-figure" in html and "/static/vendor/plotly.min.js" in html, url
