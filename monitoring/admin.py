"""admin of the Monitoring part, read-only: traffic counts, active people, drift references and results."""

from django.contrib import admin

from lepton.admin import ReadOnlyMixin
from monitoring.models import ActiveUser, DriftReference, FeatureDrift, TrafficMinute


@admin.register(DriftReference)
class DriftReferenceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("version", "status", "reason", "rows", "rows_from", "created_at")
    list_filter = ("status", "reason")
    list_select_related = ("version__model__department",)
    search_fields = ("version__model__slug", "version__model__name")
    readonly_fields = ("version", "status", "reason", "detail", "dataset_version", "rows", "rows_from", "features", "created_at")


@admin.register(FeatureDrift)
class FeatureDriftAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("version", "feature", "window_end", "status", "psi", "ks_statistic", "ks_pvalue", "sample_size")
    list_filter = ("status", "kind")
    list_select_related = ("version__model__department",)
    search_fields = ("feature", "version__model__slug")
    date_hierarchy = "window_end"
    readonly_fields = (
        "version", "feature", "window_start", "window_end", "kind", "psi", "ks_statistic", "ks_pvalue", "sample_size", "status",
        "reason", "bins", "computed_at",
    )  # fmt: skip


@admin.register(TrafficMinute)
class TrafficMinuteAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("minute", "kind", "requests", "errors_4xx", "errors_5xx")
    list_filter = ("kind",)
    date_hierarchy = "minute"


@admin.register(ActiveUser)
class ActiveUserAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("day", "user")
    date_hierarchy = "day"


from monitoring.alerts import admin as alerts_admin  # noqa: E402,F401  (registers alerting's read-only admin)
