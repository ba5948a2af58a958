"""Monitoring's tables: request traffic per minute and active people per day (written by
monitoring.traffic), and the drift reference of a model version with its drift per feature and
window (written by the drift job only, monitoring.services; read through monitoring.selectors;
deleting a version deletes its drift).

Everything else the dashboards show is read from the other parts' tables at request time.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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


class ReferenceStatus(models.TextChoices):
    READY = "ready", _("Ready")
    UNAVAILABLE = "unavailable", _("Unavailable")


class DriftReference(models.Model):
    """The training inputs of one model version, profiled once (monitoring.engine.drift.profile_feature).

    Built from the rows the version was fitted on (its run's data version less the holdout), the
    first time drift is computed for it. `unavailable` says, in `reason` (a code that
    monitoring.selectors words), why a version gets no drift: the periodic pass skips it.
    """

    version = models.OneToOneField("models_repo.ModelVersion", on_delete=models.CASCADE, related_name="drift_reference")
    status = models.CharField(max_length=20, choices=ReferenceStatus.choices)
    reason = models.CharField(max_length=40, blank=True)
    detail = models.TextField(blank=True)  # what went wrong in words, when reading the data failed
    dataset_version = models.ForeignKey(
        "datalake.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rows = models.PositiveIntegerField(default=0)  # training rows profiled
    # How the training rows were found: "holdout_excluded", "time_cut" (windowed models), "all_rows".
    rows_from = models.CharField(max_length=20, blank=True)
    features = models.JSONField(default=list, blank=True)  # one profile per input column
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"drift reference of {self.version_id} ({self.status})"


class DriftStatus(models.TextChoices):
    STABLE = "stable", _("Stable")
    MODERATE = "moderate", _("Moderate drift")
    SIGNIFICANT = "significant", _("Significant drift")
    INSUFFICIENT = "insufficient", _("Too few inputs")
    SKIPPED = "skipped", _("Not compared")


class FeatureDrift(models.Model):
    """The drift of one input of a version over one window of sampled predictions, against its reference.

    One row per (version, feature, window end): a job that runs again for the same window
    replaces it. `psi` is None unless the status is stable, moderate or significant.
    """

    version = models.ForeignKey("models_repo.ModelVersion", on_delete=models.CASCADE, related_name="feature_drifts")
    feature = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    kind = models.CharField(max_length=20)  # numeric | categorical | skipped
    psi = models.FloatField(null=True, blank=True)
    ks_statistic = models.FloatField(null=True, blank=True)
    ks_pvalue = models.FloatField(null=True, blank=True)
    sample_size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=DriftStatus.choices)
    reason = models.CharField(max_length=40, blank=True)
    bins = models.JSONField(default=dict, blank=True)  # {labels, expected, actual} shares
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["version", "-window_end", "feature"]
        constraints = [models.UniqueConstraint(fields=["version", "feature", "window_end"], name="feature_drift_unique_window")]
        indexes = [models.Index(fields=["version", "-window_end"], name="feature_drift_latest")]

    def __str__(self) -> str:
        return f"{self.version_id} {self.feature} @ {self.window_end:%Y-%m-%d %H:%M}: {self.status}"
