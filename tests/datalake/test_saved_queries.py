"""Saved SQL queries per department and the whole-result CSV download (API and console page)."""

import csv
import io

import pytest
from django.test import Client
from rest_framework.test import APIClient

from datalake import services
from datalake.models import SavedQuery
from lepton.models import AuditEvent


@pytest.fixture
def sensors(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Press sensors")
    rows = "".join(f"M{i % 3},{70 + i / 10}\n" for i in range(250))
    version = services.dataset_upload(
        actor=member, dataset=dataset, filename="s.csv", stream=io.BytesIO(("机器,温度\n" + rows).encode())
    )
    services.version_ingest(version.pk)
    return dataset


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def browser(user):
    client = Client()
    client.force_login(user)
    return client


AVG = 'SELECT "机器", count(*) AS n FROM production.press_sensors GROUP BY 1 ORDER BY 1'


def test_member_saves_lists_runs_renames_and_deletes_a_query(member, owner, sensors):
    created = api(member).post(
        "/api/v1/queries/",
        {"department": "production", "name": "每台机器", "sql": AVG, "description": "per machine"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["department"], body["name"], body["created_by"]) == ("production", "每台机器", member.username)
    assert [q["name"] for q in api(owner).get("/api/v1/queries/").json()["results"]] == ["每台机器"]
    run = api(owner).post(f"/api/v1/queries/{body['id']}/run/", {}, format="json")
    assert run.status_code == 200 and run.json()["rows"] == [["M0", 84], ["M1", 83], ["M2", 83]]
    renamed = api(member).patch(f"/api/v1/queries/{body['id']}/", {"name": "per machine"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "per machine"
    assert api(member).delete(f"/api/v1/queries/{body['id']}/").status_code == 204  # the author may
    assert not SavedQuery.objects.exists()
    actions = set(AuditEvent.objects.filter(action__startswith="sql.query").values_list("action", flat=True))
    assert actions == {"sql.query_save", "sql.query_update", "sql.query_delete"}


@pytest.mark.parametrize(
    "payload, field, words",
    [
        ({"name": "w", "sql": "DELETE FROM production.press_sensors"}, "sql", "read"),
        ({"name": "w", "sql": "SELECT 1; SELECT 2"}, "sql", "one"),
        ({"name": "  ", "sql": "SELECT 1"}, "name", "blank"),
        ({"name": "w", "sql": ""}, "sql", "blank"),
        ({"name": "w", "sql": "SELECT 1", "department": "quality"}, "department", "department"),
    ],
)
def test_bad_saved_queries_are_refused_naming_the_field(member, quality, sensors, payload, field, words):
    response = api(member).post("/api/v1/queries/", {"department": "production", **payload}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert words.lower() in " ".join(response.json()["fields"][field]).lower()
    assert not SavedQuery.objects.exists()


def test_a_name_is_taken_once_per_department(member, sensors):
    services.saved_query_create(actor=member, department=sensors.department, name="daily", sql="SELECT 1")
    response = api(member).post(
        "/api/v1/queries/", {"department": "production", "name": "daily", "sql": "SELECT 2"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"] == "name_taken"
    assert SavedQuery.objects.get().sql == "SELECT 1"


def test_viewer_cannot_save_and_a_member_cannot_delete_anothers_query(viewer, member, owner, sensors):
    response = api(viewer).post("/api/v1/queries/", {"department": "production", "name": "x", "sql": "SELECT 1"}, format="json")
    assert response.status_code == 403
    query = services.saved_query_create(actor=owner, department=sensors.department, name="owner's", sql="SELECT 1")
    assert api(member).delete(f"/api/v1/queries/{query.pk}/").status_code == 403
    assert api(viewer).patch(f"/api/v1/queries/{query.pk}/", {"sql": "SELECT 2"}, format="json").status_code == 403
    query.refresh_from_db()
    assert query.sql == "SELECT 1"


def test_outsider_and_anonymous_never_see_saved_queries(member, outsider, sensors):
    query = services.saved_query_create(actor=member, department=sensors.department, name="mine", sql=AVG)
    assert api(outsider).get("/api/v1/queries/").json()["results"] == []
    for call in (
        lambda c: c.get(f"/api/v1/queries/{query.pk}/"),
        lambda c: c.post(f"/api/v1/queries/{query.pk}/run/", {}, format="json"),
        lambda c: c.patch(f"/api/v1/queries/{query.pk}/", {"name": "x"}, format="json"),
        lambda c: c.delete(f"/api/v1/queries/{query.pk}/"),
    ):
        assert call(api(outsider)).status_code == 404
        assert call(api()).status_code == 401
    assert api().get("/api/v1/queries/").status_code == 401
    assert api().post("/api/v1/sql/export/", {"sql": "SELECT 1"}, format="json").status_code == 401
    assert SavedQuery.objects.get().name == "mine"


def test_export_streams_the_whole_result_as_csv_beyond_the_shown_rows(member, sensors, settings):
    response = api(member).post("/api/v1/sql/export/", {"sql": "SELECT * FROM production.press_sensors"}, format="json")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert (response["X-Lepton-Rows"], response["X-Lepton-Truncated"]) == ("250", "false")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["机器", "温度"] and len(rows) == 251
    assert AuditEvent.objects.filter(action="sql.export", actor=member).exists()
    settings.LEPTON_SQL_EXPORT_MAX_ROWS = 100
    capped = api(member).post("/api/v1/sql/export/", {"sql": "SELECT * FROM production.press_sensors"}, format="json")
    assert (capped["X-Lepton-Rows"], capped["X-Lepton-Truncated"]) == ("100", "true")
    assert len(list(csv.reader(io.StringIO(b"".join(capped.streaming_content).decode("utf-8-sig"))))) == 101


def test_export_refuses_writes_and_file_reads(member, sensors):
    for sql in ("COPY production.press_sensors TO '/tmp/x.csv'", "SELECT * FROM read_csv('/etc/passwd')"):
        response = api(member).post("/api/v1/sql/export/", {"sql": sql}, format="json")
        assert response.status_code == 400 and "sql" in response.json()["fields"]


def test_console_page_saves_loads_exports_and_deletes(member, sensors):
    client = browser(member)
    page = client.get("/data/sql/")
    assert page.status_code == 200 and "No saved query yet" in page.content.decode()
    saved = client.post("/data/sql/save/", {"sql": AVG, "name": "per machine", "department": "production"})
    assert saved.status_code == 302
    query = SavedQuery.objects.get()
    loaded = client.get(saved["Location"]).content.decode()
    assert "per machine" in loaded and "count(*) AS n" in loaded
    shown = client.post("/data/sql/", {"sql": "SELECT * FROM production.press_sensors"}).content.decode()
    assert "250 rows" in shown  # up to 10 000 rows are shown on the page
    export = client.post("/data/sql/export/", {"sql": AVG})
    assert export.status_code == 200 and b"".join(export.streaming_content).decode("utf-8-sig").startswith("机器,n")
    assert client.post(f"/data/sql/queries/{query.pk}/delete/").status_code == 302
    assert not SavedQuery.objects.exists()


def test_console_page_form_errors_change_nothing(member, sensors):
    client = browser(member)
    response = client.post("/data/sql/save/", {"sql": "DROP TABLE x", "name": "bad", "department": "production"})
    assert response.status_code == 400 and "read" in response.content.decode().lower()
    response = client.post("/data/sql/save/", {"sql": "SELECT 1", "name": "", "department": "production"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = client.post("/data/sql/export/", {"sql": "ATTACH 'x.db'"})
    assert response.status_code == 400
    assert not SavedQuery.objects.exists()


def test_console_pages_for_outsider_and_anonymous(member, outsider, sensors):
    query = services.saved_query_create(actor=member, department=sensors.department, name="mine", sql=AVG)
    assert browser(outsider).get(f"/data/sql/?query={query.pk}").status_code == 404
    assert browser(outsider).post(f"/data/sql/queries/{query.pk}/delete/").status_code == 404
    assert "mine" not in browser(outsider).get("/data/sql/").content.decode()
    for url in ("/data/sql/", "/data/sql/save/", "/data/sql/export/", f"/data/sql/queries/{query.pk}/delete/"):
        assert Client().post(url, {"sql": "SELECT 1"}).status_code == 302
    assert SavedQuery.objects.filter(pk=query.pk).exists()
