"""/healthz: database, broker, storage, a live worker and a passing dispatcher, as JSON; 200 when all are fine, else 503.

`?deep=1` also reports the newest platform self-check job (and queues one when the last
is older than LEPTON_SELFCHECK_INTERVAL seconds): it proves a worker really runs jobs.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from lepton.checks import database_problem
from lepton.storage import get_storage

SELFCHECK_KIND = "lepton.selfcheck"


def _timed(check):
    t0 = time.perf_counter()
    try:
        detail = check()
        ok = detail.pop("ok", True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable line
        ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"}
    detail["ok"] = ok
    detail["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    return detail


def check_database():
    problem = database_problem()
    if problem:
        return {"ok": False, "error": problem}
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def check_broker():
    import os

    from lepton.celery import app

    if app.conf.broker_url.startswith("filesystem"):
        options = app.conf.broker_transport_options
        folders = [options["data_folder_in"], options["data_folder_out"], options["control_folder"]]
        missing = [f for f in folders if not os.access(f, os.W_OK)]
        if missing:
            return {"ok": False, "transport": "filesystem", "error": f"Broker folders not writable: {', '.join(missing)}"}
        return {"ok": True, "transport": "filesystem"}
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return {"ok": True, "transport": conn.transport.driver_type}


def check_storage():
    return get_storage().check()


def check_worker():
    from lepton.jobs.dispatcher import live_workers
    from lepton.jobs.models import WorkerHeartbeat

    newest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    live = list(live_workers())
    queues = sorted({q for w in live for q in w.queues})
    detail = {"ok": bool(live), "live_workers": len(live), "queues": queues}
    if newest:
        detail["last_heartbeat_seconds_ago"] = round((timezone.now() - newest.last_seen).total_seconds(), 1)
    if not live:
        detail["error"] = "No worker has sent a heartbeat recently."
    return detail


def check_dispatcher():
    from lepton.jobs.dispatcher import dispatcher_last_pass_age

    age = dispatcher_last_pass_age()
    if age is None:
        return {"ok": False, "error": "No dispatcher has run yet: queued jobs are not released."}
    detail = {"ok": age <= settings.LEPTON_DISPATCHER_STALE_SECONDS, "last_pass_seconds_ago": round(age, 1)}
    if not detail["ok"]:
        detail["error"] = "The dispatcher has stopped passing: queued jobs are not released."
    return detail


def check_selfcheck():
    from lepton.jobs.models import Job, JobStatus
    from lepton.jobs.services import platform_job_submit

    now = timezone.now()
    jobs = Job.objects.filter(kind=SELFCHECK_KIND, department__isnull=True)
    last_ok = jobs.filter(status=JobStatus.SUCCEEDED).order_by("-finished_at").first()
    pending = jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("-queued_at").first()
    interval = settings.LEPTON_SELFCHECK_INTERVAL
    if pending is None and (last_ok is None or last_ok.finished_at < now - timedelta(seconds=interval)):
        pending = platform_job_submit(kind=SELFCHECK_KIND, params={"steps": 2, "pause_seconds": 0})
    detail = {"ok": last_ok is not None and last_ok.finished_at >= now - timedelta(seconds=settings.LEPTON_SELFCHECK_MAX_AGE)}
    if last_ok:
        detail.update(
            last_success_seconds_ago=round((now - last_ok.finished_at).total_seconds(), 1),
            last_result=last_ok.result,
            job=str(last_ok.pk),
        )
    if pending:
        detail["pending"] = {
            "job": str(pending.pk),
            "status": pending.status,
            "progress": pending.progress,
            "wait_reason": pending.wait_reason,
        }
    if not detail["ok"]:
        detail["error"] = "No self-check job has succeeded recently."
    return detail


def health(deep: bool = False) -> tuple[bool, dict]:
    checks = {"database": _timed(check_database)}
    checks["broker"] = _timed(check_broker)
    checks["storage"] = _timed(check_storage)
    if checks["database"]["ok"]:
        checks["worker"] = _timed(check_worker)
        checks["dispatcher"] = _timed(check_dispatcher)
        if deep:
            checks["selfcheck"] = _timed(check_selfcheck)
    else:
        checks["worker"] = {"ok": False, "error": "unknown: the database is unreachable"}
        checks["dispatcher"] = {"ok": False, "error": "unknown: the database is unreachable"}
    ok = all(c["ok"] for c in checks.values())
    return ok, {"status": "ok" if ok else "fail", "checks": checks}
