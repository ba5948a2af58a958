"""Data-lake services: datasets and uploads, through the policy, with the audit log."""

import io

import pytest

from datalake import services
from datalake.models import Dataset, DatasetVersion
from lepton import policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.models import Job
from lepton.models import AuditEvent
from lepton.storage import get_storage

CSV = b"machine,temperature\nM1,70.5\nM2,71.0\n"


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Press line sensors", tags=["Sensors", "line-3"])


def _counts():
    return (Dataset.objects.count(), DatasetVersion.objects.count(), Job.objects.count(), AuditEvent.objects.count())


def test_create_dataset_slugs_the_name_and_audits(sensors, production):
    assert (sensors.slug, sensors.tags, sensors.department) == ("press-line-sensors", ["line-3", "sensors"], production)
    assert AuditEvent.objects.filter(action="dataset.create", object_id=str(sensors.pk)).exists()


def test_chinese_name_gets_a_usable_slug(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="设备传感器")
    assert dataset.slug.startswith("dataset-") and dataset.name == "设备传感器"


def test_create_refusals(member, viewer, outsider, production, sensors):
    before = _counts()
    with pytest.raises(Invalid) as err:
        services.dataset_create(actor=member, department=production, name="Press line sensors")
    assert err.value.code == "slug_taken" and "slug" in err.value.fields
    with pytest.raises(Invalid):
        services.dataset_create(actor=member, department=production, name="  ")
    with pytest.raises(Forbidden):
        services.dataset_create(actor=viewer, department=production, name="x")
    with pytest.raises(NotFound):
        services.dataset_create(actor=outsider, department=production, name="x")
    assert _counts() == before


def test_update_validates_checks_and_audits_the_change(member, sensors):
    services.dataset_update(actor=member, dataset=sensors, checks=[{"type": "not_null", "column": "temperature"}])
    sensors.refresh_from_db()
    assert sensors.checks == [{"type": "not_null", "column": "temperature", "blocking": False}]
    assert AuditEvent.objects.filter(action="dataset.update").count() == 1
    with pytest.raises(Invalid) as err:
        services.dataset_update(actor=member, dataset=sensors, checks=[{"type": "range", "column": "t"}])
    assert "checks.0.min" in err.value.fields
    with pytest.raises(Invalid):
        services.dataset_update(actor=member, dataset=sensors, slug="renamed")


def test_upload_stores_the_bytes_and_queues_an_ingest_job(member, sensors):
    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="../../etc/sensors.csv")
    assert version.status == "pending" and version.number is None
    assert version.original_filename == "sensors.csv"
    assert get_storage().read_bytes(version.raw_sha256) == CSV
    assert (version.job.kind, version.job.params) == ("datalake.ingest", {"version": str(version.pk)})
    assert AuditEvent.objects.filter(action="dataset.upload").exists()


def test_identical_bytes_are_refused_with_the_version(member, sensors):
    services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="a.csv")
    before = _counts()
    with pytest.raises(Conflict) as err:
        services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="b.csv")
    assert err.value.code == "duplicate_upload"
    assert _counts() == before


def test_empty_upload_is_refused_and_nothing_is_kept(member, sensors):
    before = _counts()
    with pytest.raises(Invalid, match="empty"):
        services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(b""), filename="a.csv")
    assert _counts() == before
    assert not get_storage().exists("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_upload_over_the_storage_quota_is_refused_and_nothing_is_kept(member, sensors, production):
    production.storage_bytes_quota = 10
    production.save()
    before = _counts()
    with pytest.raises(Invalid) as err:
        services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="a.csv")
    assert err.value.code == "quota_exceeded" and "storage quota" in err.value.message
    assert _counts() == before
    import hashlib

    assert not get_storage().exists(hashlib.sha256(CSV).hexdigest())


def test_upload_rights(viewer, outsider, sensors):
    with pytest.raises(Forbidden):
        services.dataset_upload(actor=viewer, dataset=sensors, stream=io.BytesIO(CSV), filename="a.csv")
    with pytest.raises(NotFound):
        services.dataset_upload(actor=outsider, dataset=sensors, stream=io.BytesIO(CSV), filename="a.csv")


def test_versions_follow_their_dataset_in_the_policy(member, owner, outsider, quality, sensors):
    from lepton.services import share_grant

    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="a.csv")
    assert not policy.can(outsider, "view", version)
    assert list(policy.visible_to(outsider, DatasetVersion)) == []
    share_grant(actor=owner, obj=sensors, department=quality, level="use")
    assert policy.can(outsider, "use", version)
    assert list(policy.visible_to(outsider, DatasetVersion, "use")) == [version]
    assert not policy.can(outsider, "change", version)
