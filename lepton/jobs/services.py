"""State changes of jobs asked for by people: submit, cancel, requeue.

The worker side (claim, progress, finish) lives in lepton/jobs/runner.py and the
dispatcher side (release, reap) in lepton/jobs/dispatcher.py.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.models import FINISHED_STATUSES, Job, JobLogLine, JobStatus
from lepton.jobs.registry import get_kind
from lepton.jobs.runner import job_language
from lepton.models import Department


def _validate(kind_name: str, params, priority) -> tuple:
    errors = {}
    kind = get_kind(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        errors["kind"] = [_("Unknown job kind '%(kind)s'.") % {"kind": kind_name}]
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 10:
        errors["priority"] = [_("Priority must be a whole number from 1 (lowest) to 10 (highest).")]
    if params is None:
        params = {}
    if not isinstance(params, dict):
        errors["params"] = [_("Params must be a JSON object.")]
    cleaned = None
    if kind is not None and "params" not in errors:
        serializer = kind.params(data=params)
        if serializer.is_valid():
            # The representation, not validated_data: params are stored as JSON (UUIDs, dates as text).
            cleaned = dict(serializer.data)
        else:
            for field, messages in serializer.errors.items():
                key = "params" if field == "non_field_errors" else f"params.{field}"
                errors[key] = [str(m) for m in messages]
    if errors:
        details = "; ".join(f"{k}: {v[0]}" for k, v in errors.items())
        raise Invalid(_("The job cannot be started: %(details)s") % {"details": details}, fields=errors)
    return kind, cleaned


def job_submit(
    *, actor, department: Department, kind: str, params: dict | None = None, priority: int = 5, user_request: bool = True
) -> Job:
    """Queue a job for `department`. Validates the kind's params; the dispatcher releases it.

    `user_request=True` (views, API) allows only kinds marked user-startable; services
    that start their own kinds (training, scheduling…) pass False after their own checks.
    """
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "submit", department):
        raise Forbidden(_("Your role in this department does not allow starting jobs (members and above may)."))
    job_kind, cleaned = _validate(kind, params, priority)
    if user_request and not job_kind.user_startable:
        raise Invalid(
            _("Jobs of kind '%(kind)s' are started by the platform, not directly.") % {"kind": kind},
            fields={"kind": [_("'%(kind)s' cannot be started directly.") % {"kind": kind}]},
        )
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            params=cleaned,
            department=department,
            requested_by=actor if actor and actor.is_authenticated else None,
            priority=priority,
            resource=job_kind.resource,
            max_attempts=job_kind.max_attempts,
        )
        with translation.override(job_language(job)):  # a job's lines are in the language of who asked
            who = actor.get_username() if actor else _("the platform")
            JobLogLine.objects.create(
                job=job, message=_("Queued by %(user)s with priority %(priority)s.") % {"user": who, "priority": priority}
            )
        audit.record(actor=actor, action="job.submit", obj=job, changes={"kind": kind, "params": cleaned, "priority": priority})
    return job


def job_cancel(*, actor, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop (it is revoked after a grace period)."""
    if not policy.can(actor, "view", job):
        raise NotFound()
    if not policy.can(actor, "cancel", job):
        raise Forbidden(_("Only the person who started the job or a maintainer may cancel it."))
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status in FINISHED_STATUSES:
            raise Conflict(
                _("The job has already ended (%(status)s); there is nothing to cancel.") % {"status": job.get_status_display()},
                code="job_finished",
            )
        if job.cancel_requested_at is not None:
            raise Conflict(_("A cancel was already asked for; the job stops at its next step."), code="cancel_pending")
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = now
            job.cancel_requested_at = now
            job.cancel_requested_by = actor
            job.wait_reason = ""
            job.save(update_fields=["status", "finished_at", "cancel_requested_at", "cancel_requested_by", "wait_reason"])
            message = gettext_noop("Cancelled by %(user)s before it started.")
        else:
            job.cancel_requested_at = now
            job.cancel_requested_by = actor
            job.save(update_fields=["cancel_requested_at", "cancel_requested_by"])
            message = gettext_noop("Cancel asked by %(user)s; the job stops at its next step.")
        with translation.override(job_language(job)):
            message = _(message) % {"user": actor.get_username()}
        JobLogLine.objects.create(job=job, level="warning", message=message)
        audit.record(actor=actor, action="job.cancel", obj=job, changes={"status": job.status})
    return job


def job_requeue(*, actor, job: Job) -> Job:
    """Run a failed or cancelled job again as a new attempt (maintainers)."""
    if not policy.can(actor, "view", job):
        raise NotFound()
    if not policy.can(actor, "cancel", job) or not policy.can(actor, "submit", job.department):
        raise Forbidden(_("Only the person who started the job or a maintainer may requeue it."))
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise Conflict(
                _("Only failed or cancelled jobs can be requeued; this one is %(status)s.")
                % {"status": job.get_status_display()},
                code="job_not_finished",
            )
        old = job.status
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.QUEUED,
            released_at=None,
            queue="",
            not_before=None,
            finished_at=None,
            cancel_requested_at=None,
            cancel_requested_by=None,
            error_message="",
            error_traceback="",
            progress=0,
            progress_message="",
            wait_reason="",
            max_attempts=job.attempts + get_kind(job.kind).max_attempts if get_kind(job.kind) else job.attempts + 1,
        )
        with translation.override(job_language(job)):
            message = _("Requeued by %(user)s (was %(status)s).") % {
                "user": actor.get_username(),
                "status": JobStatus(old).label,
            }
        JobLogLine.objects.create(job=job, level="warning", message=message)
        audit.record(actor=actor, action="job.requeue", obj=job, changes={"status": [old, JobStatus.QUEUED]})
    job.refresh_from_db()
    return job


def platform_job_submit(*, kind: str, params: dict | None = None, priority: int = 5) -> Job:
    """Queue a platform job (no department; only staff see it), e.g. the self-check of /healthz."""
    job_kind, cleaned = _validate(kind, params, priority)
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            params=cleaned,
            department=None,
            priority=priority,
            resource=job_kind.resource,
            max_attempts=job_kind.max_attempts,
        )
        JobLogLine.objects.create(job=job, message=_("Queued by the platform."))
        audit.record(actor=None, action="job.submit", obj=job, changes={"kind": kind, "params": cleaned})
    return job
