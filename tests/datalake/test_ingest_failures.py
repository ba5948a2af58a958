"""An ingest that cannot finish (disk full, cancelled, its worker killed) publishes nothing and loses nothing."""

import errno
import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from datalake import services
from datalake.models import DatasetVersion
from lepton.jobs.models import WorkerHeartbeat
from lepton.jobs.services import job_cancel
from lepton.storage import get_storage
from tests.conftest import wait_for, wait_for_job

CSV = b"machine,temperature\nM1,70.5\nM2,71.0\n"


@pytest.fixture
def sensors(member, production):
    return services.dataset_create(actor=member, department=production, name="Sensors")


def test_a_full_disk_fails_the_version_keeps_the_upload_and_a_retry_publishes(
    member, sensors, celery_worker, dispatcher, monkeypatch
):
    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        # The disk is outside the platform: the Parquet writer is where it says it is full.
        patched.setattr(pq.ParquetWriter, "write_table", disk_full)
        version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="s.csv")
        job = wait_for_job(version.job, timeout=60)
    version.refresh_from_db()
    assert job.status == "failed" and "disk space" in job.error_message
    assert version.status == "failed" and version.number is None and "disk space" in version.error_message
    assert get_storage().exists(version.raw_sha256)  # kept for the retry
    assert not sensors.versions.filter(status="published").exists()
    retried = services.version_retry(actor=member, version=version)
    wait_for_job(retried.job, timeout=60)
    retried.refresh_from_db()
    assert (retried.status, retried.number, retried.row_count) == ("published", 1, 2)


def test_a_job_cancelled_before_it_ran_leaves_no_pending_version(member, owner, sensors):
    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(CSV), filename="s.csv")
    job_cancel(actor=owner, job=version.job)
    assert services.versions_settle() == [str(version.pk)]
    version.refresh_from_db()
    assert version.status == "failed" and "cancelled" in version.error_message
    assert services.versions_settle() == []  # once


def _large_csv(rows: int) -> bytes:
    rng = np.random.default_rng(1)
    values = rng.normal(70, 5, rows)
    lines = [f"M{i % 7},{v:.4f},{i}\n" for i, v in enumerate(values)]
    return ("machine,temperature,seq\n" + "".join(lines)).encode()


@pytest.mark.slow
def test_a_worker_killed_mid_ingest_is_replaced_and_the_version_publishes_once(
    settings, member, sensors, subprocess_worker_factory, dispatcher
):
    settings.LEPTON_JOB_STALE_SECONDS = 2.0
    data = _large_csv(1_500_000)
    first = subprocess_worker_factory("doomed-ingest")
    version = services.dataset_upload(actor=member, dataset=sensors, stream=io.BytesIO(data), filename="big.csv")
    job = version.job

    def converting():
        job.refresh_from_db()
        return job.status == "running" and job.progress >= 10

    wait_for(converting, timeout=60, what="the ingest to start converting on the first worker")
    first.kill()
    WorkerHeartbeat.objects.filter(hostname=first.hostname).delete()
    wait_for(
        lambda: job.log_lines.filter(message__contains="stopped responding").exists(),
        timeout=30,
        what="the reaper to requeue the ingest",
    )
    version.refresh_from_db()
    assert version.status == "pending"  # waiting for the retry, not failed, not half published
    subprocess_worker_factory("rescuer-ingest")
    wait_for_job(job, timeout=120)
    assert job.status == "succeeded", job.error_message
    version.refresh_from_db()
    assert (version.status, version.number, version.row_count) == ("published", 1, 1_500_000)
    assert DatasetVersion.objects.filter(dataset=sensors).count() == 1
