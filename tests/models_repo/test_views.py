"""Model-repository pages: index, train form, run, model, promotion inbox; anonymous and outsider cases."""

import json

from django.test import Client

from lepton.jobs.models import Job
from models_repo import services
from models_repo.models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel, TrainingRun
from tests.models_repo.conftest import HOLDOUT, SPEC


def login(user):
    client = Client()
    client.force_login(user)
    return client


def _pages(predictor, v1, promotion):
    return [
        ("get", "/models/"),
        ("get", "/models/train/"),
        ("get", "/models/promotions/"),
        ("get", f"/models/{predictor.pk}/"),
        ("post", f"/models/{predictor.pk}/versions/1/promote/"),
        ("post", f"/models/{predictor.pk}/rollback/"),
        ("post", f"/models/promotions/{promotion.pk}/approve/"),
        ("post", f"/models/promotions/{promotion.pk}/reject/"),
    ]


def test_anonymous_is_sent_to_login_everywhere(owner, predictor, v1):
    promotion = services.promotion_request(actor=owner, version=v1)
    for method, path in _pages(predictor, v1, promotion):
        response = getattr(Client(), method)(path)
        assert response.status_code == 302 and "/login" in response["Location"], path


def test_an_outsider_gets_404_on_everything_of_another_department(owner, outsider, predictor, v1):
    promotion = services.promotion_request(actor=owner, version=v1)
    client = login(outsider)
    for method, path in _pages(predictor, v1, promotion)[3:]:
        assert getattr(client, method)(path).status_code == 404, path
    assert "Quality predictor" not in client.get("/models/").content.decode()
    assert "Quality predictor" not in client.get("/models/promotions/").content.decode()
    assert PromotionRequest.objects.get().status == "pending" and not ModelAlias.objects.exists()


def test_maintainer_registers_a_model_and_errors_stay_on_the_form(owner, member, production):
    response = login(owner).post("/models/", {"name": "Demand forecaster", "tags": "scm, daily"})
    model = RegisteredModel.objects.get(slug="demand-forecaster")
    assert response.status_code == 302 and response["Location"] == f"/models/{model.pk}/"
    again = login(owner).post("/models/", {"name": "Demand forecaster"})
    assert again.status_code == 400 and "already has a model" in again.content.decode()
    assert "Register a model" not in login(member).get("/models/").content.decode()
    assert login(member).post("/models/", {"name": "x"}).status_code == 403


def test_promotion_is_requested_approved_in_the_inbox_and_rolled_back_from_the_pages(owner, checker, member, predictor, v1):
    page = login(member).get(f"/models/{predictor.pk}/").content.decode()
    assert "Request production" in page and "Approve" not in page
    response = login(member).post(f"/models/{predictor.pk}/versions/1/promote/", {"reason": "better recall"}, follow=True)
    assert "passed the gate" in response.content.decode()
    promotion = PromotionRequest.objects.get()
    inbox = login(checker).get("/models/promotions/").content.decode()
    assert "Quality predictor" in inbox and "No version is in production yet" in inbox
    assert login(member).post(f"/models/promotions/{promotion.pk}/approve/").status_code == 403
    response = login(checker).post(f"/models/promotions/{promotion.pk}/approve/", {"note": "ok", "next": "inbox"}, follow=True)
    assert "production now serves v1" in response.content.decode()
    assert ModelAlias.objects.get(model=predictor, name="production").version == v1
    rolled = login(checker).post(f"/models/{predictor.pk}/rollback/", follow=True).content.decode()
    assert "no earlier production version" in rolled


def test_a_worse_version_fails_the_gate_with_the_reason_on_the_page(owner, checker, predictor, v1):
    services.promotion_approve(actor=checker, request=services.promotion_request(actor=owner, version=v1))
    ModelVersion.objects.create(
        model=predictor, number=2, flavor="sklearn", artifact_sha256="b" * 64, metrics={"f1_macro": 0.7}, holdout=HOLDOUT
    )
    body = login(owner).post(f"/models/{predictor.pk}/versions/2/promote/", follow=True).content.decode()
    assert "failed the gate" in body and "worse than production v1" in body


def test_train_form_starts_a_run_and_names_the_bad_field(member, viewer, inspections, predictor):
    client = login(member)
    page = client.get("/models/train/").content.decode()
    assert "production.inspections v1" in page and "温度" in page
    form = {
        "dataset_version": str(inspections.pk),
        "task": "classification",
        "target": "nope",
        "algorithm": "random_forest",
        "seed": 7,
        "device": "cpu",
    }
    bad = client.post("/models/train/", form)
    assert bad.status_code == 400 and "nope" in bad.content.decode()
    assert not TrainingRun.objects.exists()
    good = client.post(
        "/models/train/",
        {**form, "target": SPEC["target"], "params": '{"n_estimators": 10}', "registered_model": str(predictor.pk)},
    )
    run = TrainingRun.objects.get()
    assert good.status_code == 302 and good["Location"] == f"/models/runs/{run.pk}/"
    assert run.spec["algorithms"] == [{"name": "random_forest", "params": {"n_estimators": 10}}]
    run = services.training_execute(run.pk)
    body = client.get(f"/models/runs/{run.pk}/").content.decode()
    assert "accuracy" in body and "fig-confusion" in body and "production/quality-predictor v1" in body
    assert "data-resources" in body and "CPU s · peak memory" in body
    # The analysis job is queued: the page says so and keeps polling; once done, its figures appear.
    assert 'data-analysis="running"' in body and 'hx-trigger="every 2s"' in body and "fig-importance" not in body
    assert 'id="run-cancel"' in body
    services.training_analyse(run.pk)
    Job.objects.filter(pk=run.analysis_job_id).update(status="succeeded")
    body = client.get(f"/models/runs/{run.pk}/").content.decode()
    assert "data-analysis" not in body and "hx-trigger" not in body
    assert "fig-importance" in body and "fig-learning" in body
    assert 'id="run-cancel"' not in body  # finished: no Cancel in the page head
    # The live fragment's last refresh takes away the Cancel the page was first drawn with (out of band).
    fragment = client.get(f"/models/runs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert '<span id="run-cancel" hx-swap-oob="true"></span>' in fragment and "<html" not in fragment
    assert login(viewer).post("/models/train/", form).status_code in (400, 403)
    assert TrainingRun.objects.count() == 1


def test_try_it_predicts_one_row_and_names_a_bad_value(owner, member, checker, viewer, outsider, inspections, predictor):
    run = services.training_execute(
        services.training_start(actor=member, dataset_version=inspections, spec=SPEC, registered_model=predictor).pk
    )
    assert run.status == "succeeded", run.error_message
    page = login(member).get(f"/models/{predictor.pk}/").content.decode()
    assert 'id="try-form"' in page and 'name="col:温度"' in page
    hot = {"col:温度": "80", "col:pressure": "4.2", "col:line": "L1"}
    response = login(member).post(f"/models/{predictor.pk}/try/", hot)
    body = response.content.decode()
    assert response.status_code == 200 and "Prediction: <strong>False</strong>" in body
    bad = login(member).post(f"/models/{predictor.pk}/try/", {**hot, "col:pressure": "high"})
    assert bad.status_code == 400 and "inputs.0.pressure must be a number" in bad.content.decode()
    assert login(viewer).post(f"/models/{predictor.pk}/try/", hot).status_code == 403
    assert login(outsider).post(f"/models/{predictor.pk}/try/", hot).status_code == 404
    assert Client().post(f"/models/{predictor.pk}/try/", hot).status_code == 302


def test_maintainer_edits_card_gate_and_continuous_learning_on_the_page(owner, member, inspections, predictor):
    page = login(owner).get(f"/models/{predictor.pk}/").content.decode()
    assert 'id="model-settings-form"' in page and "production.inspections" in page
    assert 'id="model-settings-form"' not in login(member).get(f"/models/{predictor.pk}/").content.decode()
    form = {
        "name": "Quality predictor",
        "intended_use": "Flag parts for re-inspection",
        "gate_metric": "f1_macro",
        "gate_threshold": "0.75",
        "retrain_dataset": str(inspections.dataset_id),
        "retrain_spec": '{"task": "classification", "target": "nope", "algorithms": [{"name": "random_forest"}]}',
        "auto_promote": "on",
    }
    bad = login(owner).post(f"/models/{predictor.pk}/settings/", form)
    assert bad.status_code == 400 and "nope" in bad.content.decode()
    predictor.refresh_from_db()
    assert predictor.card == {} and predictor.retrain_dataset_id is None  # nothing half-saved
    ok = login(owner).post(f"/models/{predictor.pk}/settings/", {**form, "retrain_spec": json.dumps(SPEC)})
    assert ok.status_code == 302
    predictor.refresh_from_db()
    assert predictor.card == {"intended_use": "Flag parts for re-inspection"} and predictor.gate_threshold == 0.75
    assert (predictor.retrain_dataset_id, predictor.auto_promote, predictor.retrain_spec) == (inspections.dataset_id, True, SPEC)
    assert login(member).post(f"/models/{predictor.pk}/settings/", form).status_code == 403
