"""The model repository in the Django admin: read-only views for staff (changes go through the
pages and API, which call models_repo.services and write the audit log)."""

from django.contrib import admin

from lepton.admin import ReadOnlyMixin
from models_repo.models import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    PredictionLog,
    PromotionRequest,
    PromotionSettings,
    RegisteredModel,
    TrainingRun,
)


class ModelVersionInline(ReadOnlyMixin, admin.TabularInline):
    model = ModelVersion
    fields = ["number", "source", "flavor", "task", "artifact_sha256", "created_at", "archived_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "department", "slug", "task", "updated_at", "archived_at"]
    list_filter = ["department", "task"]
    search_fields = ["name", "slug", "description"]
    list_select_related = ["department"]
    inlines = [ModelVersionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "flavor", "task", "source", "created_at"]
    list_filter = ["flavor", "model__department"]
    search_fields = ["model__name", "artifact_sha256"]
    list_select_related = ["model__department"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "department", "dataset_label", "task", "algorithm", "status", "created_at", "seconds"]
    list_filter = ["status", "department", "task", "flavor"]
    search_fields = ["name", "dataset_label", "algorithm"]
    list_select_related = ["department"]


@admin.register(ModelAlias)
class ModelAliasAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["model", "name", "version", "updated_by", "updated_at"]
    list_select_related = ["model__department", "version__model__department", "updated_by"]


@admin.register(AliasEvent)
class AliasEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["model", "alias", "from_version", "to_version", "actor", "created_at"]
    list_select_related = ["model__department", "actor"]


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["model", "version", "alias", "status", "requested_by", "decided_by", "created_at"]
    list_filter = ["status"]
    list_select_related = ["model__department", "version__model__department", "requested_by", "decided_by"]


@admin.register(PromotionSettings)
class PromotionSettingsAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["department", "require_second_approver"]


@admin.register(PredictionLog)
class PredictionLogAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["model", "version", "rows", "latency_ms", "source", "created_at"]
    list_filter = ["source"]
    list_select_related = ["model__department", "version__model__department"]
