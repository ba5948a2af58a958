"""The model repository: training runs, registered models and their versions, aliases, promotions.

State changes go through models_repo/services; the computation (fit, evaluate, predict) lives
in models_repo/engine/ and knows nothing of these tables. Artifacts are blobs in the lake
(content-addressed, checksum-verified on read), never pickles uploaded by people.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class RegisteredModel(models.Model):
    """A named model of one department; its versions are immutable, aliases point at them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="registered_models")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text=_("Markdown; shown sanitised."))
    tags = models.JSONField(default=list, blank=True)
    # Other departments see the metadata (name, description, task) of a discoverable model and may ask for access.
    discoverable = models.BooleanField(default=False)
    task = models.CharField(max_length=40, blank=True)
    # The model card: intended_use, data, metrics, limitations, owner (free text each).
    card = models.JSONField(default=dict, blank=True)
    # The promotion gate: the metric compared on the holdout, and an optional floor that a
    # candidate may meet instead of beating production.
    gate_metric = models.CharField(max_length=40, blank=True)
    gate_threshold = models.FloatField(null=True, blank=True)
    # Continuous learning: train `retrain_spec` on every new published version of `retrain_dataset`
    # with the rights of `retrain_by`; with auto_promote, a candidate that passes the gate opens
    # a promotion request by itself (approval is still a person's).
    retrain_dataset = models.ForeignKey("datalake.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    retrain_spec = models.JSONField(default=dict, blank=True)
    retrain_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    auto_promote = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [models.UniqueConstraint(fields=["department", "slug"], name="registered_model_unique_slug")]

    def __str__(self) -> str:
        return f"{self.department.slug}/{self.slug}"


class TrainingRun(models.Model):
    """One training: its spec and data version in, metrics, curves and an artifact out (a Job runs it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="training_runs")
    name = models.CharField(max_length=200, blank=True)
    # The data it learnt from; kept as a label too, so a purged dataset leaves a readable record.
    dataset_version = models.ForeignKey(
        "datalake.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dataset_label = models.CharField(max_length=300, blank=True)
    spec = models.JSONField(default=dict)
    # Where a successful run registers its model (None: the run only evaluates).
    registered_model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    automatic = models.BooleanField(default=False)  # started by continuous learning on a new data version
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    job = models.ForeignKey("lepton.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The follow-up job that adds the learning curve and permutation importance of a scikit-learn
    # run once its model is registered (the model is usable before that work ends).
    analysis_job = models.ForeignKey("lepton.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flavor = models.CharField(max_length=20, blank=True)  # sklearn | keras | qpolicy
    task = models.CharField(max_length=40, blank=True)
    algorithm = models.CharField(max_length=60, blank=True)
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    cv = models.JSONField(default=dict, blank=True)
    candidates = models.JSONField(default=list, blank=True)
    curves = models.JSONField(default=dict, blank=True)
    importance = models.JSONField(default=list, blank=True)
    # Per-epoch metrics of Keras runs, appended while it trains (the run page polls them).
    epochs = models.JSONField(default=list, blank=True)
    input_schema = models.JSONField(default=list, blank=True)
    output = models.JSONField(default=dict, blank=True)
    holdout = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    packages = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    # What the training used: cpu_seconds, peak_rss_mb (the worker process's peak so far), worker, device.
    resources = models.JSONField(default=dict, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_bytes = models.BigIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or _("run %(id)s") % {"id": str(self.pk)[:8]}

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("models_repo:run", args=[self.pk])


class VersionSource(models.TextChoices):
    RUN = "run", _("Training run")
    UPLOAD = "upload", _("Uploaded file")


class VersionState(models.TextChoices):
    READY = "ready", _("Ready")
    # An uploaded .keras file waits for a worker to load it with safe_mode (models_repo.services.uploads).
    VALIDATING = "validating", _("Being validated")
    INVALID = "invalid", _("Refused at validation")


class ModelVersion(models.Model):
    """An immutable version of a registered model: one artifact, its input schema and evaluation.

    Only a `ready` version serves predictions or takes an alias (models_repo.serving, the registry).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=VersionSource.choices, default=VersionSource.RUN)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="versions")
    flavor = models.CharField(max_length=20)  # sklearn | keras | onnx | qpolicy (a scheduling policy: models_repo.external)
    task = models.CharField(max_length=40, blank=True)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.BigIntegerField(default=0)
    # The ONNX fast path, when the conversion reproduced the native predictions on the holdout.
    onnx_sha256 = models.CharField(max_length=64, blank=True)
    onnx_report = models.JSONField(default=dict, blank=True)
    input_schema = models.JSONField(default=list, blank=True)
    output = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    holdout = models.JSONField(default=dict, blank=True)
    dataset_version = models.ForeignKey(
        "datalake.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=VersionState.choices, default=VersionState.READY)
    status_reason = models.TextField(blank=True)  # why validation refused it
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [models.UniqueConstraint(fields=["model", "number"], name="model_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.model} v{self.number}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("models_repo:model", args=[self.model_id]) + f"#v{self.number}"


class ModelAlias(models.Model):
    """A movable name (production, staging, any) pointing at one version of a model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.SlugField(max_length=40)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="model_alias_unique_name")]

    def __str__(self) -> str:
        return f"{self.model}@{self.name}"


class AliasEvent(models.Model):
    """Every move of an alias: who moved it from which version to which, when and why."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.SlugField(max_length=40)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    # A rollback undoes the move before it: rolling back twice does not return to where it started.
    rollback = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model}@{self.alias} → {self.to_version_id or '-'}"


class PromotionStatus(models.TextChoices):
    CHECKING = "checking", _("Checking the gate")
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    GATE_FAILED = "gate_failed", _("Failed the gate")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class PromotionRequest(models.Model):
    """A request to point `production` (or another guarded alias) at a version: gate, then approval."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="promotions")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    alias = models.SlugField(max_length=40, default="production")
    status = models.CharField(max_length=20, choices=PromotionStatus.choices, default=PromotionStatus.PENDING, db_index=True)
    # The automatic gate's verdict: metric, candidate and production scores on the same holdout, passed, reason.
    gate = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    automatic = models.BooleanField(default=False)  # opened by continuous learning, not a person
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model}@{self.alias} ← {self.version_id} ({self.status})"


class PromotionSettings(models.Model):
    """A department's promotion rule: may the requester approve their own request?"""

    department = models.OneToOneField("lepton.Department", on_delete=models.CASCADE, related_name="promotion_settings")
    require_second_approver = models.BooleanField(
        default=True, help_text=_("A maintainer other than the requester must approve a promotion.")
    )

    def __str__(self) -> str:
        return f"promotion settings of {self.department_id}"


class PredictionLog(models.Model):
    """One prediction request served or refused (written in bulk off the request path).

    Every request of a resolved model is logged, with the `prediction_id` the answer carries so
    that ground truth can be posted back (monitoring's feedback API). `outputs` holds the
    predictions (at most LEPTON_PREDICTION_LOG_MAX_OUTPUTS); `inputs` holds the first rows of a
    sample of the requests only (LEPTON_PREDICTION_LOG_SAMPLE), for drift. A refused request has
    its HTTP status in `status_code` and its error code in `error`. Raw logs are deleted after
    LEPTON_PREDICTION_LOG_RETENTION_DAYS; monitoring.PredictionRollup keeps their aggregates.
    """

    prediction_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="prediction_logs")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="prediction_logs")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    rows = models.PositiveIntegerField(default=1)
    latency_ms = models.FloatField(default=0.0)
    status_code = models.PositiveSmallIntegerField(default=200)
    error = models.CharField(max_length=40, blank=True)
    inputs = models.JSONField(default=list, blank=True)
    outputs = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=20, default="api")  # api | browser | batch

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["model", "created_at"], name="prediction_log_model_time"),
            models.Index(fields=["version", "created_at"], name="prediction_log_version_time"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.rows} rows {self.latency_ms:.1f} ms"
