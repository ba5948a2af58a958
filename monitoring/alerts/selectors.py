"""Reads of alerting, always through the policy: rules and alerts a user may see, their notifications."""

from __future__ import annotations

from lepton import policy
from monitoring.alerts.models import Alert, AlertRule, Notification


def rules_visible(user):
    """Alert rules of the departments where the user is a member or above."""
    return policy.visible_to(user, AlertRule).select_related("department", "model", "dataset", "created_by")


def alerts_visible(user):
    """Alerts of the departments the user belongs to (any role), newest first."""
    return (
        policy.visible_to(user, Alert)
        .select_related("rule", "department", "acknowledged_by", "resolved_by")
        .order_by("-first_seen_at", "-pk")
    )


def notifications_of(user):
    return Notification.objects.filter(user_id=user.pk).select_related("alert", "alert__rule").order_by("-created_at", "-id")


def unread_count(user) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()
