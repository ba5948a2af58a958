"""manage.py backup / restore (lepton/backup.py): a whole round trip through an emptied database and a
new lake, and the archives and targets restore refuses with nothing changed."""

import io
import os
import tarfile
import uuid

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from datalake import services as datalake_services
from datalake.models import Dataset, DatasetVersion
from lepton import audit
from lepton.backup import blob_references
from lepton.models import AuditEvent, Membership, Share
from lepton.storage import get_storage
from models_repo import services as models_services
from models_repo.models import ModelVersion
from tests.conftest import TEST_STORAGE

pytestmark = pytest.mark.django_db(transaction=True)

CSV = "机器,温度,time\nM1,70.5,2026-01-01 08:00:00.123456\nM2,90.25,2026-01-02 09:30:00\nM3,,2026-01-03 10:00:00\n".encode()


@pytest.fixture
def lake(settings, tmp_path, lake_backend):
    """A fresh, empty lake for this test: a folder, or on s3 a new prefix in the bucket."""
    if not lake_backend.startswith("s3://"):
        settings.LEPTON_STORAGE_URL = (tmp_path / "lake").as_uri()
    elif TEST_STORAGE == "s3":  # the whole run shares one prefix (the `s3` parameter has its own)
        settings.LEPTON_STORAGE_URL = f"{lake_backend}-{uuid.uuid4().hex[:8]}"
    return get_storage()


def use_new_lake(settings, tmp_path):
    if settings.LEPTON_STORAGE_URL.startswith("s3://"):
        settings.LEPTON_STORAGE_URL = f"{settings.LEPTON_STORAGE_URL}-after"
    else:
        settings.LEPTON_STORAGE_URL = (tmp_path / "lake-after").as_uri()
    return get_storage()


@pytest.fixture
def sensors(lake, member, production):
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    version = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(CSV), filename="s.csv")
    published = datalake_services.version_ingest(version.pk)
    assert published.status == "published", published.error_message
    return published


@pytest.fixture
def model_version(lake, owner, production):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"温度": rng.normal(70, 5, 60), "pressure": rng.normal(5, 1, 60)})
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    pipeline.fit(frame, np.where(frame["温度"] > 70, "hot", "ok"))
    model = models_services.model_create(actor=owner, department=production, name="Heat predictor")
    return models_services.version_upload(actor=owner, model=model, stream=io.BytesIO(sio.dumps(pipeline)), filename="h.skops")


def backup(path) -> str:
    out = io.StringIO()
    call_command("backup", str(path), stdout=out)
    return out.getvalue()


def restore(path, *args) -> str:
    out = io.StringIO()
    call_command("restore", str(path), *args, stdout=out)
    return out.getvalue()


def wipe(settings, tmp_path):
    """An emptied database (migrate's contenttypes and permissions come back, under new ids) and a new lake."""
    call_command("flush", "--noinput", verbosity=0)
    ContentType.objects.clear_cache()
    return use_new_lake(settings, tmp_path)


def counts() -> dict:
    User = get_user_model()
    return {
        "users": User.objects.count(),
        "datasets": Dataset.objects.count(),
        "versions": DatasetVersion.objects.count(),
        "models": ModelVersion.objects.count(),
        "events": AuditEvent.objects.count(),
    }


@pytest.mark.s3
def test_round_trip_through_an_empty_database_and_a_new_lake(settings, tmp_path, member, owner, quality, sensors, model_version):
    dataset_type = ContentType.objects.get_for_model(Dataset)
    Share.objects.create(content_type=dataset_type, object_id=str(sensors.dataset_id), department=quality, level="view")
    audit.seal_pending()
    before = counts()
    events = list(AuditEvent.objects.order_by("seq").values_list("id", "seq", "at", "hash"))
    head = audit.verify().head
    refs = dict(blob_references())
    blobs = {sha: get_storage().read_bytes(sha) for sha in refs}
    assert {sensors.raw_sha256, sensors.parquet_sha256, model_version.artifact_sha256} <= set(blobs)
    preview = datalake_services.version_preview(actor=member, version=sensors)["rows"]
    archive = tmp_path / "lepton.tar"

    printed = backup(archive)

    assert f"{len(blobs)} blobs" in printed and f"head {head}" in printed
    assert not os.path.exists(f"{archive}.partial")
    new_lake = wipe(settings, tmp_path)
    assert counts()["users"] == 0 and not new_lake.digests()

    printed = restore(archive)

    assert "datalake.datasetversion 1 rows" in printed and "Restored" in printed
    after = counts()
    assert after == {**before, "events": before["events"] + 1}  # + the restore's own event
    restored = AuditEvent.objects.get(action="platform.restore")
    assert restored.changes["archive"] == "lepton.tar" and restored.changes["blobs"] == len(blobs)
    assert list(AuditEvent.objects.exclude(pk=restored.pk).order_by("seq").values_list("id", "seq", "at", "hash")) == events
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().startswith(f"OK: {before['events'] + 1} audit events verified")
    for sha, data in blobs.items():
        assert new_lake.read_bytes(sha) == data
    share = Share.objects.get()
    assert share.content_type.model_class() is Dataset and share.department_id == quality.pk
    assert Membership.objects.filter(user=member, department__slug="production").exists()
    version = DatasetVersion.objects.get(pk=sensors.pk)
    assert datalake_services.version_preview(actor=member, version=version)["rows"] == preview
    # New rows take ids after the restored ones (sequences were moved past them).
    assert datalake_services.dataset_create(actor=member, department=version.dataset.department, name="Later").pk
    assert AuditEvent.objects.order_by("-id").first().id > restored.id


def test_non_empty_target_is_refused_without_force_and_replaced_with_it(settings, tmp_path, member, sensors):
    archive = tmp_path / "lepton.tar"
    backup(archive)
    later = datalake_services.dataset_create(actor=member, department=sensors.dataset.department, name="Made later")
    before = counts()

    with pytest.raises(CommandError, match="The database is not empty .*run again with --force"):
        restore(archive)

    assert counts() == before

    restore(archive, "--force")

    assert not Dataset.objects.filter(pk=later.pk).exists()
    assert Dataset.objects.get().pk == sensors.dataset_id
    call_command("verify_audit", stdout=io.StringIO())


def _rewrite(source, target, change):
    """Copy the tar `source` to `target`, passing each member's bytes through change(name, data) (None drops it)."""
    with tarfile.open(source) as src, tarfile.open(target, "w") as out:
        for member in src:
            data = change(member.name, src.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))


def test_damaged_archives_are_refused_before_anything_is_written(settings, tmp_path, sensors):
    good = tmp_path / "good.tar"
    backup(good)
    parquet, raw = sensors.parquet_sha256[2:], sensors.raw_sha256[2:]
    damages = {
        "blob": (lambda name, data: data[:-1] + b"!" if name.endswith(parquet) else data, "does not match its checksum"),
        "database": (
            lambda name, data: data.replace("机器".encode(), "机械".encode()) if name.endswith(".jsonl") else data,
            "the database file does not match its checksum",
        ),
        "missing": (lambda name, data: None if name.endswith(raw) else data, "lacks 1 of the blobs its manifest lists"),
        "no manifest": (lambda name, data: None if name.endswith("manifest.json") else data, "no Lepton backup manifest"),
    }
    new_lake = wipe(settings, tmp_path)
    for case, (change, message) in damages.items():
        bad = tmp_path / f"{case}.tar"
        _rewrite(good, bad, change)
        with pytest.raises(CommandError, match=message):
            restore(bad)
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CommandError, match="damaged or truncated|no Lepton backup manifest"):
        restore(truncated)
    not_tar = tmp_path / "data.csv"
    not_tar.write_bytes(b"sensor,temperature\n1,2\n")
    with pytest.raises(CommandError, match="not a Lepton backup"):
        restore(not_tar)

    assert counts() == {"users": 0, "datasets": 0, "versions": 0, "models": 0, "events": 0}
    assert not new_lake.digests()
    restore(good)  # the undamaged one still restores
    assert DatasetVersion.objects.get().pk == sensors.pk


def test_a_blob_missing_from_the_lake_fails_the_backup_naming_it(tmp_path, sensors, lake):
    lake.delete(sensors.parquet_sha256)
    archive = tmp_path / "lepton.tar"

    with pytest.raises(CommandError, match=f"lacks blob {sensors.parquet_sha256}, which dataset version {sensors.pk}"):
        backup(archive)

    assert not os.path.exists(archive) and not os.path.exists(f"{archive}.partial")


def test_an_existing_file_is_never_overwritten_and_a_missing_archive_is_named(tmp_path, sensors):
    archive = tmp_path / "lepton.tar"
    archive.write_bytes(b"an older backup")
    with pytest.raises(CommandError, match="already exists"):
        backup(archive)
    assert archive.read_bytes() == b"an older backup"
    with pytest.raises(CommandError, match="is not a file"):
        restore(tmp_path / "nowhere.tar")


def test_every_digest_field_is_one_a_backup_copies():
    # A new *_sha256 field names blobs a backup must copy: add it to its app's blob_references() (and here).
    from django.apps import apps

    fields = {f"{m._meta.label_lower}.{f.name}" for m in apps.get_models() for f in m._meta.fields if f.name.endswith("sha256")}
    assert fields == {
        "datalake.datasetversion.raw_sha256",
        "datalake.datasetversion.parquet_sha256",
        "datalake.versionblob.sha256",
        "models_repo.trainingrun.artifact_sha256",
        "models_repo.modelversion.artifact_sha256",
        "models_repo.modelversion.onnx_sha256",
    }
