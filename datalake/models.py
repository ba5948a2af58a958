"""The data-lake catalog: datasets and their immutable, content-hashed versions.

State changes go through datalake/services.py; the computation (ingest, profile, checks)
lives in datalake/engine/ and knows nothing of these tables.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class QualityStatus(models.TextChoices):
    UNCHECKED = "unchecked", _("No checks")  # no declared check ran on the latest version
    PASSING = "passing", _("Passing")  # every check passed on the latest published version
    WARNING = "warning", _("Warning")  # a non-blocking check failed on the latest published version
    FAILING = "failing", _("Failing")  # the newest version was refused by a blocking check


class Dataset(models.Model):
    """A named collection of versions owned by one department; soft-deleted to a 30-day trash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="datasets")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text=_("Markdown; shown sanitised."))
    tags = models.JSONField(default=list, blank=True)
    # Other departments see the metadata (never the rows) of a discoverable dataset.
    discoverable = models.BooleanField(default=False)
    # Declared quality checks (see datalake.engine.checks), run on every new version.
    checks = models.JSONField(default=list, blank=True)
    # Sensitive columns (datalake.services.sensitive): {column name: {"level": personal|confidential,
    # "mode": hide|hash}}; a column not named is public. Changed only by columns_classify (audited).
    sensitive_columns = models.JSONField(default=dict, blank=True, editable=False)
    # The column names of the latest published version, one per line, for catalog search.
    columns_text = models.TextField(blank=True, editable=False)
    # Kept at each publication (or failed check) so that the catalog lists and filters without
    # reading versions (bench/catalog.py: a join and GROUP BY per page cost 40 ms at 10 000 datasets).
    version_count = models.PositiveIntegerField(default=0, editable=False)  # published versions
    latest_number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    format = models.CharField(max_length=20, blank=True, db_index=True, editable=False)
    quality_status = models.CharField(
        max_length=10, choices=QualityStatus.choices, default=QualityStatus.UNCHECKED, db_index=True, editable=False
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [models.UniqueConstraint(fields=["department", "slug"], name="dataset_unique_slug_per_department")]
        # The catalog's list (API order): its count and its pages' keys are index-only scans over
        # live datasets (lepton.api.pagination.KeysFirstPaginator); `include` is PostgreSQL's.
        indexes = [
            models.Index(
                fields=["department", "slug"],
                include=["id"],
                condition=models.Q(deleted_at__isnull=True),
                name="dataset_live_by_department",
            )
        ]

    def __str__(self) -> str:
        return f"{self.department.slug}.{self.slug}" if self.department_id else self.slug

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class VersionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # raw bytes stored, ingest job queued or running
    PUBLISHED = "published", _("Published")
    FAILED = "failed", _("Failed")  # ingest error or a blocking check failed; raw bytes kept for retry


class DatasetVersion(models.Model):
    """One immutable version: the raw upload, its Parquet, schema, profile and check results.

    Only `published` versions are visible in the catalog, previews and SQL; a version is
    published in one transaction once every artifact is stored, so a crash leaves none half-made.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(null=True, blank=True, help_text=_("1, 2, 3… given at publication."))
    status = models.CharField(max_length=10, choices=VersionStatus.choices, default=VersionStatus.PENDING, db_index=True)
    source = models.CharField(max_length=20, default="upload")  # upload | recipe | import
    # csv, tsv, xlsx, xls, json, parquet, images, postgresql, mysql or recipe; set at publication.
    format = models.CharField(max_length=20, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    raw_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    raw_bytes = models.BigIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True)  # ingest options (encoding, delimiter, sheet…)
    parquet_sha256 = models.CharField(max_length=64, blank=True)
    parquet_bytes = models.BigIntegerField(default=0)
    # Stored names of the columns encrypted at rest in the Parquet blob (Parquet modular encryption,
    # footer encrypted too) and the check value of the data key that wrapped them ("" = plain file).
    # The rows never change; re-encryption (datalake.services.sensitive) replaces the stored blob.
    encrypted_columns = models.JSONField(default=list, blank=True, editable=False)
    encryption_key_id = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    # Image datasets: the bytes of the image and thumbnail blobs the manifest names (VersionBlob rows).
    blob_bytes = models.BigIntegerField(default=0)
    row_count = models.BigIntegerField(null=True, blank=True)
    schema = models.JSONField(default=list, blank=True)  # [{"name", "identifier", "type"}, …]
    profile = models.JSONField(default=dict, blank=True)
    check_results = models.JSONField(default=list, blank=True)
    ingest_report = models.JSONField(default=dict, blank=True)  # encoding, delimiter, warnings, skipped lines
    error_message = models.TextField(blank=True)
    job = models.ForeignKey("lepton.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dataset", "-number", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_unique_number_per_dataset"),
            models.CheckConstraint(
                condition=~models.Q(status="published") | models.Q(number__isnull=False, parquet_sha256__gt=""),
                name="version_published_is_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}" if self.number else f"{self.dataset} ({self.status})"


class ColumnLevel(models.TextChoices):
    PUBLIC = "public", _("Public")
    PERSONAL = "personal", _("Personal")
    CONFIDENTIAL = "confidential", _("Confidential")


class MaskMode(models.TextChoices):
    HIDE = "hide", _("Hidden")  # the column is left out
    HASH = "hash", _("Hashed")  # keyed HMAC-SHA256, truncated: equal values stay equal, unreadable


class UnmaskGrant(models.Model):
    """A member of a department who may read its sensitive columns in clear without being a maintainer.

    Maintainers and admins of the owning department unmask by their role; a grant holds only while
    the person is still a member of the department (datalake.services.sensitive.may_unmask).
    """

    department = models.ForeignKey("lepton.Department", on_delete=models.CASCADE, related_name="unmask_grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="unmask_grants")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["department", "user"]
        constraints = [models.UniqueConstraint(fields=["department", "user"], name="unmask_grant_once")]

    def __str__(self) -> str:
        return f"{self.user} unmasks {self.department}"


class UploadSession(models.Model):
    """A resumable upload: chunks arrive in order (each kept as a blob) until the file is whole.

    The client asks for `received_bytes` to resume after a broken connection; completing the
    session hands the joined chunks to the normal upload path, which creates the version.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="upload_sessions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    filename = models.CharField(max_length=255)
    total_bytes = models.BigIntegerField()
    received_bytes = models.BigIntegerField(default=0)
    chunks = models.JSONField(default=list, blank=True)  # sha256 of each chunk, in order
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.received_bytes}/{self.total_bytes})"


class Recipe(models.Model):
    """Ordered preparation steps (datalake.engine.recipes) from one input dataset to an output dataset.

    Each run applies the steps to the input's latest published version (and the latest versions
    of any joined datasets) and publishes a new version of the output, with lineage edges.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="recipes")
    name = models.CharField(max_length=200)
    input_dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="recipes_in")
    output_dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="recipes_out")
    # {key used by join steps: dataset id}
    joins = models.JSONField(default=dict, blank=True)
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["department__name", "name"]

    def __str__(self) -> str:
        return self.name


class VersionBlob(models.Model):
    """A stored blob a version needs beyond its raw upload and Parquet (an image, a thumbnail).

    Purge deletes a blob only when no other version still lists it, so identical images in
    two datasets are stored once and outlive either.
    """

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="blobs")
    sha256 = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "sha256"], name="version_blob_unique")]

    def __str__(self) -> str:
        return self.sha256


class SavedQuery(models.Model):
    """A named SQL console query kept for a department; anyone who sees the department may run it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.CASCADE, related_name="saved_queries")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sql = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [models.UniqueConstraint(fields=["department", "name"], name="saved_query_unique_name")]

    def __str__(self) -> str:
        return self.name


class DatabaseImport(models.Model):
    """Where a dataset's versions come from when they are read from a production database.

    Each run executes `query` read-only against the database and publishes the rows as a new
    version, unless they are identical to the latest one. The password is stored encrypted
    (lepton.crypto) and never shown again; `url` holds everything else.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="database_import")
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="database_imports")
    url = models.CharField(max_length=500, help_text=_("postgresql://user@host:5432/db or mysql://user@host:3306/db"))
    password_encrypted = models.TextField(blank=True, editable=False)
    query = models.TextField()
    # None: runs only when someone asks; otherwise every this many minutes.
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=20, blank=True)  # published | unchanged | failed
    last_message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset__name"]

    def __str__(self) -> str:
        return f"{self.dataset} ← {self.url}"


class Recall(models.Model):
    """A published dataset version declared bad data by a maintainer of its department.

    Everything made from it (lineage.LineageEdge, followed downstream at the moment of the
    recall: recipe outputs, training runs, model versions and their aliases, batch predictions,
    shop problems) gets a RecallImpact, shown as a banner on its pages and told to its
    department. With `block_predictions`, a production model whose version is affected refuses
    predictions (409) until a maintainer of the model's department acknowledges its impact.
    A version is recalled at most once (the one-to-one link); a recall is never undone.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.OneToOneField(DatasetVersion, on_delete=models.CASCADE, related_name="recall")
    reason = models.TextField()
    block_predictions = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"recall of {self.version}"


class RecallImpact(models.Model):
    """One object downstream of a recalled version (object_type/object_id as in LineageEdge).

    `label` and `department` are taken at recall time, so the list reads well even if the object
    is later deleted. `aliases` names the aliases that held an affected model version then.
    `blocking` is true for a model version held by an alias while the recall blocks
    predictions: such a version refuses predictions until acknowledged.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recall = models.ForeignKey(Recall, on_delete=models.CASCADE, related_name="impacts")
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64)
    department = models.ForeignKey("lepton.Department", on_delete=models.CASCADE, related_name="+")
    label = models.CharField(max_length=300)
    depth = models.PositiveSmallIntegerField(default=1)  # lineage steps from the recalled version
    aliases = models.JSONField(default=list, blank=True)
    blocking = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["recall", "depth", "label"]
        constraints = [
            models.UniqueConstraint(fields=["recall", "object_type", "object_id"], name="recall_impact_once"),
        ]
        indexes = [models.Index(fields=["object_type", "object_id"], name="recall_impact_object")]

    def __str__(self) -> str:
        return f"{self.recall} → {self.label}"
