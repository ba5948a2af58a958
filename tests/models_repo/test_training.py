"""Training through the platform: a dataset version in, a run with metrics and a registered version out."""

import io

import numpy as np
import pytest
from rest_framework.test import APIClient

from datalake import services as datalake_services
from lepton.errors import Invalid
from lepton.jobs.models import Job
from lepton.models import LineageEdge
from lepton.storage import get_storage
from models_repo import services
from models_repo.engine.errors import TrainingError
from models_repo.models import ModelVersion, RunStatus, TrainingRun
from tests.conftest import wait_for_job
from tests.models_repo.conftest import SPEC


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_a_run_trains_records_metrics_and_registers_a_version_with_lineage(member, inspections, predictor):
    run = services.training_start(actor=member, dataset_version=inspections, spec=SPEC, registered_model=predictor)
    assert run.status == RunStatus.QUEUED and run.job.kind == "models_repo.train"
    done = services.training_execute(run.pk)
    assert done.status == RunStatus.SUCCEEDED, done.error_message
    assert done.algorithm == "random_forest" and done.metrics["accuracy"] > 0.8
    assert [c["name"] for c in done.input_schema] == ["温度", "pressure", "line"]
    assert get_storage().exists(done.artifact_sha256)
    assert done.resources["cpu_seconds"] > 0 and done.resources["peak_rss_mb"] > 50
    assert done.resources["device"] == "cpu" and done.resources["worker"]
    version = ModelVersion.objects.get(run=done)
    assert (version.number, version.flavor, version.metrics) == (1, "sklearn", done.metrics)
    edges = {(e.from_type, e.to_type) for e in LineageEdge.objects.all()}
    assert {
        ("datalake.datasetversion", "models_repo.trainingrun"),
        ("models_repo.trainingrun", "models_repo.modelversion"),
    } <= edges


def test_rerun_reproduces_the_metrics(member, inspections):
    first = services.training_execute(services.training_start(actor=member, dataset_version=inspections, spec=SPEC).pk)
    again = services.training_rerun(actor=member, run=first)
    assert again.rerun_of == first
    assert services.training_execute(again.pk).metrics == first.metrics


@pytest.mark.parametrize(
    "change, field",
    [
        ({"target": "nope"}, "spec.target"),
        ({"features": ["温度", "missing"]}, "spec.features"),
        ({"algorithms": [{"name": "magic_forest"}]}, "spec.algorithms.0.name"),
        ({"task": "regression"}, "spec.target"),  # a text target cannot be regressed
    ],
)
def test_a_bad_spec_is_refused_naming_the_field_and_nothing_is_queued(member, inspections, change, field):
    response = api(member).post(
        "/api/v1/runs/", {"dataset_version": str(inspections.pk), "spec": {**SPEC, **change}}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert any(key.startswith(field) for key in response.json()["fields"]), response.json()
    assert not TrainingRun.objects.exists() and not Job.objects.filter(kind__startswith="models_repo").exists()


def test_viewers_cannot_train_and_outsiders_do_not_see_the_data(viewer, outsider, inspections):
    body = {"dataset_version": str(inspections.pk), "spec": SPEC}
    assert api(viewer).post("/api/v1/runs/", body, format="json").status_code == 403
    assert api(outsider).post("/api/v1/runs/", body, format="json").status_code == 404
    assert not TrainingRun.objects.exists()


def test_training_on_a_real_worker_through_the_api(member, inspections, predictor, celery_worker, dispatcher):
    body = {"dataset_version": str(inspections.pk), "spec": SPEC, "registered_model": str(predictor.pk), "name": "rf"}
    response = api(member).post("/api/v1/runs/", body, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    job = wait_for_job(run.job, timeout=120)
    assert job.status == "succeeded", job.error_message
    detail = api(member).get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and "confusion_matrix" in detail["curves"]
    assert api(member).get(f"/api/v1/models/{predictor.pk}/versions/").json()["results"][0]["number"] == 1
    # The learning curve and importance follow in their own job; the version exists before it ends.
    assert detail["analysis_job"] and "learning" not in detail["curves"]
    run.refresh_from_db()
    assert run.analysis_job.kind == "models_repo.analyse"
    assert wait_for_job(run.analysis_job, timeout=120).status == "succeeded"
    detail = api(member).get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["curves"]["learning"]["train_sizes"] and {i["feature"] for i in detail["importance"]} == {
        "温度", "pressure", "line"
    }  # fmt: skip
    assert detail["importance"][0]["feature"] in ("温度", "pressure")  # the two that decide 合格


def test_the_analysis_is_skipped_for_stopped_runs_and_refuses_changed_data(member, inspections):
    run = services.training_execute(services.training_start(actor=member, dataset_version=inspections, spec=SPEC).pk)
    assert run.analysis_job is not None and run.analysis_job.status == "queued"
    TrainingRun.objects.filter(pk=run.pk).update(holdout={**run.holdout, "indices": run.holdout["indices"][1:]})
    with pytest.raises(TrainingError, match="holdout"):
        services.training_analyse(run.pk)
    run.refresh_from_db()
    assert run.importance == [] and "learning" not in run.curves  # nothing half-written

    two = {**SPEC, "algorithms": [*SPEC["algorithms"], {"name": "knn"}]}
    seen = []
    done = services.training_execute(
        services.training_start(actor=member, dataset_version=inspections, spec=two).pk,
        progress=lambda pct, message: seen.append(message),
        should_stop=lambda: any("(2/2)" in m for m in seen),
    )
    # Stopped after the first algorithm: the run keeps it, says so, and queues no analysis.
    assert done.status == RunStatus.SUCCEEDED and "cancelled" in [w["code"] for w in done.warnings]
    assert done.analysis_job is None


def test_a_run_whose_job_ended_without_it_is_settled(member, inspections):
    run = services.training_start(actor=member, dataset_version=inspections, spec=SPEC)
    Job.objects.filter(pk=run.job_id).update(status="failed", error_message="worker lost")
    assert services.runs_settle() == 1
    run.refresh_from_db()
    assert (run.status, run.error_message) == (RunStatus.FAILED, "worker lost")


def _sensor_csv(machines=3, rows=120, seed=5) -> bytes:
    rng = np.random.default_rng(seed)
    lines = ["machine,ts,vibration,temperature,failure"]
    for m in range(machines):
        for i in range(rows):
            fault = (i // 20) % 2 == 1
            vibration = rng.normal(4.0 if fault else 1.0, 0.3)
            lines.append(f"M{m},2024-01-01 {i // 60:02d}:{i % 60:02d}:00,{vibration:.3f},{rng.normal(60, 2):.2f},{int(fault)}")
    return ("\n".join(lines) + "\n").encode()


def test_a_keras_lstm_on_sensor_windows_records_epochs_and_serves(member, production, predictor):
    from models_repo import serving
    from models_repo.engine import deep

    dataset = datalake_services.dataset_create(actor=member, department=production, name="Press sensors")
    upload = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(_sensor_csv()), filename="s.csv")
    sensors = datalake_services.version_ingest(upload.pk)
    spec = {
        "task": "sequence_classification",
        "target": "failure",
        "features": ["vibration", "temperature"],
        "time_column": "ts",
        "group_column": "machine",
        "algorithms": [{"name": "keras_lstm"}],
        "keras": {"window": 8, "epochs": 12, "units": 16, "batch_size": 32, "learning_rate": 0.01},
        "seed": 1,
    }
    bad = {**spec, "keras": {**spec["keras"], "window": 5000}}
    with pytest.raises(Invalid) as err:
        services.training_start(actor=member, dataset_version=sensors, spec=bad)
    assert "spec.keras.window" in err.value.fields, err.value.fields
    assert not TrainingRun.objects.exists()
    run = services.training_execute(
        services.training_start(actor=member, dataset_version=sensors, spec=spec, registered_model=predictor).pk
    )
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.flavor == "keras" and len(run.epochs) == run.params["epochs_run"] > 1 and "loss" in run.epochs[0]
    assert run.metrics["accuracy"] > 0.6
    version = ModelVersion.objects.get(run=run)
    model = serving.load(version)
    window = [[4.0, 60.0]] * 8
    out = deep.predict(model, [window], {**version.output, "input_schema": version.input_schema})
    assert len(out["predictions"]) == 1 and out["probabilities"]


def test_a_gpu_run_waits_with_its_reason_and_gpu_or_cpu_says_it_falls_back(member, inspections):
    from django.test import Client
    from django.utils import timezone

    from lepton.jobs.dispatcher import dispatch
    from lepton.jobs.models import WorkerHeartbeat

    numeric = {**SPEC, "features": ["温度", "pressure"], "algorithms": [{"name": "keras_mlp"}]}
    WorkerHeartbeat.objects.create(hostname="cpu@node", queues=["cpu"], concurrency=2, last_seen=timezone.now())
    gpu = services.training_start(actor=member, dataset_version=inspections, spec={**numeric, "keras": {"device": "gpu"}})
    either = services.training_start(
        actor=member, dataset_version=inspections, spec={**numeric, "keras": {"device": "gpu_or_cpu"}}
    )
    assert (gpu.job.kind, either.job.kind) == ("models_repo.train_gpu", "models_repo.train_gpu_or_cpu")
    released = dispatch().released
    gpu.job.refresh_from_db()
    either.job.refresh_from_db()
    assert gpu.job.pk not in released and gpu.job.wait_reason == "Waiting for a GPU worker: none is online."
    assert either.job.pk in released and either.job.queue == "cpu"
    client = Client()
    client.force_login(member)
    page = client.get(f"/models/runs/{gpu.pk}/").content.decode()
    assert "Waiting for a GPU worker: none is online." in page and "data-wait-reason" in page
