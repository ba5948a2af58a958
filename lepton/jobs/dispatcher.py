"""The dispatcher: releases queued jobs to Celery, reaps lost ones, enforces cancels.

Jobs wait in the database, not in the broker, so that order is decided here:
- only as many jobs are released to a queue as its live workers have slots for, plus a
  small backlog (LEPTON_DISPATCH_BACKLOG_PER_SLOT) so workers never idle between passes;
- the next job goes to the department with the least work released or running (fair
  share), then by priority (10 first), then by age;
- a department never has more than `max_concurrent_jobs` released or running, and its
  GPU jobs stop being released once its monthly GPU minutes are used;
- a GPU job waits with a visible reason while no worker serves the `gpu` queue, or runs on
  CPU when its kind allows it (and says so).
One dispatcher runs per installation (`manage.py run_dispatcher`); on PostgreSQL an
advisory lock keeps a second one from releasing the same jobs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lepton import audit
from lepton.i18n import translated
from lepton.jobs.models import Job, JobLogLine, JobStatus, Resource, WorkerHeartbeat
from lepton.jobs.registry import get_kind
from lepton.jobs.runner import job_language
from phrases import gettext_noop, phrase

log = logging.getLogger(__name__)

_ADVISORY_LOCK_ID = 0x4C4550544F4E  # "LEPTON"
CANDIDATE_LIMIT = 1000
REASONS_EVERY_SECONDS = 2.0
ALIVE_KEY = "lepton:dispatcher:last_pass"
_last_full_pass = 0.0
_had_slot_waiters = False
SLOT_REASON = gettext_noop("Waiting for a free worker slot.")
_last_alive_mark = 0.0


def _mark_alive() -> None:
    """Tell /healthz that a dispatcher is passing (in the shared cache, at most once a second)."""
    global _last_alive_mark
    if time.monotonic() - _last_alive_mark >= 1.0:
        cache.set(ALIVE_KEY, time.time(), timeout=None)
        _last_alive_mark = time.monotonic()


def dispatcher_last_pass_age() -> float | None:
    """Seconds since a dispatcher last passed, or None when none ever did."""
    last = cache.get(ALIVE_KEY)
    return None if last is None else max(0.0, time.time() - last)


@dataclass
class DispatchReport:
    released: list = field(default_factory=list)
    waiting: dict = field(default_factory=dict)
    # Jobs wait only for a worker slot: the loop looks again soon (a slot frees when a job ends).
    slot_bound: bool = False


def live_workers(now=None):
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(last_seen__gte=now - timedelta(seconds=settings.LEPTON_WORKER_STALE_SECONDS))


def queue_slots(now=None) -> dict[str, int]:
    """{queue: worker slots} over the live workers."""
    slots: dict[str, int] = defaultdict(int)
    for worker in live_workers(now):
        for queue in worker.queues:
            slots[queue] += worker.concurrency
    return dict(slots)


def gpu_minutes_used(department_ids, now=None) -> dict[int, float]:
    """GPU minutes used this calendar month per department (running jobs count up to now)."""
    now = now or timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used: dict[int, float] = defaultdict(float)
    rows = (
        Job.objects.filter(department_id__in=department_ids, queue=Resource.GPU, started_at__isnull=False)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=month_start))
        .values_list("department_id", "started_at", "finished_at")
    )
    for department_id, started, finished in rows:
        start = max(started, month_start)
        used[department_id] += max(0.0, ((finished or now) - start).total_seconds() / 60)
    return used


def _lock() -> bool:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_ADVISORY_LOCK_ID])
            return cursor.fetchone()[0]
    return True  # SQLite: transactions are IMMEDIATE, so writers are serialised already.


def _send(job_id: str, queue: str, task_id: str, time_limit: int) -> None:
    from lepton.jobs.tasks import run_job

    try:
        run_job.apply_async(args=[job_id], queue=queue, task_id=task_id, soft_time_limit=time_limit, time_limit=time_limit + 60)
    except Exception:  # noqa: BLE001 - broker down: give the job back to the next pass
        log.exception("could not send job %s to queue %s; it stays queued", job_id, queue)
        job = Job.objects.filter(pk=job_id).first()
        reason = _in_language(job, gettext_noop("The broker could not be reached; retrying."), {}) if job else ""
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, celery_task_id=task_id).update(
            released_at=None, queue="", wait_reason=reason
        )


def _in_language(job: Job, words: str, languages: dict) -> str:
    """`words` (an English Phrase) in the language of who asked for `job`; `languages` remembers
    each person's language for one pass."""
    if job.requested_by_id not in languages:
        languages[job.requested_by_id] = job_language(job)
    with translation.override(languages[job.requested_by_id]):
        return translated(words)


def dispatch(now=None) -> DispatchReport:
    """One pass: release what fits, record why the rest waits."""
    global _last_full_pass, _had_slot_waiters
    now = now or timezone.now()
    report = DispatchReport()
    _mark_alive()
    with transaction.atomic():
        if not _lock():
            return report
        slots = queue_slots(now)
        in_flight: dict[str, int] = defaultdict(int)
        active: dict[int | None, int] = defaultdict(int)
        for queue, department_id, n in (
            Job.objects.filter(Q(status=JobStatus.RUNNING) | Q(status=JobStatus.QUEUED, released_at__isnull=False))
            .values_list("queue", "department_id")
            .annotate(n=Count("pk"))
            .values_list("queue", "department_id", "n")
        ):
            in_flight[queue] += n
            active[department_id] += n
        backlog = settings.LEPTON_DISPATCH_BACKLOG_PER_SLOT
        free = {q: n * (1 + backlog) - in_flight.get(q, 0) for q, n in slots.items()}
        # With every queue full, reading the waiting jobs only refreshes their reasons: do it now and then.
        if free and max(free.values()) <= 0 and time.monotonic() - _last_full_pass < REASONS_EVERY_SECONDS:
            report.slot_bound = _had_slot_waiters
            return report
        _last_full_pass = time.monotonic()
        candidates = list(
            Job.objects.filter(status=JobStatus.QUEUED, released_at__isnull=True)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .select_related("department")
            .order_by("-priority", "queued_at")[:CANDIDATE_LIMIT]
        )
        if not candidates:
            return report
        gpu_departments = {j.department_id for j in candidates if j.resource == Resource.GPU}
        gpu_used = gpu_minutes_used(gpu_departments, now) if gpu_departments else {}

        # Work out each candidate's target queue, or why it cannot go anywhere now.
        pending: dict[int | None, list] = defaultdict(list)  # department -> [(job, queue, note)] by priority
        for job in candidates:
            dept = job.department
            kind = get_kind(job.kind)
            if job.resource == Resource.GPU:
                if dept is not None and gpu_used.get(job.department_id, 0.0) >= dept.gpu_minutes_per_month:
                    report.waiting[job.pk] = phrase(
                        gettext_noop("%(department)s has used its %(minutes)s GPU minutes for this month."),
                        department=dept.name,
                        minutes=dept.gpu_minutes_per_month,
                    )
                    continue
                if slots.get(Resource.GPU, 0) > 0:
                    pending[job.department_id].append((job, Resource.GPU, ""))
                elif kind is not None and kind.cpu_fallback:
                    pending[job.department_id].append(
                        (job, Resource.CPU, gettext_noop("No GPU worker is online: running on CPU (slower)."))
                    )
                else:
                    report.waiting[job.pk] = gettext_noop("Waiting for a GPU worker: none is online.")
                continue
            pending[job.department_id].append((job, Resource.CPU, ""))

        releases: list[tuple[Job, str, str, str]] = []  # (job, queue, note, celery task id)
        languages: dict = {}  # requester id -> language, for this pass
        # Fair share: repeatedly take the head job of the department with the least active work.
        heads = {dept: 0 for dept in pending}
        while heads:

            def order(dept):
                job = pending[dept][heads[dept]][0]
                return (active.get(dept, 0), -job.priority, job.queued_at)

            dept = min(heads, key=order)
            job, queue, note = pending[dept][heads[dept]]
            heads[dept] += 1
            if heads[dept] >= len(pending[dept]):
                del heads[dept]
            if job.department is not None and active.get(dept, 0) >= job.department.max_concurrent_jobs:
                report.waiting[job.pk] = phrase(
                    gettext_noop("%(department)s is at its limit of %(limit)s concurrent jobs."),
                    department=job.department.name,
                    limit=job.department.max_concurrent_jobs,
                )
                continue
            if free.get(queue, 0) <= 0:
                report.waiting[job.pk] = (
                    SLOT_REASON
                    if slots.get(queue)
                    else phrase(gettext_noop("Waiting for a worker on the '%(queue)s' queue: none is online."), queue=queue)
                )
                continue
            free[queue] -= 1
            active[dept] = active.get(dept, 0) + 1
            releases.append((job, queue, _in_language(job, note, languages) if note else "", str(uuid.uuid4())))

        _release(releases, now, report)

        _had_slot_waiters = report.slot_bound = any(r == SLOT_REASON for r in report.waiting.values())

        # Record the reasons, each in the language of who asked, writing only those that changed.
        by_pk = {j.pk: j for j in candidates}
        by_reason: dict[str, list] = defaultdict(list)
        for job_id, reason in report.waiting.items():
            words = _in_language(by_pk[job_id], reason, languages)
            if by_pk[job_id].wait_reason != words:
                by_reason[words].append(job_id)
        for reason, ids in by_reason.items():
            Job.objects.filter(pk__in=ids, status=JobStatus.QUEUED, released_at__isnull=True).update(wait_reason=reason[:300])
    return report


def _release(releases, now, report: DispatchReport) -> None:
    """Mark the chosen jobs released in one UPDATE and send their messages after commit."""
    if not releases:
        return
    ids = [job.pk for job, *_rest in releases]

    def per_job(index: int):
        return Case(*[When(pk=r[0].pk, then=Value(r[index])) for r in releases], output_field=CharField())

    # Still queued and unreleased: a cancel that landed meanwhile keeps its job out.
    updated = Job.objects.filter(pk__in=ids, status=JobStatus.QUEUED, released_at__isnull=True).update(
        released_at=now, queue=per_job(1), wait_reason=per_job(2), celery_task_id=per_job(3)
    )
    if updated != len(releases):
        task_ids = {r[3] for r in releases}
        kept = set(Job.objects.filter(pk__in=ids, celery_task_id__in=task_ids).values_list("pk", flat=True))
        releases = [r for r in releases if r[0].pk in kept]
    JobLogLine.objects.bulk_create(
        [JobLogLine(job=job, level="warning", message=note) for job, _queue, note, _task in releases if note]
    )
    for job, queue, _note, task_id in releases:
        report.released.append(job.pk)
        time_limit = kind.time_limit if (kind := get_kind(job.kind)) else 3600
        transaction.on_commit(lambda j=str(job.pk), q=queue, t=task_id, tl=time_limit: _send(j, q, t, tl))


def _requeue_or_fail(job: Job, reason: str, now) -> str:
    """`reason` (an English Phrase) is written to the job in the language of who asked; the audit keeps the English."""
    words = {"attempts": job.attempts, "max": job.max_attempts}
    with translation.override(job_language(job)):
        words["reason"] = translated(reason)
        if job.cancel_requested_at is not None:
            status, fields = JobStatus.CANCELLED, {"finished_at": now}
            message = _("%(reason)s A cancel was pending: cancelled.") % words
        elif job.attempts < job.max_attempts:
            status, fields = JobStatus.QUEUED, {"released_at": None, "queue": "", "worker": ""}
            message = _("%(reason)s Requeued (attempt %(attempts)s of %(max)s used).") % words
        else:
            status = JobStatus.FAILED
            message = _("%(reason)s No attempts left (%(max)s used).") % words
            fields = {"finished_at": now, "error_message": message}
    with transaction.atomic():
        done = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(status=status, **fields)
        if done:
            JobLogLine.objects.create(job=job, level="error" if status == JobStatus.FAILED else "warning", message=message)
            audit.record(
                actor=None,
                action="job.reap",
                obj=job,
                department=job.department,
                changes={"status": [JobStatus.RUNNING, status], "reason": str(reason)},
            )
    return status if done else "fenced"


def _revoke(task_id: str) -> None:
    from lepton.celery import app

    if task_id:
        try:
            app.control.revoke(task_id, terminate=True, signal="SIGKILL")
        except Exception:  # noqa: BLE001 - a broker without remote control: the fence still holds
            log.warning("could not revoke task %s", task_id, exc_info=True)


def reap(now=None) -> dict[str, list]:
    """Requeue or fail jobs whose worker went silent; end overdue cancels and time limits."""
    now = now or timezone.now()
    outcome: dict[str, list] = defaultdict(list)
    stale_before = now - timedelta(seconds=settings.LEPTON_JOB_STALE_SECONDS)
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before).select_related("department"):
        reason = phrase(
            gettext_noop("Worker %(worker)s stopped responding (no heartbeat since %(time)s)."),
            worker=job.worker or "?",
            time=f"{job.heartbeat_at:%H:%M:%S}",
        )
        status = _requeue_or_fail(job, reason, now)
        outcome[status].append(job.pk)

    grace_before = now - timedelta(seconds=settings.LEPTON_CANCEL_GRACE_SECONDS)
    for job in Job.objects.filter(status=JobStatus.RUNNING, cancel_requested_at__lt=grace_before).select_related("department"):
        _revoke(job.celery_task_id)
        with transaction.atomic():
            if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
                status=JobStatus.CANCELLED, finished_at=now
            ):
                with translation.override(job_language(job)):
                    message = _("Did not stop within the grace period: revoked.")
                JobLogLine.objects.create(job=job, level="warning", message=message)
                audit.record(
                    actor=None, action="job.revoke", obj=job, department=job.department, changes={"reason": "cancel grace period"}
                )
                outcome["revoked"].append(job.pk)

    for job in Job.objects.filter(status=JobStatus.RUNNING, started_at__isnull=False).select_related("department"):
        kind = get_kind(job.kind)
        limit = (kind.time_limit if kind else 3600) + settings.LEPTON_CANCEL_GRACE_SECONDS
        if (now - job.started_at).total_seconds() > limit:
            _revoke(job.celery_task_id)
            with translation.override(job_language(job)):
                message = _("Stopped: the time limit of %(seconds).0f s was exceeded.") % {
                    "seconds": limit - settings.LEPTON_CANCEL_GRACE_SECONDS
                }
            with transaction.atomic():
                if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
                    status=JobStatus.FAILED, finished_at=now, error_message=message
                ):
                    JobLogLine.objects.create(job=job, level="error", message=message)
                    outcome["timed_out"].append(job.pk)

    # Released messages nobody picked up (a lost message, a queue with no consumer): release again.
    lost_before = now - timedelta(seconds=settings.LEPTON_RELEASE_TIMEOUT_SECONDS)
    n = Job.objects.filter(status=JobStatus.QUEUED, released_at__lt=lost_before).update(released_at=None, queue="")
    if n:
        outcome["rereleased"].append(n)
    return dict(outcome)


def run_periodic(last_runs: dict[str, float], clock=time.monotonic) -> dict[str, object]:
    """Call each of LEPTON_PERIODIC_TASKS whose interval has passed; {path: result or error text}.

    The core imports the parts' functions by their dotted path only here, so `lepton` does not
    depend on them. One failing task is reported and does not stop the others or the loop.
    """
    from django.utils.module_loading import import_string

    outcome: dict[str, object] = {}
    for path, every in settings.LEPTON_PERIODIC_TASKS:
        now = clock()
        if now - last_runs.get(path, float("-inf")) < every:
            continue
        last_runs[path] = now
        try:
            outcome[path] = import_string(path)()
        except Exception as exc:  # noqa: BLE001 - reported by the caller; the next interval tries again
            outcome[path] = f"failed: {exc}"
    return outcome
