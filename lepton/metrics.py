"""Job and worker figures for /metrics, read from the database at scrape time.

django-prometheus exports the request metrics; this collector adds the job system's
state so that any Prometheus can alert on a growing queue or a silent worker.
"""

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import REGISTRY

WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class JobCollector:
    def describe(self):
        # Names only: the registry must not query the database at import time.
        yield GaugeMetricFamily("lepton_jobs", "", labels=["status", "queue", "department"])
        yield GaugeMetricFamily("lepton_queue_oldest_wait_seconds", "", labels=["resource"])
        yield HistogramMetricFamily("lepton_job_queue_wait_seconds", "")
        yield GaugeMetricFamily("lepton_worker_heartbeat_age_seconds", "", labels=["hostname", "queues"])
        yield GaugeMetricFamily("lepton_worker_slots", "", labels=["queue"])

    def collect(self):
        from lepton.jobs.dispatcher import live_workers
        from lepton.jobs.models import Job, JobStatus, WorkerHeartbeat

        jobs = GaugeMetricFamily("lepton_jobs", "Jobs by status, queue and department.", labels=["status", "queue", "department"])
        rows = Job.objects.values("status", "queue", "department__slug").annotate(n=Count("pk")).order_by()
        for row in rows:
            jobs.add_metric([row["status"], row["queue"] or "", row["department__slug"] or "platform"], row["n"])
        yield jobs

        now = timezone.now()
        oldest = GaugeMetricFamily(
            "lepton_queue_oldest_wait_seconds", "Age of the oldest queued job, per resource.", labels=["resource"]
        )
        for resource in ("cpu", "gpu"):
            job = Job.objects.filter(status=JobStatus.QUEUED, resource=resource).order_by("queued_at").only("queued_at").first()
            oldest.add_metric([resource], (now - job.queued_at).total_seconds() if job else 0.0)
        yield oldest

        waits = list(
            Job.objects.filter(started_at__gte=now - timedelta(hours=24), wait_seconds__isnull=False).values_list(
                "wait_seconds", flat=True
            )
        )
        buckets, total = [], 0
        for bound in WAIT_BUCKETS:
            buckets.append((str(bound), sum(1 for w in waits if w <= bound)))
        buckets.append(("+Inf", len(waits)))
        total = sum(waits)
        yield HistogramMetricFamily(
            "lepton_job_queue_wait_seconds",
            "Queued-to-started wait of jobs started in the last 24 h.",
            buckets=buckets,
            sum_value=total,
        )

        seen = GaugeMetricFamily(
            "lepton_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat.", labels=["hostname", "queues"]
        )
        for worker in WorkerHeartbeat.objects.all():
            seen.add_metric([worker.hostname, ",".join(worker.queues)], (now - worker.last_seen).total_seconds())
        yield seen
        slots = GaugeMetricFamily("lepton_worker_slots", "Job slots of live workers, per queue.", labels=["queue"])
        per_queue: dict[str, int] = {}
        for worker in live_workers(now):
            for queue in worker.queues:
                per_queue[queue] = per_queue.get(queue, 0) + worker.concurrency
        for queue in ("cpu", "gpu"):
            slots.add_metric([queue], per_queue.get(queue, 0))
        yield slots


_registered = False


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(JobCollector())
        _registered = True
