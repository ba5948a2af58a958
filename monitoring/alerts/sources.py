"""What each kind of alert rule watches: `findings(rule, now)` lists the subjects whose condition holds now.

A finding's `key` names its subject (a model's feature, a dataset, a job, a quota) so that the
evaluation keeps one alert per subject while it lasts (monitoring.alerts.services). Each source
reads the other parts' rows through their selectors, only within the rule's department.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Q
from django.utils.translation import gettext as _

from monitoring.alerts.models import AlertKind

# Subjects one rule raises in one pass at most (a department with thousands of failed jobs
# gets the most recent ones; the next passes keep them open).
MAX_FINDINGS = 100


@dataclass(frozen=True)
class Finding:
    key: str
    value: float | None
    message: str


def _production_models(rule):
    """(model, production version) of the rule's department, or of its one model."""
    from models_repo.models import ModelAlias
    from models_repo.services import PRODUCTION

    aliases = ModelAlias.objects.filter(
        name=PRODUCTION, model__department_id=rule.department_id, model__archived_at__isnull=True
    ).select_related("model", "version")
    if rule.model_id:
        aliases = aliases.filter(model_id=rule.model_id)
    return [(alias.model, alias.version) for alias in aliases.order_by("model__name")]


def drift_psi(rule, now: datetime) -> list[Finding]:
    """A production version's feature whose PSI, in its latest drift window, is above the threshold."""
    from monitoring.selectors import latest_drift

    found = []
    for model, version in _production_models(rule):
        for row in latest_drift(version):
            if row.psi is not None and row.psi > rule.threshold:
                message = _(
                    "%(model)s v%(version)s: input “%(feature)s” drifted, PSI %(psi).3f above %(threshold)s "
                    "(window ending %(end)s)."
                ) % {
                    "model": model.name, "version": version.number, "feature": row.feature, "psi": row.psi,
                    "threshold": rule.threshold, "end": f"{row.window_end:%Y-%m-%d %H:%M}",
                }  # fmt: skip
                found.append(Finding(f"drift:{model.pk}:{row.feature}", row.psi, message))
    return found


def _traffic(rule, now: datetime):
    """Each production model's traffic over the rule's window, read through monitoring.selectors.model_traffic.

    model_traffic(model_id, since, until) -> {requests, errors, error_rate, p99_ms} (error_rate
    and p99_ms None without requests) is the prediction-rollup reader of the dashboards.
    """
    from monitoring import selectors

    since = now - timedelta(minutes=rule.window_minutes)
    for model, _version in _production_models(rule):
        yield model, selectors.model_traffic(model.pk, since, now)


def error_rate(rule, now: datetime) -> list[Finding]:
    found = []
    for model, traffic in _traffic(rule, now):
        rate = traffic.get("error_rate")
        if rate is not None and rate > rule.threshold:
            message = _(
                "%(model)s: %(rate).1f%% of %(requests)s requests failed in the last %(minutes)s minutes "
                "(threshold %(threshold).1f%%)."
            ) % {
                "model": model.name, "rate": rate * 100, "requests": traffic.get("requests"),
                "minutes": rule.window_minutes, "threshold": rule.threshold * 100,
            }  # fmt: skip
            found.append(Finding(f"error_rate:{model.pk}", rate, message))
    return found


def p99_latency(rule, now: datetime) -> list[Finding]:
    found = []
    for model, traffic in _traffic(rule, now):
        p99 = traffic.get("p99_ms")
        if p99 is not None and p99 > rule.threshold:
            message = _(
                "%(model)s: p99 latency %(p99).0f ms over the last %(minutes)s minutes (threshold %(threshold).0f ms)."
            ) % {
                "model": model.name, "p99": p99, "minutes": rule.window_minutes, "threshold": rule.threshold,
            }  # fmt: skip
            found.append(Finding(f"p99_latency:{model.pk}", p99, message))
    return found


def _datasets(rule):
    from datalake.models import Dataset

    datasets = Dataset.objects.filter(department_id=rule.department_id, deleted_at__isnull=True)
    return datasets.filter(pk=rule.dataset_id) if rule.dataset_id else datasets


def quality_check_failed(rule, now: datetime) -> list[Finding]:
    """A live dataset whose newest version failed a check (a warning, or refused by a blocking check)."""
    from datalake.models import DatasetVersion, QualityStatus

    found = []
    failing = _datasets(rule).filter(quality_status__in=[QualityStatus.WARNING, QualityStatus.FAILING]).order_by("name")
    for dataset in failing[:MAX_FINDINGS]:
        newest = DatasetVersion.objects.filter(dataset=dataset).exclude(check_results=[]).order_by("-created_at").first()
        failed = [r.get("message", "") for r in (newest.check_results if newest else []) if not r.get("passed")]
        if dataset.quality_status == QualityStatus.FAILING:
            message = _("%(dataset)s: a blocking quality check refused the newest version.") % {"dataset": dataset.name}
        else:
            message = _("%(dataset)s: a quality check failed on version %(number)s.") % {
                "dataset": dataset.name, "number": dataset.latest_number,
            }  # fmt: skip
        if failed:
            message = f"{message} {' '.join(failed[:3])}"
        found.append(Finding(f"quality:{dataset.pk}", float(len(failed)), message))
    return found


def job_failed(rule, now: datetime) -> list[Finding]:
    """A job of the department that failed within the rule's window (it clears when it leaves the window)."""
    from lepton.jobs.models import Job, JobStatus

    since = max(now - timedelta(minutes=rule.window_minutes), rule.created_at)
    jobs = Job.objects.filter(department_id=rule.department_id, status=JobStatus.FAILED, finished_at__gte=since)
    found = []
    for job in jobs.order_by("-finished_at")[:MAX_FINDINGS]:
        message = _("Job “%(kind)s” failed: %(error)s") % {"kind": job.kind, "error": (job.error_message or "?")[:300]}
        found.append(Finding(f"job:{job.pk}", None, message))
    return found


def quota_nearly_used(rule, now: datetime) -> list[Finding]:
    """GPU minutes this month or data-lake storage at or above the threshold's share of the department's quota."""
    from datalake.services import department_storage_used
    from lepton.jobs.dispatcher import gpu_minutes_used

    department = rule.department
    found = []
    if department.gpu_minutes_per_month > 0:
        used = gpu_minutes_used([department.pk], now).get(department.pk, 0.0)
        share = used / department.gpu_minutes_per_month
        if share >= rule.threshold:
            message = _("%(department)s used %(used).0f of its %(quota)s GPU minutes this month (%(share).0f%%).") % {
                "department": department.name, "used": used, "quota": department.gpu_minutes_per_month, "share": share * 100,
            }  # fmt: skip
            found.append(Finding("quota:gpu", share, message))
    if department.storage_bytes_quota > 0:
        used = department_storage_used(department)
        share = used / department.storage_bytes_quota
        if share >= rule.threshold:
            message = _("%(department)s stores %(used)s of its %(quota)s bytes of data (%(share).0f%%).") % {
                "department": department.name, "used": used, "quota": department.storage_bytes_quota, "share": share * 100,
            }  # fmt: skip
            found.append(Finding("quota:storage", share, message))
    return found


def dataset_stale(rule, now: datetime) -> list[Finding]:
    """A live dataset with no version published for `threshold` days (counted from its creation when it has none)."""
    from datalake.models import VersionStatus

    cutoff = now - timedelta(days=rule.threshold)
    datasets = (
        _datasets(rule)
        .filter(created_at__lt=cutoff)
        .annotate(last=Max("versions__published_at", filter=Q(versions__status=VersionStatus.PUBLISHED)))
        .filter(Q(last__isnull=True) | Q(last__lt=cutoff))
        .order_by("name")
    )
    found = []
    for dataset in datasets[:MAX_FINDINGS]:
        since = dataset.last or dataset.created_at
        days = (now - since).total_seconds() / 86400
        message = _("%(dataset)s: no new version for %(days).0f days (threshold %(threshold)s days).") % {
            "dataset": dataset.name, "days": days, "threshold": f"{rule.threshold:g}",
        }  # fmt: skip
        found.append(Finding(f"stale:{dataset.pk}", days, message))
    return found


SOURCES = {
    AlertKind.DRIFT_PSI: drift_psi,
    AlertKind.ERROR_RATE: error_rate,
    AlertKind.P99_LATENCY: p99_latency,
    AlertKind.QUALITY_CHECK_FAILED: quality_check_failed,
    AlertKind.JOB_FAILED: job_failed,
    AlertKind.QUOTA_NEARLY_USED: quota_nearly_used,
    AlertKind.DATASET_STALE: dataset_stale,
}


def findings(rule, now: datetime) -> list[Finding]:
    """The subjects for which the rule's condition holds at `now` (one per key)."""
    unique = {f.key: f for f in SOURCES[rule.kind](rule, now)}
    return list(unique.values())[:MAX_FINDINGS]
