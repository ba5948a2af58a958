"""schemathesis over the OpenAPI schema with a member's token (a bounded run; bench/api_fuzz.py runs long):
no 5xx, and every answer conforms to the schema (status codes, content types, bodies)."""

import os

import pytest
import schemathesis
from django.db import transaction
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from lepton import services as core_services
from monitoring.traffic import counts

# A few examples per operation in `make test` (about 30 s); bench/api_fuzz.py sets many more.
EXAMPLES = int(os.environ.get("LEPTON_FUZZ_EXAMPLES", "4"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _first_lines(exc) -> str:
    text = str(exc)
    for sub in getattr(exc, "exceptions", ()):
        text += " | " + str(sub)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:600]


@pytest.fixture
def api(member, production, monkeypatch):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from lepton.wsgi import application

    # As Django's test client: the WSGI handler must not close the test's connection (its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    monkeypatch.setattr("models_repo.api.fastpath.close_old_connections", lambda: None)  # the predict fast path's own
    # The WSGI stack counts traffic and flushes it from a thread, outside the test's transaction:
    # kept in memory here and dropped after.
    flush_seconds, counts.flush_seconds = counts.flush_seconds, float("inf")
    _token, secret = core_services.token_create(actor=member, name="fuzz", scopes=["read", "write", "predict"])
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application, headers=headers)
    yield schema, headers
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    counts.flush_seconds = flush_seconds
    with counts.lock:
        counts.rows.clear()


def test_every_operation_answers_without_5xx_and_as_documented(api):
    schema, headers = api
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:

        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
        )  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case):
            with transaction.atomic():  # each call on its own: a failed one cannot poison the next
                response = case.call(headers=headers)
                transaction.set_rollback(True)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises groups; collected and reported together
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{operation.label}: {_first_lines(exc)}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "query",
    [
        "queued_after=1503-10-15T08:12:16%2B21:33",  # an offset PostgreSQL refuses (found by the run above)
        "queued_before=0001-01-01T00:00:00%2B01:00",  # out of range once in UTC
        "queued_after=yesterday",
    ],
)
def test_impossible_date_times_in_filters_are_a_400_naming_the_field(member, query):
    from rest_framework.test import APIClient

    _token, secret = core_services.token_create(actor=member, name="dates", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    answer = client.get(f"/api/v1/jobs/?{query}")
    assert answer.status_code == 400, answer.content
    assert set(answer.json()["fields"]) <= {"queued_after", "queued_before"} and answer.json()["fields"]


def test_an_api_path_no_route_matches_answers_the_apis_json_404(member):
    from django.test import Client

    client = Client()
    client.force_login(member)
    for path in ("/api/v1/nothing-here/", "/api/v1/models/not-a-uuid/aliases/production/"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer["Content-Type"] == "application/json"
        assert answer.json()["error"] == "not_found"
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")
