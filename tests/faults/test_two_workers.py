"""Two workers on two queues, as on a CPU node and a GPU node: GPU-labelled jobs run only on the
GPU worker, the rest only on the CPU worker, and fair share between departments holds on both.

Fair share (lepton/jobs/dispatcher.py): the next job released goes to the department with the
least work released or running, so a department that queues a few jobs after another queued
many does not wait for all of those.
"""

import pytest
from django.db import transaction

from lepton.jobs.models import Job, WorkerHeartbeat
from lepton.jobs.services import job_submit
from tests.conftest import RUN_DIR, wait_for
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory
from tests.faults.test_worker_kills import terminal_events

pytestmark = pytest.mark.slow

SLEEP = {"steps": 1, "step_seconds": 0.2}


def _department(slug):
    department = DepartmentFactory(slug=slug, max_concurrent_jobs=50)
    user = UserFactory(username=f"{slug}-member")
    MembershipFactory(user=user, department=department, role="member")
    return department, user


def test_gpu_jobs_run_on_the_gpu_worker_only_and_fair_share_holds_on_both_queues(own_broker, subprocess_worker_factory):
    big, alice = _department("dept-big")
    small, bob = _department("dept-small")
    cpu = subprocess_worker_factory("node-cpu", queues="cpu", env=own_broker)
    gpu = subprocess_worker_factory("node-gpu", queues="gpu", env=own_broker)
    # Big queues ten jobs on each queue, then small two on each, all in the same moment.
    with transaction.atomic():
        big_jobs = [
            job_submit(actor=alice, department=big, kind=kind, params=SLEEP)
            for _ in range(10)
            for kind in ("tests.sleep", "tests.gpu_sleep")
        ]
        small_jobs = [
            job_submit(actor=bob, department=small, kind=kind, params=SLEEP)
            for _ in range(2)
            for kind in ("tests.sleep", "tests.gpu_sleep")
        ]
    every = big_jobs + small_jobs
    try:
        wait_for(
            lambda: Job.objects.filter(pk__in=[j.pk for j in every], status="succeeded").count() == len(every),
            timeout=60,
            interval=0.2,
            what="every job to succeed",
        )
    except AssertionError:
        states = list(Job.objects.filter(pk__in=[j.pk for j in every]).values_list("kind", "status", "queue", "wait_reason"))
        beats = list(WorkerHeartbeat.objects.values_list("hostname", "queues", "last_seen"))
        stuck = Job.objects.filter(pk__in=[j.pk for j in every]).exclude(status="succeeded")
        tasks = list(stuck.values_list("celery_task_id", flat=True))
        logs = {w.hostname: (RUN_DIR / f"worker-{w.hostname}.log").read_text() for w in (cpu, gpu)}
        seen = {h: [line for line in text.splitlines() if any(t in line for t in tasks)] for h, text in logs.items()}
        raise AssertionError(f"jobs: {states}\nworkers: {beats}\nstuck tasks {tasks} in the workers' logs: {seen}") from None
    for job in every:
        job.refresh_from_db()
        queue, worker = ("gpu", gpu) if job.kind == "tests.gpu_sleep" else ("cpu", cpu)
        assert (job.resource, job.queue, job.worker) == (queue, queue, worker.hostname), job.kind
        assert terminal_events(job) == 1
    for queue in ("cpu", "gpu"):
        big_starts = sorted(j.started_at for j in big_jobs if j.queue == queue)
        small_first = min(j.started_at for j in small_jobs if j.queue == queue)
        before = sum(1 for s in big_starts if s < small_first)
        # The small department's first job waits behind at most the big one's first releases.
        assert before < 3, f"on {queue}, small started after {before} of big's jobs"
        small_last = max(j.finished_at for j in small_jobs if j.queue == queue)
        after = sum(1 for j in big_jobs if j.queue == queue and j.started_at > small_last)
        assert after >= 5, f"on {queue}, only {after} of big's ten jobs were left when small was done"
