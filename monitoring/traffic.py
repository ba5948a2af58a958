"""Request traffic for the platform dashboard: a WSGI layer that counts every request per minute.

It is the outermost of LEPTON_WSGI_LAYERS, so the predict fast path's answers are counted too.
Each process keeps its counts in memory and writes them in bulk (one INSERT, from a short-lived
thread) when a minute has passed since its last write, and at exit; a request never waits on
the database. A lost
write (the database down) drops that batch of counts and logs it: traffic figures are
monitoring, never a reason to fail a request.

`ActiveUsers` is a Django middleware doing the same for who was active each day (it needs
the authenticated user, which only Django knows).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from datetime import UTC, datetime

from django.db import DatabaseError, connections, transaction

from monitoring.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, ActiveUser, TrafficMinute

logger = logging.getLogger("lepton.monitoring")
FLUSH_SECONDS = 60.0


def bucket_of(latency_ms: float) -> str:
    for bound, field in zip(LATENCY_BOUNDS_MS, BUCKET_FIELDS, strict=False):
        if latency_ms <= bound:
            return field
    return BUCKET_FIELDS[-1]


def kind_of(path: str) -> str | None:
    """`api`, `web`, or None for what is not a page or an API call (static files, health and metrics probes)."""
    if path.startswith("/api/"):
        return "api"
    if path.startswith(("/static/", "/healthz", "/metrics", "/favicon")):
        return None
    return "web"


class Counts:
    """This process's counts per (minute, kind), written in bulk."""

    def __init__(self, flush_seconds: float = FLUSH_SECONDS):
        self.lock = threading.Lock()
        self.rows: dict[tuple[datetime, str], dict] = {}
        self.flush_seconds = flush_seconds
        self.flushed = time.monotonic()

    def add(self, kind: str, status: int, latency_ms: float, at: float | None = None) -> None:
        minute = datetime.fromtimestamp(at if at is not None else time.time(), UTC).replace(second=0, microsecond=0)
        with self.lock:
            row = self.rows.get((minute, kind))
            if row is None:
                row = self.rows[(minute, kind)] = dict.fromkeys(("requests", "errors_4xx", "errors_5xx", *BUCKET_FIELDS), 0)
                row["latency_ms_sum"] = 0.0
            row["requests"] += 1
            row["errors_4xx"] += 400 <= status < 500
            row["errors_5xx"] += status >= 500
            row["latency_ms_sum"] += latency_ms
            row[bucket_of(latency_ms)] += 1
            due = time.monotonic() - self.flushed >= self.flush_seconds
            if due:
                self.flushed = time.monotonic()  # one writer at a time
        if due:
            threading.Thread(target=self._flush_in_thread, name="lepton-traffic-flush", daemon=True).start()

    def _flush_in_thread(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # this thread's connection, opened by the write

    def flush(self) -> int:
        with self.lock:
            rows, self.rows = self.rows, {}
            self.flushed = time.monotonic()
        if not rows:
            return 0
        batch = [TrafficMinute(minute=minute, kind=kind, **values) for (minute, kind), values in rows.items()]
        try:
            with transaction.atomic():
                TrafficMinute.objects.bulk_create(batch)
        except DatabaseError as exc:
            logger.warning("dropped traffic counts of %d minutes: %s", len(batch), exc)
            return 0
        return len(batch)


counts = Counts()
atexit.register(lambda: counts.flush())


class TrafficLayer:
    """WSGI layer: time each request, read its status, count it (see the module's docstring)."""

    def __init__(self, app, recorder: Counts | None = None):
        self.app, self.recorder = app, recorder or counts

    def __call__(self, environ, start_response):
        kind = kind_of(environ.get("PATH_INFO", ""))
        if kind is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        seen = {"status": 500}

        def counting_start_response(status, headers, exc_info=None):
            try:
                seen["status"] = int(status.split(" ", 1)[0])
            except ValueError:
                pass
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, counting_start_response)
        except Exception:
            self._count(kind, 500, started)
            raise
        self._count(kind, seen["status"], started)
        return result

    def _count(self, kind: str, status: int, started: float) -> None:
        try:
            self.recorder.add(kind, status, (time.perf_counter() - started) * 1000)
        except Exception:  # counting must never fail a request
            logger.exception("traffic count failed")


class ActiveUsers:
    """Django middleware: remember who was active today, in memory; written in bulk (ignoring the days and people
    already recorded) from a short-lived thread at most once a minute, so no request runs a query for it."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.lock = threading.Lock()
        self.pending: set[tuple] = set()
        self.written: set[tuple] = set()
        self.flushed = time.monotonic()

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            key = (datetime.now(UTC).date(), user.pk)
            with self.lock:
                if key not in self.written:
                    self.pending.add(key)
                due = bool(self.pending) and time.monotonic() - self.flushed >= FLUSH_SECONDS
                if due:
                    self.flushed = time.monotonic()
            if due:
                threading.Thread(target=self._flush_in_thread, name="lepton-active-users", daemon=True).start()
        return response

    def flush(self) -> int:
        with self.lock:
            keys, self.pending = self.pending, set()
        if not keys:
            return 0
        try:
            ActiveUser.objects.bulk_create([ActiveUser(day=day, user_id=pk) for day, pk in keys], ignore_conflicts=True)
        except DatabaseError:
            logger.warning("active people not recorded", exc_info=True)
            return 0
        with self.lock:
            self.written |= keys
        return len(keys)

    def _flush_in_thread(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()
