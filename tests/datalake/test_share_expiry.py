"""A share's expiry ends the other department's access on every data path: the dataset page,
the API (detail, preview, download), and the SQL console (browser and API)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from lepton.models import Share
from lepton.services import share_grant
from tests.lepton.collab_helpers import api, browser, published_dataset


@pytest.fixture
def shared(owner, member, production, quality):
    """Production's dataset shared with Quality at `use` until tomorrow."""
    version = published_dataset(member, production, name="Press sensors")
    share_grant(actor=owner, obj=version.dataset, department=quality, level="use", expires_at=timezone.now() + timedelta(days=1))
    return version


def _expire():
    # The moment passes: the row is unchanged, only the clock moved past expires_at.
    Share.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


def test_browser_paths_end_with_the_share(outsider, shared):
    dataset = shared.dataset
    page = f"/data/{dataset.pk}/"
    download = f"/data/{dataset.pk}/versions/{shared.pk}/download/?as=csv"
    assert browser(outsider).get(page).status_code == 200
    assert browser(outsider).get(download).status_code == 200
    assert "production.press_sensors" in browser(outsider).get("/data/sql/").content.decode()
    _expire()
    assert browser(outsider).get(page).status_code == 404
    assert browser(outsider).get(download).status_code == 404
    assert "production.press_sensors" not in browser(outsider).get("/data/sql/").content.decode()


def test_api_paths_end_with_the_share(outsider, shared):
    dataset = shared.dataset
    preview = f"/api/v1/datasets/{dataset.pk}/versions/{shared.pk}/preview/"
    assert api(outsider).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    assert api(outsider).get(preview).status_code == 200
    _expire()
    assert api(outsider).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    assert api(outsider).get(preview).status_code == 404
    assert dataset.pk not in [d["id"] for d in api(outsider).get("/api/v1/datasets/").json()["results"]]


def test_the_sql_console_ends_with_the_share(outsider, shared):
    query = {"sql": "SELECT count(*) AS n FROM production.press_sensors"}
    before = api(outsider).post("/api/v1/sql/", query, format="json")
    assert before.status_code == 200, before.json()
    assert "production.press_sensors" in api(outsider).get("/api/v1/sql/tables/").json()
    _expire()
    after = api(outsider).post("/api/v1/sql/", query, format="json")
    assert after.status_code == 400 and after.json()["error"] == "sql_unknown_table"
    assert api(outsider).get("/api/v1/sql/tables/").json() == {}
