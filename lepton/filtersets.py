"""FilterSets shared by the HTML lists and the API lists (one definition for both)."""

import django_filters
from django.utils.translation import gettext_lazy as _

from lepton.jobs.models import Job, JobStatus, Resource
from lepton.models import AuditEvent


class JobFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, label=_("Status"))
    kind = django_filters.CharFilter(field_name="kind", label=_("Kind"))
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    resource = django_filters.ChoiceFilter(choices=Resource.choices, label=_("Resource"))
    mine = django_filters.BooleanFilter(method="filter_mine", label=_("Started by me"))
    queued_after = django_filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="gte", label=_("Queued after"))
    queued_before = django_filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="lt", label=_("Queued before"))

    class Meta:
        model = Job
        fields = ["status", "kind", "department", "resource"]

    def filter_mine(self, queryset, name, value):
        if value and self.request is not None and self.request.user.is_authenticated:
            return queryset.filter(requested_by=self.request.user)
        return queryset


class AuditEventFilterSet(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label=_("Action"))
    actor = django_filters.CharFilter(field_name="actor_label", label=_("Actor"))
    object_type = django_filters.CharFilter(field_name="object_type", label=_("Object type"))
    object_id = django_filters.CharFilter(field_name="object_id", label=_("Object id"))
    after = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", label=_("After"))
    before = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt", label=_("Before"))

    class Meta:
        model = AuditEvent
        fields = ["department", "action", "actor", "object_type", "object_id"]
