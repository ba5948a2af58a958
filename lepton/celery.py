"""The Celery app. Workers serve the `cpu` and/or `gpu` queues:

    celery -A lepton worker -Q cpu --concurrency 2
    celery -A lepton worker -Q gpu --concurrency 1      # on a GPU node

Each worker beats into `WorkerHeartbeat` so the dispatcher knows the slots per queue
and /healthz knows a worker is alive.
"""

import logging
import os
import threading

from celery import Celery, bootsteps

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
