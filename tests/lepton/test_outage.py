"""A browser page while the database cannot be reached: a 503 page with Retry-After that says so, rendered
without a query, in the reader's language (lepton.middleware.DatabaseUnavailableMiddleware).

The outage is simulated by making every query fail the way a lost connection does (Django's
OperationalError); tests/faults/test_postgres_restart.py stops a real PostgreSQL.
"""

import re

import pytest
from django.conf import settings
from django.db import OperationalError
from django.db.backends import utils

from lepton.models import AuditEvent, Profile
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

MESSAGE = "Lepton cannot reach its database right now"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def outage(monkeypatch):
    """From here on, every query fails as with the database gone; the queries tried are counted."""
    tried = []

    def refuse(self, sql, *args, **kwargs):
        tried.append(sql)
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(utils.CursorWrapper, "execute", refuse)
    monkeypatch.setattr(utils.CursorWrapper, "executemany", refuse)
    return tried


@pytest.fixture
def signed_in(client):
    membership = MembershipFactory()
    client.force_login(membership.user)
    client.raise_request_exception = False  # answer as a server would, not re-raise into the test
    return client


@pytest.mark.parametrize("debug", [False, True])
def test_a_page_while_the_database_is_unreachable_is_a_503_that_says_so(signed_in, outage, settings, debug):
    settings.DEBUG = debug  # the same page with the debug page on: the fault test's web server runs so
    response = signed_in.get("/")
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "no-store" in response["Cache-Control"]
    assert MESSAGE in html and "The database cannot be reached" in html
    assert "Something went wrong" not in html
    assert outage, "the page never reached the database, so no outage was simulated"


def test_a_failing_view_gives_the_503_page_too(signed_in, monkeypatch):
    # The session and the user load; the view's own query is the one that fails.
    from lepton import web_views

    def department_lost(request):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(web_views, "current_department", department_lost)
    response = signed_in.get("/")
    assert response.status_code == 503 and MESSAGE in response.content.decode()


def test_the_503_page_is_in_chinese_when_the_language_cookie_says_so(signed_in, outage):
    signed_in.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = signed_in.get("/")
    html = response.content.decode()
    assert response.status_code == 503 and response["Content-Language"] == "zh-hans"
    assert CJK.search(html) and MESSAGE not in html and "%(" not in html


def test_a_form_cut_off_halfway_leaves_nothing_half_written(signed_in, monkeypatch):
    # The language switcher writes the profile, then its audit row: the database goes away in between.
    user = signed_in.session["_auth_user_id"]
    execute = utils.CursorWrapper.execute

    def gone_at_the_audit_row(self, sql, *args, **kwargs):
        if "lepton_auditevent" in sql:
            raise OperationalError("server closed the connection unexpectedly")
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "execute", gone_at_the_audit_row)
    response = signed_in.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    monkeypatch.undo()
    assert response.status_code == 503 and MESSAGE in response.content.decode()
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies  # the switcher's answer was not sent
    assert not Profile.objects.filter(user_id=user, language="zh-hans").exists()
    assert not AuditEvent.objects.filter(action="profile.language").exists()


def test_an_api_call_failing_outside_the_view_gets_the_api_503(signed_in, outage):
    # A session cookie makes the profile language load in a middleware, before DRF's own handler could answer.
    response = signed_in.get("/api/v1/jobs/")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json()["error"] == "unavailable"


def test_other_errors_keep_the_500_page(signed_in, monkeypatch):
    from lepton import web_views

    def broken(request):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web_views, "current_department", broken)
    response = signed_in.get("/")
    assert response.status_code == 500 and "Retry-After" not in response
    assert MESSAGE not in response.content.decode()


def test_the_503_page_renders_without_a_query(rf, outage, django_assert_num_queries):
    from lepton.views import database_unavailable

    with django_assert_num_queries(0):
        response = database_unavailable(rf.get("/data/"))
    assert response.status_code == 503 and MESSAGE in response.content.decode()
    assert not outage
