"""FilterSets shared by the HTML lists and the API lists (one definition for both)."""

from datetime import UTC, timedelta

import django_filters
import django_filters.fields
from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lepton.jobs.models import Job, JobStatus, Resource
from lepton.models import AuditEvent

# Real time zones lie within ±14 h; PostgreSQL refuses offsets from ±16 h that Python accepts.
MAX_OFFSET = timedelta(hours=14)


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC; an impossible offset or a date out of range is a form error (400)."""

    def to_python(self, value):
        parsed = super().to_python(value)  # Django tries parse_datetime before any input format
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_OFFSET:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class JobFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices, label=_("Status"))
    kind = django_filters.CharFilter(field_name="kind", label=_("Kind"))
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    resource = django_filters.ChoiceFilter(choices=Resource.choices, label=_("Resource"))
    mine = django_filters.BooleanFilter(method="filter_mine", label=_("Started by me"))
    queued_after = IsoDateTimeFilter(field_name="queued_at", lookup_expr="gte", label=_("Queued after"))
    queued_before = IsoDateTimeFilter(field_name="queued_at", lookup_expr="lt", label=_("Queued before"))

    class Meta:
        model = Job
        fields = ["status", "kind", "department", "resource"]

    def filter_mine(self, queryset, name, value):
        if value and self.request is not None and self.request.user.is_authenticated:
            return queryset.filter(requested_by=self.request.user)
        return queryset


class AuditFilterForm(forms.Form):
    """The audit filters' form: a date range that ends before it starts is an error on its end."""

    def clean(self):
        cleaned = super().clean()
        for start, end in (("date_from", "date_to"), ("after", "before")):
            if cleaned.get(start) and cleaned.get(end) and cleaned[start] > cleaned[end]:
                self.add_error(end, _("The end of the range is before its start."))
        return cleaned


class AuditEventFilterSet(django_filters.FilterSet):
    """Filters of the audit viewer (/audit/, its CSV export) and of GET /api/v1/audit/."""

    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label=_("Action"))
    actor = django_filters.CharFilter(field_name="actor_label", label=_("Person"))
    object = django_filters.CharFilter(method="filter_object", label=_("Object"))
    object_type = django_filters.CharFilter(field_name="object_type", label=_("Object type"))
    object_id = django_filters.CharFilter(field_name="object_id", label=_("Object id"))
    date_from = django_filters.DateFilter(field_name="at", lookup_expr="date__gte", label=_("From (date)"))
    date_to = django_filters.DateFilter(field_name="at", lookup_expr="date__lte", label=_("To (date)"))
    after = IsoDateTimeFilter(field_name="at", lookup_expr="gte", label=_("After"))
    before = IsoDateTimeFilter(field_name="at", lookup_expr="lt", label=_("Before"))

    class Meta:
        model = AuditEvent
        fields = ["department", "action", "actor", "object_type", "object_id"]
        form = AuditFilterForm

    def filter_object(self, queryset, name, value):
        """`type:id` (as in the events' `object_type:object_id`), an id, or words of the object's name."""
        value = value.strip()
        kind, sep, ident = value.partition(":")
        if sep and "." in kind:
            return queryset.filter(object_type=kind, object_id=ident)
        return queryset.filter(Q(object_id=value) | Q(object_repr__icontains=value))
