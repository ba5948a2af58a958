"""Browser forms of working together; validation of meaning stays in lepton/collab/services.py."""

from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lepton.models import Department, ShareLevel


def _end_of(day: datetime.date | None) -> datetime.datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min))


class ExpiryField(forms.DateField):
    widget = forms.DateInput(attrs={"type": "date"})


class ShareForm(forms.Form):
    object_type = forms.CharField(widget=forms.HiddenInput)
    object_id = forms.CharField(widget=forms.HiddenInput)
    department = forms.ModelChoiceField(
        label=_("Department"), queryset=Department.objects.none(), to_field_name="slug", empty_label=None
    )
    level = forms.ChoiceField(label=_("Access"), choices=ShareLevel.choices, initial=ShareLevel.VIEW)
    purpose = forms.CharField(label=_("Purpose"), max_length=300, help_text=_("Why they need it (kept with the share)."))
    expires_on = ExpiryField(label=_("Until"), required=False, help_text=_("Optional. The share ends at the end of this day."))

    def __init__(self, *args, owner_department_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        departments = Department.objects.order_by("name")
        if owner_department_id is not None:
            departments = departments.exclude(pk=owner_department_id)
        self.fields["department"].queryset = departments

    def expires_at(self):
        return _end_of(self.cleaned_data.get("expires_on"))


class AccessRequestForm(forms.Form):
    department = forms.ModelChoiceField(
        label=_("For department"), queryset=Department.objects.none(), to_field_name="slug", empty_label=None
    )
    level = forms.ChoiceField(label=_("Access"), choices=ShareLevel.choices, initial=ShareLevel.VIEW)
    purpose = forms.CharField(
        label=_("Purpose"), max_length=300, help_text=_("What you need it for; the owning maintainers decide on this.")
    )

    def __init__(self, *args, departments=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = departments if departments is not None else Department.objects.none()


class ApproveForm(forms.Form):
    expires_on = ExpiryField(label=_("Until"), required=False, help_text=_("Optional. The share ends at the end of this day."))

    def expires_at(self):
        return _end_of(self.cleaned_data.get("expires_on"))


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class CommentForm(forms.Form):
    object_type = forms.CharField(widget=forms.HiddenInput)
    object_id = forms.CharField(widget=forms.HiddenInput)
    body = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Markdown. Mention someone with @username to tell them."),
    )
