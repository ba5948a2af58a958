"""The alert rule form of the browser: shapes only; monitoring.alerts.services.rule_values decides what is allowed."""

from django import forms
from django.utils.translation import gettext_lazy as _

from monitoring.alerts.models import AlertKind


class AlertRuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    kind = forms.ChoiceField(label=_("Watch for"), choices=AlertKind.choices)
    model = forms.ModelChoiceField(
        label=_("Model"), queryset=None, required=False, empty_label=_("Every model in production"),
        help_text=_("Drift, error rate and latency rules: one model, or every production model of the department."),
    )  # fmt: skip
    dataset = forms.ModelChoiceField(
        label=_("Dataset"), queryset=None, required=False, empty_label=_("Every dataset"),
        help_text=_("Quality and staleness rules: one dataset, or every dataset of the department."),
    )  # fmt: skip
    threshold = forms.FloatField(
        label=_("Threshold"), required=False,
        help_text=_("PSI for drift (e.g. 0.25); a share 0–1 for error rate and quota (0.05 = 5%); milliseconds for "
                    "p99 latency; days without a new version for staleness. Empty for failed checks and jobs."),
    )  # fmt: skip
    window_minutes = forms.IntegerField(
        label=_("Window (minutes)"), required=False, initial=60,
        help_text=_("Error rate and latency are measured over this window; failed jobs are looked for in it."),
    )  # fmt: skip
    notify_in_app = forms.BooleanField(label=_("Notify in the app"), required=False, initial=True)
    notify_email = forms.BooleanField(label=_("Send e-mail to the department's people"), required=False)
    webhook_url = forms.CharField(
        label=_("Webhook URL"), required=False, max_length=500,
        help_text=_("Receives a signed JSON POST when an alert opens or resolves (X-Lepton-Signature)."),
    )  # fmt: skip
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def __init__(self, *args, department, **kwargs):
        from datalake.models import Dataset
        from models_repo.models import RegisteredModel

        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = RegisteredModel.objects.filter(department=department, archived_at__isnull=True).order_by(
            "name"
        )
        self.fields["dataset"].queryset = Dataset.objects.filter(department=department, deleted_at__isnull=True).order_by("name")

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        if data.get("window_minutes") is None:
            data["window_minutes"] = 60
        return data

    def add_service_errors(self, exc) -> None:
        """Put a service's Invalid fields on this form (unknown ones above it)."""
        for field, messages in (exc.fields or {"__all__": [exc.message]}).items():
            for message in messages:
                self.add_error(field if field in self.fields else None, message)
