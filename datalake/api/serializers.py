"""Serializers of the data-lake API: they validate and present; services do the writes."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datalake.models import DatabaseImport, Dataset, DatasetVersion, Recipe, SavedQuery, UploadSession
from lepton import policy
from lepton.models import Department


class DatasetSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "department",
            "slug",
            "name",
            "description",
            "tags",
            "discoverable",
            "checks",
            "format",
            "quality_status",
            "version_count",
            "latest_number",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DiscoverableDatasetSerializer(serializers.ModelSerializer):
    """What another department may know of a discoverable dataset: no rows, no versions."""

    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    columns = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "department", "slug", "name", "description", "tags", "columns", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_columns(self, dataset):
        return [c for c in dataset.columns_text.split("\n") if c]


class DatasetCreateSerializer(serializers.Serializer):
    department = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    discoverable = serializers.BooleanField(required=False, default=False)

    def validate_department(self, slug):
        department = policy.visible_to(self.context["request"].user, Department).filter(slug=slug).first()
        if department is None:
            raise serializers.ValidationError(_("No department '%(slug)s' that you belong to.") % {"slug": slug})
        return department


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    discoverable = serializers.BooleanField(required=False)
    checks = serializers.ListField(child=serializers.DictField(), required=False)


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    options = serializers.JSONField(required=False, default=dict, help_text="Ingest options: encoding, delimiter, sheet…")


class RetrySerializer(serializers.Serializer):
    options = serializers.JSONField(required=False, help_text="New ingest options; leave out to keep the old ones.")


class DatasetVersionSerializer(serializers.ModelSerializer):
    job = serializers.SerializerMethodField()
    check_results = serializers.SerializerMethodField()
    ingest_report = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "number",
            "status",
            "source",
            "format",
            "original_filename",
            "raw_bytes",
            "parquet_bytes",
            "blob_bytes",
            "row_count",
            "schema",
            "check_results",
            "ingest_report",
            "error_message",
            "job",
            "created_at",
            "published_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_job(self, version):
        return str(version.job_id) if version.job_id else None

    def _reports(self, version) -> tuple[list, dict]:
        """Check samples and ingest examples of sensitive columns masked as the profile is."""
        from datalake.services.sensitive import masked_reports, may_unmask

        user = getattr(self.context.get("request"), "user", None)
        known = self.context.setdefault("_may_unmask", {})  # one answer per dataset for a whole page
        if version.dataset_id not in known:
            known[version.dataset_id] = may_unmask(user, version.dataset)
        return masked_reports(version, user, unmask=known[version.dataset_id])

    @extend_schema_field(serializers.ListField(child=serializers.JSONField()))
    def get_check_results(self, version):
        return self._reports(version)[0]

    @extend_schema_field(serializers.JSONField())
    def get_ingest_report(self, version):
        return self._reports(version)[1]


class DatasetVersionDetailSerializer(DatasetVersionSerializer):
    profile = serializers.SerializerMethodField()

    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "profile"]
        read_only_fields = fields

    @extend_schema_field(serializers.JSONField())
    def get_profile(self, version):
        """Without the values of sensitive columns for a reader who may not unmask them."""
        from datalake.services.sensitive import masked_profile

        request = self.context.get("request")
        return masked_profile(version, getattr(request, "user", None))


class ColumnClassificationSerializer(serializers.Serializer):
    """{column name: {level, mode}}; the service checks the names and values (400 naming the column)."""

    columns = serializers.DictField(child=serializers.JSONField())


class UploadSessionStartSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=1, help_text="The file's size in bytes.")
    options = serializers.JSONField(required=False, default=dict)


class UploadSessionSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    version = serializers.UUIDField(source="version_id", read_only=True, allow_null=True)

    class Meta:
        model = UploadSession
        fields = [
            "id",
            "dataset",
            "filename",
            "total_bytes",
            "received_bytes",
            "options",
            "created_at",
            "completed_at",
            "version",
        ]
        read_only_fields = fields


class SqlQuerySerializer(serializers.Serializer):
    sql = serializers.CharField(max_length=100_000, trim_whitespace=False)
    row_cap = serializers.IntegerField(min_value=1, max_value=10_000, default=10_000)


class SqlResultSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField())
    row_count_returned = serializers.IntegerField()
    truncated = serializers.BooleanField()
    elapsed_ms = serializers.FloatField()


class DatabaseImportSerializer(serializers.ModelSerializer):
    """An import as shown: the URL without its password, and only whether a password is stored."""

    dataset = serializers.UUIDField(source="dataset_id", read_only=True)
    password_set = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DatabaseImport
        fields = [
            "id",
            "dataset",
            "url",
            "password_set",
            "query",
            "interval_minutes",
            "enabled",
            "next_run_at",
            "last_run_at",
            "last_status",
            "last_message",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_password_set(self, db_import) -> bool:
        return bool(db_import.password_encrypted)


class DatabaseImportWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500)
    password = serializers.CharField(max_length=500, required=False, allow_blank=True, write_only=True, trim_whitespace=False)
    query = serializers.CharField(max_length=1_000_000, trim_whitespace=False)
    interval_minutes = serializers.IntegerField(required=False, allow_null=True, default=None)
    enabled = serializers.BooleanField(required=False, default=True)


class SqlExportSerializer(serializers.Serializer):
    sql = serializers.CharField(max_length=100_000, trim_whitespace=False)


class SavedQuerySerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SavedQuery
        fields = ["id", "department", "name", "description", "sql", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class SavedQueryCreateSerializer(serializers.Serializer):
    department = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    sql = serializers.CharField(max_length=100_000, trim_whitespace=False)

    def validate_department(self, slug):
        department = policy.visible_to(self.context["request"].user, Department).filter(slug=slug).first()
        if department is None:
            raise serializers.ValidationError(_("No department with this slug that you belong to."))
        return department


class SavedQueryUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    sql = serializers.CharField(max_length=100_000, trim_whitespace=False, required=False)


class SavedQueryRunSerializer(serializers.Serializer):
    row_cap = serializers.IntegerField(min_value=1, max_value=10_000, default=10_000)


class RecipeSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    input_dataset = serializers.UUIDField(source="input_dataset_id", read_only=True)
    output_dataset = serializers.UUIDField(source="output_dataset_id", read_only=True)

    class Meta:
        model = Recipe
        fields = ["id", "department", "name", "input_dataset", "output_dataset", "joins", "steps", "created_at", "updated_at"]
        read_only_fields = fields


class RecipeCreateSerializer(serializers.Serializer):
    input_dataset = serializers.UUIDField()
    name = serializers.CharField(max_length=200)
    steps = serializers.ListField(child=serializers.DictField(), allow_empty=False)
    joins = serializers.DictField(child=serializers.UUIDField(), required=False, default=dict)
    output_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RecipePreviewSerializer(serializers.Serializer):
    steps = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Edited steps to try; default: the saved ones."
    )
    sample_rows = serializers.IntegerField(min_value=1, max_value=100_000, default=1000)


class UnmaskGrantSerializer(serializers.Serializer):
    """A member of a department who reads its sensitive columns in clear (datalake.services.sensitive)."""

    id = serializers.IntegerField(read_only=True)
    department = serializers.CharField(help_text="The department's slug.")
    user = serializers.CharField(help_text="The member's username.")
    granted_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, grant):
        return {
            "id": grant.pk,
            "department": grant.department.slug,
            "user": grant.user.get_username(),
            "granted_by": grant.granted_by.get_username() if grant.granted_by else None,
            "created_at": serializers.DateTimeField().to_representation(grant.created_at),
        }

    def get_granted_by(self, grant) -> str | None:  # presented by to_representation; declared for the schema
        return None
