"""Trash, restore, purge and version diff: services and API, with anonymous and outsider tests."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from datalake import services
from datalake.models import Dataset, DatasetVersion
from lepton import audit
from lepton.errors import Conflict, Forbidden, Invalid
from lepton.models import AuditEvent
from lepton.storage import get_storage


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Sensors")


def publish(member, dataset, data: bytes, name="s.csv"):
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(data), filename=name)
    version = services.version_ingest(version.pk)  # inline: the job handler calls exactly this
    assert version.status == "published", version.error_message
    return version


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_delete_restore_round_trip(owner, member, sensors):
    with pytest.raises(Forbidden):
        services.dataset_delete(actor=member, dataset=sensors)
    services.dataset_delete(actor=owner, dataset=sensors)
    assert api(member).get(f"/api/v1/datasets/{sensors.pk}/").status_code == 404
    assert [d["id"] for d in api(owner).get("/api/v1/datasets/trash/").json()["results"]] == [str(sensors.pk)]
    with pytest.raises(Conflict):
        services.dataset_upload(
            actor=owner, dataset=Dataset.objects.get(pk=sensors.pk), stream=io.BytesIO(b"a\n1\n"), filename="a.csv"
        )
    response = api(owner).post(f"/api/v1/datasets/{sensors.pk}/restore/")
    assert response.status_code == 200 and response.json()["id"] == str(sensors.pk)
    assert [e.action for e in AuditEvent.objects.filter(object_id=str(sensors.pk)).order_by("id")][-2:] == [
        "dataset.delete",
        "dataset.restore",
    ]


def test_restore_after_thirty_days_is_refused(owner, sensors):
    services.dataset_delete(actor=owner, dataset=sensors)
    Dataset.objects.filter(pk=sensors.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    with pytest.raises(Conflict, match="more than 30 days"):
        services.dataset_restore(actor=owner, dataset=Dataset.objects.get(pk=sensors.pk))


def test_purge_needs_the_trash_and_an_admin_and_removes_the_bytes(
    admin, owner, member, sensors, django_capture_on_commit_callbacks
):
    version = publish(member, sensors, b"a,b\n1,2\n")
    with pytest.raises(Conflict):
        services.dataset_purge(actor=admin, dataset=sensors)
    services.dataset_delete(actor=owner, dataset=sensors)
    sensors.refresh_from_db()
    with pytest.raises(Forbidden):
        services.dataset_purge(actor=owner, dataset=sensors)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(admin).post(f"/api/v1/datasets/{sensors.pk}/purge/")
    assert response.status_code == 204
    assert not Dataset.objects.filter(pk=sensors.pk).exists() and not DatasetVersion.objects.exists()
    storage = get_storage()
    assert not storage.exists(version.raw_sha256) and not storage.exists(version.parquet_sha256)
    assert AuditEvent.objects.filter(action="dataset.purge").exists()


def test_purge_keeps_bytes_another_dataset_still_uses(
    admin, owner, member, production, sensors, django_capture_on_commit_callbacks
):
    other = services.dataset_create(actor=member, department=production, name="Copy")
    publish(member, sensors, b"a\n1\n")
    kept = publish(member, other, b"a\n1\n")
    services.dataset_delete(actor=owner, dataset=sensors)
    sensors.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.dataset_purge(actor=admin, dataset=sensors)
    # One purge of bytes (the other callbacks seal the audit events: lepton.audit).
    assert len([c for c in callbacks if c is not audit._seal_after_commit]) == 1
    assert get_storage().exists(kept.raw_sha256) and get_storage().exists(kept.parquet_sha256)


def test_diff_between_versions(member, sensors):
    publish(member, sensors, b"t,id\n70,1\n71,2\n", "v1.csv")
    publish(member, sensors, b"t,id,new\n90,a,1\n91,b,2\n92,c,3\n", "v2.csv")
    body = api(member).get(f"/api/v1/datasets/{sensors.pk}/diff/").json()
    assert (body["from"], body["to"], body["rows"]["change"]) == (1, 2, 1)
    assert body["added"] == ["new"] and body["retyped"][0]["column"] == "id"
    bad = api(member).get(f"/api/v1/datasets/{sensors.pk}/diff/?from=7")
    assert bad.status_code == 400 and "from" in bad.json()["fields"]
    with pytest.raises(Invalid):
        services.dataset_diff(actor=member, dataset=sensors, old="x")


ENDPOINTS = [("delete", ""), ("post", "restore/"), ("post", "purge/"), ("get", "diff/")]


@pytest.mark.parametrize("method, suffix", ENDPOINTS)
def test_anonymous_gets_401(sensors, method, suffix):
    assert getattr(api(), method)(f"/api/v1/datasets/{sensors.pk}/{suffix}").status_code == 401


def test_anonymous_trash_list_is_401(db):
    assert api().get("/api/v1/datasets/trash/").status_code == 401


@pytest.mark.parametrize("method, suffix", ENDPOINTS)
def test_outsider_gets_404(owner, outsider, sensors, method, suffix):
    if suffix in ("restore/", "purge/"):
        services.dataset_delete(actor=owner, dataset=sensors)
    assert getattr(api(outsider), method)(f"/api/v1/datasets/{sensors.pk}/{suffix}").status_code == 404
    assert Dataset.objects.filter(pk=sensors.pk).exists()


def test_outsider_trash_list_is_empty(owner, outsider, sensors):
    services.dataset_delete(actor=owner, dataset=sensors)
    assert api(outsider).get("/api/v1/datasets/trash/").json()["results"] == []


GBK = "温度,结果\n70.5,合格\n".encode("gb18030")


def test_failed_version_retried_with_the_right_encoding_publishes(member, sensors):
    version = services.dataset_upload(
        actor=member, dataset=sensors, stream=io.BytesIO(GBK), filename="g.csv", options={"encoding": "utf-8"}
    )
    version = services.version_ingest(version.pk)
    assert version.status == "failed" and version.ingest_report["code"] == "undecodable"
    response = api(member).post(
        f"/api/v1/datasets/{sensors.pk}/versions/{version.pk}/retry/", {"options": {"encoding": "gb18030"}}, format="json"
    )
    assert response.status_code == 202 and response.json()["status"] == "pending"
    version = services.version_ingest(version.pk)
    assert version.status == "published" and version.number == 1
    again = api(member).post(f"/api/v1/datasets/{sensors.pk}/versions/{version.pk}/retry/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "version_not_failed"


def test_retry_anonymous_and_outsider(member, outsider, sensors):
    version = services.dataset_upload(
        actor=member, dataset=sensors, stream=io.BytesIO(GBK), filename="g.csv", options={"encoding": "utf-8"}
    )
    services.version_ingest(version.pk)
    url = f"/api/v1/datasets/{sensors.pk}/versions/{version.pk}/retry/"
    assert api().post(url, {}, format="json").status_code == 401
    assert api(outsider).post(url, {}, format="json").status_code == 404
    assert DatasetVersion.objects.get(pk=version.pk).status == "failed"
