"""A worker SIGKILLed mid-training and mid-ingest, again and again: every job ends exactly once.

Each round starts a prefork worker (its own process group), has it run a training and an ingest,
waits until both are running, and kills the whole group. Ingests the reaper handed back from
earlier rounds run (and may die) on the next round's worker too; a last worker serves what is
left. A training has two attempts (models_repo.jobkinds): the first round's training is killed
again on its second attempt in the second round and fails with the reason; the third round's,
killed once, is taken over by the last worker and succeeds with one clean epoch history.
Afterwards every job has ended once, each upload published one version, the model has the one
version of the run that succeeded, and the lake holds exactly the blobs the catalog names, each
verifying.
"""

import io
import os

import numpy as np
import pytest

from datalake import services as datalake_services
from datalake.models import DatasetVersion
from lepton.celery import _scratch_name
from lepton.jobs.models import Job, WorkerHeartbeat
from lepton.models import AuditEvent
from models_repo import services as model_services
from models_repo.models import ModelVersion, RunStatus, TrainingRun
from tests.conftest import wait_for
from tests.faults.conftest import lake_report
from tests.models_repo.conftest import inspections_csv

pytestmark = pytest.mark.slow

ROUNDS = 3
TERMINAL = ("succeeded", "failed", "cancelled")
# A Keras network that records its epochs as it goes and trains for tens of seconds, so it is
# killed after some epochs were recorded and a second attempt must start the history over.
LONG_SPEC = {
    "task": "classification",
    "target": "合格",
    "features": ["温度", "pressure"],
    "algorithms": [{"name": "keras_mlp"}],
    "keras": {"epochs": 60, "batch_size": 16, "units": 32, "patience": 0},
    "seed": 7,
}


def _sensor_csv(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    values = rng.normal(70, 5, rows)
    return ("machine,temperature,seq\n" + "".join(f"M{i % 7},{v:.4f},{i}\n" for i, v in enumerate(values))).encode()


def terminal_events(job: Job) -> int:
    """How many times the job was ended: by its worker (job.<status>) or by the reaper."""
    count = 0
    for action, changes in AuditEvent.objects.filter(object_id=str(job.pk)).values_list("action", "changes"):
        if action in ("job.succeeded", "job.failed", "job.cancelled"):
            count += 1
        elif action == "job.reap" and changes.get("status", [None, None])[1] in TERMINAL:
            count += 1
    return count


def test_workers_killed_mid_training_and_mid_ingest_end_every_job_exactly_once(
    tmp_path, own_lake, own_broker, owner, member, production, subprocess_worker_factory
):
    production.max_concurrent_jobs = 20
    production.save()
    worker_tmp = tmp_path / "worker-tmp"
    worker_tmp.mkdir()
    # The workers' own scratch space, so what a killed worker leaves there can be looked at.
    env = {**own_broker, "LEPTON_STORAGE_URL": own_lake.as_uri(), "TMPDIR": str(worker_tmp)}
    predictor = model_services.model_create(actor=owner, department=production, name="Quality predictor")
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    first = datalake_services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO(inspections_csv(rows=3000)), filename="i.csv"
    )
    inspections = datalake_services.version_ingest(first.pk)
    assert inspections.status == "published", inspections.error_message
    sensors = datalake_services.dataset_create(actor=member, department=production, name="Sensors")

    # Round 0 starts the training that is killed twice (on both its attempts), round 2 the one killed once.
    twice = model_services.training_start(actor=member, dataset_version=inspections, spec=LONG_SPEC, registered_model=predictor)
    once = None
    uploads = []
    for round_ in range(ROUNDS):
        worker = subprocess_worker_factory(f"doomed-{round_}", pool="prefork", concurrency=4, env=env)
        if round_ == 2:
            once = model_services.training_start(
                actor=member, dataset_version=inspections, spec=LONG_SPEC, registered_model=predictor
            )
        run = once if round_ == 2 else twice
        attempt = 2 if round_ == 1 else 1

        def training(run=run, worker=worker, attempt=attempt):
            """The round's training runs its attempt on this worker and has recorded epochs."""
            job = Job.objects.get(pk=run.job_id)
            recorded = TrainingRun.objects.filter(pk=run.pk).values_list("epochs", flat=True).first()
            mine = (job.status, job.worker, job.attempts) == ("running", worker.hostname, attempt) and job.progress >= 2
            return mine and bool(recorded)

        wait_for(training, timeout=120, what=f"round {round_}: attempt {attempt} of the training recording epochs")
        upload = datalake_services.dataset_upload(
            actor=member, dataset=sensors, stream=io.BytesIO(_sensor_csv(300_000, seed=round_)), filename=f"s{round_}.csv"
        )
        uploads.append(upload)

        def both_running(training=training, upload=upload, worker=worker):
            ingest = Job.objects.get(pk=upload.job_id)
            return training() and (ingest.status == "running" and ingest.worker == worker.hostname and ingest.progress >= 10)

        wait_for(both_running, timeout=90, what=f"round {round_}: the training and the ingest running on {worker.hostname}")
        worker.kill_group()
        WorkerHeartbeat.objects.filter(hostname=worker.hostname).delete()  # a dead worker's row would just go stale

    subprocess_worker_factory("rescuer", pool="prefork", concurrency=2, env=env)
    jobs = [Job.objects.get(pk=u.job_id) for u in uploads] + [Job.objects.get(pk=r.job_id) for r in (twice, once)]

    def all_ended():
        return all(Job.objects.get(pk=j.pk).status in TERMINAL for j in jobs)

    wait_for(all_ended, timeout=300, interval=0.5, what="every job to end")
    model_services.runs_settle()  # the dispatcher's periodic pass (LEPTON_PERIODIC_TASKS)

    published = 0
    for upload in uploads:
        job = Job.objects.get(pk=upload.job_id)
        kills = job.log_lines.filter(message__contains="stopped responding").count()
        upload.refresh_from_db()
        assert kills >= 1 and terminal_events(job) == 1
        if job.status == "succeeded":
            # Killed `kills` times, then finished: one attempt more than it was killed.
            assert job.attempts == kills + 1 and upload.status == "published"
            published += 1
        else:
            # Killed on every attempt it had: failed by the reaper with the reason, nothing published.
            assert (job.status, job.attempts, kills) == ("failed", job.max_attempts, job.max_attempts)
            assert "No attempts left" in job.error_message
            datalake_services.versions_settle()  # the dispatcher's periodic pass
            upload.refresh_from_db()
            assert upload.status == "failed" and upload.number is None and upload.error_message
    numbers = sorted(n for n in DatasetVersion.objects.filter(dataset=sensors).values_list("number", flat=True) if n)
    assert published >= 1 and numbers == list(range(1, published + 1)), "one version per upload, none half published"

    # Killed on both its attempts: the reaper ended it with the reason, and the run failed with it.
    job = Job.objects.get(pk=twice.job_id)
    kills = job.log_lines.filter(message__contains="stopped responding").count()
    assert (job.status, job.attempts, job.max_attempts, kills, terminal_events(job)) == ("failed", 2, 2, 2, 1)
    assert "stopped responding" in job.error_message and "No attempts left" in job.error_message
    twice.refresh_from_db()
    assert twice.status == RunStatus.FAILED and "stopped responding" in twice.error_message
    assert twice.artifact_sha256 == "" and not ModelVersion.objects.filter(run=twice).exists()

    # Killed once after recording epochs, then taken over by the rescuer: one run, one history, one version.
    job = Job.objects.get(pk=once.job_id)
    kills = job.log_lines.filter(message__contains="stopped responding").count()
    assert (job.status, job.attempts, kills, terminal_events(job)) == ("succeeded", 2, 1, 1), job.error_message
    once.refresh_from_db()
    assert once.status == RunStatus.SUCCEEDED, once.error_message
    assert [e["epoch"] for e in once.epochs] == list(range(1, LONG_SPEC["keras"]["epochs"] + 1))
    assert AuditEvent.objects.filter(object_id=str(once.pk), action="run.succeeded").count() == 1
    assert list(ModelVersion.objects.filter(model=predictor).values_list("run", "number")) == [(once.pk, 1)]

    report = lake_report(own_lake)
    assert report.clean, report
    # What the killed workers wrote there (copies of the data) went when the rescuer started.
    live = {_scratch_name(pid) for pid in _live_pids()}
    assert sorted(set(os.listdir(worker_tmp)) - live) == [], "killed workers left scratch files behind"


def _live_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]
