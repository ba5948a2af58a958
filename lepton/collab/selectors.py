"""Reused reads of working together, always starting from what the user may see."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, Value, When

from lepton import audit, policy
from lepton.collab import targets
from lepton.collab.models import AccessRequest, AccessRequestStatus, Notice
from lepton.models import AuditEvent


def _pending_first(queryset):
    return queryset.annotate(
        _open=Case(When(status=AccessRequestStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField())
    ).order_by("_open", "-created_at")


def requests_visible(user):
    return policy.visible_to(user, AccessRequest).select_related(
        "department", "requester_department", "requested_by", "decided_by", "content_type"
    )


def requests_incoming(user):
    """Requests the user decides (their departments' maintainers): pending first, newest first."""
    return _pending_first(policy.visible_to(user, AccessRequest, "decide", queryset=requests_visible(user)))


def requests_outgoing(user):
    """Requests the user sent: pending first, newest first."""
    return _pending_first(policy.visible_to(user, AccessRequest, "withdraw", queryset=requests_visible(user)))


def discoverable_for(user, query: str = "", limit: int = 200) -> list:
    """Discoverable objects of the departments the user is not in, every shareable kind, for the
    discover list: (kind label, object) pairs, metadata only. Objects the user already sees are left out."""
    found = []
    if not (user and user.is_authenticated):
        return found
    mine = list(policy.user_roles(user))
    for kind in targets.kinds(shareable=True):
        if not kind.discoverable_filter:
            continue
        objects = (
            kind.live(kind.model._default_manager.filter(**kind.discoverable_filter))
            .exclude(department__in=mine)
            .exclude(pk__in=policy.visible_to(user, kind.model).values("pk"))
            .select_related("department")
        )
        for word in query.split():
            objects = objects.filter(Q(name__icontains=word) | Q(description__icontains=word))
        found.extend((kind.label, obj) for obj in objects.order_by("department__name", "name")[:limit])
    return found[:limit]


def pending_to_decide(user) -> int:
    return policy.visible_to(user, AccessRequest, "decide").filter(status=AccessRequestStatus.PENDING).count()


def activity_of(user, obj, limit: int = 20):
    """The audit events of one object that the user may see (their departments' events), newest first."""
    return (
        policy.visible_to(user, AuditEvent)
        .filter(object_type=audit.object_type(obj), object_id=str(obj.pk))
        .select_related("actor")[:limit]
    )


def notices_of(user):
    return Notice.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def unread_notices(user) -> int:
    if not user.is_authenticated:
        return 0
    return Notice.objects.filter(user_id=user.pk, read_at__isnull=True).count()
