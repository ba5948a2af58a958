"""Every state change of the core: departments, memberships, shares, API tokens.

Each function takes the acting user as `actor=`, checks the policy, changes the rows
in one transaction and writes its audit event in that same transaction. Views, the API,
the admin and management commands call these; none of them repeats the logic.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from lepton import audit, history, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import ApiToken, Department, Membership, Role, Share, ShareLevel, TokenScope

User = get_user_model()

DEPARTMENT_QUOTA_FIELDS = ["max_concurrent_jobs", "gpu_minutes_per_month", "storage_bytes_quota"]
DEPARTMENT_FIELDS = ["name", "description", *DEPARTMENT_QUOTA_FIELDS]


def _require_platform_admin(actor) -> None:
    if not (actor and actor.is_authenticated and actor.is_superuser):
        raise Forbidden(_("Only platform administrators may do this."))


def _validate_quotas(values: dict) -> None:
    errors = {}
    if "max_concurrent_jobs" in values:
        v = values["max_concurrent_jobs"]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1000:
            errors["max_concurrent_jobs"] = [_("Must be a whole number from 1 to 1000.")]
    for field in ("gpu_minutes_per_month", "storage_bytes_quota"):
        if field in values:
            v = values[field]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                errors[field] = [_("Must be a whole number, 0 or more.")]
    if "name" in values and not str(values["name"]).strip():
        errors["name"] = [_("A department needs a name.")]
    if errors:
        raise Invalid(_("Some values are not valid."), fields=errors)


# --- departments -------------------------------------------------------------------------


def department_create(*, actor, slug: str, name: str, description: str = "", admin=None, **quotas) -> Department:
    """Create a department (platform admins only), with `admin` (default: the actor) as its first admin."""
    _require_platform_admin(actor)
    slug = (slug or "").strip().lower()
    if not slug or slugify(slug) != slug:
        raise Invalid(
            _("The slug may use only lowercase letters, digits and hyphens."),
            fields={"slug": [_("Use lowercase letters, digits and hyphens.")]},
        )
    _validate_quotas({"name": name, **quotas})
    unknown = set(quotas) - set(DEPARTMENT_QUOTA_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    with transaction.atomic():
        if Department.objects.filter(slug=slug).exists():
            raise Invalid(
                _("The slug '%(slug)s' is already taken.") % {"slug": slug},
                fields={"slug": [_("'%(slug)s' is already taken.") % {"slug": slug}]},
                code="slug_taken",
            )
        try:
            with transaction.atomic():
                department = Department.objects.create(slug=slug, name=name.strip(), description=description, **quotas)
        except IntegrityError:
            raise Invalid(
                _("The slug '%(slug)s' is already taken.") % {"slug": slug},
                fields={"slug": [_("'%(slug)s' is already taken.") % {"slug": slug}]},
                code="slug_taken",
            ) from None
        first_admin = admin or actor
        history.membership_opened(Membership.objects.create(user=first_admin, department=department, role=Role.ADMIN))
        policy.forget_roles(first_admin)
        audit.record(
            actor=actor,
            action="department.create",
            obj=department,
            changes={"slug": slug, "name": name, "admin": first_admin.get_username(), **quotas},
        )
    return department


def department_update(*, actor, department: Department, **values) -> Department:
    """Change name, description (maintainers) or quotas (department admins and platform admins)."""
    unknown = set(values) - set(DEPARTMENT_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    needs = "administer" if set(values) & set(DEPARTMENT_QUOTA_FIELDS) else "manage"
    policy.require(actor, needs, department)
    _validate_quotas(values)
    with transaction.atomic():
        department = Department.objects.select_for_update().get(pk=department.pk)
        changes = audit.diff(department, DEPARTMENT_FIELDS, values)
        if not changes:
            return department
        for field, value in values.items():
            setattr(department, field, value)
        department.save(update_fields=list(values))
        audit.record(actor=actor, action="department.update", obj=department, changes=changes)
    return department


# --- memberships -------------------------------------------------------------------------


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise Invalid(
            _("Unknown role '%(role)s'.") % {"role": role},
            fields={"role": [_("Choose one of: %(choices)s.") % {"choices": ", ".join(Role.values)}]},
        )


def _require_may_grant(actor, department: Department, role: str) -> None:
    """Maintainers manage viewers, members and maintainers; only admins grant or touch admin."""
    policy.require(actor, "manage", department)
    if role == Role.ADMIN and not policy.can(actor, "administer", department):
        raise Forbidden(_("Only a department admin may grant or change the admin role."))


def membership_add(*, actor, department: Department, user, role: str = Role.MEMBER) -> Membership:
    """Add a person to a department with a role."""
    _check_role(role)
    _require_may_grant(actor, department, role)
    with transaction.atomic():
        if Membership.objects.filter(department=department, user=user).exists():
            raise Invalid(
                _("%(user)s is already in %(department)s.") % {"user": user.get_username(), "department": department},
                fields={"user": [_("Already a member.")]},
                code="already_member",
            )
        membership = Membership.objects.create(department=department, user=user, role=role)
        history.membership_opened(membership)
        audit.record(
            actor=actor,
            action="membership.add",
            obj=membership,
            department=department,
            changes={"user": user.get_username(), "role": role},
        )
    policy.forget_roles(user)
    return membership


def _other_admins(membership: Membership):
    return (
        Membership.objects.select_for_update()
        .filter(department_id=membership.department_id, role=Role.ADMIN)
        .exclude(pk=membership.pk)
    )


def membership_change_role(*, actor, membership: Membership, role: str) -> Membership:
    """Change a role; refused when it would leave the department without an admin."""
    _check_role(role)
    department = membership.department
    _require_may_grant(actor, department, role)
    if membership.role == Role.ADMIN:
        _require_may_grant(actor, department, Role.ADMIN)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == role:
            return membership
        if membership.role == Role.ADMIN and not _other_admins(membership).exists():
            raise Conflict(
                _("%(user)s is the last admin of %(department)s; make someone else admin first.")
                % {"user": membership.user.get_username(), "department": department},
                fields={"role": [_("The last admin cannot be demoted.")]},
                code="last_admin",
            )
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        history.membership_closed(membership)
        history.membership_opened(membership)
        audit.record(
            actor=actor,
            action="membership.change_role",
            obj=membership,
            department=department,
            changes={"user": membership.user.get_username(), "role": [old, role]},
        )
    policy.forget_roles(membership.user)
    return membership


def membership_remove(*, actor, membership: Membership) -> None:
    """Remove a person from a department; the last admin cannot be removed."""
    department = membership.department
    _require_may_grant(actor, department, membership.role)
    with transaction.atomic():
        membership = Membership.objects.select_for_update().get(pk=membership.pk)
        if membership.role == Role.ADMIN and not _other_admins(membership).exists():
            raise Conflict(
                _("%(user)s is the last admin of %(department)s.")
                % {"user": membership.user.get_username(), "department": department},
                fields={"user": [_("The last admin cannot be removed.")]},
                code="last_admin",
            )
        audit.record(
            actor=actor,
            action="membership.remove",
            obj=membership,
            department=department,
            changes={"user": membership.user.get_username(), "role": membership.role},
        )
        history.membership_closed(membership)
        membership.delete()
    policy.forget_roles(membership.user)


# --- shares ------------------------------------------------------------------------------


def share_grant(
    *,
    actor,
    obj,
    department: Department,
    level: str = ShareLevel.VIEW,
    purpose: str = "",
    expires_at: datetime | None = None,
    replace: bool = False,
) -> Share:
    """Grant `department` view or use of `obj` (the owner's maintainers).

    A department holds one share per object: a second grant while one is active is refused
    (revoke it first), unless `replace` (an approved access request raises the level); an
    expired share is replaced.
    """
    if level not in ShareLevel.values:
        raise Invalid(
            _("Unknown share level '%(level)s'.") % {"level": level},
            fields={"level": [_("Choose one of: %(choices)s.") % {"choices": ", ".join(ShareLevel.values)}]},
        )
    policy.require(actor, "share", obj)
    if department.pk == obj.department_id:
        raise Invalid(
            _("An object is already visible to its own department."), fields={"department": [_("Choose another department.")]}
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise Invalid(_("The expiry must lie in the future."), fields={"expires_at": [_("Must be in the future.")]})
    purpose = (purpose or "").strip()
    if len(purpose) > 300:
        raise Invalid(_("The purpose is too long."), fields={"purpose": [_("At most 300 characters.")]})
    content_type = ContentType.objects.get_for_model(obj)
    with transaction.atomic():
        existing = (
            Share.objects.select_for_update()
            .filter(content_type=content_type, object_id=str(obj.pk), department=department)
            .first()
        )
        if existing is not None and existing.is_active() and not replace:
            raise Invalid(
                _("%(department)s already has access to this (%(level)s); revoke that share first to change it.")
                % {"department": department.name, "level": existing.get_level_display()},
                fields={"department": [_("Already shared with this department.")]},
                code="already_shared",
            )
        values = {"level": level, "purpose": purpose, "granted_by": actor, "expires_at": expires_at, "reminded_at": None}
        if existing is None:
            share = Share.objects.create(content_type=content_type, object_id=str(obj.pk), department=department, **values)
        else:
            for field, value in values.items():
                setattr(existing, field, value)
            existing.created_at = timezone.now()
            existing.save()
            share = existing
        history.share_closed(share)
        history.share_opened(share)
        audit.record(
            actor=actor,
            action="share.update" if existing is not None and replace else "share.grant",
            obj=obj,
            department=obj.department,
            changes={"to": department.slug, "level": level, "purpose": purpose, "expires_at": expires_at},
        )
    return share


def share_revoke(*, actor, share: Share) -> None:
    """End a share now (the owner's maintainers); the receiving department loses access at once."""
    obj = share.content_type.get_object_for_this_type(pk=share.object_id)
    policy.require(actor, "share", obj)
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="share.revoke",
            obj=obj,
            department=obj.department,
            changes={"to": share.department.slug, "level": share.level},
        )
        history.share_closed(share)
        share.delete()


# --- API tokens --------------------------------------------------------------------------

TOKEN_PREFIX = "lep_"


def _hash_token(secret: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, actor, name: str, scopes: list[str], expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for the actor. Returns (token, secret): the secret is never stored or shown again."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Give the token a name (what uses it).")]
    elif len(name) > 100:
        errors["name"] = [_("At most 100 characters.")]
    scopes = list(dict.fromkeys(scopes or []))
    bad = [s for s in scopes if s not in TokenScope.values]
    if not scopes:
        errors["scopes"] = [_("Choose at least one scope.")]
    elif bad:
        errors["scopes"] = [
            _("Unknown scope(s): %(bad)s; choose from %(choices)s.")
            % {"bad": ", ".join(map(str, bad)), "choices": ", ".join(TokenScope.values)}
        ]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [_("Must be in the future.")]
    if errors:
        raise Invalid(_("The token cannot be created."), fields=errors)
    if not (actor and actor.is_authenticated):
        raise Forbidden(_("Log in to create tokens."))
    with transaction.atomic():
        prefix = TOKEN_PREFIX + secrets.token_hex(4)
        while ApiToken.objects.filter(prefix=prefix).exists():
            prefix = TOKEN_PREFIX + secrets.token_hex(4)
        secret = f"{prefix}_{secrets.token_urlsafe(32)}"
        token = ApiToken.objects.create(
            user=actor, name=name, prefix=prefix, token_hash=_hash_token(secret), scopes=scopes, expires_at=expires_at
        )
        audit.record(
            actor=actor, action="token.create", obj=token, changes={"name": name, "scopes": scopes, "expires_at": expires_at}
        )
    return token, secret


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    if not (actor and actor.is_authenticated and (token.user_id == actor.pk or actor.is_superuser)):
        raise NotFound()
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is not None:
            raise Conflict(_("This token is already revoked."), code="already_revoked")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action="token.revoke", obj=token, changes={"name": token.name})
    return token


class TokenError(Exception):
    """Why a presented token is not accepted (the message is safe to show)."""


def token_authenticate(secret: str) -> ApiToken:
    """The usable token for this secret, with its user; raises TokenError otherwise."""
    # "lep_" + 8 hex digits, then "_" and the secret part (which may itself contain "_").
    prefix = secret[: len(TOKEN_PREFIX) + 8] if secret.startswith(TOKEN_PREFIX) else ""
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
    if token is None or not hmac.compare_digest(token.token_hash, _hash_token(secret)):
        raise TokenError(_("Invalid token."))
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenError(_("This token has been revoked."))
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenError(_("This token has expired."))
    if not token.user.is_active:
        raise TokenError(_("The token's user is inactive."))
    # Written at most once a minute per token, to keep reads cheap under load.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = token_seen(token.pk)
    return token


def token_seen(token_id) -> datetime:
    """Record that a token was used now (the token page's "last used"); returns that moment.

    A queryset update, so it moves no access generation (lepton.counters.watch): callers
    write it at most once a minute per token.
    """
    now = timezone.now()
    ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return now


def user_find(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        message = _("No user named '%(username)s'.") % {"username": username}
        raise Invalid(message, fields={"user": [message]}) from None
