"""The job tables: `Job` is the single record of every piece of background work."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Resource(models.TextChoices):
    CPU = "cpu", _("CPU")
    GPU = "gpu", _("GPU")


class Job(models.Model):
    """One piece of background work, owned by a department.

    Lifecycle: queued → running → succeeded | failed | cancelled. A queued job waits in
    the database until the dispatcher releases it (`released_at`, `queue`) to a Celery
    queue; a worker claims it by compare-and-set on `status` and `attempts` fences every
    later write, so a job requeued after a lost worker completes exactly once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=80, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    # None for platform jobs (the self-check): only staff see those, and no quota applies.
    department = models.ForeignKey("lepton.Department", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    resource = models.CharField(max_length=3, choices=Resource.choices, default=Resource.CPU)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)

    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    progress_message = models.CharField(max_length=300, blank=True)
    # Why a queued job is not running yet (quota, no GPU worker, backoff…), or how it runs ("on CPU").
    wait_reason = models.CharField(max_length=300, blank=True)

    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    not_before = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    queue = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Seconds from the first queueing to the first start, kept when the job starts.
    wait_seconds = models.FloatField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)

    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    result = models.JSONField(default=dict, blank=True)
    # "app_label.model:pk" of the object the job produced, when it produced one.
    result_ref = models.CharField(max_length=120, blank=True)
    error_message = models.TextField(blank=True)
    error_traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-queued_at"]
        indexes = [
            models.Index(fields=["status", "released_at"]),
            models.Index(fields=["department", "status"]),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(priority__gte=1, priority__lte=10), name="job_priority_1_to_10"),
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        # No status here: the audit log keeps this text, and the status changes.
        return f"{self.kind} {str(self.id)[:8]}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class JobLogLine(models.Model):
    """One line of a job's log, appended by the handler or by the job system."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="log_lines")
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, default="info")
    message = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.level} {self.message[:60]}"


class WorkerHeartbeat(models.Model):
    """A live Celery worker: which queues it serves and how many jobs it runs at once.

    The dispatcher sizes releases by the live workers' slots and tells a GPU job why it
    waits when no worker serves the `gpu` queue; /healthz reports the freshest beat.
    """

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField(default=1)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} {self.queues}"
