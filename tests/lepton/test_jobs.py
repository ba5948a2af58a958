"""The job system against real workers: lifecycle, duplicate delivery, lost workers, fair share,
quotas, GPU waiting, cancel, retries and time limits."""

import os
import subprocess
import tempfile
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs import runner
from lepton.jobs.dispatcher import dispatch, reap
from lepton.jobs.models import Job, JobLogLine, WorkerHeartbeat
from lepton.jobs.services import job_cancel, job_requeue, job_submit
from lepton.models import AuditEvent
from tests.conftest import wait_for, wait_for_job
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory


def _beat(hostname="fake@worker", queues=("cpu",), concurrency=1):
    """A live worker row, for dispatcher tests that need slots but no real worker."""
    return WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"queues": list(queues), "concurrency": concurrency, "last_seen": timezone.now()}
    )[0]


# --- submit: bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"kind": "no.such.kind"}, "kind"),
        ({"kind": "lepton.selfcheck", "params": {"steps": 0}}, "params.steps"),
        ({"kind": "lepton.selfcheck", "params": {"steps": "many"}}, "params.steps"),
        ({"kind": "lepton.selfcheck", "params": ["not", "an", "object"]}, "params"),
        ({"kind": "lepton.selfcheck", "priority": 0}, "priority"),
        ({"kind": "lepton.selfcheck", "priority": 11}, "priority"),
        ({"kind": "tests.flaky", "params": {"marker": "x", "failures": 1}}, "kind"),  # not user-startable
    ],
)
def test_submit_refuses_bad_input_naming_the_field_and_changes_nothing(member, production, kwargs, field):
    before = (Job.objects.count(), AuditEvent.objects.count())
    with pytest.raises(Invalid) as err:
        job_submit(actor=member, department=production, **kwargs)
    assert field in err.value.fields, err.value.fields
    assert field in err.value.message
    assert (Job.objects.count(), AuditEvent.objects.count()) == before


def test_viewer_cannot_submit_and_outsider_gets_not_found(viewer, outsider, production):
    with pytest.raises(Forbidden):
        job_submit(actor=viewer, department=production, kind="tests.noop")
    with pytest.raises(NotFound):
        job_submit(actor=outsider, department=production, kind="tests.noop")
    assert Job.objects.count() == 0


def test_submit_stores_validated_params_with_defaults_and_audits(member, production):
    job = job_submit(actor=member, department=production, kind="lepton.selfcheck", params={"steps": 2}, priority=7)
    assert job.params == {"steps": 2, "pause_seconds": 0.3, "probe_bytes": 65536}
    assert (job.status, job.priority, job.resource, job.requested_by) == ("queued", 7, "cpu", member)
    event = AuditEvent.objects.get(action="job.submit")
    assert event.object_id == str(job.pk) and event.department == production


# --- the lifecycle on a real worker ------------------------------------------------------------


def test_job_lifecycle_end_to_end(member, production, celery_worker, dispatcher):
    job = job_submit(actor=member, department=production, kind="tests.sleep", params={"steps": 4, "step_seconds": 0.05})
    wait_for_job(job)
    assert job.status == "succeeded"
    assert job.progress == 100 and job.progress_message == "step 4"
    assert job.result == {"steps": 4}
    assert job.attempts == 1
    assert job.queued_at <= job.released_at <= job.started_at <= job.finished_at
    assert job.wait_seconds is not None and job.wait_seconds >= 0
    assert job.worker and celery_worker.hostname.endswith(job.worker)  # the in-process worker reports its host only
    messages = list(job.log_lines.values_list("message", flat=True))
    assert messages[0].startswith("Queued by mia-member") and messages[-1] == "Succeeded."
    assert AuditEvent.objects.filter(object_id=str(job.pk), action="job.succeeded").exists()


def test_failing_handler_fails_the_job_with_its_error(member, production, celery_worker, dispatcher):
    from lepton.jobs.services import platform_job_submit

    job = platform_job_submit(kind="tests.broken")
    wait_for_job(job)
    assert job.status == "failed"
    assert job.error_message == "ValueError: the handler is broken"
    assert "Traceback" in job.error_traceback
    assert job.attempts == 1  # a plain error is not retried


def test_transient_error_is_retried_with_backoff(tmp_path, celery_worker, dispatcher):
    from lepton.jobs.services import platform_job_submit

    marker = tmp_path / "flaky"
    job = platform_job_submit(kind="tests.flaky", params={"marker": str(marker), "failures": 2})
    wait_for_job(job, timeout=30)
    assert job.status == "succeeded", job.error_message
    assert job.attempts == 3 and job.result == {"tries": 3}
    assert job.log_lines.filter(message__startswith="Transient error, retry in").count() == 2


def test_transient_error_without_attempts_left_fails(tmp_path, celery_worker, dispatcher):
    from lepton.jobs.services import platform_job_submit

    job = platform_job_submit(kind="tests.flaky", params={"marker": str(tmp_path / "f"), "failures": 5})
    wait_for_job(job, timeout=30)
    assert job.status == "failed"
    assert job.attempts == 3
    assert job.error_message.startswith("Gave up after 3 attempts")


def test_time_limit_stops_the_job(celery_worker, dispatcher):
    from lepton.jobs.services import platform_job_submit

    job = platform_job_submit(kind="tests.slow_limit")
    wait_for_job(job)
    assert job.status == "failed"
    assert "time limit of 1 s" in job.error_message


# --- duplicate delivery ------------------------------------------------------------------------


def test_duplicate_delivery_runs_the_job_once(tmp_path, member, production, celery_worker):
    from lepton.jobs.tasks import run_job

    marker = tmp_path / "runs"
    job = job_submit(
        actor=member, department=production, kind="tests.sleep", params={"steps": 2, "step_seconds": 0.1, "marker": str(marker)}
    )
    # The same message delivered three times at once (as a broker may after a reconnect).
    for _ in range(3):
        run_job.apply_async(args=[str(job.pk)], queue="cpu")
    wait_for_job(job)
    time.sleep(0.5)  # let the other deliveries finish too
    assert job.status == "succeeded"
    assert marker.read_text().count("\n") == 1
    assert job.attempts == 1


def test_runner_skips_a_job_that_is_not_queued(member, production):
    job = Job.objects.create(kind="tests.noop", department=production, status="succeeded")
    assert runner.run(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.attempts == 0


# --- a worker killed mid-job ---------------------------------------------------------------------


@pytest.mark.slow
def test_sigkilled_worker_job_is_requeued_and_succeeds_exactly_once(
    tmp_path, settings, member, production, subprocess_worker_factory, dispatcher
):
    settings.LEPTON_JOB_STALE_SECONDS = 2.0
    marker = tmp_path / "completions"
    first = subprocess_worker_factory("doomed")
    job = job_submit(
        actor=member, department=production, kind="tests.sleep", params={"steps": 40, "step_seconds": 0.1, "marker": str(marker)}
    )

    def running_with_progress():
        job.refresh_from_db()
        return job.status == "running" and job.progress >= 10

    wait_for(running_with_progress, timeout=30, what="the job to run on the first worker")
    assert job.worker == first.hostname
    first.kill()
    WorkerHeartbeat.objects.filter(hostname=first.hostname).delete()  # a dead worker's row would just go stale

    def requeued():
        job.refresh_from_db()
        return job.log_lines.filter(message__contains="stopped responding").exists()

    wait_for(requeued, timeout=20, what="the reaper to requeue the job")
    second = subprocess_worker_factory("rescuer")
    wait_for_job(job, timeout=40)
    assert job.status == "succeeded"
    assert job.attempts == 2
    assert job.worker == second.hostname
    time.sleep(1.0)
    assert marker.read_text().count("\n") == 1, "the job must complete exactly once"
    assert AuditEvent.objects.filter(object_id=str(job.pk), action="job.reap").count() == 1


def test_reaper_fails_a_stale_job_without_attempts_left(member, production):
    old = timezone.now() - timedelta(minutes=10)
    job = Job.objects.create(
        kind="tests.noop",
        department=production,
        status="running",
        attempts=3,
        max_attempts=3,
        started_at=old,
        heartbeat_at=old,
        worker="gone@host",
    )
    outcome = reap()
    job.refresh_from_db()
    assert outcome["failed"] == [job.pk]
    assert job.status == "failed"
    assert "gone@host stopped responding" in job.error_message


def test_reaper_leaves_jobs_with_fresh_heartbeats_alone(member, production):
    now = timezone.now()
    job = Job.objects.create(
        kind="tests.noop", department=production, status="running", attempts=1, started_at=now, heartbeat_at=now
    )
    assert reap() == {}
    job.refresh_from_db()
    assert job.status == "running"


def test_late_result_of_a_reaped_run_is_dropped(member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    claimed = runner.claim(job.pk, "slow@host")
    # The reaper decided the worker was lost and another attempt started meanwhile.
    Job.objects.filter(pk=job.pk).update(attempts=2)
    assert not runner._finish(claimed, 1, "succeeded", result={"late": True})
    job.refresh_from_db()
    assert job.status == "running" and job.result == {}


# --- dispatching: fair share, quotas, GPU --------------------------------------------------------


def _department_with_member(slug, **quotas):
    dept = DepartmentFactory(slug=slug, **quotas)
    user = UserFactory(username=f"{slug}-member")
    MembershipFactory(user=user, department=dept, role="member")
    return dept, user


def test_fair_share_releases_the_small_department_before_the_big_ones_third(settings, db):
    settings.LEPTON_DISPATCH_BACKLOG_PER_SLOT = 1
    a, alice = _department_with_member("dept-a", max_concurrent_jobs=50)
    b, bob = _department_with_member("dept-b", max_concurrent_jobs=50)
    a_jobs = [job_submit(actor=alice, department=a, kind="tests.noop") for _ in range(20)]
    b_job = job_submit(actor=bob, department=b, kind="tests.noop")
    _beat(concurrency=2)
    released = dispatch().released
    assert len(released) == 4  # 2 slots + 1 backlog per slot
    assert released.index(b_job.pk) < released.index(a_jobs[2].pk) if a_jobs[2].pk in released else b_job.pk in released[:2]
    waiting = Job.objects.get(pk=a_jobs[-1].pk)
    assert waiting.wait_reason == "Waiting for a free worker slot."


def test_department_arriving_late_goes_next_once_a_slot_frees(settings, db):
    settings.LEPTON_DISPATCH_BACKLOG_PER_SLOT = 1
    a, alice = _department_with_member("dept-a", max_concurrent_jobs=50)
    b, bob = _department_with_member("dept-b", max_concurrent_jobs=50)
    a_jobs = [job_submit(actor=alice, department=a, kind="tests.noop") for _ in range(20)]
    _beat(concurrency=1)
    assert dispatch().released == [a_jobs[0].pk, a_jobs[1].pk]  # 1 slot + 1 backlog
    b_job = job_submit(actor=bob, department=b, kind="tests.noop")
    assert dispatch().released == []  # nothing fits until A's first finishes
    Job.objects.filter(pk=a_jobs[0].pk).update(status="succeeded", finished_at=timezone.now())
    assert dispatch().released == [b_job.pk]  # B before A's third


def test_priority_orders_jobs_within_a_department(settings, member, production):
    low = job_submit(actor=member, department=production, kind="tests.noop", priority=2)
    high = job_submit(actor=member, department=production, kind="tests.noop", priority=9)
    settings.LEPTON_DISPATCH_BACKLOG_PER_SLOT = 0
    _beat(concurrency=1)
    assert dispatch().released == [high.pk]
    low.refresh_from_db()
    assert low.released_at is None


@pytest.mark.slow
def test_fair_share_end_to_end_b_starts_before_as_third(settings, transactional_db, celery_worker, dispatcher):
    a, alice = _department_with_member("dept-a", max_concurrent_jobs=50)
    b, bob = _department_with_member("dept-b", max_concurrent_jobs=50)
    # A queues twenty jobs and B one, in the same moment (one transaction), while the worker runs.
    with transaction.atomic():
        a_jobs = [
            job_submit(actor=alice, department=a, kind="tests.sleep", params={"steps": 1, "step_seconds": 0.15})
            for _ in range(20)
        ]
        b_job = job_submit(actor=bob, department=b, kind="tests.sleep", params={"steps": 1, "step_seconds": 0.15})
    for job in [b_job, *a_jobs]:
        wait_for_job(job, timeout=60)
        assert job.status == "succeeded"
    a_started_before_b = [j for j in a_jobs if j.started_at < b_job.started_at]
    assert len(a_started_before_b) < 3, f"B started after {len(a_started_before_b)} of A's jobs"


def test_concurrent_job_quota_holds_jobs_back_with_a_reason(member, production):
    production.max_concurrent_jobs = 2
    production.save()
    jobs = [job_submit(actor=member, department=production, kind="tests.noop") for _ in range(5)]
    _beat(concurrency=10)
    assert len(dispatch().released) == 2
    held = Job.objects.filter(pk__in=[j.pk for j in jobs], released_at__isnull=True)
    assert held.count() == 3
    assert set(held.values_list("wait_reason", flat=True)) == {"Production is at its limit of 2 concurrent jobs."}
    # Nothing more is released until one of the two finishes.
    assert dispatch().released == []
    Job.objects.filter(pk=jobs[0].pk).update(status="succeeded", finished_at=timezone.now())
    assert len(dispatch().released) == 1


def test_gpu_job_waits_with_its_reason_while_no_gpu_worker_is_up(member, production):
    job = job_submit(actor=member, department=production, kind="tests.gpu")
    _beat(queues=["cpu"], concurrency=4)
    assert dispatch().released == []
    job.refresh_from_db()
    assert (job.status, job.wait_reason) == ("queued", "Waiting for a GPU worker: none is online.")
    _beat(hostname="gpu@node", queues=["gpu"], concurrency=1)
    assert dispatch().released == [job.pk]
    job.refresh_from_db()
    assert (job.queue, job.wait_reason) == ("gpu", "")


def test_gpu_job_that_allows_cpu_runs_on_cpu_and_says_so(member, production, celery_worker, dispatcher):
    job = job_submit(actor=member, department=production, kind="tests.gpu_or_cpu")
    wait_for_job(job)
    assert job.status == "succeeded"
    assert job.queue == "cpu"
    assert (
        "No GPU worker is online: running on CPU" in job.wait_reason
        or job.log_lines.filter(message__startswith="No GPU worker is online").exists()
    )


def test_gpu_budget_used_up_holds_gpu_jobs(member, production):
    production.gpu_minutes_per_month = 10
    production.save()
    now = timezone.now()
    Job.objects.create(
        kind="tests.gpu",
        department=production,
        status="succeeded",
        queue="gpu",
        resource="gpu",
        started_at=now - timedelta(minutes=11),
        finished_at=now,
    )
    job = job_submit(actor=member, department=production, kind="tests.gpu")
    _beat(hostname="gpu@node", queues=["gpu"], concurrency=1)
    assert dispatch().released == []
    job.refresh_from_db()
    assert job.wait_reason == "Production has used its 10 GPU minutes for this month."


def test_no_worker_at_all_is_a_visible_reason(member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    assert dispatch().released == []
    job.refresh_from_db()
    assert job.wait_reason == "Waiting for a worker on the 'cpu' queue: none is online."


def test_stale_worker_heartbeat_gives_no_slots(member, production):
    row = _beat(concurrency=4)
    WorkerHeartbeat.objects.filter(pk=row.pk).update(last_seen=timezone.now() - timedelta(minutes=5))
    job_submit(actor=member, department=production, kind="tests.noop")
    assert dispatch().released == []


def test_released_message_never_picked_up_is_released_again(settings, member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    Job.objects.filter(pk=job.pk).update(released_at=timezone.now() - timedelta(hours=1), queue="cpu")
    settings.LEPTON_RELEASE_TIMEOUT_SECONDS = 60
    reap()
    job.refresh_from_db()
    assert job.released_at is None and job.status == "queued"


# --- cancel ----------------------------------------------------------------------------------


def test_cancel_a_queued_job_at_once_and_it_never_runs(member, production, celery_worker):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    job_cancel(actor=member, job=job)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at is not None
    assert runner.run(job.pk) == "skipped"
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(job.pk)).exists()


def test_cancel_a_running_job_stops_it_at_its_next_step(member, production, celery_worker, dispatcher):
    job = job_submit(actor=member, department=production, kind="tests.sleep", params={"steps": 200, "step_seconds": 0.05})
    wait_for(lambda: Job.objects.get(pk=job.pk).status == "running", what="the job to start")
    job_cancel(actor=member, job=job)
    wait_for_job(job)
    assert job.status == "cancelled"
    assert job.progress < 100
    assert job.log_lines.filter(message="Stopped on request.").exists()


def test_cancel_of_a_finished_job_is_refused_with_its_reason(member, production):
    job = Job.objects.create(kind="tests.noop", department=production, requested_by=member, status="succeeded")
    before = (JobLogLine.objects.count(), AuditEvent.objects.count())
    with pytest.raises(Conflict) as err:
        job_cancel(actor=member, job=job)
    assert err.value.message == "The job has already ended (Succeeded); there is nothing to cancel."
    assert err.value.status == 409
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert (JobLogLine.objects.count(), AuditEvent.objects.count()) == before


def test_cancel_rights(member, viewer, outsider, owner, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    with pytest.raises(Forbidden):
        job_cancel(actor=viewer, job=job)
    with pytest.raises(NotFound):
        job_cancel(actor=outsider, job=job)
    job_cancel(actor=owner, job=job)


def test_running_job_ignoring_cancel_is_revoked_after_the_grace_period(settings, member, production):
    settings.LEPTON_CANCEL_GRACE_SECONDS = 5
    now = timezone.now()
    job = Job.objects.create(
        kind="tests.noop",
        department=production,
        status="running",
        attempts=1,
        started_at=now,
        heartbeat_at=now,
        cancel_requested_at=now - timedelta(seconds=10),
    )
    outcome = reap()
    job.refresh_from_db()
    assert outcome["revoked"] == [job.pk]
    assert job.status == "cancelled"


def test_requeue_a_failed_job(member, production):
    job = Job.objects.create(
        kind="tests.noop",
        department=production,
        requested_by=member,
        status="failed",
        attempts=3,
        max_attempts=3,
        error_message="boom",
    )
    job_requeue(actor=member, job=job)
    job.refresh_from_db()
    assert (job.status, job.error_message, job.released_at) == ("queued", "", None)
    assert job.max_attempts > job.attempts
    with pytest.raises(Conflict):
        job_requeue(actor=member, job=job)


# --- a worker's scratch space --------------------------------------------------------------------


def test_a_starting_worker_removes_only_the_scratch_folders_of_dead_processes(tmp_path):
    from lepton.celery import _scratch_name, sweep_scratch, use_own_scratch

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / _scratch_name(gone.pid)
    (dead / "lepton-ingest-x").mkdir(parents=True)
    (dead / "lepton-ingest-x" / "copy.csv").write_bytes(b"a,b\n" * 1000)
    living = tmp_path / _scratch_name(os.getppid())  # pytest's parent runs
    living.mkdir()
    other_host = tmp_path / "lepton-worker-elsewhere-1"
    other_host.mkdir()
    before = tempfile.tempdir
    try:
        assert sweep_scratch(tmp_path) == [dead.name]
        assert use_own_scratch(tmp_path) == tmp_path / _scratch_name(os.getpid())
        assert tempfile.mkdtemp().startswith(str(tmp_path / _scratch_name(os.getpid())))
    finally:
        tempfile.tempdir = before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([living.name, other_host.name, _scratch_name(os.getpid())])
