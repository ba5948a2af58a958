"""The audit viewer (/audit/), its CSV export and the audit API's filters."""

import csv
import datetime
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from lepton import audit
from lepton.models import AuditEvent
from tests.factories import DepartmentFactory


@pytest.fixture
def events(admin, owner, production, quality):
    """Events in production (by two people, on two days) and one in quality."""
    day = timezone.now() - datetime.timedelta(days=3)
    made = [
        audit.record(actor=admin, action="membership.add", obj=production, object_repr="prod-add"),
        audit.record(actor=owner, action="dataset.upload", obj=production, object_repr="sensor readings"),
        audit.record(actor=owner, action="dataset.delete", obj=production, object_repr="=HYPERLINK(evil)"),
        audit.record(actor=None, action="quality.secret", obj=quality, object_repr="quality-secret-object"),
    ]
    AuditEvent.objects.filter(pk=made[0].pk).update(at=day)
    audit.seal_pending()
    return made


def test_anonymous_is_sent_to_login(client):
    for name in ("audit_log", "audit_export"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_admin_sees_own_department_events_not_others(client, admin, events):
    client.force_login(admin)
    response = client.get(reverse("audit_log"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "sensor readings" in body and "prod-add" in body
    assert "quality-secret-object" not in body


def test_member_who_administers_nothing_sees_no_events_and_is_told_why(client, member, events):
    client.force_login(member)
    response = client.get(reverse("audit_log"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "sensor readings" not in body
    assert "You administer no department" in body
    assert f'href="{reverse("audit_log")}"' not in body.split("<main")[0]  # not linked in the navigation


def test_outsider_sees_nothing_of_production(client, outsider, events):
    client.force_login(outsider)
    for name in ("audit_log", "audit_export"):
        body = b"".join(
            client.get(reverse(name)).streaming_content if name == "audit_export" else [client.get(reverse(name)).content]
        )
        assert b"sensor readings" not in body and b"prod-add" not in body


def test_staff_sees_every_department(client, staff, events):
    client.force_login(staff)
    body = client.get(reverse("audit_log")).content.decode()
    assert "sensor readings" in body and "quality-secret-object" in body


def test_admin_gets_the_link_in_the_navigation(client, admin, events):
    client.force_login(admin)
    head = client.get(reverse("home")).content.decode().split("<main")[0]
    assert f'href="{reverse("audit_log")}"' in head


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ({"actor": "alice-admin"}, ["prod-add"], ["sensor readings"]),
        ({"action": "dataset."}, ["sensor readings"], ["prod-add"]),
        ({"object": "sensor"}, ["sensor readings"], ["prod-add"]),
        ({"department": "production"}, ["sensor readings"], ["quality-secret-object"]),
    ],
)
def test_filters(client, admin, events, query, shown, hidden):
    client.force_login(admin)
    body = client.get(reverse("audit_log"), query).content.decode()
    for text in shown:
        assert text in body
    for text in hidden:
        assert text not in body


def test_object_filter_by_type_and_id(client, admin, production, events):
    client.force_login(admin)
    body = client.get(reverse("audit_log"), {"object": f"lepton.department:{production.pk}"}).content.decode()
    assert "sensor readings" in body


def test_date_filters(client, admin, events):
    client.force_login(admin)
    today = timezone.localdate()
    body = client.get(reverse("audit_log"), {"date_from": today.isoformat()}).content.decode()
    assert "sensor readings" in body and "prod-add" not in body
    old = (today - datetime.timedelta(days=3)).isoformat()
    body = client.get(reverse("audit_log"), {"date_from": old, "date_to": old}).content.decode()
    assert "prod-add" in body and "sensor readings" not in body


def test_reversed_date_range_is_a_form_error(client, admin, events):
    client.force_login(admin)
    response = client.get(reverse("audit_log"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert response.status_code == 400
    assert "The end of the range is before its start." in response.content.decode()
    assert "sensor readings" not in response.content.decode()
    export = client.get(reverse("audit_export"), {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert export.status_code == 400 and "The end of the range is before its start." in export.content.decode()


def test_pagination(client, admin, production):
    for i in range(55):
        audit.record(actor=admin, action="bulk.touch", obj=production, object_repr=f"item-{i:02d}")
    client.force_login(admin)
    first = client.get(reverse("audit_log")).content.decode()
    assert "item-54" in first and "item-04" not in first and "Page 1 of 2" in first
    second = client.get(reverse("audit_log"), {"page": 2}).content.decode()
    assert "item-04" in second and "item-54" not in second


def test_csv_export_streams_the_filtered_list(client, admin, events):
    client.force_login(admin)
    response = client.get(reverse("audit_export"), {"action": "dataset."})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["at", "seq", "actor", "action"]
    objects = sorted(row[6] for row in rows[1:])
    # Cells a spreadsheet would run as a formula are quoted.
    assert objects == ["'=HYPERLINK(evil)", "sensor readings"]
    assert all(len(row[10]) == 64 for row in rows[1:])


def test_api_filters_and_reversed_range(client, admin, events):
    client.force_login(admin)
    data = client.get("/api/v1/audit/", {"actor": "oscar-owner"}).json()
    assert {e["object_repr"] for e in data["results"]} == {"sensor readings", "=HYPERLINK(evil)"}
    response = client.get("/api/v1/audit/", {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert response.status_code == 400
    assert response.json()["fields"]["date_to"] == ["The end of the range is before its start."]


def test_api_outsider_and_anonymous(client, outsider, events):
    assert client.get("/api/v1/audit/").status_code == 401
    client.force_login(outsider)
    data = client.get("/api/v1/audit/").json()
    assert "sensor readings" not in str(data)


def test_admin_of_another_department_does_not_see_production(client, events, db):
    from tests.conftest import _person

    other = _person("adam-other-admin", DepartmentFactory(slug="other"), "admin")
    client.force_login(other)
    assert "sensor readings" not in client.get(reverse("audit_log")).content.decode()
