"""Versions from uploaded model files: ONNX, skops and .keras register and predict like the original
in-memory model; pickles, joblib, untrusted skops types, damaged files, bad schemas are refused with
nothing stored; a .keras upload is validated with safe_mode by a real worker before it serves."""

import io
import json
import os
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import TensorProto, helper
from rest_framework.test import APIClient
from skl2onnx import to_onnx
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from lepton import storage
from lepton.models import AuditEvent
from lepton.storage import get_storage
from models_repo import services, serving
from models_repo.models import ModelVersion
from tests.conftest import wait_for, wait_for_job

URL = "/api/v1/models/production/quality-predictor/versions"
PREDICT = "/api/v1/models/production/quality-predictor/predict"
SCHEMA = [{"name": "温度", "type": "number"}, {"name": "pressure", "type": "number"}]


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def _table(rows=120, seed=3) -> tuple[pd.DataFrame, np.ndarray]:
    """Parts fail when temperature + 3 × pressure ≥ 86 (as the shared inspections data)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"温度": rng.normal(70, 5, rows), "pressure": rng.normal(5, 1, rows), "line": rng.choice(["L1", "L2"], rows)}
    )
    return frame, np.where(frame["温度"] + 3 * frame["pressure"] < 86, "yes", "no")


ROWS = [{"温度": 70.5, "pressure": 4.2, "line": "L1"}, {"温度": 80.0, "pressure": 5.5, "line": "L2"}]


def upload(user, name, data: bytes, **fields):
    body = {"file": SimpleUploadedFile(name, data), **fields}
    return api(user).post(URL, body, format="multipart")


def predict(user, number, rows=ROWS):
    return api(user).post(f"{PREDICT}?version={number}", {"inputs": rows}, format="json")


def blob_files() -> set[str]:
    root = get_storage().root
    return {os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files}


@pytest.fixture
def pipeline():
    frame, y = _table()
    pre = ColumnTransformer([("num", StandardScaler(), ["温度", "pressure"]), ("cat", OneHotEncoder(), ["line"])])
    return Pipeline([("pre", pre), ("forest", RandomForestClassifier(n_estimators=15, random_state=0))]).fit(frame, y)


@pytest.fixture
def logistic():
    frame, y = _table()
    return LogisticRegression().fit(frame[["温度", "pressure"]].to_numpy(np.float32), y)


def _column_graph() -> bytes:
    """A hand-built regression graph with one [N, 1] input per column: y = 2·温度 + 3·pressure + 1."""
    t = helper.make_tensor_value_info("温度", TensorProto.FLOAT, [None, 1])
    p = helper.make_tensor_value_info("pressure", TensorProto.FLOAT, [None, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    three = helper.make_tensor("three", TensorProto.FLOAT, [1], [3.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("Mul", ["温度", "two"], ["a"]),
        helper.make_node("Mul", ["pressure", "three"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("Add", ["c", "one"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "linear", [t, p], [y], initializer=[two, three, one])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


# --- each safe format registers and predicts as the original -----------------------------------------


def test_a_skops_pipeline_registers_with_its_schema_and_predicts_as_the_original(owner, member, predictor, pipeline):
    response = upload(owner, "quality.skops", sio.dumps(pipeline), description="from the lab")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["number"], data["source"], data["flavor"], data["status"]) == (1, "upload", "sklearn", "ready")
    columns = [(c["name"], c["type"]) for c in data["input_schema"]]
    assert columns == [("温度", "number"), ("pressure", "number"), ("line", "string")]
    assert data["output"] == {"classes": ["no", "yes"]} and data["task"] == "classification"
    event = AuditEvent.objects.get(action="version.upload")
    assert event.changes["format"] == "skops" and event.changes["sha256"] == data["artifact_sha256"]

    served = predict(member, 1)
    assert served.status_code == 200, served.json()
    frame = pd.DataFrame(ROWS)
    assert served.json()["predictions"] == list(pipeline.predict(frame))
    expected = pipeline.predict_proba(frame)
    got = [[row["no"], row["yes"]] for row in served.json()["probabilities"]]
    assert np.allclose(got, expected)


def test_an_onnx_classifier_takes_its_columns_from_the_schema_and_predicts_as_the_original(owner, member, predictor, logistic):
    graph = to_onnx(logistic, np.zeros((1, 2), dtype=np.float32)).SerializeToString()
    response = upload(owner, "quality.onnx", graph, input_schema=json.dumps(SCHEMA))
    assert response.status_code == 201, response.json()
    assert response.json()["flavor"] == "onnx" and response.json()["output"] == {"classes": ["no", "yes"]}

    served = predict(member, 1)
    assert served.status_code == 200, served.json()
    x = pd.DataFrame(ROWS)[["温度", "pressure"]].to_numpy(np.float32)
    assert served.json()["predictions"] == list(logistic.predict(x))
    got = [[row["no"], row["yes"]] for row in served.json()["probabilities"]]
    assert np.allclose(got, logistic.predict_proba(x), atol=1e-5)


def test_an_onnx_graph_with_one_input_per_column_reads_its_schema_from_the_graph(owner, member, predictor):
    response = upload(owner, "linear.onnx", _column_graph())
    assert response.status_code == 201, response.json()
    assert [c["name"] for c in response.json()["input_schema"]] == ["温度", "pressure"]
    assert response.json()["task"] == "regression"
    served = predict(member, 1)
    assert served.status_code == 200, served.json()
    assert np.allclose(served.json()["predictions"], [2 * r["温度"] + 3 * r["pressure"] + 1 for r in ROWS], atol=1e-4)


# --- refused uploads: a clear 400, nothing stored ---------------------------------------------------------


def _refused(owner, name, data, field="file", **fields):
    before = blob_files()
    response = upload(owner, name, data, **fields)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body["fields"], body
    assert not ModelVersion.objects.exists()
    assert blob_files() == before
    assert not AuditEvent.objects.filter(action="version.upload").exists()
    return body


@pytest.mark.parametrize("dump", ["pickle", "joblib", "joblib-compressed"])
def test_pickle_and_joblib_files_are_refused_because_unpickling_runs_code(owner, predictor, logistic, dump, tmp_path):
    if dump == "pickle":
        data, name = pickle.dumps(logistic), "model.pkl"
    else:
        path = tmp_path / "model.joblib"
        joblib.dump(logistic, path, compress=3 if dump == "joblib-compressed" else 0)
        data, name = path.read_bytes(), "model.onnx"  # the name lies: the content decides
    body = _refused(owner, name, data)
    assert body["error"] == "pickle_refused"
    assert "pickle files are not accepted because unpickling runs code" in body["detail"].lower()
    assert "ONNX or skops" in body["detail"]


def test_a_skops_file_with_an_untrusted_type_is_refused_naming_it(owner, predictor):
    model = Pipeline([("run", FunctionTransformer(os.system))]).fit(np.zeros((2, 1)))
    body = _refused(owner, "sneaky.skops", sio.dumps(model))
    assert body["error"] == "untrusted_types" and "posix.system" in body["detail"]


def test_a_skops_tree_pointing_outside_itself_is_refused(owner, predictor, pipeline):
    tree = pipeline.named_steps["forest"].estimators_[0].tree_
    state = tree.__getstate__()
    state["nodes"]["left_child"][0] = 10_000  # a node index past the end of the tree
    tree.__setstate__(state)
    body = _refused(owner, "tampered.skops", sio.dumps(pipeline))
    assert "point outside" in body["detail"]


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("broken.onnx", None, "not a valid onnx model"),
        ("notes.onnx", b"temperature,pressure\n70,4\n", "not a valid onnx model"),
        ("data.csv", b"temperature,pressure\n70,4\n", "not an onnx graph, a .keras archive or a skops file"),
    ],
    ids=["truncated-onnx", "text-named-onnx", "unknown"],
)
def test_a_damaged_or_unknown_file_is_refused(owner, predictor, logistic, name, data, message):
    if data is None:
        whole = to_onnx(logistic, np.zeros((1, 2), dtype=np.float32)).SerializeToString()
        data = whole[: len(whole) // 2]
    body = _refused(owner, name, data, input_schema=json.dumps(SCHEMA))
    assert message in body["detail"].lower()


def test_an_onnx_graph_failing_the_checker_is_refused(owner, predictor):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Relu", ["missing"], ["y"])], "bad", [x], [y])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()
    body = _refused(owner, "bad.onnx", data, input_schema=json.dumps(SCHEMA))
    assert "onnx.checker" in body["detail"]


def test_a_file_over_the_limit_is_refused(owner, predictor, settings):
    settings.LEPTON_MODEL_UPLOAD_MAX_BYTES = 100
    body = _refused(owner, "linear.onnx", _column_graph())
    assert body["error"] == "too_large" and "100 bytes" in body["detail"]


def test_an_empty_file_is_refused(owner, predictor):
    before = blob_files()
    response = api(owner).post(URL, {"file": SimpleUploadedFile("empty.onnx", b"")}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["fields"]
    assert not ModelVersion.objects.exists() and blob_files() == before


@pytest.mark.parametrize(
    "schema, message",
    [
        ("[{name: 1}", "not valid JSON"),
        (json.dumps({"name": "温度"}), "must be a list"),
        (json.dumps([{"name": "温度", "type": "number"}, {"name": "温度", "type": "number"}]), "names '温度' twice"),
        (json.dumps([{"name": "温度", "type": "float64"}, {"name": "pressure"}]), "type 'float64'"),
        (json.dumps([{"name": "温度", "type": "number"}]), "takes 2 columns; input_schema names 1"),
    ],
    ids=["not-json", "not-a-list", "duplicate", "unknown-type", "wrong-width"],
)
def test_a_bad_input_schema_is_refused_naming_the_problem(owner, predictor, logistic, schema, message):
    graph = to_onnx(logistic, np.zeros((1, 2), dtype=np.float32)).SerializeToString()
    body = _refused(owner, "quality.onnx", graph, field="input_schema", input_schema=schema)
    assert message in body["detail"]


def test_a_graph_that_does_not_name_its_columns_needs_an_input_schema(owner, predictor, logistic):
    graph = to_onnx(logistic, np.zeros((1, 2), dtype=np.float32)).SerializeToString()
    body = _refused(owner, "quality.onnx", graph, field="input_schema")
    assert "give input_schema naming them in order" in body["detail"]


# --- a tampered artifact after registration --------------------------------------------------------------


def test_a_tampered_upload_is_refused_at_load_with_503(owner, member, predictor, caplog):
    assert upload(owner, "linear.onnx", _column_graph()).status_code == 201
    version = ModelVersion.objects.get(model=predictor, number=1)
    serving._loaded.clear()
    storage._VERIFIED.discard(version.artifact_sha256)
    path = get_storage().path(version.artifact_sha256)
    os.chmod(path, 0o644)
    original = open(path, "rb").read()
    try:
        with open(path, "ab") as f:
            f.write(b"tampered")
        response = predict(member, 1)
        assert response.status_code == 503 and response.json()["error"] == "artifact_unavailable"
        assert not serving._loaded
        assert any("refusing to load" in r.getMessage() for r in caplog.records)  # the operators' alert
    finally:  # the lake is shared by the session's tests
        with open(path, "wb") as f:
            f.write(original)


# --- who may upload --------------------------------------------------------------------------------------


def test_anonymous_cannot_upload(predictor):
    response = APIClient().post(URL, {"file": SimpleUploadedFile("linear.onnx", _column_graph())}, format="multipart")
    assert response.status_code in (401, 403)
    assert not ModelVersion.objects.exists()


def test_an_outsider_gets_404_and_changes_nothing(outsider, predictor):
    response = upload(outsider, "linear.onnx", _column_graph())
    assert response.status_code == 404
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("persona", ["viewer", "member"])
def test_viewers_and_members_may_not_upload(request, predictor, persona):
    before = blob_files()
    response = upload(request.getfixturevalue(persona), "linear.onnx", _column_graph())
    assert response.status_code == 403 and "Maintainers" in response.json()["detail"]
    assert not ModelVersion.objects.exists() and blob_files() == before


def test_a_token_without_the_write_scope_may_not_upload(owner, predictor):
    from lepton.services import token_create

    _token, secret = token_create(actor=owner, name="reader", scopes=["read", "predict"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.post(URL, {"file": SimpleUploadedFile("linear.onnx", _column_graph())}, format="multipart")
    assert response.status_code == 403 and not ModelVersion.objects.exists()


# --- the browser form -------------------------------------------------------------------------------------


def test_the_model_page_offers_the_upload_form_to_maintainers_only(client, owner, member, predictor):
    client.force_login(owner)
    assert b'id="version-upload-form"' in client.get(f"/models/{predictor.pk}/").content
    client.force_login(member)
    assert b'id="version-upload-form"' not in client.get(f"/models/{predictor.pk}/").content
    response = client.post(f"/models/{predictor.pk}/versions/upload/", {"file": SimpleUploadedFile("l.onnx", _column_graph())})
    assert response.status_code == 403 and not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "name, data, schema, message",
    [
        ("model.pkl", pickle.dumps({"a": 1}), "", "unpickling runs code"),
        ("linear.onnx", b"\x08\x07broken", "", "not a valid ONNX model"),
        ("linear.onnx", None, "[not json", "not valid JSON"),
    ],
    ids=["pickle", "corrupt", "bad-schema"],
)
def test_the_browser_form_shows_each_refusal(client, owner, predictor, name, data, schema, message):
    client.force_login(owner)
    form = {"file": SimpleUploadedFile(name, data if data is not None else _column_graph()), "input_schema": schema}
    response = client.post(f"/models/{predictor.pk}/versions/upload/", form)
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="version-upload-form"' in page and message in page.replace("&#x27;", "'")
    assert not ModelVersion.objects.exists()


def test_the_browser_form_registers_a_version(client, owner, predictor):
    client.force_login(owner)
    form = {"file": SimpleUploadedFile("linear.onnx", _column_graph()), "description": "hand-made"}
    response = client.post(f"/models/{predictor.pk}/versions/upload/", form)
    assert response.status_code == 302
    version = ModelVersion.objects.get(model=predictor)
    assert (version.number, version.flavor, version.description, version.status) == (1, "onnx", "hand-made", "ready")


# --- Keras: validated with safe_mode by a worker before it serves ---------------------------------------


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """A small classifier and a model with a Lambda layer, saved as .keras (TensorFlow imported once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import keras

    folder = tmp_path_factory.mktemp("keras")
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(4, activation="relu")(inputs)))
    model.save(folder / "good.keras")
    x = pd.DataFrame(ROWS)[["温度", "pressure"]].to_numpy(np.float32)
    expected = model.predict(x, verbose=0)
    inputs = keras.Input(shape=(2,))
    lam = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Lambda(lambda v: v * 2)(inputs)))
    lam.save(folder / "lambda.keras")
    return {"good": (folder / "good.keras").read_bytes(), "expected": expected, "lambda": (folder / "lambda.keras").read_bytes()}


def test_a_keras_upload_neither_serves_nor_takes_an_alias_until_validated(owner, member, predictor, keras_files):
    fields = {"input_schema": json.dumps(SCHEMA), "output": json.dumps({"classes": ["no", "yes"]})}
    response = upload(owner, "quality.keras", keras_files["good"], **fields)
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "validating" and response.json()["flavor"] == "keras"
    waiting = predict(member, 1)  # no worker runs in this test: the version stays validating
    assert waiting.status_code == 409 and waiting.json()["error"] == "version_not_ready"
    alias = api(owner).put(f"/api/v1/models/{predictor.pk}/aliases/staging/", {"version": 1}, format="json")
    assert alias.status_code == 400 and "still being validated" in alias.json()["detail"]
    from lepton.jobs.models import Job

    assert Job.objects.get(kind="models_repo.validate_upload").params == {"version": response.json()["id"]}


def test_a_keras_upload_serves_after_a_worker_validated_it(owner, member, predictor, keras_files, celery_worker, dispatcher):
    fields = {"input_schema": json.dumps(SCHEMA), "output": json.dumps({"classes": ["no", "yes"]})}
    response = upload(owner, "quality.keras", keras_files["good"], **fields)
    assert response.status_code == 201, response.json()
    from lepton.jobs.models import Job

    job = Job.objects.get(kind="models_repo.validate_upload")
    assert wait_for_job(job, timeout=120).status == "succeeded", job.error_message
    version = ModelVersion.objects.get(model=predictor, number=1)
    assert version.status == "ready", version.status_reason
    served = predict(member, 1)
    assert served.status_code == 200, served.json()
    got = [[row["no"], row["yes"]] for row in served.json()["probabilities"]]
    assert np.allclose(got, keras_files["expected"], atol=1e-5)
    assert served.json()["predictions"] == [["no", "yes"][i] for i in keras_files["expected"].argmax(axis=1)]


def test_a_keras_lambda_layer_is_refused_by_safe_mode(owner, member, predictor, keras_files, celery_worker, dispatcher):
    response = upload(owner, "lambda.keras", keras_files["lambda"], input_schema=json.dumps(SCHEMA))
    assert response.status_code == 201, response.json()
    version = ModelVersion.objects.get(model=predictor, number=1)
    wait_for(lambda: ModelVersion.objects.get(pk=version.pk).status != "validating", timeout=120, what="validation")
    version.refresh_from_db()
    assert version.status == "invalid" and "safe_mode" in version.status_reason
    served = predict(member, 1)
    assert served.status_code == 409 and "refused at validation" in served.json()["detail"]
    alias = api(owner).put(f"/api/v1/models/{predictor.pk}/aliases/staging/", {"version": 1}, format="json")
    assert alias.status_code == 400 and "refused at validation" in alias.json()["detail"]
    with pytest.raises(Exception, match="refused at validation"):
        services.promotion_request(actor=member, version=version)
    assert AuditEvent.objects.filter(action="version.validate", changes__status="invalid").exists()


def test_a_keras_upload_needs_an_input_schema_of_numbers(owner, predictor, keras_files):
    body = _refused(owner, "quality.keras", keras_files["good"], field="input_schema")
    assert "give input_schema" in body["detail"]
    schema = json.dumps([{"name": "line", "type": "string"}, {"name": "pressure", "type": "number"}])
    body = _refused(owner, "quality.keras", keras_files["good"], field="input_schema", input_schema=schema)
    assert "numbers only" in body["detail"]


def test_a_zip_holding_a_pickle_is_refused(owner, predictor):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps([1, 2]))
    body = _refused(owner, "model.pt", buffer.getvalue())
    assert body["error"] == "pickle_refused"


def test_with_nothing_in_production_the_gate_has_nothing_to_compare_an_upload_with(owner, member, predictor):
    assert upload(owner, "linear.onnx", _column_graph()).status_code == 201
    request = services.promotion_request(actor=member, version=ModelVersion.objects.get(model=predictor, number=1))
    assert request.status == "gate_failed" and "no" in request.gate["reason"] and "to compare" in request.gate["reason"]


def test_checking_a_keras_upload_does_not_import_tensorflow(keras_files, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "quality.keras"
    path.write_bytes(keras_files["good"])
    script = (
        "import sys; from models_repo.engine import uploaded; "
        f"kind = uploaded.detect({str(path)!r}, 'quality.keras'); "
        f"uploaded.inspect_keras_archive({str(path)!r}, {SCHEMA!r}, None); "
        "print(kind, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["keras", "False", "False"], out.stderr
