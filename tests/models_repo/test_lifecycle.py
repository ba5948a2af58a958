"""Comparing versions, archiving models and versions, batch predictions with lineage, the model page's lineage."""

import io

import pandas as pd
import pytest
from django.test import Client
from rest_framework.test import APIClient

from datalake import services as datalake_services
from datalake.models import Dataset, DatasetVersion
from lepton.errors import Conflict, Invalid
from lepton.models import AuditEvent, LineageEdge
from lepton.storage import get_storage
from models_repo import services
from models_repo.models import ModelAlias, ModelVersion, PredictionLog, PromotionRequest
from tests.conftest import wait_for_job
from tests.models_repo.conftest import HOLDOUT, SPEC, inspections_csv
from tests.models_repo.test_predict import client_for


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def login(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def trained(member, inspections, predictor):
    """Two real versions of the predictor on the same data: v1 a tiny forest, v2 a bigger one."""
    small = {**SPEC, "algorithms": [{"name": "random_forest", "params": {"n_estimators": 2, "max_depth": 1}}]}
    for spec in (small, SPEC):
        run = services.training_start(actor=member, dataset_version=inspections, spec=spec, registered_model=predictor)
        assert services.training_execute(run.pk).status == "succeeded"
    return predictor


# --- compare --------------------------------------------------------------------------------


def test_compare_marks_the_best_metric_and_the_differing_params(member, trained):
    body = api(member).get(f"/api/v1/models/{trained.pk}/compare/?versions=2,1").json()
    assert [v["number"] for v in body["versions"]] == [2, 1]
    assert body["same_holdout"] is True  # same data, same seed: the same rows held out
    accuracy = next(m for m in body["metrics"] if m["name"] == "accuracy")
    assert accuracy["best"] == accuracy["values"].index(max(accuracy["values"]))
    log_loss = next(m for m in body["metrics"] if m["name"] == "log_loss")
    assert log_loss["lower_is_better"] and log_loss["best"] == log_loss["values"].index(min(log_loss["values"]))
    params = {p["name"]: p for p in body["params"]}
    assert params["n_estimators"]["values"] == [20, 2] and params["n_estimators"]["differs"]
    assert not params["criterion"]["differs"]

    page = login(member).get(f"/models/{trained.pk}/compare/?v=1&v=2")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-holdout="same"' in html and "data-best" in html and "data-differs" in html
    assert "cmp-roc" in html and "cmp-confusion-v1" in html and "cmp-confusion-v2" in html


@pytest.mark.parametrize("query", ["versions=1", "versions=1,x", "versions=1,2,3,4,5", "versions=1,9"])
def test_compare_names_a_bad_version_list(member, trained, query):
    response = api(member).get(f"/api/v1/models/{trained.pk}/compare/?{query}")
    assert response.status_code == 400 and "versions" in response.json()["fields"], response.json()


def test_compare_page_errors_and_different_holdouts(member, outsider, predictor, v1):
    ModelVersion.objects.create(
        model=predictor, number=2, flavor="sklearn", task="classification", artifact_sha256="b" * 64,
        metrics={"f1_macro": 0.9}, holdout={**HOLDOUT, "indices": [1, 2, 3]},
    )  # fmt: skip
    client = login(member)
    assert client.get(f"/models/{predictor.pk}/compare/").status_code == 200
    bad = client.get(f"/models/{predictor.pk}/compare/?v=1")
    assert bad.status_code == 400 and "Pick between 2 and 4" in bad.content.decode()
    assert client.get(f"/models/{predictor.pk}/compare/?v=1&v=7").status_code == 400
    html = client.get(f"/models/{predictor.pk}/compare/?v=1&v=2").content.decode()
    assert 'data-holdout="different"' in html
    assert login(outsider).get(f"/models/{predictor.pk}/compare/?v=1&v=2").status_code == 404
    assert Client().get(f"/models/{predictor.pk}/compare/").status_code == 302


# --- archive --------------------------------------------------------------------------------


def test_an_archived_model_is_hidden_predicts_nothing_trains_nothing_and_comes_back(owner, checker, member, inspections, trained):
    request = services.promotion_request(actor=member, version=trained.versions.get(number=2))
    assert request.status == "pending"
    assert api(member).post(f"/api/v1/models/{trained.pk}/archive/", {}, format="json").status_code == 403
    archived = api(owner).post(f"/api/v1/models/{trained.pk}/archive/", {"reason": "replaced"}, format="json")
    assert archived.status_code == 200 and archived.json()["archived_at"]
    request.refresh_from_db()
    assert request.status == "withdrawn"  # nothing waits in the inbox for an archived model
    assert "quality-predictor" not in login(member).get("/models/").content.decode()
    assert "quality-predictor" in login(member).get("/models/?archived=1").content.decode()

    token_client = client_for(member)
    predict = token_client.post(
        "/api/v1/models/production/quality-predictor/predict?version=2",
        {"inputs": [{"温度": 70, "pressure": 5, "line": "L1"}]},
        format="json",
    )
    assert predict.status_code == 409 and predict.json()["error"] == "archived"
    with pytest.raises(Invalid) as refused:
        services.training_start(actor=member, dataset_version=inspections, spec=SPEC, registered_model=trained)
    assert "registered_model" in refused.value.fields

    restored = login(owner).post(f"/models/{trained.pk}/archive/", {"archived": "0"})
    assert restored.status_code == 302
    trained.refresh_from_db()
    assert trained.archived_at is None
    events = AuditEvent.objects.filter(action__in=["model.archive", "model.restore"]).order_by("at")
    assert [e.action for e in events] == ["model.archive", "model.restore"]


def test_a_version_with_an_alias_cannot_be_archived_and_an_archived_one_takes_none(owner, trained):
    v1, v2 = trained.versions.get(number=1), trained.versions.get(number=2)
    services.alias_set(actor=owner, model=trained, alias="staging", version=v1)
    with pytest.raises(Conflict, match="staging"):
        services.version_archive(actor=owner, version=v1)
    refused = api(owner).post(f"/api/v1/models/{trained.pk}/versions/1/archive/", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "has_alias"
    done = api(owner).post(f"/api/v1/models/{trained.pk}/versions/2/archive/", {}, format="json")
    assert done.status_code == 200 and done.json()["archived_at"]
    v2.refresh_from_db()
    with pytest.raises(Invalid):
        services.alias_set(actor=owner, model=trained, alias="staging", version=v2)
    assert ModelAlias.objects.get(model=trained, name="staging").version == v1
    page = login(owner).get(f"/models/{trained.pk}/").content.decode()
    assert page.count("data-archived") == 1  # the row of v2
    assert api(owner).post(f"/api/v1/models/{trained.pk}/versions/9/archive/", {}, format="json").status_code == 404
    assert login(owner).post(f"/models/{trained.pk}/versions/2/archive/", {"archived": "0"}).status_code == 302
    v2.refresh_from_db()
    assert v2.archived_at is None


# --- batch prediction -----------------------------------------------------------------------


def _published(actor, department, name, csv: bytes):
    dataset = datalake_services.dataset_create(actor=actor, department=department, name=name)
    version = datalake_services.dataset_upload(actor=actor, dataset=dataset, stream=io.BytesIO(csv), filename="x.csv")
    return datalake_services.version_ingest(version.pk)


def test_batch_prediction_publishes_a_version_with_predictions_and_lineage(member, production, trained):
    fresh = _published(member, production, "New parts", inspections_csv(rows=120, seed=11))
    v2 = trained.versions.get(number=2)
    pending = services.batch_predict_start(
        actor=member, model=trained, version=v2, dataset_version=fresh, output_name="Part predictions"
    )
    assert pending.status == "pending" and pending.job.kind == "models_repo.batch_predict"
    published = services.batch_predict_execute(pending.pk)
    assert published.status == "published", published.error_message
    assert published.row_count == 120 and published.dataset.slug == "part-predictions"
    names = [c["name"] for c in published.schema]
    assert names[:4] == ["温度", "pressure", "line", "合格"]
    assert "prediction" in names and {"probability_true", "probability_false"} <= set(names)
    frame = pd.read_parquet(get_storage().verified_local_path(published.parquet_sha256))
    assert len(frame) == 120
    # The predictions are the model's own on those rows.
    from models_repo import serving
    from models_repo.engine import tabular

    source = pd.read_parquet(get_storage().verified_local_path(fresh.parquet_sha256))
    source.columns = [c["name"] for c in fresh.schema]
    expected = tabular.predict(serving.load(v2), source[["温度", "pressure", "line"]])["predictions"]
    identifier = next(c["identifier"] for c in published.schema if c["name"] == "prediction")
    assert list(frame[identifier]) == expected
    edges = {(e.from_type, e.from_id, e.to_id) for e in LineageEdge.objects.filter(to_id=str(published.pk))}
    assert edges == {
        ("datalake.datasetversion", str(fresh.pk), str(published.pk)),
        ("models_repo.modelversion", str(v2.pk), str(published.pk)),
    }
    assert PredictionLog.objects.get(source="batch").rows == 120
    # A second batch into the same dataset adds a version.
    again = services.batch_predict_start(
        actor=member, model=trained, version=v2, dataset_version=fresh, output_name="Part predictions"
    )
    assert again.dataset_id == published.dataset_id and Dataset.objects.filter(slug="part-predictions").count() == 1
    # The model page's lineage names the data, the run and the output.
    page = login(member).get(f"/models/{trained.pk}/").content.decode()
    assert 'data-lineage-version="2"' in page and "production.part-predictions v1" in page
    assert "production.inspections v1" in page


@pytest.mark.parametrize(
    "csv, field, words",
    [
        (b"temp,pressure,line\n1,2,L1\n3,4,L2\n", "dataset_version", "温度"),
        ("温度,pressure,line\nhot,2,L1\ncold,4,L2\n".encode(), "dataset_version", "numbers"),
    ],
)
def test_batch_prediction_refuses_data_the_model_cannot_read(member, production, trained, csv, field, words):
    data = _published(member, production, "Other", csv)
    before = DatasetVersion.objects.count()
    with pytest.raises(Invalid) as refused:
        services.batch_predict_start(
            actor=member, model=trained, version=trained.versions.get(number=1), dataset_version=data, output_name="Out"
        )
    assert field in refused.value.fields and words in refused.value.message
    assert DatasetVersion.objects.count() == before and not Dataset.objects.filter(slug="out").exists()


def test_batch_prediction_over_http_on_a_real_worker(member, viewer, outsider, production, trained, celery_worker, dispatcher):
    fresh = _published(member, production, "Tomorrow's parts", inspections_csv(rows=60, seed=5))
    url = f"/api/v1/models/{trained.pk}/batch-predictions/"
    body = {"dataset_version": str(fresh.pk), "version": 2, "output_name": "Tomorrow predicted"}
    assert api().post(url, body, format="json").status_code == 401
    assert api(outsider).post(url, body, format="json").status_code == 404
    assert api(viewer).post(url, body, format="json").status_code == 403
    by_alias = {k: v for k, v in body.items() if k != "version"}
    no_alias = api(member).post(url, {**by_alias, "alias": "production"}, format="json")
    assert no_alias.status_code == 400 and "alias" in no_alias.json()["fields"]
    assert api(member).post(url, {**body, "output_name": ""}, format="json").status_code == 400
    assert api(member).post(url, {**body, "version": 7}, format="json").json()["fields"].keys() == {"version"}
    assert not Dataset.objects.filter(slug="tomorrow-predicted").exists()
    queued = api(member).post(url, body, format="json")
    assert queued.status_code == 202, queued.json()
    output = DatasetVersion.objects.get(pk=queued.json()["output_version"])
    job = wait_for_job(output.job, timeout=120)
    assert job.status == "succeeded", job.error_message
    output.refresh_from_db()
    assert output.status == "published" and output.row_count == 60


def test_batch_form_on_the_model_page(member, viewer, production, trained):
    fresh = _published(member, production, "Line 3 parts", inspections_csv(rows=40, seed=9))
    client = login(member)
    page = client.get(f"/models/{trained.pk}/").content.decode()
    assert 'id="batch-form"' in page
    form = {"dataset_version": str(fresh.pk), "version": "2", "output_name": ""}
    bad = client.post(f"/models/{trained.pk}/batch/", form)
    assert bad.status_code == 400 and 'id="batch-form"' in bad.content.decode()
    good = client.post(f"/models/{trained.pk}/batch/", {**form, "output_name": "Line 3 predicted"})
    output = Dataset.objects.get(slug="line-3-predicted")
    assert good.status_code == 302 and good["Location"] == f"/data/{output.pk}/"
    assert login(viewer).post(f"/models/{trained.pk}/batch/", form).status_code == 403
    assert PromotionRequest.objects.count() == 0


def test_the_data_lake_lineage_follows_runs_and_models_to_their_predictions(member, production, inspections, trained):
    fresh = _published(member, production, "New parts", inspections_csv(rows=30, seed=2))
    pending = services.batch_predict_start(
        actor=member, model=trained, version=trained.versions.get(number=2), dataset_version=fresh, output_name="Scored"
    )
    services.batch_predict_execute(pending.pk)
    edges = datalake_services.dataset_lineage(actor=member, dataset=inspections.dataset)["edges"]
    labels = {(e["from"].get("label"), e["to"].get("label")) for e in edges}
    runs = list(trained.runs.order_by("created_at"))
    assert ("production.inspections v1", str(runs[1])) in labels
    assert (str(runs[1]), "production/quality-predictor v2") in labels
    assert ("production/quality-predictor v2", "production.scored v1") in labels  # three steps from the data
    model_node = next(e["to"] for e in edges if e["to"]["type"] == "models_repo.modelversion")
    assert model_node["url"].startswith(f"/models/{trained.pk}/#v")
    page = login(member).get(f"/data/{inspections.dataset_id}/").content.decode()
    assert "Model versions" in page and "Training runs" in page
    # The output's own graph goes back through the model to the data it learnt from.
    back = datalake_services.dataset_lineage(actor=member, dataset=pending.dataset)["edges"]
    assert {e["from"]["label"] for e in back} >= {"production/quality-predictor v2", "production.new-parts v1"}


# --- the gate across runtimes ---------------------------------------------------------------


def test_an_uploaded_version_is_gated_on_productions_holdout(owner, checker, member, trained):
    import numpy as np
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from tests.models_repo.test_upload import _table, upload

    promotion = services.promotion_request(actor=member, version=trained.versions.get(number=2))
    services.promotion_approve(actor=checker, request=promotion, note="")
    frame, _labels = _table(rows=400, seed=8)
    truth = (frame["温度"] + 3 * frame["pressure"] < 86).to_numpy()  # the lake reads yes/no as booleans
    columns = frame[["温度", "pressure"]]
    good = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=100))]).fit(columns, truth)
    noise = np.random.default_rng(0).permutation(truth)
    bad = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(columns, noise)
    for name, estimator in (("good", good), ("bad", bad)):
        assert upload(owner, f"{name}.skops", sio.dumps(estimator)).status_code == 201
    production = trained.versions.get(number=2)
    checking = services.promotion_request(actor=member, version=trained.versions.get(number=3))
    assert checking.status == "checking" and checking.gate["job"]  # re-scoring is a job's work, not the request's
    passed = services.promotion_gate_run(checking.pk)
    assert passed.status == "pending", passed.gate
    assert passed.gate["holdout"] == "production" and passed.gate["production"] == production.metrics["f1_macro"]
    assert passed.gate["candidate"] >= passed.gate["production"] and "on its holdout" in passed.gate["reason"]
    failed = services.promotion_gate_run(services.promotion_request(actor=member, version=trained.versions.get(number=4)).pk)
    assert failed.status == "gate_failed" and "worse than production v2" in failed.gate["reason"]
    assert failed.gate["candidate"] < 0.8


def test_rescoring_from_predictions_matches_the_recorded_metrics(member, trained):
    from models_repo import serving

    v1, v2 = trained.versions.get(number=1), trained.versions.get(number=2)
    for metric in ("accuracy", "f1_macro", "roc_auc", "log_loss"):
        assert serving.score_on_holdout(v1, v1, metric) == pytest.approx(v1.metrics[metric], abs=1e-9), metric
    # v1 scored on v2's rows (the same rows here: same data, same seed) gives v1's own numbers.
    assert serving.score_on_holdout(v1, v2, "f1_macro") == pytest.approx(v1.metrics["f1_macro"])


def test_a_stored_model_this_installation_cannot_read_is_a_503_not_a_500(owner, member, predictor, caplog):
    from models_repo import serving

    blob = get_storage().put_stream(io.BytesIO(b"not a joblib file at all"))  # intact bytes, unreadable model
    ModelVersion.objects.create(
        model=predictor, number=1, flavor="sklearn", task="classification", artifact_sha256=blob.sha256,
        input_schema=[{"name": "温度", "type": "number", "nullable": True}],
    )  # fmt: skip
    serving._loaded.clear()
    response = client_for(member).post(
        "/api/v1/models/production/quality-predictor/predict?version=1", {"inputs": [{"温度": 70}]}, format="json"
    )
    assert response.status_code == 503 and response.json()["error"] == "artifact_unavailable", response.json()
    assert "could not be loaded" in response.json()["detail"]
    assert any("could not load" in r.getMessage() for r in caplog.records)


def test_a_gate_that_needs_rescoring_runs_as_a_job_and_the_inbox_shows_it(
    owner, checker, member, production, trained, celery_worker, dispatcher
):
    promotion = services.promotion_request(actor=member, version=trained.versions.get(number=1))
    services.promotion_approve(actor=checker, request=promotion, note="")
    # v3 learns from other data: its holdout rows are not production's, so production is re-scored on them.
    other = _published(member, production, "More inspections", inspections_csv(rows=150, seed=21))
    run = services.training_start(actor=member, dataset_version=other, spec=SPEC, registered_model=trained)
    assert services.training_execute(run.pk).status == "succeeded"
    page = login(member).post(f"/models/{trained.pk}/versions/3/promote/", {"reason": "new data"}, follow=True)
    assert "being scored against production" in page.content.decode()
    inbox = login(checker).get("/models/promotions/").content.decode()
    # Read after the inbox: if the request is still checking now, it was checking when the inbox was drawn.
    request = PromotionRequest.objects.get(version__number=3)
    assert request.gate["job"]  # the gate was queued, not run in the request
    if request.status == "checking":  # the worker may already have answered; while it has not, the inbox says so
        assert 'data-request-status="checking"' in inbox
    from lepton.jobs.models import Job

    job = wait_for_job(Job.objects.get(pk=request.gate["job"]), timeout=120)
    assert job.status == "succeeded", job.error_message
    request.refresh_from_db()
    assert request.status in ("pending", "gate_failed") and request.gate["production_version"] == 1
    assert request.gate["production"] is not None  # v1 scored on v3's rows
    assert services.promotions_settle() == 0


def test_a_request_left_checking_by_a_dead_gate_job_is_failed_by_the_periodic_pass(owner, checker, member, trained):
    from lepton.jobs.models import Job

    promotion = services.promotion_request(actor=member, version=trained.versions.get(number=1))
    services.promotion_approve(actor=checker, request=promotion, note="")
    ModelVersion.objects.filter(model=trained, number=2).update(holdout={**HOLDOUT, "indices": [0, 1, 2]})
    request = services.promotion_request(actor=member, version=trained.versions.get(number=2))
    assert request.status == "checking"
    assert services.promotions_settle() == 0  # its job is still queued
    Job.objects.filter(pk=request.gate["job"]).update(status="failed", error_message="worker lost")
    assert services.promotions_settle() == 1
    request.refresh_from_db()
    assert request.status == "gate_failed" and "worker lost" in request.gate["reason"]
    with pytest.raises(Conflict):
        services.promotion_approve(actor=checker, request=request, note="")
