"""Shared fixtures: personas per department, an isolated lake and broker, real Celery workers.

Personas (as in Healthchecks' test base): in `production` there are `admin` (admin),
`owner` (maintainer), `member` (member) and `viewer` (viewer); `outsider` is a member of
`quality` only. `staff` is a platform superuser.

Each test run gets its own var/ folder (lake, filesystem broker) and, on Redis, its own
key prefix, so runs never see each other's messages. Subprocess workers inherit that
through the environment.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from lepton.management.commands.compile_translations import catalogues, compile_catalogue
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
RUN_DIR = Path(tempfile.mkdtemp(prefix=f"lepton-test-{RUN_ID}-"))

# --- isolate this run (settings are already loaded; mirror what settings.py would compute) ---
os.environ["LEPTON_VAR_DIR"] = str(RUN_DIR)
os.environ["LEPTON_JOB_MODULES"] = "tests.jobkinds"
settings.LEPTON_JOB_MODULES = ["tests.jobkinds"]
settings.LEPTON_STORAGE_URL = (RUN_DIR / "lake").as_uri()
os.environ["LEPTON_STORAGE_URL"] = settings.LEPTON_STORAGE_URL
(RUN_DIR / "lake").mkdir()
# LEPTON_TEST_STORAGE=s3: the lake is a bucket on a local S3-compatible server (tests/s3.py) for the
# whole run, to prove the s3:// path of the suites that use the lake (docs/operations.md, "A lake on S3").
TEST_STORAGE = os.environ.get("LEPTON_TEST_STORAGE", "file")
LOCAL_S3 = None
if TEST_STORAGE == "s3":
    from tests import s3

    LOCAL_S3 = s3.start()
    LOCAL_S3.create_bucket("lake")
    settings.LEPTON_STORAGE_URL = f"s3://lake/{RUN_ID}"
    settings.LEPTON_STORAGE_OPTIONS = LOCAL_S3.options()
    os.environ.update(LOCAL_S3.environ(settings.LEPTON_STORAGE_URL))
elif TEST_STORAGE != "file":
    raise pytest.UsageError(f"LEPTON_TEST_STORAGE={TEST_STORAGE!r}: use file (the default) or s3.")
if settings.REDIS_URL:
    os.environ["LEPTON_BROKER_PREFIX"] = f"lepton-test-{RUN_ID}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["LEPTON_BROKER_PREFIX"]
    settings.CACHES["default"]["KEY_PREFIX"] = f"lepton-test-{RUN_ID}"
else:
    broker = RUN_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (broker / sub).mkdir(parents=True)
    settings.CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(broker / "queue"),
        data_folder_out=str(broker / "queue"),
        processed_folder=str(broker / "processed"),
        control_folder=str(broker / "control"),
    )
    settings.CACHES["default"]["LOCATION"] = str(RUN_DIR / "cache")
if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: subprocess workers must open the same test database.
    settings.DATABASES["default"]["TEST"]["NAME"] = str(RUN_DIR / "test.sqlite3")
# The .mo catalogues are built, not committed (`make translations`): the run builds a missing or stale one
# itself, so that `pytest` alone tests the Chinese interface `make run` serves.
for _po in catalogues():
    compile_catalogue(_po)
# Timings short enough for tests; tests that need others use the `settings` fixture.
settings.LEPTON_JOB_HEARTBEAT_SECONDS = 0.5
settings.LEPTON_WORKER_HEARTBEAT_SECONDS = 0.5
settings.LEPTON_DISPATCH_INTERVAL = 0.05
settings.LEPTON_JOB_RETRY_BACKOFF_SECONDS = 0.2
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def pytest_report_header(config):
    return f"lake: {settings.LEPTON_STORAGE_URL}" + (f" (moto server {LOCAL_S3.endpoint})" if LOCAL_S3 else "")


def pytest_sessionfinish(session, exitstatus):
    for server in [LOCAL_S3, *_shared_s3]:
        if server is not None:
            server.stop()
    shutil.rmtree(RUN_DIR, ignore_errors=True)


@pytest.fixture
def own_lake(settings, tmp_path):
    """A lake folder for this test alone (the session's lake holds other tests' blobs)."""
    root = tmp_path / "lake"
    root.mkdir()
    settings.LEPTON_STORAGE_URL = root.as_uri()
    return root


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    yield
    # Worker and dispatcher threads keep their own connections: close them so the test
    # database can be dropped at the end.
    with django_db_blocker.unblock():
        from django.db import connection

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


def _clear_this_runs_cache(cache) -> None:
    """Delete this run's cache keys. On Redis, cache.clear() is FLUSHDB: it also emptied the
    broker's queues and bindings in the same database, this run's and every other run's sharing
    the server, so released jobs vanished before a worker took them (tests/faults/)."""
    if not settings.REDIS_URL:
        cache.clear()
        return
    client = cache._cache.get_client(None, write=True)
    keys = list(client.scan_iter(match=cache.make_key("*"), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the site's language: a request in zh-hans (LocaleMiddleware, the profile's language)
    leaves its language active in the thread, which would word the next test's service messages in Chinese."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    from models_repo.api.fastpath import grants
    from models_repo.api.predict import prediction_logs

    _clear_this_runs_cache(cache)
    prediction_logs.background = False  # a test writes its logs with flush(): its rows are in its transaction
    prediction_logs.items.clear()  # sampled logs of an earlier test name versions its rollback removed
    grants.clear()  # the predict fast path's grants name rows an earlier test's rollback removed
    yield
    prediction_logs.items.clear()
    grants.clear()


# --- the lake on s3:// -----------------------------------------------------------------------


def pytest_generate_tests(metafunc):
    # A test marked `s3` runs twice: on the run's lake and on a bucket of a local S3 server.
    if metafunc.definition.get_closest_marker("s3") and TEST_STORAGE != "s3":
        metafunc.parametrize("lake_backend", ["file", "s3"], indirect=True)


_shared_s3 = []  # the moto server the `s3`-marked tests share, started by the first of them


@pytest.fixture(autouse=True)
def lake_backend(request):
    """The lake this test uses: the run's (file://, or s3:// with LEPTON_TEST_STORAGE=s3), or for the
    "s3" parameter of an `s3`-marked test a fresh prefix in a bucket of a local S3 server."""
    if getattr(request, "param", "file") != "s3":
        yield settings.LEPTON_STORAGE_URL
        return
    test_settings, monkeypatch = request.getfixturevalue("settings"), request.getfixturevalue("monkeypatch")
    if not _shared_s3:
        from tests import s3

        _shared_s3.append(s3.start())
        _shared_s3[0].create_bucket("lake")
    url = f"s3://lake/{RUN_ID}-{uuid.uuid4().hex[:8]}"
    test_settings.LEPTON_STORAGE_URL = url
    test_settings.LEPTON_STORAGE_OPTIONS = _shared_s3[0].options()
    for name, value in _shared_s3[0].environ(url).items():
        monkeypatch.setenv(name, value)
    yield url
    # Proof that the test's lake really was the bucket (every `s3` test stores blobs).
    assert _shared_s3[0].count("lake", url.removeprefix("s3://lake/") + "/blobs/"), f"nothing was stored under {url}"


# --- personas ------------------------------------------------------------------------------


@pytest.fixture
def production(db):
    return DepartmentFactory(slug="production", name="Production")


@pytest.fixture
def quality(db):
    return DepartmentFactory(slug="quality", name="Quality")


def _person(username, department, role):
    user = UserFactory(username=username)
    MembershipFactory(user=user, department=department, role=role)
    return user


@pytest.fixture
def admin(production):
    return _person("alice-admin", production, "admin")


@pytest.fixture
def owner(production):
    return _person("oscar-owner", production, "maintainer")


@pytest.fixture
def member(production):
    return _person("mia-member", production, "member")


@pytest.fixture
def viewer(production):
    return _person("victor-viewer", production, "viewer")


@pytest.fixture
def outsider(quality):
    return _person("olga-outsider", quality, "member")


@pytest.fixture
def staff(db):
    return UserFactory(username="sam-staff", is_staff=True, is_superuser=True)


# --- workers and the dispatcher ------------------------------------------------------------


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker in this process (threads pool, 2 slots) on the `cpu` queue."""
    from celery.contrib.testing.worker import start_worker

    from lepton.celery import app

    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, queues=["cpu"], loglevel="warning", shutdown_timeout=30
    ) as worker:
        wait_for(lambda: _worker_registered(worker.hostname), timeout=10, what="worker heartbeat")
        yield worker
        # Follow-up jobs a test started (a run's analysis, an ONNX conversion) must not outlive its
        # database: give the running ones time to end before the worker and the tables go.
        _settle_running_jobs(timeout=60)


def _settle_running_jobs(timeout: float) -> None:
    from lepton.jobs.models import Job

    deadline = time.monotonic() + timeout
    while Job.objects.filter(status="running").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _worker_registered(hostname):
    from lepton.jobs.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(hostname=hostname).exists()


class DispatcherThread(threading.Thread):
    def __init__(self, reap_every=0.2):
        super().__init__(daemon=True, name="test-dispatcher")
        self.stopped = threading.Event()
        self.reap_every = reap_every
        self.error = None

    def run(self):
        from django.db import connection

        from lepton.jobs.dispatcher import dispatch, reap

        last = 0.0
        try:
            while not self.stopped.is_set():
                if time.monotonic() - last > self.reap_every:
                    reap()
                    last = time.monotonic()
                dispatch()
                self.stopped.wait(settings.LEPTON_DISPATCH_INTERVAL)
        except Exception as exc:  # noqa: BLE001 - reported by the fixture
            self.error = exc
            raise
        finally:
            connection.close()


@pytest.fixture
def dispatcher(transactional_db):
    thread = DispatcherThread()
    thread.start()
    yield thread
    thread.stopped.set()
    thread.join(10)
    assert thread.error is None, f"dispatcher failed: {thread.error!r}"


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_job(job, statuses=("succeeded", "failed", "cancelled"), timeout=20.0):
    def done():
        job.refresh_from_db()
        return job.status in statuses

    wait_for(done, timeout=timeout, what=f"job {job.kind} to reach {statuses} (now {job.status})")
    return job


class SubprocessWorker:
    """`celery worker` in its own process, pointed at the test database (SIGKILL-able)."""

    def __init__(self, hostname, queues="cpu", pool="solo", concurrency=1, env=None):
        from django.db import connection

        overrides, env = env or {}, dict(os.environ)
        db = connection.settings_dict
        if db["ENGINE"].endswith("sqlite3"):
            env.pop("DATABASE_URL", None)
            env["LEPTON_SQLITE_PATH"] = db["NAME"]
        else:
            env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        env["LEPTON_JOB_HEARTBEAT_SECONDS"] = "0.5"
        env["LEPTON_WORKER_HEARTBEAT_SECONDS"] = "0.5"
        env.update(overrides)
        self.hostname = hostname
        self.log = open(RUN_DIR / f"worker-{hostname}.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "lepton",
                "worker",
                "-Q",
                queues,
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-n",
                hostname,
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # Its own process group: kill_group() takes the prefork pool's children with it.
            start_new_session=True,
        )

    def wait_ready(self, timeout=60):
        wait_for(
            lambda: _worker_registered(self.hostname) or self.proc.poll() is not None, timeout=timeout, what="subprocess worker"
        )
        assert self.proc.poll() is None, (RUN_DIR / f"worker-{self.hostname}.log").read_text()[-3000:]

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def kill_group(self):
        """SIGKILL the worker and its pool children at once, as the OOM killer or a lost node would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        wait_for(lambda: not _group_running(self.proc.pid), timeout=10, what="the killed worker's pool to die")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        try:  # pool children of a worker stopped or killed above
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def _group_running(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (zombies waiting to be reaped do not count)."""
    from lepton.celery import _alive

    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and _alive(int(entry)):
                    return True
            except ProcessLookupError:
                continue
    return False


@pytest.fixture
def subprocess_worker_factory(transactional_db):
    workers = []

    def make(hostname, **kwargs):
        worker = SubprocessWorker(f"{hostname}-{RUN_ID}@test", **kwargs)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield make
    for worker in workers:
        worker.stop()
