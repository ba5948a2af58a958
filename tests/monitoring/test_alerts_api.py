"""/api/v1/alert-rules/ and /api/v1/alerts/: anonymous, outsider, member (reads, acknowledges), maintainer
(changes rules), bad input refused with field and reason and nothing changed, fixed query counts, the schema."""

import pytest
from rest_framework.test import APIClient

from lepton.models import AuditEvent
from monitoring.alerts import services
from monitoring.alerts.models import Alert, AlertRule, AlertState

RULES = "/api/v1/alert-rules/"
ALERTS = "/api/v1/alerts/"


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


@pytest.fixture
def rule(owner, production):
    return services.rule_create(actor=owner, department=production, name="Failed jobs", kind="job_failed")


@pytest.fixture
def alert(rule, production):
    return Alert.objects.create(rule=rule, department=production, kind=rule.kind, dedup_key="job:1", message="Job x failed")


@pytest.mark.parametrize("path", [RULES, ALERTS])
def test_anonymous_gets_401(path, alert):
    response = api().get(path)
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    assert api().post(f"{ALERTS}{alert.pk}/acknowledge/").status_code == 401
    assert api().post(RULES, {"department": "production", "name": "x", "kind": "job_failed"}, format="json").status_code == 401
    assert AlertRule.objects.count() == 1 and Alert.objects.get().state == AlertState.OPEN


def test_outsider_sees_nothing_and_gets_404_for_the_objects(outsider, rule, alert):
    assert api(outsider).get(RULES).json()["results"] == []
    assert api(outsider).get(ALERTS).json()["results"] == []
    assert api(outsider).get(f"{RULES}{rule.pk}/").status_code == 404
    assert api(outsider).patch(f"{RULES}{rule.pk}/", {"enabled": False}, format="json").status_code == 404
    assert api(outsider).delete(f"{RULES}{rule.pk}/").status_code == 404
    assert api(outsider).post(f"{ALERTS}{alert.pk}/acknowledge/").status_code == 404
    assert api(outsider).post(f"{ALERTS}{alert.pk}/resolve/").status_code == 404
    response = api(outsider).post(RULES, {"department": "production", "name": "x", "kind": "job_failed"}, format="json")
    assert response.status_code == 400 and "No department" in response.json()["fields"]["department"][0]
    rule.refresh_from_db()
    alert.refresh_from_db()
    assert rule.enabled and alert.state == AlertState.OPEN and AlertRule.objects.count() == 1


def test_member_reads_rules_without_the_secret_and_may_not_change_them(member, rule):
    body = api(member).get(RULES).json()["results"]
    assert [r["name"] for r in body] == ["Failed jobs"] and body[0]["webhook_secret"] == ""
    response = api(member).patch(f"{RULES}{rule.pk}/", {"enabled": False}, format="json")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = api(member).post(RULES, {"department": "production", "name": "x", "kind": "job_failed"}, format="json")
    assert response.status_code == 403
    rule.refresh_from_db()
    assert rule.enabled and AlertRule.objects.count() == 1


def test_viewer_sees_alerts_but_not_rules_and_may_not_acknowledge(viewer, rule, alert):
    assert api(viewer).get(RULES).json()["results"] == []
    assert [a["id"] for a in api(viewer).get(ALERTS).json()["results"]] == [str(alert.pk)]
    assert api(viewer).post(f"{ALERTS}{alert.pk}/acknowledge/").status_code == 403
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_maintainer_creates_changes_disables_and_deletes_a_rule(owner, production, settings):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    payload = {"department": "production", "name": "Drift", "kind": "drift_psi", "threshold": 0.3,
               "webhook_url": "https://hooks.example.com/lepton"}  # fmt: skip
    response = api(owner).post(RULES, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    rule = AlertRule.objects.get(pk=body["id"])
    assert body["department"] == "production" and body["threshold"] == 0.3 and body["webhook_secret"] == rule.webhook_secret()
    assert body["created_by"] == "oscar-owner" and body["enabled"] is True
    response = api(owner).patch(f"{RULES}{rule.pk}/", {"threshold": 0.5, "enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["threshold"] == 0.5 and response.json()["enabled"] is False
    assert api(owner).delete(f"{RULES}{rule.pk}/").status_code == 204
    assert not AlertRule.objects.exists()
    actions = list(AuditEvent.objects.filter(object_id=str(rule.pk)).order_by("id").values_list("action", flat=True))
    assert actions == ["alert_rule.create", "alert_rule.update", "alert_rule.delete"]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"kind": "drift_psi", "threshold": "high"}, "threshold", "A valid number is required."),
        ({"kind": "drift_psi", "threshold": 0}, "threshold", "must be above 0"),
        ({"kind": "drift_psi", "threshold": -1}, "threshold", "must be above 0"),
        ({"kind": "error_rate", "threshold": 12}, "threshold", "between 0 and 1"),
        ({"kind": "job_failed", "window_minutes": "soon"}, "window_minutes", "A valid integer is required."),
        ({"kind": "job_failed", "window_minutes": 99999}, "window_minutes", "from 1 to 10080"),
        ({"kind": "nope"}, "kind", "is not a valid choice"),
        ({"kind": "job_failed", "webhook_url": "file:///etc/passwd"}, "webhook_url", "http:// or https://"),
        ({"kind": "job_failed", "webhook_url": "https://169.254.169.254/latest"}, "webhook_url", "may not receive webhooks"),
        ({"kind": "drift_psi", "threshold": 0.2, "model": "x"}, "model", "Must be a valid UUID."),
    ],
)
def test_bad_rules_get_400_with_field_and_reason_and_nothing_changes(owner, settings, production, payload, field, words):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    response = api(owner).post(RULES, {"department": "production", "name": "Bad", **payload}, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid" and words in body["fields"][field][0]
    assert not AlertRule.objects.exists()


def test_a_bad_change_gets_400_and_leaves_the_rule_as_it_was(owner, rule):
    response = api(owner).patch(f"{RULES}{rule.pk}/", {"threshold": 0.5}, format="json")
    assert response.status_code == 400 and "takes no threshold" in response.json()["fields"]["threshold"][0]
    rule.refresh_from_db()
    assert rule.threshold is None and not AuditEvent.objects.filter(action="alert_rule.update").exists()


def test_member_acknowledges_then_resolves_and_a_second_resolve_conflicts(member, alert):
    response = api(member).post(f"{ALERTS}{alert.pk}/acknowledge/")
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    assert response.json()["acknowledged_by"] == "mia-member"
    response = api(member).post(f"{ALERTS}{alert.pk}/resolve/")
    assert response.status_code == 200 and response.json()["state"] == "resolved"
    assert response.json()["resolved_by"] == "mia-member"
    response = api(member).post(f"{ALERTS}{alert.pk}/resolve/")
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert list(AuditEvent.objects.filter(object_id=str(alert.pk)).values_list("action", flat=True).order_by("id")) == [
        "alert.acknowledge", "alert.resolve",
    ]  # fmt: skip


def test_alerts_filter_by_state_and_kind(member, rule, production):
    Alert.objects.create(rule=rule, department=production, kind=rule.kind, dedup_key="a", message="a")
    Alert.objects.create(rule=rule, department=production, kind=rule.kind, dedup_key="b", message="b", state="resolved")
    assert [a["dedup_key"] for a in api(member).get(f"{ALERTS}?state=open").json()["results"]] == ["a"]
    assert len(api(member).get(f"{ALERTS}?kind=job_failed").json()["results"]) == 2
    assert api(member).get(f"{ALERTS}?kind=drift_psi").json()["results"] == []
    response = api(member).get(f"{ALERTS}?state=sleepy")
    assert response.status_code == 400 and "state" in response.json()["fields"]


def test_list_query_counts_do_not_grow_with_the_page(member, rule, production):
    from monitoring.alerts.selectors import alerts_visible

    alerts_visible(member).count()  # the member's roles are read once per user object: not part of a page

    def counts(n):
        Alert.objects.all().delete()
        Alert.objects.bulk_create(
            Alert(rule=rule, department=production, kind=rule.kind, dedup_key=f"k{i}", message="m") for i in range(n)
        )
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client = api(member)
        with CaptureQueriesContext(connection) as alerts:
            assert client.get(ALERTS).status_code == 200
        with CaptureQueriesContext(connection) as rules:
            assert client.get(RULES).status_code == 200
        return len(alerts), len(rules)

    assert counts(2) == counts(30) == (2, 2)  # a count and a page each


def test_the_schema_builds_with_the_alert_endpoints(member):
    response = api(member).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/alert-rules/" in text and "/api/v1/alerts/{id}/acknowledge/" in text
    assert "AlertStateEnum" in text and "AlertKindEnum" in text
