"""Request traffic: the WSGI layer counts every request per minute; the platform's numbers sum them."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError

from monitoring import selectors, services, traffic
from monitoring.models import ActiveUser, TrafficMinute


def _app(status: str, fail: bool = False):
    def app(environ, start_response):
        if fail:
            raise RuntimeError("boom")
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def _call(layer, path):
    seen = []
    try:
        body = layer({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: seen.append(status))
    except RuntimeError:
        return None
    return b"".join(body)


def test_the_layer_counts_requests_by_kind_status_and_latency(db):
    recorder = traffic.Counts(flush_seconds=3600)
    for path, status in (("/api/v1/me", "200 OK"), ("/api/v1/x", "404 Not Found"), ("/data/", "200 OK")):
        assert _call(traffic.TrafficLayer(_app(status), recorder), path) == b"ok"
    assert _call(traffic.TrafficLayer(_app("500 Internal Server Error", fail=True), recorder), "/api/v1/y") is None
    _call(traffic.TrafficLayer(_app("200 OK"), recorder), "/static/css/lepton.css")  # not a page: not counted
    _call(traffic.TrafficLayer(_app("200 OK"), recorder), "/healthz")
    assert not TrafficMinute.objects.exists()  # nothing written before the flush
    assert recorder.flush() == 2
    api = TrafficMinute.objects.get(kind="api")
    assert (api.requests, api.errors_4xx, api.errors_5xx) == (3, 1, 1)
    assert sum(getattr(api, f) for f in traffic.BUCKET_FIELDS) == 3
    assert TrafficMinute.objects.get(kind="web").requests == 1


def test_a_failed_write_drops_the_batch_and_never_raises(db, monkeypatch):
    recorder = traffic.Counts(flush_seconds=3600)
    recorder.add("api", 200, 3.0)

    def refuse(*args, **kwargs):
        raise DatabaseError("database is down")

    monkeypatch.setattr(TrafficMinute.objects, "bulk_create", refuse)
    assert recorder.flush() == 0 and recorder.rows == {}


def test_platform_traffic_sums_every_process_rows_and_gives_percentiles(db):
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    for process in range(3):  # three processes wrote the same minute
        recorder = traffic.Counts(flush_seconds=3600)
        for k in range(100):
            recorder.add("api", 500 if k == 0 else 200, 3.0 if k < 90 else 40.0, at=now.timestamp() + process)
        recorder.flush()
    data = selectors.traffic(now - timedelta(hours=3), now + timedelta(minutes=5))
    assert data["requests"] == 300 and data["errors_5xx_total"] == 3
    hour = data["x"].index(now.replace(minute=0).isoformat())
    assert data["rate"][hour] == pytest.approx(300 / 60)
    assert data["errors_5xx"][hour] == pytest.approx(0.01)
    assert data["p50"][hour] <= 5.0 and 25.0 <= data["p99"][hour] <= 50.0


def test_active_people_are_recorded_once_a_day_without_a_query_per_request(member, rf):
    from django.http import HttpResponse

    middleware = traffic.ActiveUsers(lambda request: HttpResponse())
    for _ in range(3):
        request = rf.get("/")
        request.user = member
        middleware(request)
    assert not ActiveUser.objects.exists() and middleware.flush() == 1
    middleware(request)
    assert middleware.flush() == 0  # written already today
    assert ActiveUser.objects.filter(user=member).count() == 1


def test_old_traffic_counts_expire(db, settings):
    settings.LEPTON_TRAFFIC_RETENTION_DAYS = 10
    now = datetime.now(UTC)
    TrafficMinute.objects.create(minute=now - timedelta(days=11), kind="api", requests=1)
    TrafficMinute.objects.create(minute=now - timedelta(days=9), kind="api", requests=1)
    assert services.traffic_expire(now) == 1
    assert TrafficMinute.objects.count() == 1


def test_counts_are_written_by_a_thread_once_the_minute_has_passed(transactional_db):
    recorder = traffic.Counts(flush_seconds=0.0)
    layer = traffic.TrafficLayer(_app("200 OK"), recorder)
    _call(layer, "/api/v1/me")
    deadline = time.monotonic() + 10
    while not TrafficMinute.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert TrafficMinute.objects.get().requests == 1
