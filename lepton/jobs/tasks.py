"""The one Celery entry point: the message carries only the job id."""

from celery import shared_task

from lepton.jobs import runner


@shared_task(name="lepton.run_job", bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job(self, job_id: str) -> str:
    return runner.run(job_id, hostname=self.request.hostname or "worker")
