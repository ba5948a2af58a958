"""Every state change of the core: departments, memberships, shares, API tokens.

Each function takes the acting user as `actor=`, checks the policy, changes the rows
in one transaction and writes its audit event in that same transaction. Views, the API,
the admin and management commands call these; none of them repeats the logic.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from lepton import audit, history, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import (
    ROLE_RANK,
    ApiToken,
    Department,
    ExternalIdentity,
    Membership,
    Profile,
    Role,
    Share,
    ShareLevel,
    TokenScope,
)

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


# --- single sign-on ----------------------------------------------------------------------


@dataclass
class ExternalLogin:
    """What a sign-in through the identity provider did (lepton.oidc shows it to the person)."""

    user: object
    created: bool = False
    added: list[str] = dataclass_field(default_factory=list)
    changed: list[str] = dataclass_field(default_factory=list)
    removed: list[str] = dataclass_field(default_factory=list)
    # Department slugs the group map names that do not exist (also a system check error).
    missing_departments: list[str] = dataclass_field(default_factory=list)
    # Memberships the provider would have lowered or removed but that keep a department's last admin.
    kept_last_admin: list[str] = dataclass_field(default_factory=list)

    @property
    def has_access(self) -> bool:
        return Membership.objects.filter(user=self.user).exists()


_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]+")


def _free_username(claims: dict) -> str:
    """A username for a new account from the provider's claims, never one that exists already."""
    email = str(claims.get("email") or "")
    base = str(claims.get("preferred_username") or email.split("@")[0] or "user")
    base = _USERNAME_UNSAFE.sub("-", base).strip("-.")[:140] or "user"
    candidate, n = base, 1
    # An existing local "alice" is not the provider's "alice": the new account gets "alice-2".
    while User.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _profile_from_claims(claims: dict) -> dict:
    return {
        "email": str(claims.get("email") or "")[:254],
        "first_name": str(claims.get("given_name") or "")[:150],
        "last_name": str(claims.get("family_name") or "")[:150],
    }


def external_login(
    *, issuer: str, subject: str, claims: dict, groups: list[str], roles: dict[str, str], sync: bool
) -> ExternalLogin:
    """Find or create the user of a verified provider identity and bring the memberships the
    provider manages in line with `roles` ({department slug: role}, from the group map).

    The caller (lepton.oidc) has verified the ID token; `issuer` and `subject` are its `iss`
    and `sub`. The identity is found by those two alone (see ExternalIdentity). Nothing is
    changed for a disabled account (Forbidden). Membership changes are made by the platform
    ("system" in the audit log), with `source: sso`, and open and close access-history periods
    like the membership services above.
    """
    for role in roles.values():
        _check_role(role)
    now = timezone.now()
    with transaction.atomic():
        identity = (
            ExternalIdentity.objects.select_for_update().select_related("user").filter(issuer=issuer, subject=subject).first()
        )
        created = False
        if identity is None:
            user = User(username=_free_username(claims), **_profile_from_claims(claims))
            user.set_unusable_password()
            user.save()
            try:
                with transaction.atomic():
                    identity = ExternalIdentity.objects.create(issuer=issuer, subject=subject, user=user)
            except IntegrityError:  # the same person's second tab won the race
                raise Conflict(
                    _("This sign-in is already being completed in another window, so nobody was signed in here; try again.")
                ) from None
            created = True
            audit.record(
                actor=None,
                action="user.create",
                obj=user,
                object_repr=user.get_username(),
                changes={"username": user.get_username(), "source": "sso", "issuer": issuer, "subject": subject},
            )
        user = identity.user
        if not user.is_active:
            raise Forbidden(_("This account is disabled in Lepton, so nobody was signed in; ask an administrator to enable it."))
        if not created:
            profile = {k: v for k, v in _profile_from_claims(claims).items() if v and getattr(user, k) != v}
            if profile:
                for k, v in profile.items():
                    setattr(user, k, v)
                user.save(update_fields=list(profile))
        result = ExternalLogin(user=user, created=created)
        identity.granted = _sync_external_memberships(identity, roles, sync=sync, result=result)
        identity.groups = list(groups)
        identity.last_login = now
        identity.save(update_fields=["granted", "groups", "last_login"])
    policy.forget_roles(user)
    return result


def external_identity_link(*, actor, user, issuer: str, subject: str) -> ExternalIdentity:
    """Let an existing account sign in through the provider as (issuer, subject) (platform admins only)."""
    _require_platform_admin(actor)
    issuer, subject = (issuer or "").strip(), (subject or "").strip()
    errors = {}
    if not issuer:
        errors["issuer"] = [_("Give the provider's issuer, as in LEPTON_OIDC_ISSUER.")]
    if not subject:
        errors["subject"] = [_("Give the person's subject (sub) at the provider.")]
    if errors:
        raise Invalid(_("The identity cannot be linked."), fields=errors)
    with transaction.atomic():
        taken = ExternalIdentity.objects.filter(issuer=issuer, subject=subject).select_related("user").first()
        if taken is not None:
            message = _("This identity already belongs to %(user)s.") % {"user": taken.user.get_username()}
            raise Invalid(message, fields={"subject": [message]}, code="identity_taken")
        identity = ExternalIdentity.objects.create(issuer=issuer, subject=subject, user=user)
        audit.record(
            actor=actor,
            action="sso.link",
            obj=identity,
            changes={"user": user.get_username(), "issuer": issuer, "subject": subject},
        )
    return identity


def external_identity_unlink(*, actor, identity: ExternalIdentity) -> None:
    """End sign-in through the provider for this identity; the account and its memberships stay."""
    _require_platform_admin(actor)
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="sso.unlink",
            obj=identity,
            changes={"user": identity.user.get_username(), "issuer": identity.issuer, "subject": identity.subject},
        )
        identity.delete()


def _sync_external_memberships(identity, roles: dict[str, str], *, sync: bool, result: ExternalLogin) -> dict:
    """The memberships the provider manages after this sign-in (ExternalIdentity.granted)."""
    user = identity.user
    departments = {d.slug: d for d in Department.objects.filter(slug__in=list(roles))}
    result.missing_departments = sorted(set(roles) - set(departments))
    wanted = {str(departments[slug].pk): role for slug, role in roles.items() if slug in departments}
    by_id = {str(d.pk): d for d in departments.values()}
    memberships = {
        str(m.department_id): m for m in Membership.objects.select_for_update().select_related("department").filter(user=user)
    }
    granted = {}
    for department_id, mark in (identity.granted or {}).items():
        membership = memberships.get(department_id)
        # Still as the provider left it? Otherwise a person changed or re-made it: it is theirs now.
        if membership is not None and membership.pk == mark.get("membership") and membership.role == mark.get("role"):
            granted[department_id] = mark

    def audit_change(action, membership, changes):
        audit.record(
            actor=None,
            action=action,
            obj=membership,
            department=membership.department,
            changes={"user": user.get_username(), **changes, "source": "sso", "issuer": identity.issuer},
        )

    def is_last_admin(membership) -> bool:
        return membership.role == Role.ADMIN and not _other_admins(membership).exists()

    for department_id, role in wanted.items():
        membership = memberships.get(department_id)
        if membership is None:
            department = by_id[department_id]
            membership = Membership.objects.create(user=user, department=department, role=role)
            history.membership_opened(membership)
            audit_change("membership.add", membership, {"role": role})
            granted[department_id] = {"membership": membership.pk, "role": role}
            result.added.append(f"{department.name} ({role})")
            continue
        if department_id not in granted or membership.role == role:
            continue  # made in Lepton: left alone
        raise_it = ROLE_RANK[role] > ROLE_RANK[membership.role]
        if not (raise_it or sync):
            continue
        if is_last_admin(membership):
            result.kept_last_admin.append(membership.department.name)
            continue
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        history.membership_closed(membership)
        history.membership_opened(membership)
        audit_change("membership.change_role", membership, {"role": [old, role]})
        granted[department_id] = {"membership": membership.pk, "role": role}
        result.changed.append(f"{membership.department.name} ({old} → {role})")

    if sync:
        for department_id in [d for d in granted if d not in wanted]:
            membership = memberships[department_id]
            if is_last_admin(membership):
                result.kept_last_admin.append(membership.department.name)
                continue
            audit_change("membership.remove", membership, {"role": membership.role})
            history.membership_closed(membership)
            membership.delete()
            del granted[department_id]
            result.removed.append(membership.department.name)
    return granted


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


# --- profile -----------------------------------------------------------------------------


def profile_set_language(*, actor, language: str) -> Profile:
    """Keep `language` (a code of settings.LANGUAGES, or "" for the browser's own) as the actor's interface language.

    It follows the person to every device they sign in on (lepton.middleware.UserLanguageMiddleware).
    An unknown code is refused and changes nothing.
    """
    if not (actor and actor.is_authenticated):
        raise Forbidden(_("Log in to keep a language."))
    codes = [code for code, _name in settings.LANGUAGES]
    if language not in ("", *codes):
        raise Invalid(
            _("Unknown language “%(language)s”; choose one of %(choices)s.")
            % {"language": language, "choices": ", ".join(codes)},
            fields={"language": [_("Choose a language from the list.")]},
        )
    with transaction.atomic():
        profile, _created = Profile.objects.select_for_update().get_or_create(user=actor)
        before = profile.language
        if before != language:
            profile.language = language
            profile.save(update_fields=["language", "updated_at"])
            audit.record(actor=actor, action="profile.language", obj=profile, changes={"language": [before, language]})
    return profile


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
