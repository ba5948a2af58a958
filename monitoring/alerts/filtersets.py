"""FilterSets of the alert lists, shared by the browser pages and the API."""

import django_filters
from django.utils.translation import gettext_lazy as _

from monitoring.alerts.models import Alert, AlertKind, AlertRule, AlertState


class AlertFilterSet(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=AlertState.choices, label=_("State"))
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices, label=_("Kind"))
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    rule = django_filters.UUIDFilter(field_name="rule_id", label=_("Rule"))

    class Meta:
        model = Alert
        fields = ["state", "kind", "department", "rule"]


class AlertRuleFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices, label=_("Kind"))
    department = django_filters.CharFilter(field_name="department__slug", label=_("Department"))
    enabled = django_filters.BooleanFilter(label=_("Enabled"))

    class Meta:
        model = AlertRule
        fields = ["kind", "department", "enabled"]
