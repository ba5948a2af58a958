"""The predict fast path (models_repo.api.fastpath): a repeat caller gets the full view's answer
without Django, and every change that could alter that answer sends the next request back to it."""

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.utils import timezone

from lepton import counters
from lepton.api.throttling import TokenRateThrottle
from lepton.services import membership_change_role, share_grant, token_create, token_revoke
from models_repo import services
from models_repo.api import fastpath
from models_repo.api.predict import _matrix_frame, _rows, _table
from models_repo.models import ModelVersion, PredictionLog
from tests.factories import MembershipFactory, UserFactory
from tests.models_repo.conftest import SPEC, model_in_production

URL = "/api/v1/models/production/quality-predictor/predict"
ROW = {"温度": 70.5, "pressure": 4.2}
NUMERIC = {**SPEC, "features": ["温度", "pressure"]}
SPLIT = {"dataframe_split": {"columns": ["温度", "pressure"], "data": [[70.5, 4.2], [80, 4.2], [60.0, 9]]}}


@pytest.fixture
def served(owner, member, checker, inspections, production):
    """A forest on two numeric columns in production (matrix bodies take the column-wise checks)."""
    return model_in_production(
        owner=owner, member=member, checker=checker, dataset_version=inspections, department=production, spec=NUMERIC
    )


@pytest.fixture
def app(monkeypatch, settings):
    """lepton.wsgi's layering over a real WSGIHandler; the test's transaction outlives each request
    (as in Django's test client, which disconnects the same handlers)."""
    settings.LEPTON_PREDICTION_LOG_SAMPLE = 0.0
    monkeypatch.setattr(fastpath, "close_old_connections", lambda: None)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield fastpath.PredictFastPath(WSGIHandler())
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def secret(member):
    return token_create(actor=member, name="line-3", scopes=["predict"])[1]


class Answer:
    def __init__(self, status, headers, body, fast):
        self.status_code, self.headers, self.content, self.fast = status, headers, body, fast

    def json(self):
        return json.loads(self.content)


def post(app, secret, body, query="", raw=None, **headers):
    """One request through the WSGI stack; `fast` says whether the fast path answered it."""
    data = raw if raw is not None else json.dumps(body).encode()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    path = URL + (f"?{query}" if query else "")
    environ = RequestFactory().generic("POST", path, data, content_type="application/json", **auth, **headers).environ
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

    before = fastpath.SERVED._value.get()
    content = b"".join(app(environ, start_response))
    return Answer(seen["status"], seen["headers"], content, fastpath.SERVED._value.get() > before)


def test_a_repeat_request_gets_the_full_views_answer_without_a_query(app, secret, served, django_assert_num_queries):
    first = post(app, secret, SPLIT)
    assert first.status_code == 200 and not first.fast, first.content
    with django_assert_num_queries(0):
        second = post(app, secret, SPLIT)
    assert second.status_code == 200 and second.fast
    first_body, second_body = first.json(), second.json()
    assert first_body.pop("prediction_id") != second_body.pop("prediction_id")  # each request its own id
    assert second_body == first_body and list(second_body) == list(first_body)
    assert second.json()["predictions"] == [True, False, False] and second.json()["alias"] == "production"
    assert second.json()["runtime"] in ("onnx", "native")
    same = {k: v for k, v in first.headers.items() if k != "Content-Length"}
    assert {k: v for k, v in second.headers.items() if k != "Content-Length"} == same


@pytest.mark.parametrize(
    "body",
    [
        SPLIT,
        {"instances": [[70.5, 4.2], [80, 4.2], [60.0, 9]]},
        {"inputs": [ROW, {"温度": 80, "pressure": 4.2}, {"温度": 60.0, "pressure": 9}]},
        {"dataframe_records": [ROW, {"温度": 80, "pressure": 4.2}, {"温度": 60.0, "pressure": "9"}]},
        {"inputs": {"温度": [70.5, 80, 60.0], "pressure": [4.2, 4.2, 9]}},
    ],
    ids=["split", "instances", "inputs", "records-with-a-numeric-string", "columns"],
)
def test_every_body_shape_is_answered_fast_and_alike(app, secret, served, body):
    assert post(app, secret, SPLIT).status_code == 200
    answer = post(app, secret, body)
    assert answer.fast and answer.json()["predictions"] == [True, False, False]


def test_the_language_header_follows_the_client_as_djangos_does(app, secret, served):
    slow = post(app, secret, SPLIT, HTTP_ACCEPT_LANGUAGE="zh-hans")
    fast = post(app, secret, SPLIT, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert fast.fast and fast.headers["Content-Language"] == slow.headers["Content-Language"] == "zh-hans"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"instances": [[70.5, True]]}, "inputs.0.pressure"),
        ({"instances": [[70.5, None]]}, "inputs.0.pressure"),
        ({"instances": [[70.5, "high"]]}, "inputs.0.pressure"),
        ({"instances": [[70.5]]}, "inputs.0"),
        ({"dataframe_split": {"columns": ["温度", "pressure"], "data": [[1, 2], [3]]}}, "dataframe_split.data.1"),
        ({"inputs": [{"温度": 70.5}]}, "inputs.0.pressure"),
        ({"inputs": []}, "inputs"),
    ],
)
def test_bad_input_after_a_grant_gets_the_full_views_400(app, secret, served, body, field):
    assert post(app, secret, SPLIT).status_code == 200
    answer = post(app, secret, body)
    assert answer.status_code == 400 and not answer.fast
    assert field in answer.json()["fields"], answer.json()


def test_a_body_that_is_not_json_gets_the_full_views_400(app, secret, served):
    assert post(app, secret, SPLIT).status_code == 200
    answer = post(app, secret, None, raw=b'{"inputs": [')
    assert answer.status_code == 400 and not answer.fast


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json_on_either_path(app, secret, served, constant):
    assert post(app, secret, SPLIT).status_code == 200
    answer = post(app, secret, None, raw=b'{"instances": [[70.5, %s]]}' % constant)
    assert answer.status_code == 400 and not answer.fast and "JSON" in answer.json()["detail"]


def test_a_revoked_token_is_refused_at_the_next_request(app, member, secret, served, django_capture_on_commit_callbacks):
    assert post(app, secret, SPLIT).status_code == 200 and post(app, secret, SPLIT).fast
    token = member.api_tokens.get(name="line-3")
    with django_capture_on_commit_callbacks(execute=True):
        token_revoke(actor=member, token=token)
    answer = post(app, secret, SPLIT)
    assert answer.status_code == 401 and not answer.fast


def test_a_moved_alias_answers_with_its_new_version_at_once(
    app, owner, member, secret, served, inspections, django_capture_on_commit_callbacks
):
    run = services.training_execute(
        services.training_start(actor=member, dataset_version=inspections, spec=NUMERIC, registered_model=served).pk
    )
    v1, v2 = served.versions.get(number=1), ModelVersion.objects.get(run=run)
    services.alias_set(actor=owner, model=served, alias="staging", version=v1)
    assert post(app, secret, SPLIT, query="alias=staging").json()["version"] == 1
    assert post(app, secret, SPLIT, query="alias=staging").fast
    with django_capture_on_commit_callbacks(execute=True):
        services.alias_set(actor=owner, model=served, alias="staging", version=v2)
    answer = post(app, secret, SPLIT, query="alias=staging")
    assert answer.json()["version"] == 2 and not answer.fast
    assert post(app, secret, SPLIT, query="alias=staging").fast


def test_a_lost_role_and_an_archived_model_are_refused_at_the_next_request(
    app, owner, member, secret, served, production, django_capture_on_commit_callbacks
):
    assert post(app, secret, SPLIT).status_code == 200 and post(app, secret, SPLIT).fast
    membership = member.memberships.get(department=production)
    with django_capture_on_commit_callbacks(execute=True):
        membership_change_role(actor=owner, membership=membership, role="viewer")
    assert post(app, secret, SPLIT).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        membership_change_role(actor=owner, membership=membership, role="member")
    assert post(app, secret, SPLIT).status_code == 200 and post(app, secret, SPLIT).fast
    with django_capture_on_commit_callbacks(execute=True):
        services.model_archive(actor=owner, model=served)
    answer = post(app, secret, SPLIT)
    assert answer.status_code == 409 and answer.json()["error"] == "archived"


def test_anonymous_outsider_and_other_scopes_never_take_the_fast_path(app, member, outsider, secret, served):
    assert post(app, secret, SPLIT).status_code == 200
    assert post(app, None, SPLIT).status_code == 401
    outsider_secret = token_create(actor=outsider, name="o", scopes=["predict"])[1]
    assert [post(app, outsider_secret, SPLIT).status_code for _ in range(2)] == [404, 404]
    read_only = token_create(actor=member, name="r", scopes=["read"])[1]
    assert [post(app, read_only, SPLIT).status_code for _ in range(2)] == [403, 403]
    assert post(app, secret, SPLIT, query="version=x").status_code == 400
    assert post(app, secret, SPLIT, query="alias=production&alias=staging").fast is False


def test_one_rate_limit_counts_both_paths_once(app, secret, served, monkeypatch):
    monkeypatch.setattr(TokenRateThrottle, "rate", "3/min", raising=False)
    monkeypatch.setattr(counters, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))  # one window throughout
    assert post(app, secret, SPLIT).status_code == 200  # full view: 1
    assert post(app, secret, SPLIT).fast  # fast: 2
    counters.bump()  # the grant is stale: counted here (3), answered by the full view, not counted again
    third = post(app, secret, SPLIT)
    assert third.status_code == 200 and not third.fast
    fourth = post(app, secret, SPLIT)
    assert fourth.status_code == 429 and int(fourth.headers["Retry-After"]) > 0


def test_a_grant_ends_with_its_token_and_with_the_share_that_grants_it(app, owner, quality, secret, served, member, settings):
    settings.LEPTON_PREDICT_GRANT_SECONDS = 3600
    soon = timezone.now() + timedelta(minutes=10)
    expiring = token_create(actor=member, name="until-soon", scopes=["predict"], expires_at=soon)[1]
    assert post(app, expiring, SPLIT).status_code == 200
    grant = next(g for g in fastpath.grants.items.values() if g.token_id == member.api_tokens.get(name="until-soon").pk)
    assert grant.deadline == pytest.approx(soon.timestamp())

    guest = UserFactory(username="quinn-quality")
    MembershipFactory(user=guest, department=quality, role="member")
    until = timezone.now() + timedelta(minutes=5)
    share_grant(actor=owner, obj=served, department=quality, level="use", expires_at=until)
    guest_secret = token_create(actor=guest, name="g", scopes=["predict"])[1]
    assert post(app, guest_secret, SPLIT).status_code == 200
    grant = next(g for g in fastpath.grants.items.values() if g.token_id == guest.api_tokens.get().pk)
    assert grant.deadline == pytest.approx(until.timestamp())


def test_an_expired_grant_goes_back_to_the_full_view(app, secret, served, settings):
    settings.LEPTON_PREDICT_GRANT_SECONDS = 0
    assert post(app, secret, SPLIT).status_code == 200
    assert not post(app, secret, SPLIT).fast


def test_every_fast_prediction_is_logged_with_its_id_and_sampled_inputs(app, secret, served, settings):
    from models_repo.api.predict import prediction_logs

    settings.LEPTON_PREDICTION_LOG_SAMPLE = 0.0
    assert post(app, secret, SPLIT).status_code == 200
    settings.LEPTON_PREDICTION_LOG_SAMPLE = 1.0
    answer = post(app, secret, SPLIT)
    assert answer.fast
    prediction_logs.flush()
    first, fast = PredictionLog.objects.order_by("created_at")
    assert first.inputs == [] and first.outputs == [True, False, False]  # not sampled: logged without inputs
    assert str(fast.prediction_id) == answer.json()["prediction_id"]
    assert fast.rows == 3 and fast.inputs[0] == {"温度": 70.5, "pressure": 4.2} and fast.outputs == [True, False, False]


def test_the_wsgi_application_is_wrapped_when_the_fast_path_is_on():
    from lepton import wsgi
    from monitoring.traffic import TrafficLayer

    assert isinstance(wsgi.application, TrafficLayer)  # outermost: it counts the fast path's answers too
    assert isinstance(wsgi.application.app, fastpath.PredictFastPath)


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["温度", "pressure"], "data": [[70.5, 4.2], [80, 4]]}},
        {"instances": [[70.5, 4.2], [80, 4]]},
        {"inputs": [[70.5, 4.2], [80, 4]]},
    ],
)
def test_a_matrix_reads_to_the_numbers_the_per_value_checks_read(body):
    schema = [{"name": "温度", "type": "number", "nullable": False}, {"name": "pressure", "type": "integer"}]
    fast = _matrix_frame(body, schema)
    slow, ignored = _table(_rows(body), schema)
    assert fast is not None and ignored == []
    assert fast.to_numpy(dtype=float).tolist() == slow.to_numpy(dtype=float).tolist()
    assert list(fast.columns) == list(slow.columns)


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [[70.5, True]]},
        {"instances": [[70.5, None]]},
        {"instances": [[70.5, "4"]]},
        {"instances": [[70.5, float("nan")]]},
        {"instances": [[70.5]]},
        {"instances": []},
        {"dataframe_split": {"columns": ["pressure", "温度"], "data": [[1, 2]]}},
        {"dataframe_records": [{"温度": 1, "pressure": 2}]},
        {"inputs": [[1, 2]], "instances": [[1, 2]]},
    ],
)
def test_anything_but_a_plain_matrix_is_left_to_the_per_value_checks(body):
    schema = [{"name": "温度", "type": "number"}, {"name": "pressure", "type": "number"}]
    assert _matrix_frame(body, schema) is None


def test_a_fault_of_the_fast_path_still_gets_the_full_views_answer(app, secret, served, monkeypatch):
    assert post(app, secret, SPLIT).status_code == 200

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(fastpath.PredictFastPath, "_predict", staticmethod(broken))
    answer = post(app, secret, SPLIT)
    assert answer.status_code == 200 and not answer.fast and answer.json()["predictions"] == [True, False, False]
