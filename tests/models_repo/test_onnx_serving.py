"""The ONNX fast path end to end: conversion job after registration, serving, variants, refusals."""

import os

import numpy as np
import pytest
from rest_framework.test import APIClient

from lepton.jobs.models import Job
from lepton.models import Membership
from lepton.storage import get_storage
from models_repo import services, serving
from models_repo.api.predict import _table
from models_repo.engine import onnx as onnx_engine
from models_repo.engine import tabular
from models_repo.models import ModelVersion, TrainingRun
from models_repo.services.registry import ONNX_KIND, version_onnx_convert, version_onnx_queue
from tests.conftest import wait_for_job
from tests.models_repo.conftest import SPEC
from tests.models_repo.test_predict import ROW, URL, client_for

ROWS = [ROW, {**ROW, "温度": 80.0}, {**ROW, "pressure": 7.5, "line": "L2"}, {**ROW, "line": "L9"}]
MLP_SPEC = {**SPEC, "algorithms": [{"name": "mlp", "params": {"hidden_layer_sizes": [256], "max_iter": 300}}]}


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def promote(member, checker, version):
    services.promotion_approve(actor=checker, request=services.promotion_request(actor=member, version=version))


def trained(member, inspections, model, spec=SPEC) -> ModelVersion:
    """A version trained in this process (the `db` tests: on_commit never fires, no job is queued)."""
    run = services.training_execute(
        services.training_start(actor=member, dataset_version=inspections, spec=spec, registered_model=model).pk
    )
    return ModelVersion.objects.get(run=run)


def native_answer(version, rows):
    frame, _ignored = _table(rows, version.input_schema)
    return tabular.predict(serving.load(version), frame)


@pytest.fixture(autouse=True)
def _fresh_cache():
    serving._loaded.clear()
    yield
    serving._loaded.clear()


# --- the real worker --------------------------------------------------------------------------------


def test_a_run_s_version_is_converted_by_the_worker_and_serves_the_native_predictions(
    member, checker, inspections, predictor, celery_worker, dispatcher
):
    body = {"dataset_version": str(inspections.pk), "spec": SPEC, "registered_model": str(predictor.pk)}
    response = api(member).post("/api/v1/runs/", body, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert wait_for_job(run.job, timeout=120).status == "succeeded", run.job.error_message
    version = ModelVersion.objects.get(run=run)
    # Queued after the run's transaction, in its own job: the training job did not convert.
    job = Job.objects.get(kind=ONNX_KIND, params__version=str(version.pk))
    assert job.department_id == predictor.department_id and job.requested_by == member
    assert wait_for_job(job, timeout=120).status == "succeeded", job.error_message
    version.refresh_from_db()
    report = version.onnx_report
    assert report["status"] == "used", report
    assert report["rows"] == version.holdout["rows"] == len(version.holdout["indices"])
    assert report["max_abs_diff"] <= onnx_engine.PROBA_TOLERANCE and report["seconds"] > 0
    assert get_storage().exists(version.onnx_sha256)
    assert set(report["variants"]) == {"float16", "int8"}  # each with a reason (a forest does not shrink)
    assert all(v["reason"] for v in report["variants"].values())

    promote(member, checker, version)
    response = client_for(member).post(URL, {"inputs": ROWS}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["runtime"] == "onnx"
    assert set(data) == {"model", "version", "alias", "predictions", "probabilities", "runtime", "prediction_id"}
    native = native_answer(version, ROWS)
    assert data["predictions"] == native["predictions"] == [True, False, False, True]
    for got, want in zip(data["probabilities"], native["probabilities"], strict=True):
        assert got.keys() == want.keys()
        assert max(abs(got[k] - want[k]) for k in got) <= onnx_engine.PROBA_TOLERANCE


# --- conversion in this process ------------------------------------------------------------------------


def test_an_mlp_offers_its_int8_variant_and_serves_it_on_request(member, checker, inspections, predictor):
    version = trained(member, inspections, predictor, MLP_SPEC)
    assert version.onnx_report == {}  # nothing queued in a `db` test; converted here instead
    version = version_onnx_convert(version.pk)
    report = version.onnx_report
    assert report["status"] == "used", report
    int8 = report["variants"]["int8"]
    assert int8["offered"], int8
    assert int8["bytes"] < report["bytes"] and get_storage().exists(int8["sha256"])
    promote(member, checker, version)

    default = client_for(member).post(URL, {"inputs": ROWS}, format="json").json()
    quantised = client_for(member).post(URL + "?variant=int8", {"inputs": ROWS}, format="json")
    assert quantised.status_code == 200, quantised.json()
    assert (default["runtime"], "variant" in default) == ("onnx", False)
    assert (quantised.json()["runtime"], quantised.json()["variant"]) == ("onnx", "int8")
    assert len(quantised.json()["predictions"]) == len(ROWS)
    # The metric it was offered on stays within the stated tolerance of the native one.
    assert int8["metric"] >= report["metric"]["native"] - onnx_engine.VARIANT_TOLERANCE


def test_variant_errors_name_the_variant_and_change_nothing(member, checker, inspections, predictor):
    version = version_onnx_convert(trained(member, inspections, predictor).pk)  # a forest: no variant offered
    promote(member, checker, version)
    before = ModelVersion.objects.get(pk=version.pk).onnx_report
    for query, words in (("?variant=int8", "offers no quantised variant"), ("?variant=int4", "float16, int8")):
        response = client_for(member).post(URL + query, {"inputs": [ROW]}, format="json")
        assert response.status_code == 400, response.json()
        assert "variant" in response.json()["fields"] and words in response.json()["detail"]
    assert ModelVersion.objects.get(pk=version.pk).onnx_report == before


def test_the_variant_parameter_keeps_anonymous_out_and_outsiders_in_the_dark(member, outsider, checker, inspections, predictor):
    version = version_onnx_convert(trained(member, inspections, predictor).pk)
    promote(member, checker, version)
    assert APIClient().post(URL + "?variant=int8", {"inputs": [ROW]}, format="json").status_code == 401
    assert client_for(outsider).post(URL + "?variant=int8", {"inputs": [ROW]}, format="json").status_code == 404


def test_a_tampered_onnx_blob_is_refused_like_a_tampered_native_artifact(member, checker, inspections, predictor):
    version = version_onnx_convert(trained(member, inspections, predictor).pk)
    promote(member, checker, version)
    from lepton import storage

    storage._VERIFIED.discard(version.onnx_sha256)
    path = get_storage().path(version.onnx_sha256)
    os.chmod(path, 0o644)
    original = open(path, "rb").read()
    try:
        with open(path, "ab") as f:
            f.write(b"tampered")
        response = client_for(member).post(URL, {"inputs": [ROW]}, format="json")
        assert response.status_code == 503 and response.json()["error"] == "artifact_unavailable"
        assert not serving._loaded
    finally:  # the lake is shared by the session's tests; other runs store these same bytes
        with open(path, "wb") as f:
            f.write(original)
        storage._VERIFIED.discard(version.onnx_sha256)


def test_a_conversion_that_does_not_reproduce_the_native_model_leaves_it_native(
    member, checker, inspections, predictor, monkeypatch
):
    monkeypatch.setattr(onnx_engine.checks, "PROBA_TOLERANCE", -1.0)  # no difference can be within it
    version = version_onnx_convert(trained(member, inspections, predictor).pk)
    assert version.onnx_sha256 == "" and version.onnx_report["status"] == "native"
    assert version.onnx_report["reason"].startswith("Probabilities differ")
    promote(member, checker, version)
    data = client_for(member).post(URL, {"inputs": ROWS}, format="json").json()
    assert data["runtime"] == "native" and data["predictions"] == native_answer(version, ROWS)["predictions"]


def test_the_conversion_is_idempotent_and_audited(member, inspections, predictor):
    from lepton.models import AuditEvent

    version = version_onnx_convert(trained(member, inspections, predictor).pk)
    again = version_onnx_convert(version.pk)
    assert (again.onnx_sha256, again.onnx_report) == (version.onnx_sha256, version.onnx_report)
    assert AuditEvent.objects.filter(action="model.onnx").count() == 1


def test_a_version_without_its_run_s_holdout_stays_native_with_the_reason(v1):
    version = version_onnx_convert(v1.pk)
    assert version.onnx_sha256 == "" and "holdout rows are not available" in version.onnx_report["reason"]


def test_queueing_is_skipped_with_a_reason_when_the_trainer_lost_their_rights(member, inspections, predictor):
    version = trained(member, inspections, predictor)
    version_onnx_queue(version.pk)
    version.refresh_from_db()
    assert version.onnx_report["status"] == "pending"
    job = Job.objects.get(kind=ONNX_KIND, params__version=str(version.pk))
    assert job.status == "queued" and job.priority == 3

    other = trained(member, inspections, predictor)
    Membership.objects.filter(user=member).delete()
    version_onnx_queue(other.pk)
    other.refresh_from_db()
    assert other.onnx_report["status"] == "native" and "may no longer start jobs" in other.onnx_report["reason"]
    assert not Job.objects.filter(kind=ONNX_KIND, params__version=str(other.pk)).exists()


def test_the_model_page_shows_the_runtime_and_the_variants(client, member, inspections, predictor):
    version = version_onnx_convert(trained(member, inspections, predictor, MLP_SPEC).pk)
    native = trained(member, inspections, predictor)
    client.force_login(member)
    page = client.get(f"/models/{predictor.pk}/").content.decode()
    assert 'data-runtime="onnx"' in page and "ONNX (onnxruntime)" in page
    assert 'data-runtime="native"' in page and "Not converted (registered before" in page  # v2 was never queued
    assert version.onnx_report["reason"] in page
    assert "int8" in page and f"{version.onnx_report['variants']['int8']['bytes']}" in page
    assert native.number == 2


def test_keras_and_native_versions_say_native(member, checker, inspections, predictor):
    version = trained(member, inspections, predictor)
    promote(member, checker, version)
    data = client_for(member).post(URL, {"inputs": [ROW]}, format="json").json()
    assert data["runtime"] == "native" and np.isfinite(sum(data["probabilities"][0].values()))


def test_a_one_row_prediction_through_an_alias_takes_three_queries(
    member, checker, inspections, predictor, settings, django_assert_num_queries
):
    settings.LEPTON_PREDICTION_LOG_SAMPLE = 0.0
    version = version_onnx_convert(trained(member, inspections, predictor).pk)
    promote(member, checker, version)
    client = client_for(member)
    assert client.post(URL, {"inputs": [ROW]}, format="json").status_code == 200  # loads the model
    # The token, the alias with its version and model in one, the person's roles; the model is cached.
    with django_assert_num_queries(3):
        response = client.post(URL, {"inputs": [ROW]}, format="json")
    assert response.json()["runtime"] == "onnx"


# --- backfill: versions from before the conversion job ---------------------------------------------------


def test_onnx_backfill_queues_only_versions_that_never_had_a_conversion(member, inspections, predictor, settings):
    from io import StringIO

    from django.core.management import call_command

    never, native = trained(member, inspections, predictor), trained(member, inspections, predictor)
    ModelVersion.objects.filter(pk=native.pk).update(onnx_report={"status": "native", "reason": "differs"})
    out = StringIO()
    call_command("onnx_backfill", "--dry-run", stdout=out)
    assert "would queue production/quality-predictor v1" in out.getvalue() and "v2" not in out.getvalue()
    assert not Job.objects.filter(kind=ONNX_KIND).exists()
    call_command("onnx_backfill", stdout=StringIO())
    job = Job.objects.get(kind=ONNX_KIND)
    assert job.params == {"version": str(never.pk)}
    assert ModelVersion.objects.get(pk=never.pk).onnx_report["status"] == "pending"
    call_command("onnx_backfill", stdout=out)  # pending now: not queued twice
    assert Job.objects.filter(kind=ONNX_KIND).count() == 1
    call_command("onnx_backfill", "--retry-native", stdout=StringIO())
    assert Job.objects.filter(kind=ONNX_KIND, params__version=str(native.pk)).count() == 1
