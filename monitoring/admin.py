from django.contrib import admin

from lepton.admin import ReadOnlyMixin
from monitoring.models import ActiveUser, TrafficMinute


@admin.register(TrafficMinute)
class TrafficMinuteAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("minute", "kind", "requests", "errors_4xx", "errors_5xx")
    list_filter = ("kind",)
    date_hierarchy = "minute"


@admin.register(ActiveUser)
class ActiveUserAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("day", "user")
    date_hierarchy = "day"
