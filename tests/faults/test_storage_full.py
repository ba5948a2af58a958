"""The data lake's volume fills up: uploads, ingests and trainings fail with the reason, nothing
half-written is left, every stored blob still verifies, and once space is freed a retry works.

The lake is a real 8 MiB tmpfs mounted for the test (we run as root), so the kernel itself
answers ENOSPC: no write is patched. The worker and the dispatcher are processes of their own.
"""

import io
import os
import subprocess

import numpy as np
import pytest
from rest_framework.test import APIClient

from datalake import services as datalake_services
from datalake.models import DatasetVersion
from lepton.health import check_storage
from models_repo import services as model_services
from models_repo.models import ModelVersion
from tests.conftest import wait_for_job
from tests.faults.conftest import lake_report
from tests.models_repo.conftest import SPEC, inspections_csv

pytestmark = pytest.mark.slow


def _mount_tmpfs(folder, size="8m") -> None:
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip()})"
        pytest.skip(f"{reason}; tests/datalake/test_ingest_failures.py covers a full disk with a patched writer")


@pytest.fixture
def small_lake(settings, tmp_path):
    root = tmp_path / "lake"
    root.mkdir()
    _mount_tmpfs(root)
    settings.LEPTON_STORAGE_URL = root.as_uri()
    yield root
    subprocess.run(["umount", "-l", str(root)], check=True)


def _fill(root, leave: int, name: str = "filler"):
    """Fill the volume with one file until `leave` bytes are free; returns its path."""
    filler = root / name
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    try:
        with open(filler, "wb") as out:
            out.write(b"\0" * max(0, free - leave))
    except OSError:  # leave=0: the last block's bookkeeping does not fit; the volume is full anyway
        pass
    return filler


def _readings(rows: int, seed: int) -> bytes:
    """Random floats: their Parquet does not compress much below the CSV."""
    rng = np.random.default_rng(seed)
    values = rng.normal(70, 5, (rows, 3))
    return ("a,b,c\n" + "".join(f"{x:.6f},{y:.6f},{z:.6f}\n" for x, y, z in values)).encode()


def test_a_full_lake_fails_uploads_ingests_and_trainings_clearly_and_a_retry_works_once_freed(
    small_lake, member, owner, production, own_broker, subprocess_worker_factory
):
    subprocess_worker_factory(
        "storage", pool="threads", concurrency=2, env={**own_broker, "LEPTON_STORAGE_URL": small_lake.as_uri()}
    )
    api = APIClient()
    api.force_authenticate(member)
    sensors = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    inspections = datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    source = datalake_services.dataset_upload(
        actor=member, dataset=inspections, stream=io.BytesIO(inspections_csv()), filename="i.csv"
    )
    trained_on = datalake_services.version_ingest(source.pk)
    assert trained_on.status == "published"
    upload = datalake_services.dataset_upload(
        actor=member, dataset=sensors, stream=io.BytesIO(_readings(40_000, seed=1)), filename="r.csv"
    )
    # The upload is stored; its Parquet (hundreds of KiB) and a model (tens) will not fit in what is left.
    filler = _fill(small_lake, leave=8 * 1024)

    # 1. An ingest: the job and the version say the disk is full; the upload is kept for a retry.
    job = wait_for_job(upload.job, timeout=60)
    upload.refresh_from_db()
    assert job.status == "failed" and "disk space" in job.error_message
    assert upload.status == "failed" and upload.number is None and "disk space" in upload.error_message

    # 2. An upload through the API: 507 with the reason, and nothing kept.
    versions_before = DatasetVersion.objects.count()
    response = api.post(
        f"/api/v1/datasets/{sensors.pk}/upload/",
        {"file": io.BytesIO(_readings(20_000, seed=2))},
        format="multipart",
    )
    assert response.status_code == 507, response.content[:500]
    assert response.json()["error"] == "storage_full" and "storage is full" in response.json()["detail"]
    assert DatasetVersion.objects.count() == versions_before

    # 3. A training: its artifact cannot be stored; the run fails naming the cause, no model version.
    predictor = model_services.model_create(actor=owner, department=production, name="Quality predictor")
    run = model_services.training_start(actor=member, dataset_version=trained_on, spec=SPEC, registered_model=predictor)
    job = wait_for_job(run.job, timeout=120)
    run.refresh_from_db()
    assert job.status == "failed" and "No space left on device" in job.error_message
    assert run.status == "failed" and "No space left on device" in run.error_message and run.artifact_sha256 == ""
    assert not ModelVersion.objects.filter(model=predictor).exists()

    # Filled to the last byte, /healthz's storage probe says so too.
    last_bytes = _fill(small_lake, leave=0, name="filler-2")
    assert check_storage_fails()
    last_bytes.unlink()

    # Nothing half-written, and what is stored verifies.
    report = lake_report(small_lake)
    assert report.clean, report

    # Space freed: the same retries work.
    filler.unlink()
    retried = datalake_services.version_retry(actor=member, version=upload)
    assert wait_for_job(retried.job, timeout=60).status == "succeeded"
    retried.refresh_from_db()
    assert (retried.status, retried.number, retried.row_count) == ("published", 1, 40_000)
    again = model_services.training_rerun(actor=member, run=run)
    assert wait_for_job(again.job, timeout=120).status == "succeeded"
    assert ModelVersion.objects.filter(model=predictor).count() == 1
    report = lake_report(small_lake)
    assert report.clean, report


def check_storage_fails() -> bool:
    from lepton.health import _timed

    detail = _timed(check_storage)
    return not detail["ok"] and "No space left" in detail["error"]
