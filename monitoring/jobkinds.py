"""Job kinds of monitoring: the input drift of one model version over one window (monitoring.services)."""

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import serializers

from lepton.jobs.registry import JobError, job_kind


class DriftParams(serializers.Serializer):
    version = serializers.UUIDField(help_text="The model version whose inputs to compare.")
    window_end = serializers.DateTimeField(help_text="The end of the window of sampled inputs.")


# The log lines and errors below are read by the person who asked, in their language (the job runs in it).


def _drift(ctx, params) -> dict:
    """Profile the version's training inputs if not yet done, then store each feature's drift."""
    from django.utils.dateparse import parse_datetime

    from models_repo.models import ModelVersion
    from monitoring.models import DriftStatus
    from monitoring.selectors import reason_text
    from monitoring.services import drift_compute

    end = parse_datetime(params["window_end"])
    try:
        outcome = drift_compute(params["version"], end, progress=ctx.progress)
    except ModelVersion.DoesNotExist:
        raise JobError(_("The model version was deleted.")) from None
    if "reason" in outcome:
        ctx.log(_("No drift reference: %(reason)s") % {"reason": reason_text(outcome["reason"])}, level="warning")
    else:
        labels = dict(DriftStatus.choices)
        statuses = ", ".join(f"{labels.get(status, status)} {count}" for status, count in outcome["statuses"].items())
        rows = ngettext("%(rows)s sampled row compared", "%(rows)s sampled rows compared", outcome["rows"]) % {
            "rows": outcome["rows"]
        }
        ctx.log(_("%(rows)s: %(statuses)s") % {"rows": rows, "statuses": statuses or "–"})
    return outcome


# Reading a training set's Parquet may take a while on big data; a second attempt covers a lost worker.
job_kind("monitoring.drift", label="Input drift of a model version", params=DriftParams, time_limit=1800, max_attempts=2)(_drift)


def _alert_webhooks(ctx, params) -> dict:
    """POST the alert webhook deliveries that are due (monitoring.alerts.services.webhooks_deliver)."""
    from monitoring.alerts.services import webhooks_deliver

    outcome = webhooks_deliver()
    ctx.log(_("Webhooks: %(delivered)s delivered, %(retrying)s to retry, %(failed)s failed.") % outcome)
    return outcome


class AlertEmailParams(serializers.Serializer):
    alerts = serializers.ListField(child=serializers.UUIDField(), help_text="The new alerts to e-mail.")


def _alert_emails(ctx, params) -> dict:
    """E-mail new alerts to their departments' people (monitoring.alerts.services.alert_emails_send)."""
    from monitoring.alerts.services import alert_emails_send

    sent = alert_emails_send(params["alerts"])
    ctx.log(ngettext("%(sent)s e-mail message sent", "%(sent)s e-mail messages sent", sent) % {"sent": sent})
    return {"sent": sent}


# Short network work: a lost worker's job is simply tried again (a delivery is claimed before its POST).
job_kind("monitoring.alert_webhooks", label="Alert webhooks", time_limit=900, max_attempts=2)(_alert_webhooks)
job_kind("monitoring.alert_emails", label="Alert e-mails", params=AlertEmailParams, time_limit=300, max_attempts=2)(_alert_emails)
