"""Monitoring's own state changes: expiring old traffic counts."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from monitoring.models import ActiveUser, TrafficMinute


def traffic_expire(now=None) -> int:
    """Delete traffic counts and active-people days older than LEPTON_TRAFFIC_RETENTION_DAYS; how many rows went."""
    before = (now or timezone.now()) - timedelta(days=settings.LEPTON_TRAFFIC_RETENTION_DAYS)
    minutes, _ = TrafficMinute.objects.filter(minute__lt=before).delete()
    days, _ = ActiveUser.objects.filter(day__lt=before.date()).delete()
    return minutes + days
