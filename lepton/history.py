"""'As of' reads: a moment from user input, and who could see an object at that moment.

Access over time comes from `MembershipPeriod` and `SharePeriod` rows (lepton/models.py),
which the services that add, change or remove memberships and shares open and close in the
same transaction as the change (lepton/services.py); migration 0003 opened one for every
membership and share that existed then, from its creation.
"""

from __future__ import annotations

import datetime

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from lepton.errors import Invalid
from lepton.models import ROLE_RANK, Membership, MembershipPeriod, Role, Share, ShareLevel, SharePeriod


def membership_opened(membership: Membership) -> None:
    MembershipPeriod.objects.create(
        user_id=membership.user_id, department_id=membership.department_id, role=membership.role, started_at=timezone.now()
    )


def membership_closed(membership: Membership) -> None:
    MembershipPeriod.objects.filter(
        user_id=membership.user_id, department_id=membership.department_id, ended_at__isnull=True
    ).update(ended_at=timezone.now())


def share_opened(share: Share) -> None:
    SharePeriod.objects.create(
        content_type_id=share.content_type_id,
        object_id=share.object_id,
        department_id=share.department_id,
        level=share.level,
        expires_at=share.expires_at,
        started_at=timezone.now(),
    )


def share_closed(share: Share) -> None:
    SharePeriod.objects.filter(
        content_type_id=share.content_type_id,
        object_id=share.object_id,
        department_id=share.department_id,
        ended_at__isnull=True,
    ).update(ended_at=timezone.now())


def parse_at(value: str | None, field: str = "at") -> datetime.datetime:
    """An ISO date (the end of that day, in the site's time zone) or date-time; now when empty."""
    value = (value or "").strip()
    if not value:
        return timezone.now()
    try:
        day = parse_date(value) if len(value) == 10 else None
        moment = datetime.datetime.combine(day, datetime.time.max) if day else parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        message = _("Give a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM).")
        raise Invalid(message, fields={field: [message]})
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _open_at(at) -> Q:
    return Q(started_at__lte=at) & (Q(ended_at__isnull=True) | Q(ended_at__gt=at))


def _memberships_at(department_ids, at) -> list[dict]:
    """Who held which role in these departments at `at`. A membership made outside the services
    (so with no period at all) counts from its creation."""
    found = [
        {"user": p.user, "department": p.department, "role": p.role, "since": p.started_at, "until": p.ended_at}
        for p in MembershipPeriod.objects.filter(_open_at(at), department_id__in=department_ids).select_related(
            "user", "department"
        )
    ]
    recorded = set(
        MembershipPeriod.objects.filter(department_id__in=department_ids).values_list("user_id", "department_id").distinct()
    )
    for m in Membership.objects.filter(department_id__in=department_ids, created_at__lte=at).select_related("user", "department"):
        if (m.user_id, m.department_id) not in recorded:
            found.append({"user": m.user, "department": m.department, "role": m.role, "since": m.created_at, "until": None})
    return found


def who_could_see(obj, at) -> list[dict]:
    """The people who could view `obj` (an object owned by a department) at `at`, and why:
    their role in the owning department, or a share to their department that was active then.
    Platform staff, who see everything, are not listed."""
    rows: dict[tuple, dict] = {}
    for held in _memberships_at([obj.department_id], at):
        rows[(held["user"].pk, held["department"].pk)] = {**held, "via": _("member of the owning department")}
    shares = SharePeriod.objects.filter(
        _open_at(at),
        Q(expires_at__isnull=True) | Q(expires_at__gt=at),
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        level__in=[ShareLevel.VIEW, ShareLevel.USE],
    )
    for share in shares:
        for held in _memberships_at([share.department_id], at):
            if ROLE_RANK[held["role"]] < ROLE_RANK[Role.VIEWER]:
                continue
            ends = [t for t in (held["until"], share.ended_at, share.expires_at) if t]
            rows.setdefault(
                (held["user"].pk, held["department"].pk),
                {
                    **held,
                    "via": _("share (%(level)s)") % {"level": ShareLevel(share.level).label},
                    "since": max(held["since"], share.started_at),
                    "until": min(ends) if ends else None,
                },
            )
    return sorted(rows.values(), key=lambda r: (r["department"].name, r["user"].get_username()))
