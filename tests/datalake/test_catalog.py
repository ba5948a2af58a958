"""Catalog search (names, columns, tags) and discoverable datasets (metadata only)."""

import io

import pytest
from django.test import Client
from rest_framework.test import APIClient

from datalake import services


@pytest.fixture
def inspections(member, production):
    dataset = services.dataset_create(
        actor=member, department=production, name="Inspections", tags=["quality", "gbk"], description="final inspection"
    )
    version = services.dataset_upload(
        actor=member, dataset=dataset, filename="i.csv", stream=io.BytesIO("温度,结果\n70.5,合格\n".encode("gb18030"))
    )
    services.version_ingest(version.pk)
    dataset.refresh_from_db()
    return dataset


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_search_finds_datasets_by_column_name_and_tag(member, production, inspections):
    services.dataset_create(actor=member, department=production, name="Other")
    names = lambda url: [d["name"] for d in api(member).get(url).json()["results"]]  # noqa: E731
    assert names("/api/v1/datasets/?q=温度") == ["Inspections"]
    assert names("/api/v1/datasets/?q=final inspection") == ["Inspections"]
    assert names("/api/v1/datasets/?tag=gbk") == ["Inspections"]
    assert names("/api/v1/datasets/?tag=gb") == []
    assert sorted(names("/api/v1/datasets/")) == ["Inspections", "Other"]


def test_discoverable_dataset_shows_metadata_not_rows_to_other_departments(member, outsider, inspections):
    assert api(outsider).get("/api/v1/datasets/discover/").json()["results"] == []
    services.dataset_update(actor=member, dataset=inspections, discoverable=True)
    found = api(outsider).get("/api/v1/datasets/discover/").json()["results"]
    assert [(d["name"], d["department"], d["columns"]) for d in found] == [("Inspections", "production", ["温度", "结果"])]
    assert set(found[0]) == {"id", "department", "slug", "name", "description", "tags", "columns", "updated_at"}
    # Still no access to the dataset itself or its versions.
    assert api(outsider).get(f"/api/v1/datasets/{inspections.pk}/").status_code == 404
    assert api(outsider).get(f"/api/v1/datasets/{inspections.pk}/versions/").status_code == 404
    # Its own department does not list it as "discoverable elsewhere".
    assert api(member).get("/api/v1/datasets/discover/").json()["results"] == []


def test_discover_needs_a_login(db):
    assert api().get("/api/v1/datasets/discover/").status_code == 401


def test_catalog_page_lists_discoverable_datasets_of_others(member, outsider, inspections):
    services.dataset_update(actor=member, dataset=inspections, discoverable=True)
    client = Client()
    client.force_login(outsider)
    html = client.get("/data/").content.decode()
    assert "Discoverable in other departments" in html and "Inspections" in html and "温度" in html
    assert f"/data/{inspections.pk}/" not in html  # no link to rows they may not see
