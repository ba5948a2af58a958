"""Image predictions through the API: a 2D CNN trained on an image dataset of the lake answers
base64 JSON and multipart uploads alike; bad images are 400s naming the field; limits hold."""

import base64
import io
import zipfile

import pytest

from datalake import services as datalake_services
from datalake.engine.demo import write_part_images_zip
from models_repo import services
from tests.models_repo.test_predict import client_for

URL = "/api/v1/models/production/defects/predict"
SPEC = {
    "task": "image_classification",
    "target": "label",
    "features": [],
    "algorithms": [{"name": "keras_cnn2d"}],
    "keras": {"image_size": 16, "filters": 4, "epochs": 2, "units": 8, "batch_size": 16},
    "seed": 3,
}


@pytest.fixture
def cnn(owner, member, production):
    """A tiny CNN trained in this process on 4 classes × 10 generated part images; v1 of production/defects."""
    buffer = io.BytesIO()
    write_part_images_zip(buffer, 5, per_class=10, size=32)
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Part images")
    upload = datalake_services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO(buffer.getvalue()), filename="parts.zip"
    )
    data = datalake_services.version_ingest(upload.pk)
    assert data.status == "published", data.error_message
    model = services.model_create(actor=owner, department=production, name="Defects")
    run = services.training_start(actor=member, dataset_version=data, spec=SPEC, registered_model=model)
    run = services.training_execute(run.pk)
    assert run.status == "succeeded", run.error_message
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        images = [archive.read(n) for n in sorted(archive.namelist()) if n.endswith(".png")][:3]
    return model, images


def test_base64_and_multipart_images_give_the_same_answers(member, cnn):
    model, images = cnn
    client = client_for(member)
    as_json = client.post(
        f"{URL}?version=1", {"inputs": [{"image": base64.b64encode(i).decode()} for i in images]}, format="json"
    )
    assert as_json.status_code == 200, as_json.json()
    body = as_json.json()
    classes = model.versions.get().output["classes"]
    assert len(body["predictions"]) == 3 and set(body["predictions"]) <= set(classes)
    assert all(abs(sum(p.values()) - 1) < 1e-4 for p in body["probabilities"])
    files = [("image", (f"{n}.png", data, "image/png")) for n, data in enumerate(images)]
    multipart = client.post(f"{URL}?version=1", {"image": [io.BytesIO(d) for _n, (_f, d, _t) in files]}, format="multipart")
    assert multipart.status_code == 200, multipart.json()
    assert multipart.json()["predictions"] == body["predictions"]
    # Plain base64 strings (MLflow "instances" style) are read too.
    plain = client.post(f"{URL}?version=1", {"instances": [base64.b64encode(images[0]).decode()]}, format="json")
    assert plain.status_code == 200 and plain.json()["predictions"] == body["predictions"][:1]


def test_bad_images_are_400s_naming_the_field_and_limits_hold(member, cnn, settings):
    """One trained CNN for every refusal (training it is the slow part)."""
    client = client_for(member)
    for inputs, field in (
        ([{"image": "not base64!"}], "inputs.0.image"),
        ([{"image": 12}], "inputs.0.image"),
        ([{"picture": "aGVsbG8="}], "inputs.0.image"),
    ):
        response = client.post(f"{URL}?version=1", {"inputs": inputs}, format="json")
        assert response.status_code == 400 and field in response.json()["fields"], (inputs, response.json())
    not_image = client.post(f"{URL}?version=1", {"inputs": [{"image": base64.b64encode(b"just text").decode()}]}, format="json")
    assert not_image.status_code == 400 and "image" in not_image.json()["detail"].lower(), not_image.json()
    settings.LEPTON_PREDICT_MAX_ROWS = 2
    _model, images = cnn
    many = client.post(f"{URL}?version=1", {"inputs": [{"image": base64.b64encode(i).decode()} for i in images]}, format="json")
    assert many.status_code == 400 and "2" in many.json()["detail"]
