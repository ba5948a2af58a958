"""Reused reads of the core, always starting from what the user may see."""

from django.conf import settings

from lepton import policy
from lepton.jobs.models import Job, JobStatus
from lepton.models import AuditEvent, Department, Membership, Profile, Role


def jobs_visible(user):
    """Jobs the user may see, with what list pages show (fixed query count)."""
    return policy.visible_to(user, Job, "view").select_related("department", "requested_by")


def fair_share(user) -> list[dict]:
    """The Jobs page's fair-share panel: per department the user may see, its jobs holding a slot
    (released or running) against `max_concurrent_jobs`, those still waiting, and its GPU minutes
    this month against its quota; counted as lepton.jobs.dispatcher counts them (three queries)."""
    from django.db.models import Count, Q

    from lepton.jobs.dispatcher import gpu_minutes_used

    departments = list(policy.visible_to(user, Department, "view").order_by("name"))
    counts = {
        row["department_id"]: row
        for row in Job.objects.filter(department__in=departments, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .values("department_id")
        .annotate(
            active=Count("pk", filter=Q(status=JobStatus.RUNNING) | Q(released_at__isnull=False)),
            waiting=Count("pk", filter=Q(status=JobStatus.QUEUED, released_at__isnull=True)),
        )
    }
    gpu = gpu_minutes_used([d.pk for d in departments])
    return [
        {
            "department": d,
            "active": counts.get(d.pk, {}).get("active", 0),
            "limit": d.max_concurrent_jobs,
            "waiting": counts.get(d.pk, {}).get("waiting", 0),
            "gpu_used": round(gpu.get(d.pk, 0.0), 1),
            "gpu_limit": d.gpu_minutes_per_month,
        }
        for d in departments
    ]


def department_jobs_active(user, department: Department, limit: int = 20):
    return (
        jobs_visible(user)
        .filter(department=department, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .order_by("-priority", "queued_at")[:limit]
    )


def department_activity(user, department: Department, limit: int = 20):
    """The latest audit events of a department, for its home page."""
    return policy.visible_to(user, AuditEvent, "view").filter(department=department).select_related("actor")[:limit]


def department_members(user, department: Department):
    return (
        policy.visible_to(user, Membership, "view")
        .filter(department=department)
        .select_related("user")
        .order_by("user__username")
    )


def audit_events(user):
    """The audit viewer's events: a department admin's departments', staff all (the `audit` action)."""
    return policy.visible_to(user, AuditEvent, "audit").select_related("department").order_by("-at", "-id")


def may_audit(user) -> bool:
    """Whether the audit viewer has anything to show the user (it is linked in the navigation then)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or Role.ADMIN in policy.user_roles(user).values()


def languages_of(user_ids) -> dict[int, str]:
    """The interface language of each user (lepton.models.Profile), the site's default where none is kept:
    what an e-mail to them is written in."""
    from django.conf import settings

    from lepton.models import Profile

    kept = dict(Profile.objects.filter(user_id__in=list(user_ids)).exclude(language="").values_list("user_id", "language"))
    return {user_id: kept.get(user_id, settings.LANGUAGE_CODE) for user_id in user_ids}


def kept_language(user_id) -> str:
    """The interface language a person keeps on their profile ("" for none or one no longer offered)."""
    language = Profile.objects.filter(user_id=user_id).values_list("language", flat=True).first() or ""
    return language if language in dict(settings.LANGUAGES) else ""
