"""The dashboards' period picker."""

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MAX_DAYS = 366
DEFAULT_DAYS = 7


class PeriodForm(forms.Form):
    """From one day to another (both included), at most MAX_DAYS long; the last week when not given."""

    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if self.errors:
            return data
        if start > end:
            self.add_error("end", _("The end comes before the start: swap the two dates."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", _("The period is %(days)s days long; at most %(max)s days can be shown.")
                           % {"days": (end - start).days + 1, "max": MAX_DAYS})  # fmt: skip
        data["start"], data["end"] = start, end
        return data

    def period(self) -> tuple[datetime, datetime]:
        """The period as aware datetimes: from the start day's midnight to the end of the end day (or now)."""
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        start = datetime.combine(data["start"], time.min, zone)
        end = min(datetime.combine(data["end"], time.max, zone), timezone.now())
        return start, max(start, end)


def period_form(request) -> tuple[PeriodForm, tuple[datetime, datetime] | None]:
    """The bound form and its period (None when it has errors: the page shows them and no figures)."""
    form = PeriodForm(request.GET or None)
    if not request.GET:
        form = PeriodForm({})
    return form, (form.period() if form.is_valid() else None)
