"""Preview and download of published versions through the API."""

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from rest_framework.test import APIClient

from datalake import services
from lepton.models import AuditEvent

DATA = '机器,温度,备注\nM1,70.5,ok\nM2,71.25,=HYPERLINK("x")\nM3,,-\nM1,69.0,late\n'.encode()


@pytest.fixture
def published(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Sensors")
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(DATA), filename="s.csv")
    return services.version_ingest(version.pk)


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def url(version, what):
    return f"/api/v1/datasets/{version.dataset_id}/versions/{version.pk}/{what}/"


@pytest.mark.s3
def test_preview_sorts_filters_and_pages(viewer, published):
    body = api(viewer).get(url(published, "preview"), {"sort": "温度", "desc": "true", "page_size": 2}).json()
    assert body["columns"] == ["机器", "温度", "备注"] and body["total"] == 4 and body["pages"] == 2
    assert [row[1] for row in body["rows"]] == [71.25, 70.5]
    filters = json.dumps([{"column": "机器", "op": "eq", "value": "M1"}])
    assert api(viewer).get(url(published, "preview"), {"filters": filters}).json()["total"] == 2


@pytest.mark.parametrize(
    "params, field",
    [
        ({"sort": "nope"}, "sort"),
        ({"page_size": 0}, "page_size"),
        ({"filters": "[{"}, "filters"),
        ({"filters": json.dumps([{"column": "温度", "op": "eq", "value": "hot"}])}, "filters"),
        ({"page": "x"}, "page"),
    ],
)
def test_bad_preview_input_is_400_naming_the_parameter(viewer, published, params, field):
    response = api(viewer).get(url(published, "preview"), params)
    assert response.status_code == 400 and field in response.json()["fields"]


@pytest.mark.s3
def test_csv_download_streams_original_names_with_formulas_escaped(viewer, published):
    response = api(viewer).get(url(published, "download"), {"as": "csv"})
    assert response.status_code == 200 and response["Content-Disposition"].endswith('.csv"')
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["机器", "温度", "备注"]
    assert rows[2][2] == '\'=HYPERLINK("x")'
    assert rows[4] == ["M1", "69.0", "late"] or rows[4] == ["M1", "69", "late"]
    assert AuditEvent.objects.filter(action="dataset.download").count() == 1


@pytest.mark.s3
def test_parquet_download_is_the_stored_file(viewer, published, tmp_path):
    response = api(viewer).get(url(published, "download"))
    data = b"".join(response.streaming_content)
    path = tmp_path / "v.parquet"
    path.write_bytes(data)
    assert pq.read_table(path).num_rows == 4
    assert api(viewer).get(url(published, "download"), {"as": "xlsx"}).status_code == 400


def test_pending_version_cannot_be_read(member, published):
    pending = services.dataset_upload(actor=member, dataset=published.dataset, stream=io.BytesIO(b"a\n1\n"), filename="p.csv")
    response = api(member).get(url(pending, "preview"))
    assert response.status_code == 409 and response.json()["error"] == "version_not_published"


@pytest.mark.parametrize("what", ["preview", "download"])
def test_anonymous_and_outsider(published, outsider, what):
    assert api().get(url(published, what)).status_code == 401
    assert api(outsider).get(url(published, what)).status_code == 404


def test_a_shared_dataset_can_be_previewed_by_the_other_department(owner, outsider, quality, published):
    from lepton.services import share_grant

    share_grant(actor=owner, obj=published.dataset, department=quality, level="view")
    assert api(outsider).get(url(published, "preview")).json()["total"] == 4
