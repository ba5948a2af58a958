"""The data-lake API: anonymous and outsider tests for every endpoint, uploads, the error shape."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from datalake import services
from datalake.models import Dataset, DatasetVersion

CSV = b"machine,temperature\nM1,70.5\nM2,71.0\n"


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Sensors")


def client_for(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def urls(dataset):
    base = f"/api/v1/datasets/{dataset.pk}/"
    return {
        "list": ("get", "/api/v1/datasets/"),
        "detail": ("get", base),
        "patch": ("patch", base),
        "upload": ("post", base + "upload/"),
        "versions": ("get", base + "versions/"),
        "version": ("get", base + "versions/00000000-0000-0000-0000-000000000000/"),
    }


@pytest.mark.parametrize("name", ["list", "detail", "patch", "upload", "versions", "version"])
def test_anonymous_gets_401_in_the_error_shape(sensors, name):
    method, url = urls(sensors)[name]
    response = getattr(client_for(), method)(url)
    assert response.status_code == 401
    assert set(response.json()) == {"error", "detail", "fields"}


def test_anonymous_cannot_create(db):
    assert client_for().post("/api/v1/datasets/", {"department": "production", "name": "x"}, format="json").status_code == 401


@pytest.mark.parametrize("name", ["detail", "patch", "upload", "versions", "version"])
def test_outsider_gets_404_for_another_departments_dataset(sensors, outsider, name):
    method, url = urls(sensors)[name]
    response = getattr(client_for(outsider), method)(url)
    assert response.status_code == 404


def test_outsider_list_does_not_show_it_and_create_there_is_refused(sensors, outsider):
    assert client_for(outsider).get("/api/v1/datasets/").json()["results"] == []
    response = client_for(outsider).post("/api/v1/datasets/", {"department": "production", "name": "Mine"}, format="json")
    assert response.status_code == 400 and "department" in response.json()["fields"]
    assert Dataset.objects.count() == 1


def test_member_creates_lists_and_updates(member, production):
    client = client_for(member)
    response = client.post("/api/v1/datasets/", {"department": "production", "name": "Demand", "tags": ["SCM"]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["slug"], body["department"], body["tags"], body["version_count"]) == ("demand", "production", ["scm"], 0)
    patched = client.patch(f"/api/v1/datasets/{body['id']}/", {"description": "daily demand"}, format="json")
    assert patched.status_code == 200 and patched.json()["description"] == "daily demand"
    assert [d["slug"] for d in client.get("/api/v1/datasets/").json()["results"]] == ["demand"]


def test_duplicate_slug_is_400_naming_slug(member, sensors):
    response = client_for(member).post("/api/v1/datasets/", {"department": "production", "name": "Sensors"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "slug_taken" and "slug" in response.json()["fields"]


def test_upload_returns_202_with_a_pending_version_and_its_job(member, sensors):
    response = client_for(member).post(
        f"/api/v1/datasets/{sensors.pk}/upload/", {"file": SimpleUploadedFile("s.csv", CSV)}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["job"] and body["raw_bytes"] == len(CSV)
    versions = client_for(member).get(f"/api/v1/datasets/{sensors.pk}/versions/").json()["results"]
    assert [v["id"] for v in versions] == [body["id"]]


def test_duplicate_upload_is_409_and_empty_upload_400(member, sensors):
    client = client_for(member)
    url = f"/api/v1/datasets/{sensors.pk}/upload/"
    client.post(url, {"file": SimpleUploadedFile("a.csv", CSV)}, format="multipart")
    again = client.post(url, {"file": SimpleUploadedFile("b.csv", CSV)}, format="multipart")
    assert again.status_code == 409 and again.json()["error"] == "duplicate_upload"
    missing = client.post(url, {}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()["fields"]
    assert DatasetVersion.objects.count() == 1


def test_viewer_cannot_upload(viewer, sensors):
    response = client_for(viewer).post(
        f"/api/v1/datasets/{sensors.pk}/upload/", {"file": SimpleUploadedFile("a.csv", CSV)}, format="multipart"
    )
    assert response.status_code == 403
    assert DatasetVersion.objects.count() == 0


def test_viewer_sees_only_published_versions(member, viewer, sensors):
    services.dataset_upload(actor=member, dataset=sensors, stream=SimpleUploadedFile("a.csv", CSV), filename="a.csv")
    assert client_for(viewer).get(f"/api/v1/datasets/{sensors.pk}/versions/").json()["results"] == []
    assert len(client_for(member).get(f"/api/v1/datasets/{sensors.pk}/versions/").json()["results"]) == 1


def test_list_query_count_does_not_grow_with_rows(member, production, django_assert_max_num_queries):
    for i in range(3):
        services.dataset_create(actor=member, department=production, name=f"d{i}")
    client = client_for(member)
    import django.db
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(django.db.connection) as few:
        client.get("/api/v1/datasets/")
    for i in range(3, 30):
        services.dataset_create(actor=member, department=production, name=f"d{i}")
    with CaptureQueriesContext(django.db.connection) as many:
        assert len(client.get("/api/v1/datasets/?page_size=100").json()["results"]) == 30
    assert len(many) == len(few)
