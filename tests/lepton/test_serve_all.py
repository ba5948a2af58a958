"""`manage.py serve_all` (what `make run` starts): web, worker and dispatcher as one foreground command."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import RUN_DIR, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(bind: str, log: Path) -> subprocess.Popen:
    """serve_all pointed at this test run's database, broker and lake."""
    env = dict(os.environ)
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        env.pop("DATABASE_URL", None)
        env["LEPTON_SQLITE_PATH"] = db["NAME"]
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env.update(LEPTON_BIND=bind, LEPTON_WEB_WORKERS="1", LEPTON_WORKER_CONCURRENCY="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve_all", "--grace", "20"],
        cwd=ROOT,
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_sigint_stops_web_worker_and_dispatcher_and_exits_zero(transactional_db):
    port = _free_port()
    log = RUN_DIR / "serve-all-sigint.log"
    proc = _start(f"127.0.0.1:{port}", log)
    try:
        wait_for(lambda: "Lepton is up at" in log.read_text() or proc.poll() is not None, timeout=90, what="the banner")
        assert proc.poll() is None, log.read_text()[-3000:]
        text = log.read_text()
        assert f"http://127.0.0.1:{port}/" in text
        for name in ("web", "worker", "dispatcher"):
            assert f"started {name} (pid" in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert "SIGINT received" in text and "serve_all | all stopped." in text
    assert not _answers(port), "the web server still answers after serve_all exited"


@pytest.mark.slow
def test_when_one_part_dies_the_others_stop_and_the_exit_names_it(transactional_db):
    # The port is taken, so gunicorn cannot bind and exits: serve_all must not run on without a web.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = RUN_DIR / "serve-all-dies.log"
        proc = _start(f"127.0.0.1:{port}", log)
        try:
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 1, text[-3000:]
    assert "serve_all | web exited with code" in text
    assert "stopped because web died" in text
    # The worker and the dispatcher were stopped, not left behind.
    pids = [int(line.split("(pid ")[1].rstrip(")")) for line in text.splitlines() if "serve_all | started" in line]
    time.sleep(0.5)
    assert pids and not [pid for pid in pids if Path(f"/proc/{pid}").exists() and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
