from lepton.jobs.services import job_submit
from tests.conftest import wait_for_job


def test_selfcheck_runs_end_to_end_on_a_real_worker(member, production, celery_worker, dispatcher):
    job = job_submit(actor=member, department=production, kind="lepton.selfcheck", params={"steps": 2, "pause_seconds": 0})
    wait_for_job(job)
    assert job.status == "succeeded", job.error_message
    assert job.progress == 100
    assert job.result["rounds"] == 2
