"""POST /api/v1/models/<department>/<model>/predict: bodies (MLflow's too), validation, aliases, access."""

import os

import pytest
from rest_framework.test import APIClient

from lepton.services import token_create
from lepton.storage import get_storage
from models_repo import services, serving
from models_repo.api.predict import prediction_logs
from models_repo.models import PredictionLog
from tests.models_repo.conftest import SPEC, model_in_production

URL = "/api/v1/models/production/quality-predictor/predict"
ROW = {"温度": 70.5, "pressure": 4.2, "line": "L1"}


@pytest.fixture
def served(owner, member, checker, inspections, production):
    return model_in_production(
        owner=owner, member=member, checker=checker, dataset_version=inspections, department=production, spec=SPEC
    )


def client_for(user, scopes=("predict",)):
    _token, secret = token_create(actor=user, name=f"svc-{'-'.join(scopes)}", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [ROW, {**ROW, "温度": 80.0}]},
        {"dataframe_records": [ROW, {**ROW, "温度": 80.0}]},
        {"dataframe_split": {"columns": ["温度", "pressure", "line"], "data": [[70.5, 4.2, "L1"], [80.0, 4.2, "L1"]]}},
        {"instances": [[70.5, 4.2, "L1"], [80.0, 4.2, "L1"]]},
        {"inputs": {"温度": [70.5, 80.0], "pressure": [4.2, 4.2], "line": ["L1", "L1"]}},
    ],
    ids=["inputs", "dataframe_records", "dataframe_split", "instances", "columns"],
)
def test_every_body_shape_gives_the_same_predictions(member, served, body):
    response = client_for(member).post(URL, body, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["model"], data["version"], data["alias"]) == ("production/quality-predictor", 1, "production")
    assert len(data["predictions"]) == 2 and len(data["probabilities"]) == 2
    assert abs(sum(data["probabilities"][0].values()) - 1) < 1e-6
    # The rule the data follows: hot presses fail (temp + 3 × pressure ≥ 86).
    assert data["predictions"] == [True, False]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"inputs": [{"温度": 70.5, "line": "L1"}]}, "inputs.0.pressure"),
        ({"inputs": [{**ROW, "pressure": "high"}]}, "inputs.0.pressure"),
        ({"inputs": [ROW, {**ROW, "温度": None}]}, "inputs.1.温度"),
        ({"inputs": [[1, 2]]}, "inputs.0"),
        ({"rows": [ROW]}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"dataframe_split": {"columns": ["温度"], "data": [[1, 2]]}}, "dataframe_split.data.0"),
    ],
)
def test_bad_inputs_are_400_naming_the_field_and_row(member, served, body, field):
    response = client_for(member).post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()


def test_extra_columns_are_ignored_and_reported_and_the_row_limit_holds(member, served, settings):
    response = client_for(member).post(URL, {"inputs": [{**ROW, "operator": "Li"}]}, format="json")
    assert response.status_code == 200 and response.json()["ignored_columns"] == ["operator"]
    settings.LEPTON_PREDICT_MAX_ROWS = 2
    response = client_for(member).post(URL, {"inputs": [ROW] * 3}, format="json")
    assert response.status_code == 400 and "more than the 2" in response.json()["detail"]


def test_versions_aliases_and_a_missing_production_alias(owner, member, served):
    assert client_for(member).post(URL + "?version=1", {"inputs": [ROW]}, format="json").json()["version"] == 1
    assert client_for(member).post(URL + "?version=9", {"inputs": [ROW]}, format="json").status_code == 404
    response = client_for(member).post(URL + "?alias=staging", {"inputs": [ROW]}, format="json")
    assert response.status_code == 404 and "no 'staging' alias" in response.json()["detail"]
    services.alias_set(actor=owner, model=served, alias="staging", version=served.versions.get(number=1))
    assert client_for(member).post(URL + "?alias=staging", {"inputs": [ROW]}, format="json").status_code == 200


def test_access_anonymous_outsider_viewer_and_scopes(member, viewer, outsider, served):
    assert APIClient().post(URL, {"inputs": [ROW]}, format="json").status_code == 401
    assert client_for(outsider).post(URL, {"inputs": [ROW]}, format="json").status_code == 404
    assert client_for(viewer).post(URL, {"inputs": [ROW]}, format="json").status_code == 403
    no_scope = client_for(member, scopes=("read",)).post(URL, {"inputs": [ROW]}, format="json")
    assert no_scope.status_code == 403 and "predict" in no_scope.json()["detail"]
    assert client_for(member).post("/api/v1/models/production/nope/predict", {"inputs": [ROW]}, format="json").status_code == 404


def test_a_tampered_artifact_is_refused_not_loaded(member, served, settings):
    version = served.versions.get(number=1)
    serving._loaded.clear()
    from lepton import storage

    storage._VERIFIED.discard(version.artifact_sha256)
    path = get_storage().path(version.artifact_sha256)
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


def test_every_request_is_logged_in_batches_with_its_id_refusals_included(member, served, settings):
    settings.LEPTON_PREDICTION_LOG_SAMPLE = 1.0
    settings.LEPTON_PREDICTION_LOG_MAX_OUTPUTS = 2
    prediction_logs.items.clear()  # entries other tests sampled
    answers = []
    for _ in range(3):
        r = client_for(member).post(URL, {"inputs": [ROW, ROW, ROW]}, format="json")
        assert r.status_code == 200, r.json()
        answers.append(r.json()["prediction_id"])
    refused = client_for(member).post(URL, {"inputs": [{"pressure": 1}]}, format="json")
    assert refused.status_code == 400
    assert not PredictionLog.objects.exists()  # held in memory, written in one batch
    prediction_logs.flush()
    served_logs = PredictionLog.objects.filter(status_code=200)
    assert sorted(str(p) for p in served_logs.values_list("prediction_id", flat=True)) == sorted(answers)
    log = served_logs.first()
    assert log.rows == 3 and len(log.outputs) == 2 and log.inputs[0]["line"] == "L1"
    failed = PredictionLog.objects.get(status_code=400)
    assert failed.rows == 0 and failed.error == "invalid_input" and failed.outputs == []


def test_a_batch_is_written_when_full_and_the_metrics_count_each_request(member, served, settings):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, {"department": "production", "model": "quality-predictor", **labels}) or 0

    settings.LEPTON_PREDICTION_LOG_SAMPLE = 0.0
    before = sample("lepton_model_predictions_total"), sample("lepton_model_prediction_errors_total", status="400")
    latency_before = sample("lepton_model_prediction_latency_seconds_count")
    client = client_for(member)
    for _ in range(prediction_logs.BATCH):
        assert client.post(URL, {"inputs": [ROW]}, format="json").status_code == 200
    assert client.post(URL, {"inputs": [{"pressure": 1}]}, format="json").status_code == 400
    assert PredictionLog.objects.count() == prediction_logs.BATCH and len(prediction_logs.items) == 1
    assert sample("lepton_model_predictions_total") - before[0] == prediction_logs.BATCH
    assert sample("lepton_model_prediction_errors_total", status="400") - before[1] == 1
    assert sample("lepton_model_prediction_latency_seconds_count") - latency_before == prediction_logs.BATCH


def test_the_background_flush_writes_a_quiet_processs_logs(transactional_db, settings):
    import threading
    import time

    from models_repo.api.predict import _LogBuffer
    from models_repo.models import ModelVersion, RegisteredModel
    from tests.factories import DepartmentFactory

    settings.LEPTON_PREDICTION_LOG_FLUSH_SECONDS = 0.2
    department = DepartmentFactory(slug="bg", name="Bg")
    model = RegisteredModel.objects.create(department=department, slug="m", name="M")
    version = ModelVersion.objects.create(model=model, number=1, flavor="sklearn", artifact_sha256="x")
    buffer = _LogBuffer()
    buffer.add(PredictionLog(model=model, version=version, outputs=[1]))
    deadline = time.monotonic() + 10
    while not PredictionLog.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert PredictionLog.objects.count() == 1 and not buffer.items
    assert any(t.name == "lepton-prediction-logs" for t in threading.enumerate())
    buffer.background = False


def test_predict_errors_speak_the_clients_language(member, predictor, v1):
    client = client_for(member)
    response = client.post(
        "/api/v1/models/production/quality-predictor/predict?version=x", {"inputs": [{}]}, format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )  # fmt: skip
    assert response.status_code == 400 and response.json()["fields"]["version"] == ["version 必须是整数。"]
