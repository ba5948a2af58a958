"""Image datasets through the platform: upload a zip → blobs + manifest version, grid, images, purge, quota."""

import io
import zipfile

import pytest
from django.test import Client
from rest_framework.test import APIClient

from datalake import services
from datalake.engine.demo import write_part_images_zip
from datalake.models import DatasetVersion, VersionBlob
from lepton.storage import get_storage
from tests.conftest import wait_for_job


def _zip(per_class=5, layout="folders", extra: dict | None = None, seed: int = 7) -> bytes:
    buffer = io.BytesIO()
    write_part_images_zip(buffer, seed, per_class=per_class, size=32, layout=layout)
    if extra:
        with zipfile.ZipFile(buffer, "a") as archive:
            for name, data in extra.items():
                archive.writestr(name, data)
    return buffer.getvalue()


def _blob_files() -> set[str]:
    return get_storage().digests()


@pytest.fixture
def parts(member, production):
    return services.dataset_create(actor=member, department=production, name="Part images")


def _ingest(member, dataset, data, filename="parts.zip", options=None):
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(data), filename=filename, options=options)
    return services.version_ingest(version.pk)


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_an_image_zip_becomes_a_manifest_version_with_blobs_and_a_class_profile(member, parts, production):
    version = _ingest(member, parts, _zip())
    assert version.status == "published", version.error_message
    assert (version.format, version.row_count) == ("images", 20)
    assert [c["name"] for c in version.schema] == [
        "path",
        "label",
        "width",
        "height",
        "mode",
        "format",
        "bytes",
        "checksum",
        "thumbnail",
    ]
    images = version.profile["images"]
    assert images["classes"] == {"crack": 5, "ok": 5, "scratch": 5, "spot": 5}
    assert images["sizes"] == {"32x32": 20} and images["modes"] == {"L": 20}
    blobs = set(VersionBlob.objects.filter(version=version).values_list("sha256", flat=True))
    assert blobs and blobs <= _blob_files() and version.blob_bytes > 0
    parts.refresh_from_db()
    assert parts.format == "images"
    assert services.department_storage_used(production) == version.raw_bytes + version.parquet_bytes + version.blob_bytes
    # The manifest is a table like any other: preview and SQL see it.
    page = services.version_preview(actor=member, version=version, sort="label")
    assert page["total"] == 20 and page["columns"][1] == "label"


def test_labels_csv_layout_and_the_grid_and_images_through_the_api(member, outsider, parts):
    version = _ingest(member, parts, _zip(per_class=3, layout="labels_csv"))
    assert version.status == "published", version.error_message
    url = f"/api/v1/datasets/{parts.pk}/versions/{version.pk}/images/"
    body = api(member).get(url + "?per_class=2").json()
    assert body["classes"] == {"crack": 3, "ok": 3, "scratch": 3, "spot": 3}
    assert [len(v) for v in body["images"].values()] == [2, 2, 2, 2]
    first = body["images"]["ok"][0]
    image = api(member).get(url + first["checksum"] + "/")
    assert image.status_code == 200 and image["Content-Type"] == "image/png" and image.content.startswith(b"\x89PNG")
    thumbnail = api(member).get(url + first["thumbnail"] + "/")
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")
    assert api(member).get(url + "0" * 64 + "/").status_code == 404
    assert api(member).get(url + "?label=ok&per_class=1").json()["images"].keys() == {"ok"}
    assert api(member).get(url + "?per_class=0").status_code == 400
    for client, code in ((api(outsider), 404), (api(), 401)):
        assert client.get(url).status_code == code
        assert client.get(url + first["checksum"] + "/").status_code == code


def test_an_image_from_another_version_is_not_served_through_this_one(member, parts, production):
    other = services.dataset_create(actor=member, department=production, name="Other parts")
    theirs = _ingest(member, other, _zip(per_class=2, seed=1))
    mine = _ingest(member, parts, _zip(per_class=2, seed=2))
    foreign = VersionBlob.objects.filter(version=theirs).first().sha256
    assert not VersionBlob.objects.filter(version=mine, sha256=foreign).exists()
    response = api(member).get(f"/api/v1/datasets/{parts.pk}/versions/{mine.pk}/images/{foreign}/")
    assert response.status_code == 404


def test_a_table_version_has_no_image_grid(member, parts):
    version = _ingest(member, parts, b"a,b\n1,2\n", filename="t.csv")
    response = api(member).get(f"/api/v1/datasets/{parts.pk}/versions/{version.pk}/images/")
    assert response.status_code == 409 and response.json()["error"] == "not_images"


def test_dataset_page_shows_thumbnails_per_class_and_serves_them(member, outsider, parts):
    version = _ingest(member, parts, _zip(per_class=2))
    client = Client()
    client.force_login(member)
    html = client.get(f"/data/{parts.pk}/").content.decode()
    assert "Images of v1 (8 images)" in html and 'class="thumbnails"' in html
    thumb = VersionBlob.objects.filter(version=version).first().sha256
    image_url = f"/data/{parts.pk}/versions/{version.pk}/images/{thumb}/"
    response = client.get(image_url)
    assert response.status_code == 200 and "immutable" in response["Cache-Control"]
    other = Client()
    other.force_login(outsider)
    assert other.get(image_url).status_code == 404
    assert Client().get(image_url).status_code == 302


def test_a_single_class_zip_is_refused_and_leaves_no_blobs(member, parts):
    before = _blob_files()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        source = zipfile.ZipFile(io.BytesIO(_zip(per_class=3, seed=98)))
        for name in source.namelist():
            if name.startswith("ok/"):
                archive.writestr(name, source.read(name))
    version = _ingest(member, parts, buffer.getvalue())
    assert version.status == "failed" and version.ingest_report["code"] == "single_class"
    assert "two" in version.error_message.lower() or "2" in version.error_message
    assert not parts.versions.filter(status="published").exists()
    # Only the raw upload (kept for a retry) remains of this attempt.
    assert _blob_files() - before == {version.raw_sha256}


def test_corrupt_files_are_listed_and_refused_or_skipped_as_chosen(member, parts):
    data = _zip(per_class=2, extra={"spot/broken.png": b"\x89PNG\r\n\x1a\nnot really", "readme.txt": b"hello"})
    refused = _ingest(member, parts, data)
    assert refused.status == "failed" and refused.ingest_report["code"] == "bad_images"
    listed = {f["path"] for f in refused.ingest_report["details"]["files"]}
    assert {"spot/broken.png", "readme.txt"} <= listed
    retried = services.version_ingest(services.version_retry(actor=member, version=refused, options={"skip_bad_files": True}).pk)
    assert retried.status == "published", retried.error_message
    assert retried.row_count == 8 and retried.profile["images"]["skipped_count"] == 2


def test_purge_deletes_image_blobs_no_other_version_needs(member, admin, parts, production, django_capture_on_commit_callbacks):
    other = services.dataset_create(actor=member, department=production, name="Same parts")
    kept = _ingest(member, other, _zip(per_class=2))
    mine = _ingest(member, parts, _zip(per_class=3))
    shared = set(VersionBlob.objects.filter(version=kept).values_list("sha256", flat=True))
    only_mine = set(VersionBlob.objects.filter(version=mine).values_list("sha256", flat=True)) - shared
    assert shared and only_mine
    services.dataset_delete(actor=admin, dataset=parts)
    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_purge(actor=admin, dataset=parts)
    files = _blob_files()
    assert shared <= files and not (only_mine & files)


def test_blobs_count_against_the_storage_quota_at_publication(member, parts, production):
    data = _zip(per_class=5, seed=99)  # images no other test stored
    production.storage_bytes_quota = len(data) + 2000  # the raw zip fits; its images and manifest do not
    production.save()
    before = _blob_files()
    version = _ingest(member, parts, data)
    assert version.status == "failed" and "storage quota" in version.error_message
    assert _blob_files() - before == {version.raw_sha256}
    assert not VersionBlob.objects.exists()


def test_upload_through_the_api_on_a_real_worker(member, parts, celery_worker, dispatcher):
    response = api(member).post(
        f"/api/v1/datasets/{parts.pk}/upload/",
        {"file": io.BytesIO(_zip(per_class=4)), "options": '{"format": "images"}'},
        format="multipart",
    )
    assert response.status_code == 202, response.json()
    version = DatasetVersion.objects.get(pk=response.json()["id"])
    job = wait_for_job(version.job, timeout=60)
    assert job.status == "succeeded", job.error_message
    version.refresh_from_db()
    assert (version.status, version.row_count, version.format) == ("published", 16, "images")
