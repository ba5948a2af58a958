"""Every state change of alerting: rules (maintainers), acknowledging and resolving alerts (members),
reading notifications, and the two periodic passes of settings.LEPTON_PERIODIC_TASKS.

`alerts_evaluate` asks each enabled rule's source (monitoring.alerts.sources) which subjects
hold its condition now: a new subject opens an alert (told in the app, by e-mail and webhook as
the rule says), a known one only moves its `last_seen_at` (no alert storm: the database keeps
one unresolved alert per rule and subject), and an alert whose subject is gone is resolved.
`webhooks_enqueue_due` queues a job whose `webhooks_deliver` POSTs the signed bodies that are
due, retrying failures with exponential backoff; e-mail goes out from a job too
(`alert_emails_send`), so no network call runs in the dispatcher loop. People's changes are
audited; the passes' own opening and resolving are the alert history itself and are not.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lepton import audit, policy, selectors
from lepton.crypto import CredentialError
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.services import platform_job_submit
from lepton.models import Department, Membership
from monitoring.alerts import sources, webhooks
from monitoring.alerts.models import (
    Alert,
    AlertKind,
    AlertRule,
    AlertState,
    DeliveryStatus,
    Notification,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

MAX_WINDOW_MINUTES = 7 * 24 * 60
# Deliveries one job tries at most (each may take LEPTON_WEBHOOK_TIMEOUT_SECONDS); the next job takes the rest.
DELIVERIES_PER_PASS = 100
# Job kinds (monitoring.jobkinds): network work runs on a worker, never in the dispatcher loop.
WEBHOOK_KIND = "monitoring.alert_webhooks"
EMAIL_KIND = "monitoring.alert_emails"

MODEL_KINDS = (AlertKind.DRIFT_PSI, AlertKind.ERROR_RATE, AlertKind.P99_LATENCY)
DATASET_KINDS = (AlertKind.QUALITY_CHECK_FAILED, AlertKind.DATASET_STALE)
WINDOW_KINDS = (AlertKind.ERROR_RATE, AlertKind.P99_LATENCY, AlertKind.JOB_FAILED)
RULE_FIELDS = (
    "name", "kind", "model", "dataset", "threshold", "window_minutes",
    "notify_in_app", "notify_email", "webhook_url", "enabled",
)  # fmt: skip


def _threshold_problem(kind: str, threshold) -> str | None:
    """Why `threshold` does not fit `kind`, in words, or None."""
    if kind in (AlertKind.QUALITY_CHECK_FAILED, AlertKind.JOB_FAILED):
        return _("This kind of rule takes no threshold: leave it empty.") if threshold is not None else None
    if threshold is None:
        return _("This kind of rule needs a threshold.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        return _("Enter a number.")
    if kind == AlertKind.DRIFT_PSI and threshold <= 0:
        return _("A PSI threshold must be above 0 (0.1 is moderate drift, 0.25 significant).")
    if kind == AlertKind.ERROR_RATE and not 0 < threshold < 1:
        return _("An error rate is a share of requests between 0 and 1 (0.05 means 5%).")
    if kind == AlertKind.P99_LATENCY and threshold <= 0:
        return _("A latency threshold is a number of milliseconds above 0.")
    if kind == AlertKind.QUOTA_NEARLY_USED and not 0 < threshold <= 1:
        return _("A quota threshold is a share of the quota above 0 and at most 1 (0.9 means 90%).")
    if kind == AlertKind.DATASET_STALE and threshold <= 0:
        return _("Give the number of days without a new version, above 0.")
    return None


def _target(model_class, value, department: Department):
    """The object `value` (itself or its id) if it belongs to `department`, else None when empty; raises ValueError."""
    if value in (None, ""):
        return None
    pk = getattr(value, "pk", value)
    queryset = model_class.objects.filter(department=department)
    if hasattr(model_class, "deleted_at"):
        queryset = queryset.filter(deleted_at__isnull=True)
    try:
        found = queryset.filter(pk=pk).first()
    except (ValueError, TypeError, ValidationError):  # a malformed id is an unknown one
        found = None
    if found is None:
        raise ValueError(pk)
    return found


def rule_values(department: Department, values: dict, current: dict | None = None) -> dict:
    """`values` checked for a rule of `department`: every problem at once, as Invalid's fields.

    Used by create and update, so the browser form and the API refuse the same things with the
    same words. On update, `current` holds the rule's saved values: a webhook URL or target left
    as it was is kept unchecked, so a rule whose host has since left the allow-list (or whose
    dataset went to the trash) can still be disabled or edited otherwise.
    """
    current = current or {}
    from datalake.models import Dataset
    from models_repo.models import RegisteredModel

    errors: dict[str, list[str]] = {}
    checked = dict(values)
    kind = checked.get("kind")
    if kind not in AlertKind.values:
        errors["kind"] = [_("Choose one of: %(kinds)s.") % {"kinds": ", ".join(AlertKind.values)}]
    name = (checked.get("name") or "").strip()
    if not name:
        errors["name"] = [_("Give the rule a name.")]
    elif len(name) > 200:
        errors["name"] = [_("At most 200 characters.")]
    checked["name"] = name
    if kind in AlertKind.values:
        problem = _threshold_problem(kind, checked.get("threshold"))
        if problem:
            errors["threshold"] = [problem]
        if checked.get("threshold") is not None and not errors.get("threshold"):
            checked["threshold"] = float(checked["threshold"])
    window = checked.get("window_minutes", 60)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW_MINUTES:
        errors["window_minutes"] = [_("A window is a whole number of minutes from 1 to %(max)s.") % {"max": MAX_WINDOW_MINUTES}]
    for field, model_class, kinds, missing in (
        ("model", RegisteredModel, MODEL_KINDS, _("No model with this id in %(department)s.")),
        ("dataset", Dataset, DATASET_KINDS, _("No dataset with this id in %(department)s.")),
    ):
        value = checked.get(field)
        if value in (None, ""):
            checked[field] = None
            continue
        if current.get(field) is not None and getattr(value, "pk", value) == current[field].pk:
            checked[field] = current[field]
            continue
        if kind in AlertKind.values and kind not in kinds:
            errors[field] = [_("This kind of rule does not watch a %(field)s: leave it empty.") % {"field": field}]
            continue
        try:
            checked[field] = _target(model_class, value, department)
        except ValueError:
            errors[field] = [missing % {"department": department.name}]
    url = (checked.get("webhook_url") or "").strip()
    checked["webhook_url"] = url
    if url and url != current.get("webhook_url"):
        problem = webhooks.url_problem(url, settings.LEPTON_WEBHOOK_ALLOWED_HOSTS)
        if problem is not None:
            errors["webhook_url"] = [_webhook_url_message(problem)]
    if not (checked.get("notify_in_app") or checked.get("notify_email") or url):
        errors["notify_in_app"] = [_("Choose at least one channel: in the app, e-mail or a webhook.")]
    if errors:
        first = next(iter(errors.values()))[0]
        raise Invalid(first, fields=errors)
    return checked


def _webhook_url_message(problem: str) -> str:
    if problem == "scheme":
        return _("A webhook URL must start with http:// or https://.")
    if problem == "host":
        if not settings.LEPTON_WEBHOOK_ALLOWED_HOSTS:
            return _("Webhooks are turned off here: an operator allows target hosts with LEPTON_WEBHOOK_ALLOWED_HOSTS.")
        return _("This host may not receive webhooks; allowed: %(hosts)s.") % {
            "hosts": ", ".join(settings.LEPTON_WEBHOOK_ALLOWED_HOSTS)
        }
    if problem == "credentials":
        return _("Leave user names and passwords out of a webhook URL: requests are signed instead.")
    if problem == "address":
        return _(
            "This host leads to a link-local or reserved address (such as a cloud metadata service); webhooks may not go there."
        )
    return _("Enter a valid URL.")


def _rule_changes(rule: AlertRule) -> dict:
    return {
        "name": rule.name, "kind": rule.kind, "model": rule.model_id, "dataset": rule.dataset_id,
        "threshold": rule.threshold, "window_minutes": rule.window_minutes, "notify_in_app": rule.notify_in_app,
        "notify_email": rule.notify_email, "webhook_url": rule.webhook_url, "enabled": rule.enabled,
    }  # fmt: skip


def _require_manage(actor, department: Department) -> None:
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "manage", department):
        raise Forbidden(_("Maintainers of the department manage its alert rules."))


def rule_create(*, actor, department: Department, **values) -> AlertRule:
    """A new rule of `department` (its maintainers), checked by rule_values; audited.

    A rule with a webhook gets its own signing secret (rule.webhook_secret()).
    """
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise Invalid(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                      fields={f: [_("Unknown field.")] for f in unknown})  # fmt: skip
    _require_manage(actor, department)
    checked = rule_values(department, {"window_minutes": 60, "notify_in_app": True, "enabled": True, **values})
    from lepton.crypto import encrypt

    with transaction.atomic():
        rule = AlertRule.objects.create(
            department=department,
            created_by=actor,
            webhook_secret_encrypted=encrypt(secrets.token_urlsafe(32)),
            **{k: checked[k] for k in RULE_FIELDS if k in checked},
        )
        audit.record(actor=actor, action="alert_rule.create", obj=rule, changes=_rule_changes(rule))
    return rule


def rule_update(*, actor, rule: AlertRule, **values) -> AlertRule:
    """Change a rule (its department's maintainers); disabling it resolves its unresolved alerts. Audited."""
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise Invalid(_("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                      fields={f: [_("Unknown field.")] for f in unknown})  # fmt: skip
    policy.require(actor, "change", rule)
    current = {k: getattr(rule, k) for k in RULE_FIELDS}
    checked = rule_values(rule.department, {**current, **values}, current=current)
    now = timezone.now()
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
        changes = audit.diff(rule, list(RULE_FIELDS), {k: checked[k] for k in RULE_FIELDS})
        if not changes:
            return rule
        for field in RULE_FIELDS:
            setattr(rule, field, checked[field])
        rule.updated_at = now
        rule.save()
        if "enabled" in changes and not rule.enabled:
            closed = _resolve(Alert.objects.filter(rule=rule).exclude(state=AlertState.RESOLVED), now, actor)
            changes["alerts_resolved"] = len(closed)
        audit.record(actor=actor, action="alert_rule.update", obj=rule, changes=changes)
    return rule


def rule_secret_renew(*, actor, rule: AlertRule) -> AlertRule:
    """Give the rule a new webhook signing secret (its maintainers; audited, the secret itself is not).

    Receivers must be given the new one; also the way out when LEPTON_ENCRYPTION_KEYS lost the old.
    """
    from lepton.crypto import encrypt

    policy.require(actor, "change", rule)
    with transaction.atomic():
        AlertRule.objects.filter(pk=rule.pk).update(
            webhook_secret_encrypted=encrypt(secrets.token_urlsafe(32)), updated_at=timezone.now()
        )
        rule.refresh_from_db()
        audit.record(actor=actor, action="alert_rule.secret_renew", obj=rule)
    return rule


def rule_delete(*, actor, rule: AlertRule) -> None:
    """Delete a rule with its alert history (its department's maintainers); audited."""
    policy.require(actor, "delete", rule)
    with transaction.atomic():
        audit.record(actor=actor, action="alert_rule.delete", obj=rule, changes=_rule_changes(rule))
        rule.delete()


def alert_acknowledge(*, actor, alert: Alert) -> Alert:
    """Someone is on it: an open alert becomes acknowledged (members of its department); audited."""
    policy.require(actor, "change", alert)
    with transaction.atomic():
        now = timezone.now()
        updated = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
            state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor
        )
        if not updated:
            raise Conflict(_("Only an open alert can be acknowledged."))
        alert.refresh_from_db()
        audit.record(actor=actor, action="alert.acknowledge", obj=alert, department=alert.department,
                     changes={"state": [AlertState.OPEN, AlertState.ACKNOWLEDGED]})  # fmt: skip
    return alert


def alert_resolve(*, actor, alert: Alert) -> Alert:
    """Close an open or acknowledged alert by hand (members); if the condition still holds, the next pass opens a new one."""
    policy.require(actor, "change", alert)
    with transaction.atomic():
        before = Alert.objects.select_for_update().get(pk=alert.pk)
        if before.state == AlertState.RESOLVED:
            raise Conflict(_("This alert is already resolved."))
        _resolve(Alert.objects.filter(pk=alert.pk), timezone.now(), actor)
        alert.refresh_from_db()
        audit.record(actor=actor, action="alert.resolve", obj=alert, department=alert.department,
                     changes={"state": [before.state, AlertState.RESOLVED]})  # fmt: skip
    return alert


def notifications_read(*, actor, notification: Notification | None = None) -> int:
    """Mark one of the actor's notifications (or all of them) read; how many changed."""
    unread = Notification.objects.filter(user_id=actor.pk, read_at__isnull=True)
    if notification is not None:
        if notification.user_id != actor.pk:
            raise NotFound()
        unread = unread.filter(pk=notification.pk)
    return unread.update(read_at=timezone.now())


# --- the periodic passes --------------------------------------------------------------------


def alerts_evaluate(now: datetime | None = None) -> dict:
    """Evaluate every enabled rule (settings.LEPTON_PERIODIC_TASKS); {rules, opened, resolved, failed}.

    A rule whose source fails keeps its alerts as they are and records why in `last_error`;
    the others go on.
    """
    now = now or timezone.now()
    summary = {"rules": 0, "opened": 0, "resolved": 0, "failed": 0}
    rules = AlertRule.objects.filter(enabled=True).select_related("department").order_by("pk")
    for rule in rules:
        summary["rules"] += 1
        try:
            found = sources.findings(rule, now)
        except Exception as exc:  # noqa: BLE001 - one broken rule must not stop the others
            logger.warning("alert rule %s failed to evaluate: %s", rule.pk, exc)
            AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now, last_error=f"{type(exc).__name__}: {exc}"[:2000])
            summary["failed"] += 1
            continue
        opened, resolved = _apply(rule, found, now)
        summary["opened"] += opened
        summary["resolved"] += resolved
    return summary


def _apply(rule: AlertRule, found: list[sources.Finding], now: datetime) -> tuple[int, int]:
    """Open, refresh and resolve the rule's alerts to match `found`, with the side effects of each."""
    with transaction.atomic():
        unresolved = {
            a.dedup_key: a for a in Alert.objects.select_for_update().filter(rule=rule).exclude(state=AlertState.RESOLVED)
        }
        new, seen = [], []
        for finding in found:
            alert = unresolved.get(finding.key)
            if alert is not None:
                alert.last_seen_at, alert.value, alert.message = now, finding.value, finding.message
                seen.append(alert)
                continue
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        rule=rule, department=rule.department, kind=rule.kind, dedup_key=finding.key[:200],
                        value=finding.value, message=finding.message, first_seen_at=now, last_seen_at=now,
                    )  # fmt: skip
            except IntegrityError:
                continue  # another pass opened it meanwhile: alert_unresolved_once keeps one
            new.append(alert)
        Alert.objects.bulk_update(seen, ["last_seen_at", "value", "message"])
        keys = {f.key for f in found}
        cleared = _resolve(Alert.objects.filter(pk__in=[a.pk for k, a in unresolved.items() if k not in keys]), now, None)
        AlertRule.objects.filter(pk=rule.pk).update(last_evaluated_at=now, last_error="")
        _queue_webhooks(new, "alert.opened")
        if new and rule.notify_in_app:
            _notify_in_app(rule, new)
        if new and rule.notify_email:
            ids = [str(a.pk) for a in new]
            transaction.on_commit(lambda: platform_job_submit(kind=EMAIL_KIND, params={"alerts": ids}, priority=2))
    return len(new), len(cleared)


def _resolve(queryset, now: datetime, actor) -> list[Alert]:
    """Resolve the unresolved alerts of `queryset`, queueing each rule's "alert.resolved" webhook."""
    alerts = list(queryset.exclude(state=AlertState.RESOLVED).select_related("rule", "department"))
    if not alerts:
        return []
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(state=AlertState.RESOLVED, resolved_at=now, resolved_by=actor)
    for alert in alerts:
        alert.state, alert.resolved_at, alert.resolved_by = AlertState.RESOLVED, now, actor
    _queue_webhooks(alerts, "alert.resolved")
    return alerts


def _recipients(department_id: int):
    return [m.user for m in Membership.objects.filter(department_id=department_id, user__is_active=True).select_related("user")]


def _notify_in_app(rule: AlertRule, alerts: list[Alert]) -> None:
    people = _recipients(rule.department_id)
    Notification.objects.bulk_create(
        [
            Notification(user=person, alert=alert, message=f"{rule.name}: {alert.message}"[:2000])
            for alert in alerts
            for person in people
        ],
        ignore_conflicts=True,
    )


def alert_emails_send(alert_ids: list) -> int:
    """E-mail each alert to its department's people (one message each); how many messages went.

    Runs on a worker (job kind monitoring.alert_emails, queued when the alerts are committed), so
    a slow mail server never holds up the dispatcher. A mail server error fails the job.
    """
    alerts = Alert.objects.filter(pk__in=alert_ids).select_related("rule", "department").order_by("first_seen_at")
    messages = []
    for alert in alerts:
        rule = alert.rule
        people = [p for p in _recipients(alert.department_id) if p.email]
        languages = selectors.languages_of({p.pk for p in people})
        for person in people:
            with translation.override(languages[person.pk]):  # in the language the person reads Lepton in
                subject = _("[Lepton] %(rule)s") % {"rule": rule.name}
                body = _("%(message)s\n\nDepartment: %(department)s\nRule: %(rule)s\nFirst seen: %(at)s\n") % {
                    "message": alert.message, "department": alert.department.name, "rule": rule.name,
                    "at": f"{alert.first_seen_at:%Y-%m-%d %H:%M} UTC",
                }  # fmt: skip
            messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [person.email]))
    return send_mass_mail(messages, fail_silently=False) if messages else 0


def webhook_body(alert: Alert, event: str) -> dict:
    """What a webhook receives (monitoring.alerts.webhooks signs its bytes)."""
    return {
        "event": event,
        "department": alert.department.slug,
        "rule": {"id": str(alert.rule_id), "name": alert.rule.name, "kind": alert.rule.kind},
        "alert": {
            "id": str(alert.pk),
            "state": alert.state,
            "dedup_key": alert.dedup_key,
            "value": alert.value,
            "message": alert.message,
            "first_seen_at": alert.first_seen_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        },
    }


def _queue_webhooks(alerts: list[Alert], event: str) -> None:
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                rule=alert.rule, alert=alert, event=event, url=alert.rule.webhook_url, body=webhook_body(alert, event)
            )
            for alert in alerts
            if alert.rule.webhook_url
        ]
    )


def webhooks_enqueue_due(now: datetime | None = None) -> int:
    """Queue one delivery job when webhook deliveries are due and none is queued or running (settings.LEPTON_PERIODIC_TASKS).

    Only a cheap query runs in the dispatcher loop; the POSTs run on a worker (webhooks_deliver).
    Returns how many jobs were queued (0 or 1).
    """
    from lepton.jobs.models import Job, JobStatus

    now = now or timezone.now()
    if not WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).exists():
        return 0
    if Job.objects.filter(kind=WEBHOOK_KIND, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).exists():
        return 0
    platform_job_submit(kind=WEBHOOK_KIND, priority=2)
    return 1


def webhooks_deliver(now: datetime | None = None, limit: int = DELIVERIES_PER_PASS) -> dict:
    """POST the due webhook deliveries (the monitoring.alert_webhooks job); {delivered, retrying, failed}.

    Each is claimed by compare-and-set on `next_attempt_at` (a concurrent pass skips it). A 2xx
    answer delivers it; anything else is retried after LEPTON_WEBHOOK_BACKOFF_SECONDS × 2^(attempts−1),
    until LEPTON_WEBHOOK_MAX_ATTEMPTS attempts fail it. A host no longer allowed fails it unsent.
    """
    now = now or timezone.now()
    outcome = {"delivered": 0, "retrying": 0, "failed": 0}
    due = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .select_related("rule")
        .order_by("next_attempt_at")[:limit]
    )
    timeout = settings.LEPTON_WEBHOOK_TIMEOUT_SECONDS
    for delivery in due:
        lease = now + timedelta(seconds=timeout + 60)
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at=delivery.next_attempt_at
        ).update(next_attempt_at=lease)
        if claimed != 1:
            continue
        problem = webhooks.url_problem(delivery.url, settings.LEPTON_WEBHOOK_ALLOWED_HOSTS)
        attempts = delivery.attempts + 1
        try:
            secret = delivery.rule.webhook_secret()
        except CredentialError:
            secret, problem = None, "secret"
        if problem is not None:
            message = (
                _("The rule's webhook secret cannot be decrypted (LEPTON_ENCRYPTION_KEYS changed): renew it on the rule's page.")
                if problem == "secret"
                else _webhook_url_message(problem)
            )
            result = webhooks.Outcome(False, None, message)
            attempts = max(attempts, settings.LEPTON_WEBHOOK_MAX_ATTEMPTS)  # no retry can help
        else:
            payload = webhooks.encode(delivery.body)
            stamp = int(time.time())
            headers = {
                webhooks.SIGNATURE_HEADER: webhooks.signature(secret, stamp, payload),
                webhooks.TIMESTAMP_HEADER: str(stamp),
                webhooks.EVENT_HEADER: delivery.event,
                webhooks.DELIVERY_HEADER: str(delivery.pk),
            }
            result = webhooks.post(delivery.url, payload, headers, timeout)
        fields = {"attempts": attempts, "last_status_code": result.status_code, "last_error": result.error}
        if result.ok:
            fields.update(status=DeliveryStatus.DELIVERED, delivered_at=timezone.now())
            outcome["delivered"] += 1
        elif attempts >= settings.LEPTON_WEBHOOK_MAX_ATTEMPTS:
            fields.update(status=DeliveryStatus.FAILED)
            outcome["failed"] += 1
        else:
            backoff = settings.LEPTON_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1)
            fields.update(next_attempt_at=now + timedelta(seconds=backoff))
            outcome["retrying"] += 1
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    return outcome
