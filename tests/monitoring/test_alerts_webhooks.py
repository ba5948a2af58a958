"""Webhooks against a local HTTP server: signed JSON bodies, retries with exponential backoff,
the host allow-list, the delivery job run by a real worker, and the /metrics gauges."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from lepton.jobs.models import Job, JobStatus
from monitoring.alerts import services, webhooks
from monitoring.alerts.models import Alert, DeliveryStatus, WebhookDelivery
from tests.conftest import wait_for_job
from tests.monitoring.alerts import Receiver


@pytest.fixture
def allow_local(settings):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LEPTON_WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.LEPTON_WEBHOOK_MAX_ATTEMPTS = 3
    settings.LEPTON_WEBHOOK_BACKOFF_SECONDS = 30.0
    return settings


def _failed_job(department, **extra):
    return Job.objects.create(kind="datalake.ingest", department=department, status=JobStatus.FAILED,
                              finished_at=timezone.now(), error_message="disk full", **extra)  # fmt: skip


def test_a_new_alert_is_posted_signed_with_the_rule_s_secret(owner, production, allow_local):
    with Receiver([200]) as receiver:
        rule = services.rule_create(actor=owner, department=production, name="Failures", kind="job_failed",
                                    webhook_url=receiver.url, notify_in_app=False)  # fmt: skip
        _failed_job(production)
        services.alerts_evaluate()
        assert services.webhooks_deliver() == {"delivered": 1, "retrying": 0, "failed": 0}
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    stamp = headers["x-lepton-timestamp"]
    expected = hmac.new(rule.webhook_secret().encode(), f"{stamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert headers["x-lepton-signature"] == f"sha256={expected}"
    assert headers["content-type"] == "application/json" and headers["x-lepton-event"] == "alert.opened"
    body = json.loads(request["body"])
    alert = Alert.objects.get(rule=rule)
    assert body["event"] == "alert.opened" and body["department"] == "production"
    assert body["rule"] == {"id": str(rule.pk), "name": "Failures", "kind": "job_failed"}
    assert body["alert"]["id"] == str(alert.pk) and "disk full" in body["alert"]["message"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_status_code == 200
    # A signature made with another key does not match: the receiver can tell a forgery.
    assert webhooks.signature("another", int(stamp), request["body"]) != headers["x-lepton-signature"]


def test_a_failing_receiver_is_retried_with_exponential_backoff_then_given_up(owner, production, allow_local):
    with Receiver([500, 503, 500, 200]) as receiver:
        services.rule_create(actor=owner, department=production, name="Failures", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
        delivery = WebhookDelivery.objects.get()
        now = timezone.now()
        assert services.webhooks_deliver(now=now) == {"delivered": 0, "retrying": 1, "failed": 0}
        delivery.refresh_from_db()
        assert delivery.attempts == 1 and delivery.last_status_code == 500 and "HTTP 500" in delivery.last_error
        assert delivery.next_attempt_at == now + timedelta(seconds=30)
        assert services.webhooks_deliver(now=now + timedelta(seconds=29))["retrying"] == 0  # not due yet
        assert services.webhooks_deliver(now=now + timedelta(seconds=30))["retrying"] == 1
        delivery.refresh_from_db()
        assert delivery.attempts == 2 and delivery.last_status_code == 503
        assert delivery.next_attempt_at == now + timedelta(seconds=30) + timedelta(seconds=60)  # doubled
        assert services.webhooks_deliver(now=now + timedelta(seconds=90))["failed"] == 1  # the third of 3 attempts
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
        assert services.webhooks_deliver(now=now + timedelta(days=1)) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert len(receiver.requests) == 3


def test_a_retry_that_succeeds_delivers(owner, production, allow_local):
    with Receiver([502, 200]) as receiver:
        services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
        now = timezone.now()
        services.webhooks_deliver(now=now)
        assert services.webhooks_deliver(now=now + timedelta(seconds=31)) == {"delivered": 1, "retrying": 0, "failed": 0}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2 and delivery.last_error == ""


def test_an_unreachable_receiver_records_the_network_error(owner, production, allow_local):
    with Receiver() as receiver:
        url = receiver.url
    # The server is closed: nothing listens on its port any more.
    services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=url)
    _failed_job(production)
    services.alerts_evaluate()
    assert services.webhooks_deliver()["retrying"] == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None and "Connection refused" in delivery.last_error


def test_a_resolved_alert_is_posted_too(owner, production, allow_local):
    with Receiver([200]) as receiver:
        rule = services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
        services.alert_resolve(actor=owner, alert=Alert.objects.get(rule=rule))
        assert services.webhooks_deliver()["delivered"] == 2
    bodies = {b["event"]: b for b in (json.loads(r["body"]) for r in receiver.requests)}
    assert set(bodies) == {"alert.opened", "alert.resolved"}
    assert bodies["alert.opened"]["alert"]["state"] == "open" and bodies["alert.opened"]["alert"]["resolved_at"] is None
    assert bodies["alert.resolved"]["alert"]["state"] == "resolved" and bodies["alert.resolved"]["alert"]["resolved_at"]


def test_a_host_removed_from_the_allow_list_fails_the_delivery_unsent(owner, production, allow_local):
    with Receiver([200]) as receiver:
        services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
        allow_local.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
        assert services.webhooks_deliver()["failed"] == 1
    assert receiver.requests == []
    assert "may not receive webhooks" in WebhookDelivery.objects.get().last_error


@pytest.mark.parametrize(
    ("url", "allowed", "problem"),
    [
        ("https://hooks.example.com/x", ["hooks.example.com"], None),
        ("https://HOOKS.example.com:8443/x", ["hooks.example.com"], None),
        ("https://a.example.com/x", [".example.com"], None),
        ("https://example.com/x", [".example.com"], None),
        ("https://anything.test/x", ["*"], None),
        ("https://evilexample.com/x", [".example.com"], "host"),
        ("https://hooks.example.com.evil.org/x", ["hooks.example.com"], "host"),
        ("http://10.0.0.1/x", [], "host"),
        ("ftp://hooks.example.com/x", ["hooks.example.com"], "scheme"),
        ("javascript:alert(1)", ["*"], "scheme"),
        ("https://user:pw@hooks.example.com/x", ["hooks.example.com"], "credentials"),
        ("https:///x", ["*"], "malformed"),
        ("https://hooks.example.com:99999/x", ["hooks.example.com"], "malformed"),
    ],
)
def test_the_allow_list(url, allowed, problem):
    assert webhooks.url_problem(url, allowed) == problem


def test_metrics_count_unresolved_alerts_and_deliveries_by_outcome(client, owner, production, quality, allow_local):
    from monitoring.alerts.models import AlertRule

    with Receiver([200]) as receiver:
        services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        _failed_job(production)
        services.alerts_evaluate()
        services.webhooks_deliver(limit=1)
    lines = client.get("/metrics").content.decode().splitlines()
    assert 'lepton_alerts_unresolved{department="production",kind="job_failed"} 2.0' in lines
    assert 'lepton_alert_webhook_deliveries{outcome="delivered"} 1.0' in lines
    assert 'lepton_alert_webhook_deliveries{outcome="pending"} 1.0' in lines
    assert 'lepton_alert_webhook_deliveries{outcome="failed"} 0.0' in lines
    services.rule_update(actor=owner, rule=AlertRule.objects.get(), enabled=False)
    lines = client.get("/metrics").content.decode().splitlines()
    assert not [x for x in lines if x.startswith("lepton_alerts_unresolved{")]


def test_the_periodic_pass_queues_one_delivery_job_only_when_deliveries_are_due(owner, production, allow_local):
    assert services.webhooks_enqueue_due() == 0
    with Receiver([200]) as receiver:
        services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
    assert services.webhooks_enqueue_due() == 1
    assert services.webhooks_enqueue_due() == 0  # one is queued already
    assert Job.objects.filter(kind=services.WEBHOOK_KIND, status="queued").count() == 1
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    Job.objects.filter(kind=services.WEBHOOK_KIND).delete()
    assert services.webhooks_enqueue_due() == 0  # nothing due yet


def test_a_real_worker_delivers_the_webhook_and_the_e_mail(owner, member, production, allow_local, celery_worker, dispatcher):
    from django.core import mail

    with Receiver([200]) as receiver:
        services.rule_create(actor=owner, department=production, name="Failures", kind="job_failed",
                             webhook_url=receiver.url, notify_email=True)  # fmt: skip
        _failed_job(production)
        assert services.alerts_evaluate()["opened"] == 1
        assert services.webhooks_enqueue_due() == 1
        for kind in (services.WEBHOOK_KIND, services.EMAIL_KIND):
            job = wait_for_job(Job.objects.get(kind=kind))
            assert job.status == "succeeded", job.error_message
    assert len(receiver.requests) == 1 and json.loads(receiver.requests[0]["body"])["event"] == "alert.opened"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
    assert sorted(m.to[0] for m in mail.outbox) == ["mia-member@example.com", "oscar-owner@example.com"]


def test_a_redirect_is_not_followed_and_counts_as_a_failed_attempt(owner, production, allow_local):
    with Receiver([302]) as receiver:
        services.rule_create(actor=owner, department=production, name="F", kind="job_failed", webhook_url=receiver.url)
        _failed_job(production)
        services.alerts_evaluate()
        assert services.webhooks_deliver()["retrying"] == 1
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code == 302 and delivery.status == DeliveryStatus.PENDING


def test_key_rotation_re_encrypts_webhook_secrets_and_a_lost_one_is_renewed(owner, member, production, settings, allow_local):
    from cryptography.fernet import Fernet
    from django.core.management import CommandError, call_command

    from monitoring.alerts.models import AlertRule

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.LEPTON_ENCRYPTION_KEYS = [old]
    kept = services.rule_create(actor=owner, department=production, name="Kept", kind="job_failed")
    secret = kept.webhook_secret()
    settings.LEPTON_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with Receiver([200]) as receiver:
        lost = services.rule_create(actor=owner, department=production, name="Lost", kind="job_failed", webhook_url=receiver.url)
        settings.LEPTON_ENCRYPTION_KEYS = [new, old]
        with pytest.raises(CommandError, match="1 webhook secret.*production/Lost"):
            call_command("rotate_credentials")
        settings.LEPTON_ENCRYPTION_KEYS = [new]
        assert AlertRule.objects.get(pk=kept.pk).webhook_secret() == secret  # opens with the new key alone
        # The lost secret cannot sign: the delivery fails at once with the reason, nothing is sent.
        _failed_job(production)
        services.alerts_evaluate()
        assert services.webhooks_deliver()["failed"] == 1
        assert "cannot be decrypted" in WebhookDelivery.objects.get().last_error and receiver.requests == []
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    assert client.get(f"/api/v1/alert-rules/{lost.pk}/").json()["webhook_secret"] == ""
    client.force_authenticate(member)
    assert client.post(f"/api/v1/alert-rules/{lost.pk}/renew-secret/").status_code == 403
    client.force_authenticate(owner)
    renewed = client.post(f"/api/v1/alert-rules/{lost.pk}/renew-secret/").json()["webhook_secret"]
    assert renewed and AlertRule.objects.get(pk=lost.pk).webhook_secret() == renewed
    from lepton.models import AuditEvent

    assert AuditEvent.objects.filter(action="alert_rule.secret_renew", object_id=str(lost.pk)).count() == 1
