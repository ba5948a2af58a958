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


def _publish(actor, dataset, filename, data: bytes):
    version = services.dataset_upload(actor=actor, dataset=dataset, filename=filename, stream=io.BytesIO(data))
    return services.version_ingest(version.pk)


@pytest.fixture
def mixed_catalog(member, production, inspections):
    """Inspections (CSV, no checks), Readings (JSON Lines, a failing warning check), Gate (a blocking refusal)."""
    readings = services.dataset_create(actor=member, department=production, name="Readings")
    services.dataset_update(
        actor=member, dataset=readings, checks=[{"type": "range", "column": "t", "min": 0, "blocking": False}]
    )
    _publish(member, readings, "r.jsonl", b'{"t": -5}\n{"t": 3}\n')
    gate = services.dataset_create(actor=member, department=production, name="Gate")
    services.dataset_update(actor=member, dataset=gate, checks=[{"type": "not_null", "column": "a", "blocking": True}])
    _publish(member, gate, "g1.csv", b"a,b\n1,2\n")
    refused = _publish(member, gate, "g2.csv", b"a,b\n,2\n")
    assert refused.status == "failed"
    return {"readings": readings, "gate": gate, "inspections": inspections}


def test_publication_keeps_format_and_quality_status_on_the_dataset(mixed_catalog):
    for dataset in mixed_catalog.values():
        dataset.refresh_from_db()
    assert (mixed_catalog["inspections"].format, mixed_catalog["inspections"].quality_status) == ("csv", "unchecked")
    assert (mixed_catalog["readings"].format, mixed_catalog["readings"].quality_status) == ("json", "warning")
    # v1 passed; v2 was refused by the blocking check: the catalog says so until a good version arrives.
    assert (mixed_catalog["gate"].format, mixed_catalog["gate"].quality_status) == ("csv", "failing")


def test_api_filters_by_format_quality_and_department(member, outsider, quality, mixed_catalog):
    theirs = services.dataset_create(actor=outsider, department=quality, name="Theirs")
    _publish(outsider, theirs, "t.csv", b"x\n1\n")
    names = lambda user, url: sorted(d["name"] for d in api(user).get(url).json()["results"])  # noqa: E731
    assert names(member, "/api/v1/datasets/?format=json") == ["Readings"]
    assert names(member, "/api/v1/datasets/?format=csv") == ["Gate", "Inspections"]
    assert names(member, "/api/v1/datasets/?quality=failing&quality=warning") == ["Gate", "Readings"]
    assert names(member, "/api/v1/datasets/?quality=unchecked&format=csv") == ["Inspections"]
    assert names(member, "/api/v1/datasets/?department=production&q=read") == ["Readings"]
    # The outsider's filters never reach beyond what they may see.
    assert names(outsider, "/api/v1/datasets/?department=production") == []
    assert names(outsider, "/api/v1/datasets/?format=csv") == ["Theirs"]
    row = api(member).get("/api/v1/datasets/?format=json").json()["results"][0]
    assert (row["format"], row["quality_status"]) == ("json", "warning")


def test_api_refuses_an_unknown_filter_value_naming_the_field(member, mixed_catalog):
    response = api(member).get("/api/v1/datasets/?format=docx")
    assert response.status_code == 400
    body = response.json()
    assert "format" in body["fields"] and "docx" in body["fields"]["format"][0]


def test_catalog_filters_need_a_login(db):
    assert api().get("/api/v1/datasets/?format=csv").status_code == 401
    assert Client().get("/data/?format=csv").status_code == 302


def test_catalog_page_filters_and_shows_quality(member, mixed_catalog):
    client = Client()
    client.force_login(member)
    html = client.get("/data/?quality=warning").content.decode()
    assert "Readings" in html and "Inspections" not in html and "Gate" not in html
    assert 'value="warning" selected' in html
    html = client.get("/data/?format=parquet").content.decode()
    assert "No dataset matches these filters." in html
    response = client.get("/data/?quality=excellent")
    assert response.status_code == 200 and "excellent" in response.content.decode()
    assert "Readings" not in response.content.decode()


def test_paging_through_the_catalog_returns_every_dataset_once_in_order(member, production, quality, outsider):
    for i in range(11):
        services.dataset_create(actor=member, department=production, name=f"Set {i:02d}")
    services.dataset_create(actor=outsider, department=quality, name="Not visible to member")
    seen, url = [], "/api/v1/datasets/?page_size=4"
    while url:
        body = api(member).get(url).json()
        assert body["count"] == 11
        seen += [d["slug"] for d in body["results"]]
        url = body["next"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 11


def test_catalog_page_is_paged_keeping_the_filters(member, production):
    from datalake.models import Dataset

    Dataset.objects.bulk_create(
        Dataset(department=production, slug=f"s-{i:02d}", name=f"Sensor set {i:02d}", format="csv") for i in range(55)
    )
    client = Client()
    client.force_login(member)
    first = client.get("/data/?format=csv").content.decode()
    assert "Page 1 of 2 · 55 datasets" in first and "Sensor set 49" in first and "Sensor set 50" not in first
    assert "?format=csv&page=2" in first
    second = client.get("/data/?format=csv&page=2").content.decode()
    assert "Sensor set 54" in second and "Sensor set 00" not in second
