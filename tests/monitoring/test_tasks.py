"""The drift job end to end: the periodic pass queues it, the dispatcher releases it, a real Celery worker runs it."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from lepton.jobs.models import Job
from monitoring import services
from monitoring.models import DriftReference, FeatureDrift
from tests.conftest import wait_for_job
from tests.monitoring.conftest import inputs, log_inputs


def test_the_periodic_pass_and_a_worker_compute_drift(request, transactional_db, deployed, member, drift_settings):
    # Training queued its own follow-ups (analysis, ONNX); they are not what this test is about.
    Job.objects.filter(status="queued").update(status="cancelled", finished_at=timezone.now())
    end = services.window_end_for(timezone.now())
    log_inputs(deployed, inputs(150) + inputs(150, seed=9, temperature=85.0), at=end - timedelta(minutes=15))
    request.getfixturevalue("dispatcher")
    request.getfixturevalue("celery_worker")

    assert services.drift_enqueue_due() == 1
    job = wait_for_job(Job.objects.get(kind=services.DRIFT_KIND), timeout=120)
    assert job.status == "succeeded", job.error_message
    assert job.result["rows"] == 300 and job.result["statuses"]["significant"] >= 1
    assert DriftReference.objects.get(version=deployed).status == "ready"
    assert FeatureDrift.objects.get(version=deployed, feature="温度", window_end=end).status == "significant"

    body = APIClient()
    body.force_authenticate(member)
    drift = body.get(f"/api/v1/models/{deployed.model_id}/drift/").json()
    assert drift["features"][0]["feature"] == "温度" and drift["features"][0]["status"] == "significant"
    assert services.drift_enqueue_due() == 0  # this window is done


def test_the_job_of_a_deleted_version_fails_with_a_reason(request, transactional_db, deployed, drift_settings):
    from lepton.jobs.services import platform_job_submit

    Job.objects.filter(status="queued").update(status="cancelled", finished_at=timezone.now())
    job = platform_job_submit(
        kind=services.DRIFT_KIND,
        params={"version": "00000000-0000-0000-0000-000000000000", "window_end": timezone.now().isoformat()},
    )
    request.getfixturevalue("dispatcher")
    request.getfixturevalue("celery_worker")
    job = wait_for_job(job, timeout=60)
    assert job.status == "failed" and job.error_message == "The model version was deleted."
