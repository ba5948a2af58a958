"""Helpers of the fault tests: a lake of their own, what the lake holds against what the catalog names,
free ports, and throwaway Redis and PostgreSQL servers (the shared ones are never stopped).

Each fault test starts real processes (Celery workers, the dispatcher, the web server) and
breaks something under them. Everything they start is stopped in the fixture's teardown.
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, RUN_DIR, wait_for


@dataclass
class LakeReport:
    """What a lake folder holds compared with what the catalog names."""

    blobs: set = field(default_factory=set)
    orphans: set = field(default_factory=set)  # stored, named by no row
    missing: set = field(default_factory=set)  # named by a row, not stored
    corrupt: set = field(default_factory=set)  # bytes that do not match their name
    leftovers: list = field(default_factory=list)  # half-written files under tmp/

    @property
    def clean(self) -> bool:
        return not (self.orphans or self.missing or self.corrupt or self.leftovers)


def referenced_blobs() -> set:
    """Every digest a catalog row names: versions (raw, Parquet, images), runs and model versions."""
    from datalake.models import DatasetVersion, VersionBlob
    from models_repo.models import ModelVersion, TrainingRun

    named = set()
    for raw, parquet in DatasetVersion.objects.values_list("raw_sha256", "parquet_sha256"):
        named.update((raw, parquet))
    named.update(VersionBlob.objects.values_list("sha256", flat=True))
    named.update(TrainingRun.objects.values_list("artifact_sha256", flat=True))
    for artifact, onnx in ModelVersion.objects.values_list("artifact_sha256", "onnx_sha256"):
        named.update((artifact, onnx))
    named.discard("")
    return named


def lake_report(root: Path) -> LakeReport:
    report = LakeReport()
    for path in sorted((root / "blobs").glob("*/*")):
        sha = path.parent.name + path.name
        report.blobs.add(sha)
        digest = hashlib.sha256()
        with open(path, "rb") as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != sha:
            report.corrupt.add(sha)
    named = referenced_blobs()
    report.orphans = report.blobs - named
    report.missing = named - report.blobs
    report.leftovers = sorted(p.name for p in (root / "tmp").glob("*")) if (root / "tmp").exists() else []
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """A platform process (web, dispatcher) in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict):
        self.name = name
        self.log_path = RUN_DIR / f"{name}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.log.close()


def test_database_url() -> str:
    """The URL of the database this test uses (pytest-django's test_<name>), for subprocesses."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def platform_env(**overrides) -> dict:
    """The environment of a platform subprocess: this run's settings on the test database, then
    `overrides` (None removes)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        LEPTON_JOB_HEARTBEAT_SECONDS="0.5",
        LEPTON_WORKER_HEARTBEAT_SECONDS="0.5",
        LEPTON_DISPATCH_INTERVAL="0.05",
        LEPTON_JOB_RETRY_BACKOFF_SECONDS="0.2",
        DJANGO_ALLOW_ASYNC_UNSAFE="true",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def web_server(port: int, env: dict) -> Process:
    """gunicorn with two sync workers, as in production (Dockerfile), on 127.0.0.1:`port`."""
    web = Process(
        "web",
        [
            sys.executable, "-m", "gunicorn", "lepton.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--timeout", "30", "--graceful-timeout", "2",
        ],
        env,
    )  # fmt: skip
    wait_for(lambda: _port_open(port) or web.proc.poll() is not None, timeout=60, what="gunicorn to listen")
    assert web.proc.poll() is None, web.output()
    return web


# --- throwaway servers -----------------------------------------------------------------------------


class RedisServer:
    """A redis-server on a free port with no persistence: a restart loses every message it held."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: _port_open(self.port), timeout=10, what="redis-server to listen")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        wait_for(lambda: not _port_open(self.port), timeout=10, what="redis-server to go")


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb in a temporary folder, run as the `postgres` user)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        self._as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", self.port, "lepton")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/lepton"

    def _as_postgres(self, *args) -> None:
        command = ["runuser", "-u", "postgres", "--", *map(str, args)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.folder / "log", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)


def have_postgres_tools() -> bool:
    return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None


@pytest.fixture
def own_broker(transactional_db):
    """A throwaway Redis as broker and cache, and the dispatcher (`manage.py run_dispatcher`) on it.

    Returns the environment overrides that point a subprocess worker at it. The shared Redis is
    not used: another test run that empties it (FLUSHDB) would take this test's messages along.
    """
    server = RedisServer()
    overrides = {
        "REDIS_URL": server.url,
        "LEPTON_JOB_STALE_SECONDS": "2",
        "LEPTON_RELEASE_TIMEOUT_SECONDS": "600",  # a lost message would show as a timeout, not be papered over
    }
    dispatcher = Process("dispatcher", manage("run_dispatcher", "--reap-every", "0.5"), platform_env(**overrides))
    yield overrides
    dispatcher.stop()
    server.kill()
