"""Recalling a dataset version: everything downstream is flagged and told, predictions of affected
production models stop until a maintainer acknowledges, and every bad input changes nothing."""

import io

import pytest
from django.test import Client
from rest_framework.test import APIClient

from datalake import services as datalake_services
from datalake.models import Recall, RecallImpact
from datalake.services import recalls
from datalake.services.datasets import lineage_add
from lepton.collab.models import Notice
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import AuditEvent
from models_repo.models import ModelVersion, PredictionLog
from tests.models_repo.conftest import inspections_csv, model_in_production
from tests.models_repo.test_predict import ROW, URL, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(owner, member, checker, inspections, production):
    return model_in_production(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)


@pytest.fixture
def derived(outsider, quality, inspections):
    """A dataset version in Quality made from Production's inspections (as a recipe over a share would)."""
    from tests.factories import MembershipFactory, UserFactory

    MembershipFactory(user=UserFactory(username="quinn-maintainer"), department=quality, role="maintainer")
    dataset = datalake_services.dataset_create(actor=outsider, department=quality, name="Cleaned inspections")
    upload = datalake_services.dataset_upload(
        actor=outsider, dataset=dataset, stream=io.BytesIO(inspections_csv(rows=30)), filename="c.csv"
    )
    version = datalake_services.version_ingest(upload.pk)
    lineage_add(from_obj=inspections, to_obj=version)
    return version


def test_a_recall_flags_everything_downstream_and_tells_each_departments_maintainers(owner, inspections, served, derived):
    recall = recalls.version_recall(actor=owner, version=inspections, reason="Sensor 4 was miscalibrated")
    impacts = {i.object_type: i for i in recall.impacts.all()}
    version = ModelVersion.objects.get(model=served, number=1)
    assert set(impacts) == {"datalake.datasetversion", "models_repo.trainingrun", "models_repo.modelversion"}
    assert impacts["models_repo.modelversion"].object_id == str(version.pk)
    assert impacts["models_repo.modelversion"].aliases == ["production"] and impacts["models_repo.modelversion"].depth == 2
    assert impacts["datalake.datasetversion"].department.slug == "quality"
    assert not any(i.blocking for i in impacts.values())  # predictions were not asked to stop
    told = {n.user.username for n in Notice.objects.select_related("user")}
    assert told == {"oscar-owner", "max-maintainer", "quinn-maintainer"}  # maintainers and admins, of both departments
    quality_notice = Notice.objects.get(user__username="quinn-maintainer")
    assert "quality.cleaned-inspections v1" in quality_notice.message and "quality-predictor" not in quality_notice.message
    event = AuditEvent.objects.get(action="dataset_version.recall")
    assert event.changes["affected"] == 3 and event.object_id == str(inspections.pk)


def test_bad_recalls_are_refused_and_change_nothing(owner, member, outsider, inspections, served):
    with pytest.raises(Invalid) as empty:
        recalls.version_recall(actor=owner, version=inspections, reason="  ")
    assert "reason" in empty.value.fields
    with pytest.raises(Forbidden):
        recalls.version_recall(actor=member, version=inspections, reason="bad")
    with pytest.raises(NotFound):
        recalls.version_recall(actor=outsider, version=inspections, reason="bad")
    assert not Recall.objects.exists() and not RecallImpact.objects.exists() and not Notice.objects.exists()
    recalls.version_recall(actor=owner, version=inspections, reason="bad")
    with pytest.raises(Conflict) as twice:
        recalls.version_recall(actor=owner, version=inspections, reason="bad again")
    assert twice.value.code == "already_recalled"
    assert Recall.objects.count() == 1 and Recall.objects.get().reason == "bad"


def test_blocked_predictions_stop_until_a_maintainer_acknowledges(owner, member, outsider, inspections, served):
    from models_repo.api.predict import prediction_logs

    client = client_for(member)
    assert client.post(URL, {"inputs": [ROW]}, format="json").status_code == 200
    recall = recalls.version_recall(actor=owner, version=inspections, reason="bad lot", block_predictions=True)
    refused = client.post(URL, {"inputs": [ROW]}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "recalled_data"
    assert "acknowledge" in refused.json()["detail"]
    prediction_logs.flush()
    assert PredictionLog.objects.filter(status_code=409, error="recalled_data").count() == 1

    blocking = recall.impacts.get(blocking=True)
    assert blocking.object_type == "models_repo.modelversion"
    with pytest.raises(Forbidden):
        recalls.impact_acknowledge(actor=member, impact=blocking)
    with pytest.raises(NotFound):
        recalls.impact_acknowledge(actor=outsider, impact=blocking)
    assert client.post(URL, {"inputs": [ROW]}, format="json").status_code == 409
    recalls.impact_acknowledge(actor=owner, impact=blocking)
    assert client.post(URL, {"inputs": [ROW]}, format="json").status_code == 200
    with pytest.raises(Conflict):
        recalls.impact_acknowledge(actor=owner, impact=blocking)
    assert AuditEvent.objects.filter(action="recall_impact.acknowledge").count() == 1


def test_the_browser_recall_form_banners_and_acknowledgement(owner, member, outsider, inspections, served):
    dataset = inspections.dataset
    form_url = f"/data/{dataset.pk}/versions/{inspections.pk}/recall/"
    maintainer = Client()
    maintainer.force_login(owner)
    page = maintainer.get(f"/data/{dataset.pk}/")
    assert form_url in page.content.decode()  # maintainers see the Recall link on a published version
    member_client = Client()
    member_client.force_login(member)
    assert form_url not in member_client.get(f"/data/{dataset.pk}/").content.decode()
    assert member_client.get(form_url).status_code == 403

    empty = maintainer.post(form_url, {"reason": ""})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    assert not Recall.objects.exists()
    done = maintainer.post(form_url, {"reason": "Wrong units in column pressure", "block_predictions": "on"})
    assert done.status_code == 302 and done["Location"] == "/data/recalls/"
    again = maintainer.post(form_url, {"reason": "again"})
    assert again.status_code == 400 and "already recalled" in again.content.decode()

    assert "Wrong units in column pressure" in member_client.get(f"/data/{dataset.pk}/").content.decode()
    model_page = member_client.get(f"/models/{served.pk}/").content.decode()
    assert "recall-banner" in model_page and "Predictions stopped" in model_page
    listing = member_client.get("/data/recalls/").content.decode()
    assert "Wrong units" in listing and "/acknowledge/" not in listing  # members read, maintainers acknowledge
    impact = RecallImpact.objects.get(blocking=True)
    assert member_client.post(f"/data/recalls/impacts/{impact.pk}/acknowledge/").status_code == 403
    assert maintainer.post(f"/data/recalls/impacts/{impact.pk}/acknowledge/").status_code == 302
    impact.refresh_from_db()
    assert impact.acknowledged_by == owner

    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(form_url).status_code == 404
    assert "Wrong units" not in stranger.get("/data/recalls/").content.decode()
    assert stranger.post(f"/data/recalls/impacts/{impact.pk}/acknowledge/").status_code == 404
    for url in (form_url, "/data/recalls/"):
        assert Client().get(url).status_code == 302  # anonymous: to the login page


def test_the_recall_api(owner, member, outsider, inspections, served):
    def api(user, scopes=("read", "write")):
        return client_for(user, scopes=scopes)

    assert APIClient().get("/api/v1/recalls/").status_code == 401
    body = {"version": str(inspections.pk), "reason": "Mislabelled lot", "block_predictions": True}
    assert api(outsider).post("/api/v1/recalls/", body, format="json").status_code == 404
    assert api(member).post("/api/v1/recalls/", body, format="json").status_code == 403
    bad = api(owner).post("/api/v1/recalls/", {**body, "reason": ""}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()["fields"]
    assert not Recall.objects.exists()
    created = api(owner).post("/api/v1/recalls/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["reason"] == "Mislabelled lot" and {i["object_type"] for i in data["impacts"]} >= {"models_repo.modelversion"}
    assert api(owner).post("/api/v1/recalls/", body, format="json").status_code == 409

    assert [r["id"] for r in api(member).get("/api/v1/recalls/").json()["results"]] == [data["id"]]
    assert api(outsider).get("/api/v1/recalls/").json()["results"] == []
    assert api(outsider).get(f"/api/v1/recalls/{data['id']}/").status_code == 404
    blocking = next(i for i in data["impacts"] if i["blocking"])
    ack = f"/api/v1/recall-impacts/{blocking['id']}/acknowledge/"
    assert APIClient().post(ack).status_code == 401
    assert api(outsider).post(ack).status_code == 404
    assert api(member).post(ack).status_code == 403
    answer = api(owner).post(ack)
    assert answer.status_code == 200 and answer.json()["acknowledged_by"] == "oscar-owner"
