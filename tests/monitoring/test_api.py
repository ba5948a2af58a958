"""GET /api/v1/models/<id>/drift/: anonymous, outsider, member, a share, and the empty and unavailable states."""

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from lepton.services import share_grant
from models_repo.models import ModelAlias, ModelVersion
from monitoring import services
from tests.monitoring.conftest import inputs, log_inputs


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def _url(version):
    return f"/api/v1/models/{version.model_id}/drift/"


def _computed(version):
    end = services.window_end_for(timezone.now())
    log_inputs(version, inputs(150) + inputs(150, seed=5, temperature=85.0), at=end - timedelta(minutes=20))
    services.drift_compute(version.pk, end)
    return end


def test_anonymous_gets_401(deployed):
    response = api().get(_url(deployed))
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


def test_outsider_gets_404_for_a_model_of_another_department(deployed, outsider, drift_settings):
    _computed(deployed)
    response = api(outsider).get(_url(deployed))
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert api(outsider).get(_url(deployed) + "?version=1").status_code == 404


def test_a_share_lets_another_department_read_the_drift(deployed, owner, outsider, quality, drift_settings):
    _computed(deployed)
    share_grant(actor=owner, obj=deployed.model, department=quality, level="view")
    assert api(outsider).get(_url(deployed)).status_code == 200


def test_member_reads_the_latest_drift_per_feature_largest_psi_first(deployed, member, drift_settings):
    end = _computed(deployed)
    response = api(member).get(_url(deployed))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["available"] is True and body["version"] == 1 and body["reference_rows"] == 1600
    assert body["window_end"].startswith(end.strftime("%Y-%m-%dT%H:%M"))
    features = body["features"]
    assert [f["feature"] for f in features][0] == "温度" and features[0]["status"] == "significant"
    assert features[0]["psi"] >= features[1]["psi"] >= features[2]["psi"]
    assert features[0]["ks_pvalue"] < 1e-6 and features[0]["sample_size"] == 300
    assert body["history"]["温度"][-1]["psi"] == features[0]["psi"]
    assert body["settings"] == {"window_hours": 24, "min_sample": 100, "psi_moderate": 0.1, "psi_significant": 0.25}


def test_before_any_window_the_answer_says_how_many_inputs_arrived(deployed, member, drift_settings):
    log_inputs(deployed, inputs(30), at=timezone.now() - timedelta(minutes=5))
    body = api(member).get(_url(deployed)).json()
    assert body["available"] is True and body["features"] == [] and body["window_end"] is None
    assert body["sampled"] == 30


def test_an_uploaded_production_version_says_it_has_no_reference(deployed, member, owner):
    uploaded = ModelVersion.objects.create(
        model=deployed.model, number=2, source="upload", flavor="onnx", artifact_sha256="c" * 64,
        input_schema=[{"name": "温度", "type": "number"}],
    )  # fmt: skip
    ModelAlias.objects.filter(model=deployed.model, name="production").update(version=uploaded)
    body = api(member).get(_url(deployed)).json()
    assert body["available"] is False and body["reason"] == "uploaded" and "no training data" in body["message"]
    assert body["version"] == 2


def test_a_model_without_production_says_so_and_a_version_can_be_asked_for(deployed, member, drift_settings):
    _computed(deployed)
    ModelAlias.objects.filter(model=deployed.model).delete()
    body = api(member).get(_url(deployed)).json()
    assert body["available"] is False and body["reason"] == "no_production" and body["version"] is None
    asked = api(member).get(_url(deployed) + "?version=1").json()
    assert asked["available"] is True and len(asked["features"]) == 3
    assert api(member).get(_url(deployed) + "?version=9").status_code == 404


def test_a_version_that_is_not_a_number_is_refused(deployed, member):
    response = api(member).get(_url(deployed) + "?version=v1")
    assert response.status_code == 400 and response.json()["fields"] == {"version": ["Give the version as a whole number."]}
