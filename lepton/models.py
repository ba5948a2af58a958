"""Core tables: departments and people, shares, API tokens, the audit log, lineage, jobs.

State changes go through lepton/services.py (and lepton/jobs/services.py); the models
hold fields, constraints and single-row rules only.
"""

import uuid

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer")
    MEMBER = "member", _("Member")
    MAINTAINER = "maintainer", _("Maintainer")
    ADMIN = "admin", _("Admin")


ROLE_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.MAINTAINER: 3, Role.ADMIN: 4}


def roles_at_least(role: str) -> list[str]:
    """The roles ranked at or above `role` (viewer < member < maintainer < admin)."""
    return [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]


class Department(models.Model):
    """A department owns data, models, problems and jobs; its quotas bound its use of shared compute."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    max_concurrent_jobs = models.PositiveIntegerField(
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_("Jobs of this department that may be released or running at once."),
    )
    gpu_minutes_per_month = models.PositiveIntegerField(
        default=600,
        help_text=_("GPU minutes per calendar month; 0 means no GPU work."),
    )
    storage_bytes_quota = models.BigIntegerField(
        default=50 * 1024**3,
        validators=[MinValueValidator(0)],
        help_text=_("Bytes of data-lake storage this department may use."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one department; a department always keeps at least one admin."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["department__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "department"], name="membership_unique_user_department")]

    def __str__(self) -> str:
        return f"{self.user} — {self.department} ({self.role})"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self.role]


class ShareLevel(models.TextChoices):
    VIEW = "view", _("View")
    USE = "use", _("Use (train on, predict with)")


class Share(models.Model):
    """Grants another department `view` or `use` on one owned object, optionally until a date."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    # Text, so that integer and UUID primary keys can both be shared.
    object_id = models.CharField(max_length=64)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="shares_received")
    level = models.CharField(max_length=8, choices=ShareLevel.choices, default=ShareLevel.VIEW)
    purpose = models.CharField(max_length=300, blank=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # When both departments were told that the share ends soon (lepton.collab.services.shares_remind_due):
    # set once, so the reminder goes out once.
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id", "department"], name="share_unique_object_department"),
        ]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.content_type.model}:{self.object_id} → {self.department} ({self.level})"

    def is_active(self, at=None) -> bool:
        return self.expires_at is None or self.expires_at > (at or timezone.now())


class MembershipPeriod(models.Model):
    """A span of time in which a person held one role in a department (ended_at empty: still).

    Opened and closed by the membership services (lepton/services.py) in the transaction of
    the change; read by lepton.history for "who could see this on that date"."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=12, choices=Role.choices)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["department", "started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "department"], condition=models.Q(ended_at__isnull=True), name="membership_period_one_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.department} {self.role} {self.started_at:%Y-%m-%d}–{self.ended_at or ''}"


class SharePeriod(models.Model):
    """A span of time in which a share granted a department view or use of an object, with the
    expiry it had then (a share past its expiry grants nothing even while the period is open)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=8, choices=ShareLevel.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["content_type", "object_id", "started_at"])]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} → {self.department} {self.level} {self.started_at:%Y-%m-%d}"


class TokenScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Write")
    PREDICT = "predict", _("Predict")


class ApiToken(models.Model):
    """A bearer token for /api/v1/: the secret is shown once and only its SHA-256 is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The visible start of the token ("lep_ab12cd34"), used to find the row and shown in lists.
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class AuditEvent(models.Model):
    """One state change: who did what to which object, from where, with the changed fields.

    Events are hash-chained after they commit (`seq`, `prev_hash`, `hash`; see lepton/audit.py):
    a changed, removed or reordered row is found by `manage.py verify_audit`. The actor and
    department keys are kept even when the user or department is deleted (no database
    constraint, DO_NOTHING), because they are part of the sealed content.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Kept as text so the record survives the user's deletion ("system" for the platform itself).
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    department = models.ForeignKey(
        Department,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    # The chain: position (1, 2, …, given when sealed), the previous event's hash and this one's
    # (sha256 hex over lepton.audit.canonical). Empty until `lepton.audit.seal_pending` runs.
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["department", "-at"]),
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["actor_label", "-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"


class LineageEdge(models.Model):
    """A generic "made from" edge between two objects, with the recipe, run or job that made it.

    Kept in the core so that parts can show each other's lineage without importing each other.
    """

    from_type = models.CharField(max_length=80)
    from_id = models.CharField(max_length=64)
    to_type = models.CharField(max_length=80)
    to_id = models.CharField(max_length=64)
    via_type = models.CharField(max_length=80, blank=True)
    via_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["from_type", "from_id"]), models.Index(fields=["to_type", "to_id"])]
        constraints = [
            models.UniqueConstraint(fields=["from_type", "from_id", "to_type", "to_id"], name="lineage_unique_edge"),
        ]

    def __str__(self) -> str:
        return f"{self.from_type}:{self.from_id} → {self.to_type}:{self.to_id}"


class ExternalIdentity(models.Model):
    """A person's account at an OpenID Connect provider, linked to one Lepton user.

    Found by (issuer, subject) and nothing else: the subject is the provider's stable id for
    the person, while e-mail addresses and usernames can be chosen, changed or reused at the
    provider, so matching on them would hand an existing Lepton account to whoever claims its
    address there (account takeover). A first sign-in creates a new user; an admin may link an
    existing one by adding this row in the admin.
    """

    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_login = models.DateTimeField(null=True, blank=True)
    # The provider's groups at the last sign-in, as it sent them.
    groups = models.JSONField(default=list, blank=True)
    # The memberships the provider made and still manages: {department id: {"membership": id,
    # "role": role}}. One that a person has since changed or re-made is no longer listed, and
    # sign-in leaves it alone (lepton.services.memberships_sync_external).
    granted = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique_subject")]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer} → {self.user}"


from lepton.collab.models import AccessRequest, Comment, Notice, Watch  # noqa: E402,F401  (lepton.collab's tables)
from lepton.jobs.models import Job, JobLogLine, WorkerHeartbeat  # noqa: E402,F401  (the job tables live in lepton.jobs)


class Profile(models.Model):
    """A person's own settings that follow them to any device they sign in on: the interface language.

    At most one per user, made by the first change (lepton.services.profile_set_language); without one, or with
    an empty language, the browser decides (LocaleMiddleware: the language cookie, then Accept-Language).
    lepton.middleware.UserLanguageMiddleware applies it to every page the person opens.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lepton_profile")
    # A code of settings.LANGUAGES ("en", "zh-hans"), or "" for the browser's choice.
    language = models.CharField(max_length=16, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.language or 'browser language'})"
