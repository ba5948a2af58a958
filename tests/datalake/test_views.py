"""Data-lake pages: catalog, dataset, upload; anonymous and outsider tests."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datalake import services
from datalake.models import Dataset, DatasetVersion


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Sensors", description="line 3")


def login(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/data/", "/data/{pk}/"])
def test_anonymous_is_sent_to_login(sensors, path):
    response = Client().get(path.format(pk=sensors.pk))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_anonymous_upload_is_sent_to_login(sensors):
    response = Client().post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("a.csv", b"a\n1\n")})
    assert response.status_code == 302
    assert DatasetVersion.objects.count() == 0


def test_outsider_gets_404_and_does_not_see_it_listed(sensors, outsider):
    client = login(outsider)
    assert client.get(f"/data/{sensors.pk}/").status_code == 404
    assert client.post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("a.csv", b"a\n1\n")}).status_code == 404
    assert "Sensors" not in client.get("/data/").content.decode()


def test_member_creates_a_dataset_from_the_catalog(member, production):
    response = login(member).post("/data/", {"name": "Demand history", "tags": "scm, daily"})
    dataset = Dataset.objects.get(slug="demand-history")
    assert response.status_code == 302 and response["Location"] == f"/data/{dataset.pk}/"
    assert dataset.tags == ["daily", "scm"]


def test_duplicate_name_is_a_form_error(member, sensors):
    response = login(member).post("/data/", {"name": "Sensors"})
    assert response.status_code == 400
    assert "already has a dataset" in response.content.decode()
    assert Dataset.objects.count() == 1


def test_viewer_sees_no_create_form_and_cannot_create(viewer, production):
    client = login(viewer)
    assert "Create dataset" not in client.get("/data/").content.decode()
    response = client.post("/data/", {"name": "x"})
    assert response.status_code == 400 and Dataset.objects.count() == 0


def test_search_filters_the_catalog(member, sensors):
    client = login(member)
    assert "Sensors" in client.get("/data/?q=sens").content.decode()
    assert "No dataset matches" in client.get("/data/?q=nothing").content.decode()


def test_upload_from_the_dataset_page_queues_a_version(member, sensors):
    client = login(member)
    response = client.post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("s.csv", b"a\n1\n"), "encoding": "utf-8"})
    assert response.status_code == 302
    version = DatasetVersion.objects.get()
    assert version.options == {"encoding": "utf-8"} and version.status == "pending"
    page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert "s.csv" in page and 'hx-trigger="every 2s"' in page


def test_duplicate_upload_is_a_form_error(member, sensors):
    client = login(member)
    client.post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("s.csv", b"a\n1\n")})
    response = client.post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("t.csv", b"a\n1\n")})
    assert response.status_code == 400 and "identical" in response.content.decode()
    assert DatasetVersion.objects.count() == 1


def test_viewer_upload_is_refused(viewer, sensors):
    response = login(viewer).post(f"/data/{sensors.pk}/upload/", {"file": SimpleUploadedFile("s.csv", b"a\n1\n")})
    assert response.status_code == 400 and DatasetVersion.objects.count() == 0


def test_htmx_request_returns_only_the_versions_fragment(member, sensors):
    response = login(member).get(f"/data/{sensors.pk}/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="versions"') and "<html" not in html


def test_failed_version_can_be_retried_from_its_row(member, outsider, sensors):
    import io

    gbk = "温度\n70.5\n".encode("gb18030")
    version = services.dataset_upload(
        actor=member, dataset=sensors, stream=io.BytesIO(gbk), filename="g.csv", options={"encoding": "utf-8"}
    )
    services.version_ingest(version.pk)
    page = login(member).get(f"/data/{sensors.pk}/").content.decode()
    assert f"/data/{sensors.pk}/versions/{version.pk}/retry/" in page
    url = f"/data/{sensors.pk}/versions/{version.pk}/retry/"
    assert login(outsider).post(url, {"encoding": "gb18030"}).status_code == 404
    assert Client().post(url, {"encoding": "gb18030"}).status_code == 302
    assert DatasetVersion.objects.get(pk=version.pk).status == "failed"
    response = login(member).post(url, {"encoding": "gb18030"})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == "pending" and version.options == {"encoding": "gb18030"}


def test_catalog_shows_the_department_storage_use(member, production, sensors):
    assert "storage quota" in login(member).get("/data/").content.decode()


def test_dataset_page_previews_rows_sorted_and_offers_downloads(member, outsider, sensors):
    import io

    version = services.dataset_upload(
        actor=member, dataset=sensors, stream=io.BytesIO("温度\n3\n1\n2\n".encode()), filename="t.csv"
    )
    services.version_ingest(version.pk)
    client = login(member)
    html = client.get(f"/data/{sensors.pk}/?sort=温度&desc=1").content.decode()
    assert html.index("<td>3</td>") < html.index("<td>2</td>") < html.index("<td>1</td>")
    csv = client.get(f"/data/{sensors.pk}/versions/{version.pk}/download/?as=csv")
    assert b"".join(csv.streaming_content).decode("utf-8-sig").splitlines()[0] == "温度"
    assert login(outsider).get(f"/data/{sensors.pk}/versions/{version.pk}/download/?as=csv").status_code == 404
    assert Client().get(f"/data/{sensors.pk}/versions/{version.pk}/download/").status_code == 302
    bad_sort = client.get(f"/data/{sensors.pk}/?sort=nope")
    assert bad_sort.status_code == 200 and "nope" in bad_sort.content.decode()


def test_sql_console_page_runs_queries_and_shows_errors(member, outsider, sensors):
    import io

    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(b"t\n1\n2\n"), filename="t.csv")
    services.version_ingest(version.pk)
    client = login(member)
    page = client.get("/data/sql/").content.decode()
    assert "production.sensors" in page and "SELECT * FROM production.sensors LIMIT 100" in page
    ok = client.post("/data/sql/", {"sql": "SELECT sum(t) AS total FROM production.sensors"})
    assert ok.status_code == 200 and "<td>3</td>" in ok.content.decode()
    bad = client.post("/data/sql/", {"sql": "DELETE FROM production.sensors"})
    assert bad.status_code == 400 and 'role="alert"' in bad.content.decode()
    assert "production.sensors" not in login(outsider).get("/data/sql/").content.decode()
    assert Client().get("/data/sql/").status_code == 302


def test_staff_see_datasets_read_only_in_the_admin(staff, member, sensors):
    client = login(staff)
    assert client.get("/admin/datalake/dataset/").status_code == 200
    assert "Sensors" in client.get(f"/admin/datalake/dataset/{sensors.pk}/change/").content.decode()
    assert client.get("/admin/datalake/dataset/add/").status_code == 403
    assert login(member).get("/admin/datalake/dataset/").status_code == 302


def test_recipe_saved_and_run_from_the_pages_with_lineage_shown(member, viewer, outsider, sensors, celery_worker, dispatcher):
    import io
    import json

    from datalake.models import Recipe
    from tests.conftest import wait_for_job

    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(b"t\n1\n1\n2\n"), filename="t.csv")
    services.version_ingest(version.pk)
    client = login(member)
    bad = client.post(
        f"/data/{sensors.pk}/recipes/", {"name": "x", "steps": json.dumps([{"op": "select", "columns": ["nope"]}])}, follow=True
    )
    assert "nope" in bad.content.decode() and not Recipe.objects.exists()
    client.post(f"/data/{sensors.pk}/recipes/", {"name": "dedupe", "steps": json.dumps([{"op": "drop_duplicates"}])})
    recipe = Recipe.objects.get()
    assert login(viewer).post(f"/data/recipes/{recipe.pk}/run/").status_code == 302
    assert not DatasetVersion.objects.filter(source="recipe").exists()
    assert login(outsider).post(f"/data/recipes/{recipe.pk}/run/").status_code == 404
    response = client.post(f"/data/recipes/{recipe.pk}/run/")
    assert response["Location"] == f"/data/{recipe.output_dataset_id}/"
    output = DatasetVersion.objects.get(source="recipe")
    wait_for_job(output.job, timeout=60)
    page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert "dedupe" in page and 'data-plotly-figure="lineage-figure"' in page
    assert "production.sensors v1" in page and "production.sensors-dedupe v1" in page
