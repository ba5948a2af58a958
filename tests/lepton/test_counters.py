"""lepton.counters: fixed-window rate limits and the access generation, on Redis and on the embedded file cache."""

from types import SimpleNamespace

import pytest

from lepton import counters
from lepton.models import ApiToken
from lepton.services import token_create


@pytest.fixture(params=["redis", "file"])
def backend(request, settings, tmp_path):
    if request.param == "file":
        settings.REDIS_URL = ""
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
        }
    elif not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    return request.param


def at(monkeypatch, moment: float) -> None:
    monkeypatch.setattr(counters, "time", SimpleNamespace(time=lambda: moment))


def test_a_window_allows_its_limit_then_says_how_long_to_wait(backend, monkeypatch):
    at(monkeypatch, 1_800_000_010.0)  # 10 s into a minute
    assert [counters.rate_hit("token:1", "2/min")[0] for _ in range(2)] == [None, None]
    wait, _ = counters.rate_hit("token:1", "2/min")
    assert wait == pytest.approx(50.0)
    assert counters.rate_hit("token:2", "2/min")[0] is None  # each identity counts alone
    at(monkeypatch, 1_800_000_060.0)  # the next window
    assert counters.rate_hit("token:1", "2/min")[0] is None


def test_the_generation_moves_on_with_each_bump_and_comes_with_a_hit(backend):
    before = counters.generation_current()
    counters.bump()
    counters.bump()
    assert counters.generation_current() == before + 2
    assert counters.rate_hit("token:3", "5/s", with_generation=True) == (None, before + 2)
    assert counters.rate_hit("token:3", "5/s") == (None, None)


def test_a_watched_change_moves_the_generation_only_when_it_commits(member, django_capture_on_commit_callbacks):
    before = counters.generation_current()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        token, _secret = token_create(actor=member, name="svc", scopes=["read"])
    assert counters.generation_current() == before and callbacks  # not before the commit
    for callback in callbacks:
        callback()
    assert counters.generation_current() > before
    moved = counters.generation_current()
    ApiToken.objects.filter(pk=token.pk).update(name="renamed")  # an update sends no signal: nothing the fast path reads
    assert counters.generation_current() == moved


def test_rates_read_like_drfs(backend):
    assert counters.parse_rate("600/min") == (600, 60)
    assert counters.parse_rate("10/s") == (10, 1)
    assert counters.parse_rate("1000/hour") == (1000, 3600)
    assert counters.parse_rate("5/day") == (5, 86400)


def test_an_unreachable_redis_allows_the_request_and_gives_no_generation(settings, caplog):
    from tests.faults.conftest import free_port

    # A port nothing listens on: Redis is down (tests/faults/test_redis_restart.py restarts a real one).
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert counters.rate_hit("token:1", "1/min", with_generation=True) == (None, None)
    assert counters.rate_hit("token:1", "1/min") == (None, None)  # not counted: still allowed
    assert counters.generation_current() is None
    assert "Redis is unreachable" in caplog.text
