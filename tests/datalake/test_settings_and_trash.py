"""Dataset settings and the trash in the browser; the trash empties itself after 30 days."""

import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from datalake import services
from datalake.models import Dataset, Recipe
from lepton.jobs.dispatcher import run_periodic
from lepton.models import AuditEvent
from lepton.storage import get_storage


@pytest.fixture
def sensors(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Sensors", tags=["line-3"])
    version = services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO("机器,温度\nM1,70\nM2,90\n".encode()), filename="s.csv"
    )
    assert services.version_ingest(version.pk).status == "published"
    return dataset


def login(user):
    client = Client()
    client.force_login(user)
    return client


def _stored(dataset) -> set[str]:
    """The digests of the dataset's raw uploads and Parquet that are in the lake now."""
    shas = {s for pair in dataset.versions.values_list("raw_sha256", "parquet_sha256") for s in pair if s}
    assert shas
    return shas & get_storage().digests()


# --- settings ----------------------------------------------------------------------------------


def test_member_changes_the_settings_and_checks_on_the_dataset_page(member, sensors):
    client = login(member)
    page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert 'id="settings-form"' in page and "line-3" in page
    response = client.post(
        f"/data/{sensors.pk}/settings/",
        {
            "name": "Press sensors",
            "description": "**Line 3** readings",
            "tags": "sensors, line-3",
            "discoverable": "on",
            "checks": '[{"type": "not_null", "column": "温度", "blocking": true}]',
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/data/{sensors.pk}/"
    sensors.refresh_from_db()
    assert (sensors.name, sensors.tags, sensors.discoverable) == ("Press sensors", ["line-3", "sensors"], True)
    assert sensors.checks[0]["type"] == "not_null" and sensors.checks[0]["blocking"] is True
    assert AuditEvent.objects.filter(action="dataset.update", actor=member).exists()
    assert "<strong>Line 3</strong>" in client.get(f"/data/{sensors.pk}/").content.decode()


@pytest.mark.parametrize(
    "checks, message",
    [
        ("[{", "Enter a valid JSON"),
        ('{"type": "not_null"}', "Give a list of checks"),
        ('[{"type": "sometimes"}]', "Check 1 (type)"),
        ('[{"type": "not_null", "column": "温度"}, {"type": "range", "column": "nope", "min": 1}]', "Check 2 (column)"),
    ],
)
def test_bad_checks_are_a_form_error_naming_the_check_and_change_nothing(member, sensors, checks, message):
    response = login(member).post(f"/data/{sensors.pk}/settings/", {"name": "Renamed", "checks": checks})
    assert response.status_code == 400
    assert message in response.content.decode()
    sensors.refresh_from_db()
    assert sensors.name == "Sensors" and sensors.checks == []


def test_an_empty_name_is_a_form_error(member, sensors):
    response = login(member).post(f"/data/{sensors.pk}/settings/", {"name": " "})
    assert response.status_code == 400 and Dataset.objects.get(pk=sensors.pk).name == "Sensors"


def test_viewer_sees_no_settings_and_cannot_post_them(viewer, sensors):
    client = login(viewer)
    page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert 'id="settings-form"' not in page and "Move to trash" not in page
    assert client.post(f"/data/{sensors.pk}/settings/", {"name": "x"}).status_code == 403
    assert client.post(f"/data/{sensors.pk}/trash/").status_code == 403
    assert Dataset.objects.get(pk=sensors.pk).name == "Sensors"


def test_anonymous_and_outsider_cannot_change_trash_restore_or_purge(outsider, owner, sensors):
    services.dataset_delete(actor=owner, dataset=sensors)
    for path in ("/data/trash/", f"/data/{sensors.pk}/settings/", f"/data/{sensors.pk}/trash/"):
        response = Client().post(path, {"name": "x"})
        assert response.status_code == 302 and "/login" in response["Location"]
    for path in (f"/data/trash/{sensors.pk}/restore/", f"/data/trash/{sensors.pk}/purge/"):
        assert Client().post(path).status_code == 302
        assert login(outsider).post(path).status_code == 404
    assert login(outsider).post(f"/data/{sensors.pk}/settings/", {"name": "x"}).status_code == 404
    assert "Sensors" not in login(outsider).get("/data/trash/").content.decode()
    assert Dataset.objects.get(pk=sensors.pk).deleted_at is not None


# --- trash ---------------------------------------------------------------------------------------


def test_maintainer_trashes_and_restores_from_the_pages(owner, member, sensors):
    client = login(owner)
    assert "Move to trash" in client.get(f"/data/{sensors.pk}/").content.decode()
    response = client.post(f"/data/{sensors.pk}/trash/")
    assert response.status_code == 302 and response["Location"] == "/data/trash/"
    assert client.get(f"/data/{sensors.pk}/").status_code == 404
    assert "Sensors" not in client.get("/data/").content.decode()
    trash = client.get("/data/trash/").content.decode()
    purge_on = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%d")
    assert "Sensors" in trash and purge_on in trash and "Restore" in trash
    assert "Delete for good" not in trash  # a maintainer, not a department admin
    # A member sees the trash but may neither restore nor purge.
    member_trash = login(member).get("/data/trash/").content.decode()
    assert "Sensors" in member_trash and "Restore" not in member_trash
    assert login(member).post(f"/data/trash/{sensors.pk}/restore/").status_code == 403
    response = client.post(f"/data/trash/{sensors.pk}/restore/")
    assert response.status_code == 302 and response["Location"] == f"/data/{sensors.pk}/"
    assert Dataset.objects.get(pk=sensors.pk).deleted_at is None


def test_restore_after_30_days_is_refused_with_the_reason(owner, sensors):
    services.dataset_delete(actor=owner, dataset=sensors)
    Dataset.objects.filter(pk=sensors.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    response = login(owner).post(f"/data/trash/{sensors.pk}/restore/", follow=True)
    assert "can no longer be restored" in response.content.decode()
    assert Dataset.objects.get(pk=sensors.pk).deleted_at is not None


def test_department_admin_purges_for_good_with_the_files(admin, owner, sensors, django_capture_on_commit_callbacks):
    files = _stored(sensors)
    assert len(files) == 2
    services.dataset_delete(actor=owner, dataset=sensors)
    assert login(owner).post(f"/data/trash/{sensors.pk}/purge/").status_code == 403
    client = login(admin)
    assert "Delete for good" in client.get("/data/trash/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/data/trash/{sensors.pk}/purge/", follow=True)
    assert "deleted for good" in response.content.decode()
    assert not Dataset.objects.filter(pk=sensors.pk).exists()
    assert not files & get_storage().digests()
    assert AuditEvent.objects.filter(action="dataset.purge", actor=admin).exists()


def test_purging_a_dataset_a_recipe_uses_removes_the_recipe_not_its_output(admin, owner, member, sensors):
    recipe = services.recipe_create(actor=member, input_dataset=sensors, name="clean", steps=[{"op": "drop_duplicates"}])
    output = recipe.output_dataset
    services.dataset_delete(actor=owner, dataset=sensors)
    services.dataset_purge(actor=admin, dataset=sensors)
    assert not Recipe.objects.exists() and Dataset.objects.filter(pk=output.pk).exists()
    assert AuditEvent.objects.filter(action="recipe.delete", object_id=str(recipe.pk)).exists()


def test_the_dispatchers_periodic_pass_purges_datasets_trashed_over_30_days_ago(
    owner, member, production, sensors, django_capture_on_commit_callbacks
):
    services.dataset_delete(actor=owner, dataset=sensors)
    recent = services.dataset_create(actor=member, department=production, name="Recent")
    services.dataset_delete(actor=owner, dataset=recent)
    files = _stored(sensors)
    assert services.trash_expire() == 0  # both still within 30 days
    Dataset.objects.filter(pk=sensors.pk).update(deleted_at=timezone.now() - timedelta(days=30, minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = run_periodic({})
    assert outcome["datalake.services.trash_expire"] == 1
    assert not Dataset.objects.filter(pk=sensors.pk).exists() and Dataset.objects.filter(pk=recent.pk).exists()
    assert files and not files & get_storage().digests()
    event = AuditEvent.objects.get(action="dataset.expire")
    assert event.actor is None and event.actor_label == "system"
