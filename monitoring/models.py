"""What monitoring records itself: request traffic per minute, and who was active each day.

Everything else the dashboards show is read from the other parts' tables (jobs, datasets,
versions, models, schedule runs) at request time.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

# Upper bounds (ms) of the latency buckets; the last column counts everything slower.
LATENCY_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500)
BUCKET_FIELDS = tuple(f"le_{bound}" for bound in LATENCY_BOUNDS_MS) + ("le_inf",)


class TrafficKind(models.TextChoices):
    API = "api", "API"
    WEB = "web", "Web"


class TrafficMinute(models.Model):
    """Requests one web process answered in one minute, of one kind (written in bulk by monitoring.traffic).

    Several processes write rows for the same minute: readers sum them. Latencies are counted
    in fixed buckets (LATENCY_BOUNDS_MS) so that percentiles of any period come from sums.
    """

    minute = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=3, choices=TrafficKind.choices)
    requests = models.PositiveIntegerField(default=0)
    errors_4xx = models.PositiveIntegerField(default=0)
    errors_5xx = models.PositiveIntegerField(default=0)
    latency_ms_sum = models.FloatField(default=0.0)
    le_5 = models.PositiveIntegerField(default=0)
    le_10 = models.PositiveIntegerField(default=0)
    le_25 = models.PositiveIntegerField(default=0)
    le_50 = models.PositiveIntegerField(default=0)
    le_100 = models.PositiveIntegerField(default=0)
    le_250 = models.PositiveIntegerField(default=0)
    le_500 = models.PositiveIntegerField(default=0)
    le_1000 = models.PositiveIntegerField(default=0)
    le_2500 = models.PositiveIntegerField(default=0)
    le_inf = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["minute"]
        indexes = [models.Index(fields=["kind", "minute"])]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.kind} {self.requests}"


class ActiveUser(models.Model):
    """A person who used the platform (signed in, or with a token) on a day."""

    day = models.DateField(default=timezone.localdate, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "user"], name="monitoring_active_user_once_a_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.user_id}"
