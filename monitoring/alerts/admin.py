"""admin of alerting, read-only: rules, alerts and deliveries change through monitoring.alerts.services (audited)."""

from django.contrib import admin

from lepton.admin import ReadOnlyMixin
from monitoring.alerts.models import Alert, AlertRule, Notification, WebhookDelivery


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "department", "kind", "threshold", "enabled", "last_evaluated_at")
    list_filter = ("kind", "enabled")
    list_select_related = ("department",)
    search_fields = ("name", "department__slug")
    exclude = ("webhook_secret_encrypted",)


@admin.register(Alert)
class AlertAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("rule", "department", "kind", "state", "dedup_key", "value", "first_seen_at", "last_seen_at")
    list_filter = ("state", "kind")
    list_select_related = ("rule", "department")
    search_fields = ("dedup_key", "message", "rule__name")
    date_hierarchy = "first_seen_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("user", "message", "created_at", "read_at")
    list_select_related = ("user",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("event", "url", "status", "attempts", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("status", "event")
