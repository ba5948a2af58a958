"""Tables of working together: access requests, in-app notices, comments and watches.

They name their object generically (content type + text id, as `Share` does), so the core
serves datasets, models, shop problems and their versions and runs without importing the
parts. State changes go through lepton/collab/services.py.
"""

import uuid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lepton.models import Department, Share, ShareLevel


class AccessRequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class AccessRequest(models.Model):
    """A person asks the owning department for `view` or `use` of one discoverable object.

    At most one pending request per object and requesting department (the share it asks for
    is per department too); approving creates that share.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="access_requests_received")
    requester_department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="access_requests_sent")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests")
    level = models.CharField(max_length=8, choices=ShareLevel.choices, default=ShareLevel.VIEW)
    purpose = models.CharField(max_length=300)
    status = models.CharField(
        max_length=10, choices=AccessRequestStatus.choices, default=AccessRequestStatus.PENDING, db_index=True
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    share = models.ForeignKey(Share, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "requester_department"],
                condition=models.Q(status="pending"),
                name="access_request_one_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.requester_department} → {self.object_repr} ({self.level}, {self.status})"


class Notice(models.Model):
    """Something told to one person in the app (a request to decide, a share ending, a mention);
    unread until they read it. Alerts keep their own notifications (monitoring.alerts)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notices")
    message = models.TextField()
    url = models.CharField(max_length=300, blank=True)
    emailed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notice_unread")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message[:60]}"


class Comment(models.Model):
    """One message in an object's thread; `mentions` are the usernames it notified."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    mentions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["content_type", "object_id", "created_at"], name="comment_thread")]

    def __str__(self) -> str:
        return f"{self.author_id}: {self.body[:60]}"


class Watch(models.Model):
    """A person follows an object: new versions, promotions and failed checks are told to them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="watches")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "content_type", "object_id"], name="watch_once")]
        indexes = [models.Index(fields=["content_type", "object_id"], name="watch_object")]

    def __str__(self) -> str:
        return f"{self.user_id} watches {self.content_type_id}:{self.object_id}"
