"""The SQL console API: only the datasets the user may see, read-only, errors naming `sql`."""

import io

import pytest
from rest_framework.test import APIClient

from datalake import services
from lepton.models import AuditEvent


@pytest.fixture
def sensors(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Press sensors")
    version = services.dataset_upload(
        actor=member, dataset=dataset, filename="s.csv", stream=io.BytesIO("机器,温度\nM1,70.5\nM2,71.5\nM1,72.5\n".encode())
    )
    services.version_ingest(version.pk)
    return dataset


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


@pytest.mark.s3
def test_member_queries_own_dataset_by_original_column_names(member, sensors):
    tables = api(member).get("/api/v1/sql/tables/").json()
    assert tables == {"production.press_sensors": ["机器", "温度"]}
    response = api(member).post(
        "/api/v1/sql/",
        {"sql": 'SELECT "机器", avg("温度") AS t FROM production.press_sensors GROUP BY 1 ORDER BY 1'},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["rows"] == [["M1", 71.5], ["M2", 71.5]]
    assert AuditEvent.objects.filter(action="sql.run", actor=member).exists()


def test_outsider_cannot_see_or_query_other_departments_data(outsider, sensors):
    assert api(outsider).get("/api/v1/sql/tables/").json() == {}
    response = api(outsider).post("/api/v1/sql/", {"sql": "SELECT * FROM production.press_sensors"}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "sql_unknown_table"


@pytest.mark.parametrize(
    "sql, code",
    [
        ("DROP VIEW production.press_sensors", "sql_not_read_only"),
        ("SELECT 1; SELECT 2", "sql_multiple_statements"),
        ("SELECT * FROM read_text('/etc/passwd')", "sql_forbidden"),
        ("SELEC 1", "sql_syntax"),
    ],
)
def test_writes_files_and_bad_sql_are_refused(member, sensors, sql, code):
    response = api(member).post("/api/v1/sql/", {"sql": sql}, format="json")
    assert response.status_code == 400 and response.json()["error"] == code and "sql" in response.json()["fields"]


def test_anonymous_gets_401(db):
    assert api().post("/api/v1/sql/", {"sql": "SELECT 1"}, format="json").status_code == 401
    assert api().get("/api/v1/sql/tables/").status_code == 401


def test_a_read_only_token_may_run_queries(member, sensors):
    from lepton.services import token_create

    _, secret = token_create(actor=member, name="bi", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post("/api/v1/sql/", {"sql": "SELECT count(*) FROM production.press_sensors"}, format="json")
    assert response.status_code == 200 and response.json()["rows"] == [[3]]
