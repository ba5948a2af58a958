"""The one Celery entry point: the message carries only the job id."""

from celery import shared_task
from django.db import connections

from lepton.jobs import runner


@shared_task(name="lepton.run_job", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(self, job_id: str) -> str:
    # Connections are kept between tasks (CELERY_DB_REUSE_MAX); drop one the server closed.
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
    return runner.run(job_id, hostname=self.request.hostname or "worker")
