"""The worker side of a job: claim, heartbeat, progress, finish.

Every write after the claim is fenced on (status=running, attempts=<this attempt>): if
the reaper gave the job to another worker, or a cancel ended it, this run's late writes
change nothing. That is what makes "runs to completion exactly once" hold.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lepton import audit
from lepton.i18n import translated
from lepton.jobs.models import Job, JobLogLine, JobStatus
from lepton.jobs.registry import JobCancelled, JobError, JobTimedOut, TransientJobError, get_kind

log = logging.getLogger(__name__)

# Errors worth a retry: the database or the network was briefly away.
TRANSIENT_ERRORS = (TransientJobError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


def backoff_seconds(attempt: int) -> float:
    """Wait before attempt n+1: base, 4×base, 16×base… (5 s, 20 s, 80 s by default), capped at 10 minutes."""
    return min(settings.LEPTON_JOB_RETRY_BACKOFF_SECONDS * 4 ** (attempt - 1), 600.0)


class JobContext:
    """What a handler gets: its job, progress and log reporting, cooperative cancel checks."""

    def __init__(self, job: Job, attempt: int, time_limit: float):
        self.job = job
        self.attempt = attempt
        self.deadline = time.monotonic() + time_limit
        self.time_limit = time_limit

    def _fenced(self):
        return Job.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING, attempts=self.attempt)

    def progress(self, percent: float, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        # An engine's English words (phrases.Phrase, or a text marked with gettext_noop) in the job's language.
        message = translated(message) if message else message
        self._fenced().update(progress=percent, progress_message=message[:300], heartbeat_at=timezone.now())

    def log(self, message: str, level: str = "info") -> None:
        JobLogLine.objects.create(job_id=self.job.pk, level=level, message=translated(message))

    def check_cancelled(self) -> None:
        """Call between steps: raises JobCancelled or JobTimedOut when the job must stop."""
        if time.monotonic() > self.deadline:
            raise JobTimedOut()
        row = Job.objects.filter(pk=self.job.pk).values("status", "attempts", "cancel_requested_at").first()
        if row is None or row["cancel_requested_at"] is not None:
            raise JobCancelled()
        if row["status"] != JobStatus.RUNNING or row["attempts"] != self.attempt:
            # The reaper handed the job on (this worker looked dead): stop quietly.
            raise JobCancelled()


class _Heartbeats:
    """One thread per worker process touches the heartbeat of every job the process runs.

    A thread (and a database connection) per job would cost more than a no-op job itself;
    one shared beat costs one UPDATE per interval whatever the number of jobs. Each job is
    fenced on its attempt, so a run that was handed on never keeps the new run's row alive.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._running: dict = {}  # job id -> attempt
        self._thread = None
        self._pid = None

    def add(self, job_id, attempt: int) -> None:
        with self._lock:
            self._running[job_id] = attempt
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # a forked pool child starts its own thread
                self._thread = threading.Thread(target=self._beat, name="lepton-job-heartbeats", daemon=True)
                self._thread.start()

    def remove(self, job_id) -> None:
        with self._lock:
            self._running.pop(job_id, None)

    def _beat(self) -> None:
        try:
            while True:
                time.sleep(settings.LEPTON_JOB_HEARTBEAT_SECONDS)
                with self._lock:
                    running = dict(self._running)
                if not running:
                    continue
                fence = Q()
                for job_id, attempt in running.items():
                    fence |= Q(pk=job_id, attempts=attempt)
                try:
                    Job.objects.filter(fence, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
                except DatabaseError:
                    log.warning("job heartbeat failed", exc_info=True)
                    connection.close()
        finally:
            connection.close()


heartbeats = _Heartbeats()


def claim(job_id, hostname: str) -> Job | None:
    """Compare-and-set queued → running. None when another delivery already took it."""
    job = Job.objects.select_related("department").filter(pk=job_id).first()
    now = timezone.now()
    if job is None or job.status != JobStatus.QUEUED or (job.not_before and job.not_before > now):
        return None
    wait_seconds = job.wait_seconds if job.wait_seconds is not None else (now - job.queued_at).total_seconds()
    fields = {
        "status": JobStatus.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "attempts": job.attempts + 1,
        "worker": hostname[:200],
        "progress": 0,
        "progress_message": "",
        "wait_seconds": wait_seconds,
    }
    with transaction.atomic():
        # The status and attempts in the filter make this a compare-and-set: one delivery wins.
        if Job.objects.filter(pk=job_id, status=JobStatus.QUEUED, attempts=job.attempts).update(**fields) != 1:
            return None
        with translation.override(job_language(job)):
            message = _("Started on %(worker)s (attempt %(attempt)s of %(attempts)s).") % {
                "worker": hostname,
                "attempt": job.attempts + 1,
                "attempts": job.max_attempts,
            }
        JobLogLine.objects.create(job_id=job_id, message=message)
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def _finish(job: Job, attempt: int, status: str, log_line: str = "", **fields) -> bool:
    """End this attempt (fenced), with its audit event and last log line, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        done = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=attempt).update(
            status=status, finished_at=now, heartbeat_at=now, wait_reason="", **fields
        )
        if done:
            if log_line:
                JobLogLine.objects.create(job_id=job.pk, message=log_line)
            audit.record(
                actor=None,
                action=f"job.{status}",
                obj=job,
                department=job.department,
                changes={"attempt": attempt, **({"error": fields["error_message"]} if fields.get("error_message") else {})},
            )
    return bool(done)


def _retry_or_fail(job: Job, attempt: int, exc: BaseException) -> str:
    """Called in the job's language (run())."""
    message = f"{type(exc).__name__}: {exc}"
    if attempt < job.max_attempts:
        delay = backoff_seconds(attempt)
        not_before = timezone.now() + timedelta(seconds=delay)
        requeued = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=attempt).update(
            status=JobStatus.QUEUED,
            released_at=None,
            queue="",
            worker="",
            not_before=not_before,
            wait_reason=_("Retrying in %(seconds).0f s after a transient error (attempt %(attempt)s of %(attempts)s).")
            % {"seconds": delay, "attempt": attempt, "attempts": job.max_attempts},
        )
        if requeued:
            JobLogLine.objects.create(
                job_id=job.pk,
                level="warning",
                message=_("Transient error, retry in %(seconds).0f s: %(error)s") % {"seconds": delay, "error": message},
            )
            return "retrying"
        return "fenced"
    words = {"attempt": attempt, "error": message}
    JobLogLine.objects.create(job_id=job.pk, level="error", message=_("Failed after %(attempt)s attempts: %(error)s") % words)
    _finish(
        job,
        attempt,
        JobStatus.FAILED,
        error_message=(_("Gave up after %(attempt)s attempts. Last error: %(error)s") % words)[:2000],
        error_traceback=traceback.format_exc(),
    )
    return "failed"


def job_language(job: Job) -> str:
    """The language a job writes its progress, log lines and errors in: the language kept by the
    person who asked for it (lepton.models.Profile), else the installation's default."""
    from lepton.selectors import kept_language

    if job.requested_by_id is not None:
        return kept_language(job.requested_by_id) or settings.LANGUAGE_CODE
    return settings.LANGUAGE_CODE


def run(job_id, *, hostname: str = "worker") -> str:
    """Run one job to its end. Returns what happened (for logs and tests).

    Database connections are recycled around each task by Celery's Django fix-up.
    """
    job = claim(job_id, hostname)
    if job is None:
        log.info("job %s not claimable (duplicate delivery, cancelled or finished): skipped", job_id)
        return "skipped"
    with translation.override(job_language(job)):  # its progress, log lines and errors in the asker's language
        return _run(job, hostname)


def _run(job: Job, hostname: str) -> str:
    attempt = job.attempts
    kind = get_kind(job.kind)
    if kind is None:
        message = _("No handler for job kind '%(kind)s' on worker %(worker)s.") % {"kind": job.kind, "worker": hostname}
        _finish(job, attempt, JobStatus.FAILED, error_message=message)
        return "failed"
    ctx = JobContext(job, attempt, kind.time_limit)
    heartbeats.add(job.pk, attempt)
    try:
        result = kind.handler(ctx, job.params) or {}
    except JobCancelled:
        JobLogLine.objects.create(job_id=job.pk, level="warning", message=_("Stopped on request."))
        _finish(job, attempt, JobStatus.CANCELLED)
        return "cancelled"
    except JobTimedOut:
        msg = _("Stopped: the time limit of %(seconds)s s for '%(kind)s' was exceeded.") % {
            "seconds": kind.time_limit,
            "kind": kind.name,
        }
        JobLogLine.objects.create(job_id=job.pk, level="error", message=msg)
        _finish(job, attempt, JobStatus.FAILED, error_message=msg)
        return "failed"
    except TRANSIENT_ERRORS as exc:
        return _retry_or_fail(job, attempt, exc)
    except JobError as exc:
        # The handler's own words: a Phrase of an engine or a text already in the job's language.
        msg = translated(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
        JobLogLine.objects.create(job_id=job.pk, level="error", message=msg)
        _finish(job, attempt, JobStatus.FAILED, error_message=msg[:2000])
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any handler error ends the job, with its traceback for staff
        log.exception("job %s (%s) failed", job.pk, job.kind)
        JobLogLine.objects.create(job_id=job.pk, level="error", message=f"{type(exc).__name__}: {exc}")
        _finish(
            job,
            attempt,
            JobStatus.FAILED,
            error_message=f"{type(exc).__name__}: {exc}"[:2000],
            error_traceback=traceback.format_exc(),
        )
        return "failed"
    finally:
        heartbeats.remove(job.pk)
    result_ref = str(result.pop("result_ref", "")) if isinstance(result, dict) else ""
    if not _finish(job, attempt, JobStatus.SUCCEEDED, _("Succeeded."), progress=100, result=result, result_ref=result_ref):
        log.warning("job %s finished after it was handed on or cancelled: result dropped", job.pk)
        return "fenced"
    return "succeeded"
