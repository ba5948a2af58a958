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


class Grain(models.TextChoices):
    MINUTE = "minute", _("Minute")
    HOUR = "hour", _("Hour")
    DAY = "day", _("Day")


class PredictionRollup(models.Model):
    """The prediction requests of one model version in one minute, hour or day (bucket = its start).

    Maintained by a periodic job from models_repo.PredictionLog (monitoring.rollups): a closed
    minute is recomputed from the raw logs, an hour from its minutes, a day from its hours, so a
    run repeated over the same period gives the same rows. Dashboards read these, never the raw
    table. Latencies are counted in the LATENCY_BOUNDS_MS buckets, like TrafficMinute.
    `outputs` is a mergeable distribution of the predictions served:
    {"kind": "classes", "counts": {label: n}} or {"kind": "numbers", "counts": {"1.2e+03": n}}
    (numbers rounded to two significant digits, the key written with format "{:.2g}").
    """

    grain = models.CharField(max_length=6, choices=Grain.choices)
    bucket = models.DateTimeField()
    model = models.ForeignKey("models_repo.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("models_repo.ModelVersion", on_delete=models.CASCADE, related_name="+")
    requests = models.PositiveIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)  # rows predicted by the requests served
    errors = models.PositiveIntegerField(default=0)  # requests refused (status_code >= 400)
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
    outputs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["bucket"]
        constraints = [
            models.UniqueConstraint(fields=["grain", "bucket", "version"], name="prediction_rollup_once"),
        ]
        indexes = [models.Index(fields=["model", "grain", "bucket"], name="prediction_rollup_model")]

    def __str__(self) -> str:
        return f"{self.grain} {self.bucket:%Y-%m-%d %H:%M} {self.version_id}: {self.requests}"


class RollupState(models.Model):
    """How far each grain of PredictionRollup is complete: every bucket before `done_until` is final."""

    grain = models.CharField(max_length=6, choices=Grain.choices, unique=True)
    done_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.grain} done until {self.done_until:%Y-%m-%d %H:%M}"


class PredictionFeedback(models.Model):
    """Ground truth posted back for one logged prediction request (monitoring's feedback API).

    `actual` holds one value per predicted row, in the request's order. The scores are computed
    when it arrives, against the logged outputs, and kept even after the raw log expires
    (`log` becomes null): classification counts `correct` rows; regression sums the
    absolute and squared errors. `predicted_at` is when the prediction was served, which is
    what "performance over time" is plotted against.
    """

    prediction_id = models.UUIDField(unique=True)
    log = models.OneToOneField(
        "models_repo.PredictionLog", null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )
    model = models.ForeignKey("models_repo.RegisteredModel", on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("models_repo.ModelVersion", on_delete=models.CASCADE, related_name="+")
    predicted_at = models.DateTimeField()
    actual = models.JSONField(default=list)
    rows = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(null=True, blank=True)
    abs_error_sum = models.FloatField(null=True, blank=True)
    squared_error_sum = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-predicted_at"]
        indexes = [models.Index(fields=["model", "predicted_at"], name="prediction_feedback_model")]

    def __str__(self) -> str:
        return f"feedback on {self.prediction_id}"


from monitoring.alerts.models import Alert, AlertRule, Notification, WebhookDelivery  # noqa: E402,F401  (alerting lives in monitoring.alerts)
