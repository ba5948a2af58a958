"""The Celery app. Workers serve the `cpu` and/or `gpu` queues:

    celery -A lepton worker -Q cpu --concurrency 2
    celery -A lepton worker -Q gpu --concurrency 1      # on a GPU node

Each worker beats into `WorkerHeartbeat` so the dispatcher knows the slots per queue
and /healthz knows a worker is alive.
"""

import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from celery import Celery, bootsteps
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")

app = Celery("lepton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["lepton.jobs"])
# Celery's Django fix-up closes the database connection around every task unless told to
# reuse it; a new PostgreSQL connection per job would cost more than a small job itself.
app.conf.CELERY_DB_REUSE_MAX = 500

log = logging.getLogger(__name__)


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """Upserts this worker's WorkerHeartbeat row every LEPTON_WORKER_HEARTBEAT_SECONDS."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread = None

    def start(self, worker):
        from django.conf import settings

        queues = (
            sorted(q.name for q in worker.app.amqp.queues.consume_from.values())
            if worker.app.amqp.queues.consume_from
            else ["cpu"]
        )
        concurrency = int(worker.concurrency or 1)

        def beat():
            from django.db import connection
            from django.utils import timezone

            from lepton.jobs.models import WorkerHeartbeat

            first = True
            while first or not self._stop.wait(settings.LEPTON_WORKER_HEARTBEAT_SECONDS):
                first = False
                try:
                    WorkerHeartbeat.objects.update_or_create(
                        hostname=worker.hostname,
                        defaults={"queues": queues, "concurrency": concurrency, "pid": os.getpid(), "last_seen": timezone.now()},
                    )
                except Exception:  # noqa: BLE001 - keep beating through a database blip
                    log.warning("worker heartbeat failed", exc_info=True)
            try:
                WorkerHeartbeat.objects.filter(hostname=worker.hostname).delete()
            except Exception:  # noqa: BLE001
                pass
            connection.close()

        self._thread = threading.Thread(target=beat, name="lepton-worker-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, worker):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    # A warm shutdown calls stop(), a cold one terminate(): both end the beat.
    terminate = stop
    shutdown = stop


app.steps["worker"].add(WorkerHeartbeatStep)

# Scratch space. Handlers write temporary copies of whole datasets (lepton-ingest-*,
# lepton-train-*); their `finally` removes them, but a SIGKILLed worker runs no `finally`, and
# each kill left a copy of its data behind until the disk filled. So every worker process
# writes its temporary files under its own folder, named for the host and its pid, and a
# worker starting on the host removes the folders of processes that are gone.
_SCRATCH_BASE = Path(tempfile.gettempdir())
SCRATCH_PREFIX = "lepton-worker-"


def _scratch_name(pid: int) -> str:
    return f"{SCRATCH_PREFIX}{socket.gethostname()}-{pid}"


def _alive(pid: int) -> bool:
    """Whether the process runs; a zombie (killed, not yet reaped by its new parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust the signal
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def sweep_scratch(base: Path = _SCRATCH_BASE) -> list[str]:
    """Remove the scratch folders this host's dead worker processes left; returns their names."""
    removed = []
    prefix = _scratch_name(0)[:-1]
    for folder in base.glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def use_own_scratch(base: Path = _SCRATCH_BASE) -> Path:
    """Point this process's temporary files (the tempfile module) at its own scratch folder."""
    folder = base / _scratch_name(os.getpid())
    folder.mkdir(mode=0o700, exist_ok=True)
    tempfile.tempdir = str(folder)
    return folder


@worker_init.connect
def _worker_scratch(**kwargs):
    removed = sweep_scratch()
    if removed:
        log.warning("removed the scratch folders of %d dead worker processes: %s", len(removed), ", ".join(removed))
    use_own_scratch()  # solo and threads pools run tasks in this process


@worker_process_init.connect
def _pool_process_scratch(**kwargs):
    sweep_scratch()  # a pool child killed alone (out of memory) is replaced by one that sweeps
    use_own_scratch()
