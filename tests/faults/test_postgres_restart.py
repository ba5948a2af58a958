"""PostgreSQL restarts under a running platform: /healthz says 503 meanwhile, requests fail with
a clear 503 and change nothing (a browser page too: a 503 page that says the database is
unreachable, in the reader's language), and web, worker and dispatcher recover by themselves; the job
that was running ends exactly once.

The shared PostgreSQL is never touched: this test makes a cluster of its own (initdb, as the
`postgres` user), migrates it, and points gunicorn, a Celery worker and the dispatcher, each
its own process, at it (and at a throwaway Redis, so no other run's dispatcher is seen).
"""

import json
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.conftest import RUN_ID, SubprocessWorker, wait_for
from tests.faults.conftest import (
    PostgresServer,
    Process,
    RedisServer,
    free_port,
    have_postgres_tools,
    manage,
    platform_env,
    web_server,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not have_postgres_tools(), reason="needs PostgreSQL's initdb and pg_ctl (Debian postgresql-15)"),
]

SETUP = """
from lepton.models import Department, Membership
from django.contrib.auth import get_user_model
from lepton.services import token_create
d = Department.objects.create(slug="production", name="Production", max_concurrent_jobs=10)
u = get_user_model().objects.create_user("mia-member")
Membership.objects.create(user=u, department=d, role="member")
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
session = SessionStore()
session.update({SESSION_KEY: str(u.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
                HASH_SESSION_KEY: u.get_session_auth_hash()})
session.create()
print(token_create(actor=u, name="faults", scopes=["read", "write"])[1], session.session_key)
"""
UNREACHABLE = "Lepton cannot reach its database right now"
UNREACHABLE_ZH = "Lepton 目前无法连接其数据库"


def _call(url: str, *, token: str = "", body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw[:300].decode(errors="replace")}


def _page(url: str, *, cookies: dict) -> tuple[int, dict, str]:
    """A browser's GET: the status, the headers and the page."""
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


@pytest.fixture
def cluster():
    # A short path: the server's Unix socket lives there (at most 107 bytes), and the
    # `postgres` user must reach it (pytest's tmp_path is private to root).
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="lepton-pg-", dir="/tmp")))
    yield server
    server.destroy()


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.kill()


def test_a_postgres_restart_gives_503s_meanwhile_and_the_platform_recovers_by_itself(
    transactional_db, tmp_path, cluster, redis_server
):
    changed = {
        "DATABASE_URL": cluster.url,
        "REDIS_URL": redis_server.url,
        "LEPTON_JOB_STALE_SECONDS": "3",
        "LEPTON_WORKER_STALE_SECONDS": "5",
    }
    env = platform_env(**changed)
    Process("migrate", manage("migrate", "--noinput"), env).proc.wait(120)
    setup = Process("setup", manage("shell", "-c", SETUP), env)
    assert setup.proc.wait(60) == 0, setup.output()
    token, session = setup.output().strip().splitlines()[-1].split()
    browser = {"sessionid": session}
    browser_zh = {**browser, "django_language": "zh-hans"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = [web_server(port, env), Process("dispatcher", manage("run_dispatcher", "--reap-every", "0.5"), env)]
    try:
        # Its beat goes to the throwaway database: /healthz there says when it is up.
        started.append(SubprocessWorker(f"pg-cpu-{RUN_ID}@test", pool="threads", concurrency=2, env=changed))
        wait_for(lambda: _call(f"{base}/healthz")[0] == 200, timeout=60, interval=0.5, what="/healthz to be 200")
        status, _headers, html = _page(f"{base}/", cookies=browser)
        assert status == 200 and "Production" in html, html[:2000]  # signed in: the department's home
        # A quick restart while nobody asks anything: the web processes' kept connections are dead
        # now, and the next requests must not be the ones to find out.
        for _ in range(6):
            assert _call(f"{base}/api/v1/jobs/", token=token)[0] == 200
        cluster.stop()
        cluster.start()
        for _ in range(6):
            status, body = _call(f"{base}/api/v1/jobs/", token=token)
            assert status == 200, body
        marker = tmp_path / "completions"
        status, job = _call(
            f"{base}/api/v1/jobs/",
            token=token,
            body={
                "kind": "tests.sleep",
                "department": "production",
                "params": {"steps": 30, "step_seconds": 0.1, "marker": str(marker)},
            },
        )
        assert status == 201, job
        job_url = f"{base}/api/v1/jobs/{job['id']}/"
        wait_for(lambda: _call(job_url, token=token)[1].get("progress", 0) >= 10, timeout=30, what="the job to run")
        jobs_before = _count(cluster, "lepton_job")

        cluster.stop()
        status, health = _call(f"{base}/healthz")
        assert status == 503 and not health["checks"]["database"]["ok"], health
        status, body = _call(f"{base}/api/v1/jobs/", token=token)
        assert (status, body.get("error")) == (503, "unavailable"), body
        status, body = _call(
            f"{base}/api/v1/jobs/", token=token, body={"kind": "tests.noop", "department": "production", "params": {}}
        )
        assert (status, body.get("error")) == (503, "unavailable"), body
        # A signed-in person's page: the 503 page, not the generic 500 one, in the language of their cookie.
        status, headers, html = _page(f"{base}/", cookies=browser)
        assert (status, headers.get("Retry-After")) == (503, "30"), html[:2000]
        assert UNREACHABLE in html and "Something went wrong" not in html
        status, headers, html = _page(f"{base}/", cookies=browser_zh)
        assert status == 503 and UNREACHABLE_ZH in html, html[:2000]
        time.sleep(2)  # long enough for the worker's job to hit the gap
        cluster.start()

        # Back: every request answers at once, from whichever web process takes it.
        for _ in range(6):
            status, body = _call(f"{base}/api/v1/jobs/", token=token)
            assert status == 200, body
        wait_for(lambda: _call(f"{base}/healthz")[0] == 200, timeout=60, interval=0.5, what="/healthz to be 200 again")
        for _ in range(4):
            status, _headers, html = _page(f"{base}/", cookies=browser)
            assert status == 200 and "Production" in html, html[:2000]
        wait_for(
            lambda: _call(job_url, token=token)[1].get("status") in ("succeeded", "failed", "cancelled"),
            timeout=60,
            interval=0.5,
            what="the interrupted job to end",
        )
        status, job = _call(job_url, token=token)
        assert job["status"] == "succeeded", job
        assert job["attempts"] >= 2, "the outage never reached the running job"
    finally:
        for process in started:
            process.stop()
    # Ended once, its work done once; the refused write left nothing.
    assert marker.read_text().split().count(job["id"]) == 1
    assert _count(cluster, "lepton_job") == jobs_before
    ends = _scalar(
        cluster,
        "SELECT count(*) FROM lepton_auditevent WHERE object_id = %s"
        " AND action IN ('job.succeeded', 'job.failed', 'job.cancelled')",
        job["id"],
    )
    assert ends == 1


def _scalar(cluster, sql: str, *params):
    with psycopg.connect(cluster.url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _count(cluster, table: str) -> int:
    return _scalar(cluster, f"SELECT count(*) FROM {table}")  # noqa: S608 - a table name of this test
