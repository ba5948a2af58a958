"""Redis (broker and cache) crashes and comes back while jobs run: no job is lost or run twice,
and the web keeps answering reads meanwhile.

The Redis here is a throwaway redis-server with no persistence, so the crash loses every
message it held: the jobs must come back from the database (the dispatcher's reaper releases
again what was sent and never picked up). The web (gunicorn), the dispatcher and a worker run
as their own processes, pointed at it.
"""

import json
import shutil
import time
import urllib.error
import urllib.request

import pytest
from django.test import Client

from lepton.jobs.models import Job
from lepton.jobs.services import job_submit
from lepton.services import token_create
from tests.conftest import wait_for
from tests.faults.conftest import Process, RedisServer, free_port, manage, platform_env, web_server
from tests.faults.test_worker_kills import terminal_events

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]

JOBS = 16


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def redis_server():
    server = RedisServer()
    yield server
    server.kill() if server.proc.poll() is None else None


def test_a_redis_crash_under_load_loses_no_job_and_reads_keep_working(
    settings, tmp_path, member, production, redis_server, subprocess_worker_factory
):
    production.max_concurrent_jobs = 50
    production.save()
    changed = {"REDIS_URL": redis_server.url, "LEPTON_RELEASE_TIMEOUT_SECONDS": "3", "LEPTON_JOB_STALE_SECONDS": "3"}
    env = platform_env(**changed)
    token, secret = token_create(actor=member, name="reader", scopes=["read"])
    browser = Client()
    browser.force_login(member)  # a session in the database, as every browser session is
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"}
    port = free_port()
    started = [web_server(port, env), Process("dispatcher", manage("run_dispatcher", "--reap-every", "0.5"), env)]
    try:
        subprocess_worker_factory("redis-cpu", pool="prefork", concurrency=2, env=changed)
        marker = tmp_path / "completions"
        jobs = [
            job_submit(
                actor=member,
                department=production,
                kind="tests.sleep",
                params={"steps": 3, "step_seconds": 0.1, "marker": str(marker)},
            )
            for _ in range(JOBS)
        ]

        def under_way():
            done = Job.objects.filter(pk__in=[j.pk for j in jobs], status="succeeded").count()
            return 2 <= done <= JOBS - 6

        wait_for(under_way, timeout=60, what="some jobs done and many still to go")
        redis_server.kill()
        base = f"http://127.0.0.1:{port}"
        try:
            # The broker and the cache are gone: reads from the database still answer.
            status, body = _get(f"{base}/api/v1/jobs/", {"Authorization": f"Bearer {secret}"})
            assert status == 200, body[:2000]
            assert json.loads(body)["count"] == JOBS
            status, body = _get(f"{base}/jobs/", cookie)
            assert status == 200 and b"tests.sleep" in body, body[:2000]
            status, body = _get(f"{base}/healthz")
            checks = json.loads(body)["checks"]
            assert status == 503 and not checks["broker"]["ok"] and checks["database"]["ok"]
            time.sleep(2)  # the worker and the dispatcher notice, and keep trying
        finally:
            redis_server.start()
        try:
            wait_for(
                lambda: Job.objects.filter(pk__in=[j.pk for j in jobs], status="succeeded").count() == JOBS,
                timeout=60,
                interval=0.2,
                what="every job to succeed after Redis came back",
            )
        except AssertionError:
            left = Job.objects.filter(pk__in=[j.pk for j in jobs]).exclude(status="succeeded")
            detail = [
                (j.status, j.attempts, j.queue, str(j.released_at), list(j.log_lines.values_list("message", flat=True)))
                for j in left
            ]
            logs = "\n".join(p.output()[-1500:] for p in started)
            raise AssertionError(f"not done: {detail}\n{logs}") from None
        assert _get(f"{base}/healthz")[0] in (200, 503)  # answers again (the worker's beat may lag)
    finally:
        for process in started:
            process.stop()
    ran = marker.read_text().split()
    for job in jobs:
        job.refresh_from_db()
        assert ran.count(str(job.pk)) == 1, f"{job.pk} ran {ran.count(str(job.pk))} times"
        assert terminal_events(job) == 1
