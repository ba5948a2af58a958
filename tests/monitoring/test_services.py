"""Drift references, the drift computation and the periodic pass, on the real database and lake."""

import io
from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone

from lepton.jobs.models import Job
from models_repo import services as models_services
from models_repo.models import ModelVersion
from monitoring import services
from monitoring.engine import drift as engine
from monitoring.models import DriftReference, FeatureDrift
from tests.models_repo.conftest import inspections_csv
from tests.monitoring.conftest import ROWS, inputs, log_inputs


def _window():
    end = services.window_end_for(timezone.now())
    return end, end - timedelta(minutes=30)


def test_the_reference_is_profiled_from_the_training_rows_not_the_holdout(deployed):
    reference = services.drift_reference(deployed)
    assert reference.status == "ready" and reference.rows_from == "holdout_excluded"
    held = set(deployed.holdout["indices"])
    assert reference.rows == ROWS - len(held) == ROWS * 0.8
    # The same profile as the engine gives for the CSV's rows that are not held out.
    frame = pd.read_csv(io.BytesIO(inspections_csv(rows=ROWS)))
    training = frame.loc[[i for i in range(len(frame)) if i not in held]]
    by_name = {p["name"]: p for p in reference.features}
    assert by_name["温度"] == engine.profile_feature("温度", "number", training["温度"].to_numpy())
    assert by_name["line"]["categories"] == sorted(training["line"].unique(), key=lambda v: -(training["line"] == v).sum())
    assert by_name["line"]["proportions"][:2] == [(training["line"] == c).mean() for c in by_name["line"]["categories"]]
    # Kept: a second call reads it back.
    assert services.drift_reference(deployed).pk == reference.pk and DriftReference.objects.count() == 1


def test_drifted_inputs_are_flagged_and_in_distribution_inputs_are_not(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(300, seed=21), at=at)
    outcome = services.drift_compute(deployed.pk, end)
    assert outcome["rows"] == 300
    calm = {d.feature: d for d in FeatureDrift.objects.filter(version=deployed, window_end=end)}
    assert {f: d.status for f, d in calm.items()} == {"温度": "stable", "pressure": "stable", "line": "stable"}
    assert all(d.psi < 0.1 and d.sample_size == 300 for d in calm.values())
    assert calm["温度"].ks_pvalue > 0.01 and calm["line"].ks_statistic is None

    later = end + timedelta(hours=1)
    log_inputs(deployed, inputs(300, seed=22, temperature=80.0, lines=("L1", "L3")), at=later - timedelta(minutes=5))
    services.drift_compute(deployed.pk, later)
    # The window of `later` holds both batches; the shifted half alone moves temperature and line.
    shifted = {d.feature: d for d in FeatureDrift.objects.filter(version=deployed, window_end=later)}
    assert shifted["温度"].status == "significant" and shifted["温度"].ks_pvalue < 1e-6
    assert shifted["line"].status == "significant"
    assert shifted["line"].bins["labels"][-2:] == ["other", "missing"] and shifted["line"].bins["actual"][-2] > 0.2
    assert shifted["pressure"].status == "stable"
    assert shifted["温度"].sample_size == 600


def test_computing_a_window_again_replaces_its_rows(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(200), at=at)
    services.drift_compute(deployed.pk, end)
    first = {d.feature: d.psi for d in FeatureDrift.objects.all()}
    services.drift_compute(deployed.pk, end)
    assert FeatureDrift.objects.count() == 3
    assert {d.feature: d.psi for d in FeatureDrift.objects.all()} == first


def test_a_window_with_too_few_inputs_stores_no_numbers(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(40), at=at)
    services.drift_compute(deployed.pk, end)
    rows = FeatureDrift.objects.filter(version=deployed)
    assert {d.status for d in rows} == {"insufficient"} and all(d.psi is None and d.sample_size == 40 for d in rows)


def test_inputs_outside_the_window_and_odd_log_entries_are_ignored(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(200), at=at)
    log_inputs(deployed, inputs(500, temperature=120.0), at=end - timedelta(hours=30))  # before the window
    log_inputs(deployed, inputs(500, temperature=120.0), at=end + timedelta(minutes=5))  # after it
    log_inputs(deployed, [[{"温度": 70.0}], "x", None, 5], at=at, per_log=4)  # a window and junk: one record
    services.drift_compute(deployed.pk, end)
    temperature = FeatureDrift.objects.get(feature="温度")
    assert temperature.sample_size == 201 and temperature.status == "stable"


def test_an_uploaded_version_gets_no_reference(deployed):
    uploaded = ModelVersion.objects.create(
        model=deployed.model, number=2, source="upload", flavor="onnx", artifact_sha256="b" * 64,
        input_schema=[{"name": "温度", "type": "number"}],
    )  # fmt: skip
    reference = services.drift_reference(uploaded)
    assert reference.status == "unavailable" and reference.reason == "uploaded" and reference.features == []


def test_a_version_whose_data_is_gone_says_so(deployed):
    deployed.run.dataset_version = None
    deployed.run.save(update_fields=["dataset_version"])
    reference = services.drift_reference(ModelVersion.objects.get(pk=deployed.pk))
    assert reference.status == "unavailable" and reference.reason == "data_gone"


def _drift_jobs():
    return Job.objects.filter(kind=services.DRIFT_KIND)


def test_the_periodic_pass_queues_one_job_per_version_and_window(deployed, drift_settings):
    end, at = _window()
    assert services.drift_enqueue_due() == 0  # nothing sampled yet
    log_inputs(deployed, inputs(60), at=at)
    assert services.drift_enqueue_due() == 0  # 60 rows < 100
    log_inputs(deployed, inputs(60, seed=3), at=at - timedelta(minutes=1))
    assert services.drift_enqueue_due() == 1
    job = _drift_jobs().get()
    assert job.params["version"] == str(deployed.pk) and job.department is None and job.status == "queued"
    assert services.drift_enqueue_due() == 0  # already queued
    # Once the job ran (here in this process), the window is done; a failed one waits for the next window.
    services.drift_compute(deployed.pk, end)
    Job.objects.filter(pk=job.pk).update(status="failed")
    assert services.drift_enqueue_due() == 0
    assert _drift_jobs().count() == 1


def test_the_periodic_pass_needs_new_inputs_since_the_last_window(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(150), at=at)
    services.drift_compute(deployed.pk, end)
    next_hour = end + timedelta(hours=1, minutes=1)
    assert services.drift_enqueue_due(now=next_hour) == 0  # the same inputs again: no new point
    log_inputs(deployed, inputs(5), at=end + timedelta(minutes=10))
    assert services.drift_enqueue_due(now=next_hour) == 1


def test_the_periodic_pass_skips_versions_that_cannot_have_drift(deployed, drift_settings):
    end, at = _window()
    log_inputs(deployed, inputs(150), at=at)
    DriftReference.objects.create(version=deployed, status="unavailable", reason="data_gone")
    assert services.drift_enqueue_due() == 0
    DriftReference.objects.all().delete()
    models_services.model_archive(actor=deployed.model.created_by, model=deployed.model, archived=True)
    assert services.drift_enqueue_due() == 0


@pytest.mark.parametrize("minutes", [60, 15])
def test_window_ends_fall_on_the_interval(settings, minutes):
    settings.LEPTON_DRIFT_INTERVAL_MINUTES = minutes
    end = services.window_end_for(timezone.now())
    assert end.second == 0 and end.minute % minutes == 0 and end <= timezone.now()


def test_a_windowed_model_s_reference_is_each_group_before_its_holdout_cut():
    from types import SimpleNamespace

    frame = pd.DataFrame(
        {
            "machine": ["a"] * 10 + ["b"] * 5,
            "ts": list(range(10, 0, -1)) + list(range(5)),  # machine a's rows come newest first
            "temp": [float(i) for i in range(15)],
            "failed": [0] * 15,
        }
    )
    frame.loc[14, "temp"] = float("nan")  # dropped, as the Keras trainer drops it
    spec = SimpleNamespace(group_column="machine", time_column="ts", target="failed", holdout=0.2)
    kept = services._before_time_cut(frame, ["temp"], spec)
    # a: 10 rows in time order (temp 9…0), the last 2 held out; b: 4 complete rows, the last 1 held out.
    assert list(kept["temp"]) == [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 10.0, 11.0, 12.0]


def test_a_keras_table_model_s_reference_leaves_out_the_holdout_and_incomplete_rows(member, production, owner):
    from datalake import services as datalake_services
    from models_repo.services import model_create, training_execute, training_start

    lines = ["温度,pressure,合格"] + [
        f"{'' if i % 30 == 0 else 60 + i % 20},{4 + (i % 7) / 3:.3f},{'yes' if i % 20 < 10 else 'no'}" for i in range(300)
    ]
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Inspections with gaps")
    upload = datalake_services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO(("\n".join(lines) + "\n").encode()), filename="g.csv"
    )
    data = datalake_services.version_ingest(upload.pk)
    spec = {
        "task": "classification", "target": "合格", "features": ["温度", "pressure"], "seed": 3,
        "algorithms": [{"name": "keras_mlp"}], "keras": {"epochs": 2, "units": 8, "batch_size": 32},
    }  # fmt: skip
    model = model_create(actor=owner, department=production, name="Keras quality")
    run = training_execute(training_start(actor=member, dataset_version=data, spec=spec, registered_model=model).pk)
    assert run.status == "succeeded", run.error_message
    version = ModelVersion.objects.get(run=run)
    reference = services.drift_reference(version)
    held = set(version.holdout["indices"])
    gaps = {i for i in range(300) if i % 30 == 0}
    assert not held & gaps  # the trainer dropped the incomplete rows before splitting
    assert reference.status == "ready" and reference.rows == 300 - len(gaps) - len(held)
    temperature = next(p for p in reference.features if p["name"] == "温度")
    assert temperature["missing"] == 0.0 and temperature["count"] == reference.rows
