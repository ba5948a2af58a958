"""The data lake in the Django admin: read-only views for staff (changes go through the pages and API,
which call datalake.services and write the audit log)."""

from django.contrib import admin

from datalake.models import DatabaseImport, Dataset, DatasetVersion, SavedQuery, UploadSession, VersionBlob
from lepton.admin import ReadOnlyMixin


class DatasetVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = DatasetVersion
    fields = ["number", "status", "original_filename", "row_count", "raw_bytes", "parquet_bytes", "created_at", "published_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "department", "slug", "discoverable", "updated_at", "deleted_at"]
    list_filter = ["department", "discoverable", ("deleted_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "slug", "description", "columns_text"]
    list_select_related = ["department"]
    inlines = [DatasetVersionInline]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "status", "row_count", "raw_bytes", "created_at", "published_at"]
    list_filter = ["status", "dataset__department"]
    search_fields = ["dataset__name", "original_filename", "raw_sha256", "parquet_sha256"]
    list_select_related = ["dataset__department"]


@admin.register(UploadSession)
class UploadSessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["filename", "dataset", "created_by", "received_bytes", "total_bytes", "created_at", "completed_at"]
    list_select_related = ["dataset__department", "created_by"]


@admin.register(VersionBlob)
class VersionBlobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["sha256", "version"]
    search_fields = ["sha256", "version__dataset__name"]
    list_select_related = ["version__dataset__department"]


@admin.register(SavedQuery)
class SavedQueryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "department", "created_by", "updated_at"]
    list_filter = ["department"]
    search_fields = ["name", "description", "sql"]
    list_select_related = ["department", "created_by"]


@admin.register(DatabaseImport)
class DatabaseImportAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The encrypted password is never shown, not even as a token.
    exclude = ["password_encrypted"]
    list_display = ["dataset", "department", "url", "interval_minutes", "enabled", "last_status", "last_run_at", "next_run_at"]
    list_filter = ["department", "enabled", "last_status"]
    search_fields = ["dataset__name", "url", "query"]
    list_select_related = ["dataset__department", "department"]
