"""The data lake in the Django admin: staff look at every model, nobody edits there, no password shows."""

import io

import pytest
from django.urls import reverse

from datalake import services
from datalake.engine.demo import write_part_images_zip
from datalake.models import DatabaseImport, Dataset, DatasetVersion, SavedQuery, UploadSession, VersionBlob

MODELS = [Dataset, DatasetVersion, UploadSession, VersionBlob, SavedQuery, DatabaseImport]


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _change(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def lake(owner, member, production):
    """A row in every data-lake table the admin shows."""
    parts = services.dataset_create(actor=member, department=production, name="Part images")
    buffer = io.BytesIO()
    write_part_images_zip(buffer, 3, per_class=2, size=28)
    buffer.seek(0)
    version = services.dataset_upload(actor=member, dataset=parts, stream=buffer, filename="parts.zip")
    assert services.version_ingest(version.pk).status == "published"
    services.upload_session_start(actor=member, dataset=parts, filename="big.csv", size=10)
    services.saved_query_create(actor=member, department=production, name="Parts", sql="SELECT 1")
    batches = services.dataset_create(actor=member, department=production, name="Batches")
    services.database_import_create(
        actor=owner,
        dataset=batches,
        url="postgresql://reader:pw-never-shown@127.0.0.1:5432/test",
        query="SELECT 1",
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_staff_list_and_open_each_model_without_add_change_or_delete(client, staff, lake, model):
    client.force_login(staff)
    listing = client.get(_changelist(model))
    assert listing.status_code == 200
    obj = model.objects.first()
    page = client.get(_change(obj))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body and "deletelink" not in body
    assert client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")).status_code == 403


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_non_staff_and_anonymous_are_sent_to_the_admin_login(client, admin, lake, model):
    assert client.get(_changelist(model))["Location"].startswith(reverse("admin:login"))
    client.force_login(admin)  # a department admin, not platform staff
    assert client.get(_changelist(model))["Location"].startswith(reverse("admin:login"))


def test_the_import_password_is_never_shown_not_even_encrypted(client, staff, lake):
    client.force_login(staff)
    stored = DatabaseImport.objects.get()
    assert stored.password_encrypted
    for url in (_changelist(DatabaseImport), _change(stored)):
        body = client.get(url).content.decode()
        assert "pw-never-shown" not in body and stored.password_encrypted not in body
        assert "127.0.0.1:5432" in body
