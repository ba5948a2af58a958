"""/healthz and /metrics against the real services."""

import time

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from lepton.jobs.models import Job
from lepton.jobs.services import job_submit
from tests.conftest import wait_for


def test_healthz_is_200_with_database_broker_storage_a_live_worker_and_the_dispatcher(
    transactional_db, celery_worker, dispatcher
):
    wait_for(lambda: Client().get("/healthz").status_code == 200, timeout=10, what="/healthz 200")
    response = Client().get("/healthz")
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage", "worker", "dispatcher"}
    assert body["checks"]["dispatcher"]["last_pass_seconds_ago"] < 5
    assert body["checks"]["worker"]["live_workers"] >= 1
    assert "cpu" in body["checks"]["worker"]["queues"]


def test_healthz_is_503_without_a_dispatcher(transactional_db, celery_worker):
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["dispatcher"]["error"].startswith("No dispatcher has run yet")


def test_healthz_is_503_when_the_dispatcher_stopped_passing(db, settings):
    from django.core.cache import cache

    from lepton.jobs.dispatcher import ALIVE_KEY

    cache.set(ALIVE_KEY, time.time() - 120)
    settings.LEPTON_DISPATCHER_STALE_SECONDS = 30
    dispatcher = Client().get("/healthz").json()["checks"]["dispatcher"]
    assert dispatcher["ok"] is False and dispatcher["last_pass_seconds_ago"] >= 120


def test_healthz_is_503_without_a_worker(db):
    response = Client().get("/healthz")
    assert response.status_code == 503
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is False and "No worker" in worker["error"]


@pytest.fixture
def broker_down(tmp_path):
    """Make the configured broker unreachable (Redis: a closed port; embedded: missing folders), then restore."""
    from lepton.celery import app

    old_url, old_options = app.conf.broker_url, dict(app.conf.broker_transport_options)
    if old_url.startswith("filesystem"):
        gone = str(tmp_path / "no-such-broker")
        app.conf.broker_transport_options = {
            **old_options,
            "data_folder_in": gone,
            "data_folder_out": gone,
            "control_folder": gone,
        }
    else:
        app.conf.broker_url = "redis://127.0.0.1:1/0"
    yield
    app.conf.broker_url, app.conf.broker_transport_options = old_url, old_options


def test_healthz_is_503_when_the_broker_is_down(transactional_db, celery_worker, broker_down):
    response = Client().get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["broker"]["ok"] is False
    assert "error" in body["checks"]["broker"]
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_storage_is_not_writable(db, settings, tmp_path):
    # A lake "folder" below a regular file cannot be written, not even by root.
    file = tmp_path / "file"
    file.write_text("")
    settings.LEPTON_STORAGE_URL = (file / "lake").as_uri()
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"]["ok"] is False


def test_deep_healthz_queues_a_selfcheck_and_reports_it_once_done(transactional_db, celery_worker, dispatcher):
    client = Client()
    first = client.get("/healthz?deep=1")
    assert first.status_code == 503  # no self-check has run yet
    pending = first.json()["checks"]["selfcheck"]["pending"]
    job = Job.objects.get(pk=pending["job"])
    assert job.department is None and job.kind == "lepton.selfcheck"

    def healthy():
        return client.get("/healthz?deep=1").status_code == 200

    wait_for(healthy, timeout=20, what="the self-check to succeed")
    body = client.get("/healthz?deep=1").json()
    assert body["checks"]["selfcheck"]["last_result"]["rounds"] == 2
    # A second call while one is fresh does not queue another.
    assert Job.objects.filter(kind="lepton.selfcheck").count() == 1


def test_metrics_parse_and_count_jobs_by_status_and_department(member, production):
    job_submit(actor=member, department=production, kind="tests.noop")
    response = Client().get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    jobs = families["lepton_jobs"]
    samples = {(s.labels["status"], s.labels["department"]): s.value for s in jobs.samples}
    assert samples[("queued", "production")] == 1
    assert "lepton_job_queue_wait_seconds" in families
    assert "lepton_worker_slots" in families
    assert any(name.startswith("django_http_requests") for name in families)


def test_dispatcher_alive_command_reports_the_last_pass(db):
    from django.core.management import CommandError, call_command

    from lepton.jobs.dispatcher import dispatch

    with pytest.raises(CommandError, match="No dispatcher has run yet"):
        call_command("dispatcher_alive")
    import lepton.jobs.dispatcher as dispatcher_module

    dispatcher_module._last_alive_mark = 0.0  # a fresh process marks its first pass at once
    dispatch()
    call_command("dispatcher_alive")


def test_metrics_need_the_metrics_token_when_one_is_set(db, settings):
    settings.METRICS_TOKEN = "scrape-me"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert response.status_code == 200 and b"lepton_jobs" in response.content
