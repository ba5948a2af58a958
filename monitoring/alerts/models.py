"""Alerting tables: rules per department, the alerts they raise, in-app notifications, webhook deliveries.

Written only by monitoring.alerts.services (the periodic evaluation and delivery passes, and
people's changes to rules and alerts); imported into monitoring.models so Django sees them.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    DRIFT_PSI = "drift_psi", _("Input drift (PSI) above a threshold")
    ERROR_RATE = "error_rate", _("Model error rate above a threshold")
    P99_LATENCY = "p99_latency", _("Model p99 latency above a threshold")
    QUALITY_CHECK_FAILED = "quality_check_failed", _("A dataset quality check failed")
    JOB_FAILED = "job_failed", _("A job failed")
    QUOTA_NEARLY_USED = "quota_nearly_used", _("A quota is nearly used")
    DATASET_STALE = "dataset_stale", _("A dataset has no new version")


class AlertRule(models.Model):
    """A department's condition to watch, evaluated by the periodic pass, and where to tell people.

    `threshold` means, by kind: PSI (drift_psi), a share of requests 0–1 (error_rate),
    milliseconds (p99_latency), a share of the quota 0–1 (quota_nearly_used), days without a
    new version (dataset_stale); quality_check_failed and job_failed have none. `model` or
    `dataset` narrows a rule to one object (empty: every one of the department).
    monitoring.alerts.services.rule_values checks which fields each kind takes.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    model = models.ForeignKey("models_repo.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey("datalake.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    threshold = models.FloatField(null=True, blank=True)
    window_minutes = models.PositiveIntegerField(default=60)
    notify_in_app = models.BooleanField(default=True)
    notify_email = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)
    # The HMAC-SHA256 key of this rule's webhook bodies, encrypted with lepton.crypto.
    webhook_secret_encrypted = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)  # why the last evaluation failed ("" when it worked)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["department__name", "name"]
        indexes = [models.Index(fields=["enabled", "kind"], name="alert_rule_enabled")]

    def __str__(self) -> str:
        return self.name

    def webhook_secret(self) -> str:
        """The signing secret in clear; raises lepton.crypto.CredentialError when no configured key opens it."""
        from lepton.crypto import decrypt

        return decrypt(self.webhook_secret_encrypted) if self.webhook_secret_encrypted else ""


class AlertState(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Alert(models.Model):
    """One occurrence of a rule's condition for one subject (`dedup_key`: a model's feature, a dataset, a job).

    While it is open or acknowledged, at most one alert exists per (rule, dedup_key): the
    database refuses a second (alert_unresolved_once), so repeated evaluations only move
    `last_seen_at` and `value`. It is resolved by a person, or by the evaluation when the
    condition clears (`resolved_by` empty); the next occurrence is a new alert.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    department = models.ForeignKey("lepton.Department", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    dedup_key = models.CharField(max_length=200)
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    value = models.FloatField(null=True, blank=True)
    message = models.TextField()
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "dedup_key"], condition=~Q(state="resolved"), name="alert_unresolved_once"),
        ]
        indexes = [
            models.Index(fields=["department", "-first_seen_at"], name="alert_department_recent"),
            models.Index(fields=["state", "department", "kind"], name="alert_state"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} [{self.dedup_key}] {self.state}"


class Notification(models.Model):
    """An alert told to one person in the app; unread until they read it (the top bar counts them)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "alert"], name="notification_once_per_alert")]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message[:60]}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(models.Model):
    """One JSON body to POST to a rule's webhook, tried until a 2xx answer or LEPTON_WEBHOOK_MAX_ATTEMPTS.

    The body is fixed when the event happens; the signature is computed at each attempt from
    the rule's current secret. Pending deliveries wait until `next_attempt_at` (exponential
    backoff, monitoring.alerts.services.webhooks_deliver).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=30)  # alert.opened | alert.resolved | alert.acknowledged
    url = models.URLField(max_length=500)
    body = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status}, {self.attempts})"
