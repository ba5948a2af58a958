"""The alert pages: anonymous, outsider, viewer, member and maintainer; rule forms with clear errors and
nothing changed; acknowledge and resolve; notifications and the top bar's count."""

import pytest
from django.urls import reverse

from lepton.models import AuditEvent
from monitoring.alerts import services
from monitoring.alerts.models import Alert, AlertRule, AlertState, Notification

FORM = {"name": "Drift watch", "kind": "drift_psi", "threshold": "0.25", "window_minutes": "60", "notify_in_app": "on",
        "enabled": "on"}  # fmt: skip


@pytest.fixture
def rule(owner, production):
    return services.rule_create(actor=owner, department=production, name="Failed jobs", kind="job_failed")


@pytest.fixture
def alert(rule, production):
    return Alert.objects.create(rule=rule, department=production, kind=rule.kind, dedup_key="job:1", message="Job x failed: boom")


def _urls(rule, alert):
    return [
        ("get", reverse("monitoring:alert_list")),
        ("get", reverse("monitoring:alert_rule_list")),
        ("get", reverse("monitoring:alert_rule_create")),
        ("get", reverse("monitoring:alert_rule_edit", args=[rule.pk])),
        ("post", reverse("monitoring:alert_rule_toggle", args=[rule.pk])),
        ("post", reverse("monitoring:alert_acknowledge", args=[alert.pk])),
        ("post", reverse("monitoring:alert_resolve", args=[alert.pk])),
        ("get", reverse("monitoring:notification_list")),
        ("post", reverse("monitoring:notification_read")),
    ]


def test_anonymous_is_sent_to_log_in_and_changes_nothing(client, rule, alert):
    for method, url in _urls(rule, alert):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login" in response["Location"], url
    rule.refresh_from_db()
    alert.refresh_from_db()
    assert rule.enabled and alert.state == AlertState.OPEN


def test_outsider_gets_404_for_another_department_s_rules_and_alerts(client, outsider, rule, alert):
    client.force_login(outsider)
    assert client.get(reverse("monitoring:alert_list") + "?department=production").status_code == 404
    assert client.get(reverse("monitoring:alert_rule_list") + "?department=production").status_code == 404
    assert client.get(reverse("monitoring:alert_rule_create") + "?department=production").status_code == 404
    assert client.get(reverse("monitoring:alert_rule_edit", args=[rule.pk])).status_code == 404
    assert client.post(reverse("monitoring:alert_rule_toggle", args=[rule.pk])).status_code == 404
    assert client.post(reverse("monitoring:alert_acknowledge", args=[alert.pk])).status_code == 404
    assert client.post(reverse("monitoring:alert_resolve", args=[alert.pk])).status_code == 404
    own = client.get(reverse("monitoring:alert_list")).content.decode()  # their own department: nothing of Production's
    assert "Job x failed" not in own
    rule.refresh_from_db()
    alert.refresh_from_db()
    assert rule.enabled and alert.state == AlertState.OPEN


def test_member_reads_rules_but_may_not_create_edit_or_disable(client, member, rule):
    client.force_login(member)
    html = client.get(reverse("monitoring:alert_rule_list")).content.decode()
    assert "Failed jobs" in html and reverse("monitoring:alert_rule_edit", args=[rule.pk]) not in html
    assert client.get(reverse("monitoring:alert_rule_create")).status_code == 403
    assert client.post(reverse("monitoring:alert_rule_create"), FORM).status_code == 403
    assert client.get(reverse("monitoring:alert_rule_edit", args=[rule.pk])).status_code == 403
    assert client.post(reverse("monitoring:alert_rule_toggle", args=[rule.pk])).status_code == 403
    rule.refresh_from_db()
    assert rule.enabled and AlertRule.objects.count() == 1


def test_viewer_sees_alerts_without_buttons_and_no_rules(client, viewer, rule, alert):
    client.force_login(viewer)
    html = client.get(reverse("monitoring:alert_list")).content.decode()
    assert "Job x failed: boom" in html and reverse("monitoring:alert_acknowledge", args=[alert.pk]) not in html
    html = client.get(reverse("monitoring:alert_rule_list")).content.decode()
    assert "Failed jobs" not in html and "Members and maintainers of the department see its alert rules." in html
    assert client.post(reverse("monitoring:alert_acknowledge", args=[alert.pk])).status_code == 403


def test_maintainer_creates_a_rule_with_the_form(client, owner, production):
    client.force_login(owner)
    assert "No alert rules yet." in client.get(reverse("monitoring:alert_rule_list")).content.decode()
    response = client.post(reverse("monitoring:alert_rule_create") + "?department=production", FORM)
    rule = AlertRule.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("monitoring:alert_rule_edit", args=[rule.pk])
    assert rule.kind == "drift_psi" and rule.threshold == 0.25 and rule.department == production
    html = client.get(response["Location"]).content.decode()
    assert rule.webhook_secret() in html


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"threshold": "a lot"}, "threshold", "Enter a number."),
        ({"threshold": "0"}, "threshold", "A PSI threshold must be above 0"),
        ({"threshold": "-0.5"}, "threshold", "A PSI threshold must be above 0"),
        ({"threshold": ""}, "threshold", "This kind of rule needs a threshold."),
        ({"kind": "error_rate", "threshold": "5"}, "threshold", "between 0 and 1"),
        ({"window_minutes": "0"}, "window_minutes", "from 1 to 10080"),
        ({"webhook_url": "ftp://hooks.example.com/x"}, "webhook_url", "must start with http:// or https://"),
        ({"webhook_url": "https://elsewhere.org/x"}, "webhook_url", "This host may not receive webhooks"),
        ({"notify_in_app": ""}, "notify_in_app", "Choose at least one channel"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_bad_rule_forms_show_the_error_by_the_field_and_save_nothing(client, owner, settings, changes, field, message):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    client.force_login(owner)
    data = {k: v for k, v in {**FORM, **changes}.items() if v != "" or k in ("threshold", "name")}
    response = client.post(reverse("monitoring:alert_rule_create"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert any(message in error for error in form.errors[field]), form.errors
    assert message.split(":")[0] in response.content.decode().replace("&#x27;", "'")
    assert not AlertRule.objects.exists() and not AuditEvent.objects.filter(action__startswith="alert_rule").exists()


def test_maintainer_edits_and_a_bad_edit_changes_nothing(client, owner, rule):
    client.force_login(owner)
    url = reverse("monitoring:alert_rule_edit", args=[rule.pk])
    form = {"name": "Failed jobs", "kind": "job_failed", "window_minutes": "30", "notify_in_app": "on", "enabled": "on"}
    assert client.post(url, {**form, "threshold": "3"}).status_code == 400
    rule.refresh_from_db()
    assert rule.window_minutes == 60 and rule.threshold is None
    assert client.post(url, form).status_code == 302
    rule.refresh_from_db()
    assert rule.window_minutes == 30


def test_maintainer_disables_a_rule_and_its_alerts_resolve(client, owner, rule, alert):
    client.force_login(owner)
    response = client.post(reverse("monitoring:alert_rule_toggle", args=[rule.pk]), follow=True)
    assert "disabled; its alerts are resolved" in response.content.decode()
    rule.refresh_from_db()
    alert.refresh_from_db()
    assert not rule.enabled and alert.state == AlertState.RESOLVED and alert.resolved_by == owner


def test_member_acknowledges_and_resolves_from_the_history(client, member, alert):
    client.force_login(member)
    html = client.get(reverse("monitoring:alert_list")).content.decode()
    assert "Job x failed: boom" in html and reverse("monitoring:alert_acknowledge", args=[alert.pk]) in html
    response = client.post(reverse("monitoring:alert_acknowledge", args=[alert.pk]), follow=True)
    assert "Alert acknowledged." in response.content.decode()
    response = client.post(reverse("monitoring:alert_acknowledge", args=[alert.pk]), follow=True)
    assert "Only an open alert can be acknowledged." in response.content.decode()
    client.post(reverse("monitoring:alert_resolve", args=[alert.pk]))
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_by == member
    # Resolved alerts leave the default view and stay in the history.
    assert "Job x failed: boom" not in client.get(reverse("monitoring:alert_list")).content.decode()
    assert "Job x failed: boom" in client.get(reverse("monitoring:alert_list") + "?state=resolved").content.decode()


def test_a_bad_state_filter_is_a_400_with_the_reason(client, member, alert):
    client.force_login(member)
    response = client.get(reverse("monitoring:alert_list") + "?state=sleepy")
    assert response.status_code == 400 and "sleepy" in response.content.decode()


def test_notifications_count_in_the_top_bar_and_are_read_one_or_all(client, owner, member, production):
    from django.utils import timezone

    from lepton.jobs.models import Job, JobStatus

    services.rule_create(actor=owner, department=production, name="Failed jobs", kind="job_failed")
    for _ in range(2):
        Job.objects.create(kind="x", department=production, status=JobStatus.FAILED, finished_at=timezone.now())
    services.alerts_evaluate()
    client.force_login(member)
    html = client.get(reverse("home")).content.decode()
    assert '<span class="badge badge-failed" id="unread-count">2</span>' in html
    first = Notification.objects.filter(user=member).first()
    client.post(reverse("monitoring:notification_read"), {"notification": first.pk})
    assert 'id="unread-count">1</span>' in client.get(reverse("monitoring:notification_list")).content.decode()
    other = Notification.objects.filter(user=owner).first()
    assert client.post(reverse("monitoring:notification_read"), {"notification": other.pk}).status_code == 404
    client.post(reverse("monitoring:notification_read"))
    assert 'id="unread-count"' not in client.get(reverse("monitoring:notification_list")).content.decode()
    other.refresh_from_db()
    assert other.read_at is None  # someone else's stays unread


def test_an_empty_notification_list_says_what_comes_there(client, member):
    client.force_login(member)
    html = client.get(reverse("monitoring:notification_list")).content.decode()
    assert "When an alert rule of your department opens an alert" in html


def test_staff_reads_alerting_in_the_admin_without_the_webhook_secret(client, staff, rule, alert):
    client.force_login(staff)
    for name in ("alertrule", "alert", "notification", "webhookdelivery"):
        assert client.get(reverse(f"admin:monitoring_{name}_changelist")).status_code == 200, name
    html = client.get(reverse("admin:monitoring_alertrule_change", args=[rule.pk])).content.decode()
    assert "Failed jobs" in html and rule.webhook_secret() not in html and rule.webhook_secret_encrypted not in html
    assert client.get(reverse("admin:monitoring_alert_change", args=[alert.pk])).status_code == 200


def test_the_history_pages_keep_the_filter(client, member, rule, production):
    Alert.objects.bulk_create(
        Alert(rule=rule, department=production, kind=rule.kind, dedup_key=f"k{i}", message=f"m{i}", state="resolved")
        for i in range(55)
    )
    client.force_login(member)
    html = client.get(reverse("monitoring:alert_list") + "?state=resolved").content.decode()
    assert "55 alerts" in html and "state=resolved&amp;page=2" in html
    assert "m0" in client.get(reverse("monitoring:alert_list") + "?state=resolved&page=2").content.decode()


def test_maintainer_renews_the_secret_on_the_rule_page_and_others_may_not(client, owner, member, outsider, rule):
    old = rule.webhook_secret()
    url = reverse("monitoring:alert_rule_secret_renew", args=[rule.pk])
    client.force_login(outsider)
    assert client.post(url).status_code == 404
    client.force_login(member)
    assert client.post(url).status_code == 403
    rule.refresh_from_db()
    assert rule.webhook_secret() == old
    client.force_login(owner)
    response = client.post(url, follow=True)
    rule.refresh_from_db()
    assert rule.webhook_secret() != old and rule.webhook_secret() in response.content.decode()
    client.logout()
    assert client.post(url).status_code == 302
