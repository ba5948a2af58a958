"""POST/GET /api/v1/models/<department>/<model>/feedback: scoring, bad input, access, the audit, the list."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from lepton.models import AuditEvent
from lepton.services import share_grant, token_create
from models_repo.models import ModelVersion, PredictionLog
from monitoring.engine import feedback as engine
from monitoring.models import PredictionFeedback
from tests.monitoring.alerts import production_model

URL = "/api/v1/models/production/quality-predictor/feedback"


def api(user=None, scopes=None):
    client = APIClient()
    if user is not None and scopes is not None:
        _token, secret = token_create(actor=user, name=f"svc-{'-'.join(scopes)}", scopes=list(scopes))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def classifier(owner, production):
    model, version = production_model(owner, production)
    return model, version


def logged(version, outputs, **values):
    return PredictionLog.objects.create(
        model=version.model, version=version, rows=values.pop("rows", len(outputs)), outputs=outputs, **values
    )


# --- the pure scoring -------------------------------------------------------------------------


def test_classes_count_the_rows_predicted_right():
    found = engine.score("classification", [True, False, True], [True, True, True])
    assert found == engine.Score(rows=3, correct=2)
    assert engine.score("image_classification", ["ok", "scratch"], ["ok", "ok"]).correct == 1


def test_numbers_sum_absolute_and_squared_errors_and_lists_compare_item_by_item():
    found = engine.score("regression", [1.0, 2.0, 4.0], [1.5, 2.0, 1.0])
    assert (found.rows, found.abs_error_sum, found.squared_error_sum) == (3, 3.5, 9.25)
    horizon = engine.score("forecasting", [[1.0, 2.0]], [[2.0, 0.0]])
    assert (horizon.abs_error_sum, horizon.squared_error_sum) == (3.0, 5.0)


def test_rows_past_the_logged_outputs_are_checked_but_not_scored():
    assert engine.score("regression", [1.0], [2.0, 3.0]) == engine.Score(rows=1, abs_error_sum=1.0, squared_error_sum=1.0)
    with pytest.raises(engine.FeedbackProblem) as problem:
        engine.score("regression", [1.0], [2.0, "x"])
    assert (problem.value.field, problem.value.code) == ("actual.1", engine.WRONG_TYPE)


@pytest.mark.parametrize(
    "task, predicted, actual, field, code",
    [
        ("classification", [True, False], [True, "no"], "actual.1", engine.WRONG_TYPE),
        ("classification", ["ok"], [None], "actual.0", engine.WRONG_TYPE),
        ("regression", [1.0, 2.0], [1.0, True], "actual.1", engine.WRONG_TYPE),
        ("regression", [1.0], [float("inf")], "actual.0", engine.NOT_FINITE),
        ("forecasting", [[1.0, 2.0]], [[1.0]], "actual.0", engine.WRONG_LENGTH),
    ],
)
def test_a_value_of_the_wrong_kind_names_its_row(task, predicted, actual, field, code):
    with pytest.raises(engine.FeedbackProblem) as problem:
        engine.score(task, predicted, actual)
    assert (problem.value.field, problem.value.code) == (field, code)


def test_a_single_value_stands_for_a_one_row_request_only():
    assert engine.as_rows("ok", 1) == ["ok"]
    with pytest.raises(engine.FeedbackProblem) as problem:
        engine.as_rows("ok", 2)
    assert problem.value.params == {"given": 1, "rows": 2}


# --- the API ----------------------------------------------------------------------------------


def test_anonymous_gets_401_and_nothing_is_recorded(classifier):
    _model, version = classifier
    log = logged(version, [True])
    response = api().post(URL, {"prediction_id": str(log.prediction_id), "actual": [True]}, format="json")
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"
    assert api().get(URL).status_code == 401
    assert not PredictionFeedback.objects.exists()


def test_outsider_gets_404_for_a_model_of_another_department(classifier, outsider):
    _model, version = classifier
    log = logged(version, [True])
    response = api(outsider).post(URL, {"prediction_id": str(log.prediction_id), "actual": [True]}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert api(outsider).get(URL).status_code == 404
    assert not PredictionFeedback.objects.exists()


def test_member_posts_ground_truth_with_a_predict_token_and_it_is_scored_and_audited(classifier, member):
    model, version = classifier
    log = logged(version, [True, False, True])
    client = api(member, scopes=["predict"])
    response = client.post(URL, {"prediction_id": str(log.prediction_id), "actual": [True, True, True]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["rows"], body["correct"], body["abs_error_sum"], body["version"]) == (3, 2, None, 1)
    feedback = PredictionFeedback.objects.get()
    assert feedback.log == log and feedback.model == model and feedback.predicted_at == log.created_at
    assert feedback.created_by == member and feedback.actual == [True, True, True]
    event = AuditEvent.objects.get(action="prediction.feedback")
    assert event.actor == member and event.department == model.department
    assert event.changes["prediction_id"] == str(log.prediction_id) and event.changes["correct"] == 2


def test_regression_feedback_keeps_the_error_sums(owner, production, member):
    model, version = production_model(owner, production, name="Yield")
    ModelVersion.objects.filter(pk=version.pk).update(task="regression")
    log = logged(ModelVersion.objects.get(pk=version.pk), [10.0, 20.0])
    response = api(member).post(
        "/api/v1/models/production/yield/feedback", {"prediction_id": str(log.prediction_id), "actual": [12.0, 17.0]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    assert (response.json()["abs_error_sum"], response.json()["squared_error_sum"], response.json()["correct"]) == (
        5.0, 13.0, None,
    )  # fmt: skip


def test_a_token_without_the_predict_scope_is_refused(classifier, member):
    _model, version = classifier
    log = logged(version, [True])
    response = api(member, scopes=["read"]).post(URL, {"prediction_id": str(log.prediction_id), "actual": True}, format="json")
    assert response.status_code == 403 and "predict" in response.json()["detail"]
    assert not PredictionFeedback.objects.exists()


def test_a_viewer_may_not_post_feedback_but_a_use_share_may(classifier, viewer, owner, outsider, quality):
    model, version = classifier
    log = logged(version, [True])
    body = {"prediction_id": str(log.prediction_id), "actual": True}
    assert api(viewer).post(URL, body, format="json").status_code == 403
    share_grant(actor=owner, obj=model, department=quality, level="use")
    assert api(outsider).post(URL, body, format="json").status_code == 201


def test_an_unknown_prediction_id_is_404_and_one_of_another_model_too(classifier, owner, production, member):
    _model, version = classifier
    _other, other_version = production_model(owner, production, name="Other")
    foreign = logged(other_version, [True])
    for prediction_id in (uuid.uuid4(), foreign.prediction_id):
        response = api(member).post(URL, {"prediction_id": str(prediction_id), "actual": [True]}, format="json")
        assert response.status_code == 404 and "no prediction with this id" in response.json()["detail"]
    assert not PredictionFeedback.objects.exists()


@pytest.mark.parametrize(
    "actual, field, words",
    [
        ([True], "actual", "the prediction had 2, this gives 1"),
        (True, "actual", "the prediction had 2, this gives 1"),
        ([True, "yes"], "actual.1", "of the predictions' type (boolean), not text"),
        ([True, 3.5], "actual.1", "(boolean), not number"),
    ],
)
def test_feedback_of_the_wrong_length_or_type_is_400_with_the_field(classifier, member, actual, field, words):
    _model, version = classifier
    log = logged(version, [True, False])
    response = api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": actual}, format="json")
    assert response.status_code == 400
    assert words in response.json()["fields"][field][0]
    assert not PredictionFeedback.objects.exists() and not AuditEvent.objects.filter(action="prediction.feedback").exists()


@pytest.mark.parametrize(
    "body, field",
    [({"actual": [True]}, "prediction_id"), ({"prediction_id": "nope", "actual": [True]}, "prediction_id"), ({}, "actual")],
)
def test_a_malformed_body_is_400_with_the_field(classifier, member, body, field):
    response = api(member).post(URL, body, format="json")
    assert response.status_code == 400 and field in response.json()["fields"]


def test_a_refused_request_has_nothing_to_compare(classifier, member):
    _model, version = classifier
    log = logged(version, [], rows=0, status_code=400, error="invalid_input")
    response = api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": []}, format="json")
    assert response.status_code == 400 and "was refused (status 400)" in response.json()["fields"]["prediction_id"][0]


def test_a_second_feedback_for_the_same_prediction_is_409_and_the_first_stands(classifier, member):
    _model, version = classifier
    log = logged(version, [True])
    first = api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": [True]}, format="json")
    assert first.status_code == 201
    again = api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": [False]}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "feedback_exists"
    assert PredictionFeedback.objects.get().correct == 1
    assert AuditEvent.objects.filter(action="prediction.feedback").count() == 1


def test_feedback_outlives_its_log(classifier, member):
    _model, version = classifier
    log = logged(version, [True])
    api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": [False]}, format="json")
    log.delete()
    feedback = PredictionFeedback.objects.get()
    assert feedback.log is None and feedback.correct == 0


def test_the_list_is_paginated_newest_prediction_first_in_a_fixed_number_of_queries(
    classifier, member, viewer, django_assert_num_queries
):
    _model, version = classifier
    logs = [logged(version, [True]) for _ in range(3)]
    for log in logs:
        api(member).post(URL, {"prediction_id": str(log.prediction_id), "actual": [True]}, format="json")
    client = api(viewer, scopes=["read"])
    client.get(URL)  # warms the token and role caches
    with CaptureQueriesContext(connection) as one_page:
        response = client.get(URL + "?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert [r["prediction_id"] for r in body["results"]] == [str(logs[2].prediction_id), str(logs[1].prediction_id)]
    assert body["results"][0]["created_by"] == "mia-member"
    with django_assert_num_queries(len(one_page)):
        assert len(client.get(URL + "?page_size=50").json()["results"]) == 3


def test_the_feedback_endpoint_is_in_the_schema(member):
    response = api(member).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    operations = response.json()["paths"]["/api/v1/models/{department}/{model}/feedback"]
    assert set(operations) >= {"get", "post"} and "409" in operations["post"]["responses"]


def test_a_prediction_through_the_api_takes_its_ground_truth_and_the_dashboard_scores_it(
    owner, member, checker, inspections, production
):
    from django.utils import timezone

    from models_repo.api.predict import prediction_logs
    from monitoring import selectors
    from tests.models_repo.conftest import model_in_production

    model = model_in_production(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)
    client = api(member, scopes=["predict"])
    rows = [{"温度": 95.0, "pressure": 5.0, "line": "L1"}, {"温度": 60.0, "pressure": 4.0, "line": "L2"}]
    answer = client.post("/api/v1/models/production/quality-predictor/predict", {"inputs": rows}, format="json")
    assert answer.status_code == 200, answer.json()
    predictions, prediction_id = answer.json()["predictions"], answer.json()["prediction_id"]
    prediction_logs.flush()
    response = client.post(URL, {"prediction_id": prediction_id, "actual": [predictions[0], not predictions[1]]}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["rows"], response.json()["correct"]) == (2, 1)
    now = timezone.now()
    perf = selectors.model_dashboard(member, model.pk, now - timedelta(hours=1), now)["performance"]
    assert perf["accuracy_total"] == 0.5 and perf["rows_total"] == 2
