"""Forms of the production-scheduling pages: they validate input; scheduling.services writes."""

from django import forms
from django.utils.translation import gettext_lazy as _

from scheduling.models import Method

FORMATS = [("", _("Detect from the file")), ("orlib", "OR-Library"), ("taillard", "Taillard"), ("csv", "CSV")]


class ProblemUploadForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    file = forms.FileField(
        label=_("Problem file"),
        help_text=_("OR-Library (n m, then a line per job of machine/duration pairs), Taillard, or CSV of operations."),
    )
    format = forms.ChoiceField(label=_("Format"), choices=FORMATS, required=False)


class RunForm(forms.Form):
    method = forms.ChoiceField(label=_("Method"), choices=Method.choices, initial=Method.QLEARNING)
    time_limit = forms.FloatField(label=_("Time limit (seconds)"), initial=10, min_value=0.1, max_value=3600)
    seed = forms.IntegerField(label=_("Seed"), initial=0, min_value=0, max_value=2**31 - 1)
    breakdowns_seed = forms.IntegerField(
        label=_("Simulate breakdowns (seed)"),
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text=_("Leave empty for none; machines need an MTBF and MTTR."),
    )
    replications = forms.IntegerField(
        label=_("Robustness: replications of breakdowns"),
        required=False,
        min_value=0,
        max_value=200,
        help_text=_("How the schedule holds up over this many seeded draws of breakdowns (right shift and re-dispatch)."),
    )
    compare = forms.BooleanField(
        label=_("Also run every dispatching rule and CP-SAT for comparison"), required=False, initial=False
    )
