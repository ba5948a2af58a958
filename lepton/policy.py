"""The one permission policy: `can(user, action, obj)` and `visible_to(user, Model, action)`.

Browser views, the API, the admin and (later) the SQL console all ask here; nothing
filters by hand. Objects outside a user's reach are reported as missing (404), never as
forbidden, so a URL does not tell an outsider that the object exists.

Rules, by kind of object:
- Department: `view` (any role), `submit` (member: create objects and run jobs in it),
  `manage` (maintainer: members, shares), `administer` (admin: quotas, admins).
- Owned objects (a `department` field): `view` (viewer), `use` (member: train on,
  predict with), `change` (member), `delete` and `share` (maintainer). A `Share` to
  another department grants its viewers `view`, and with level `use` its members `use`,
  until the share expires.
- Platform staff (`is_staff`) may view everything; superusers may do everything.
Parts register their models in `AppConfig.ready()` with `register(Model, OwnedRule())`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from lepton.models import ROLE_RANK, ApiToken, AuditEvent, Department, Membership, Role, Share, ShareLevel

_ROLES_ATTR = "_lepton_roles"


def user_roles(user) -> dict[int, str]:
    """{department_id: role} for the user, read once per user object."""
    if user is None or not user.is_authenticated:
        return {}
    roles = getattr(user, _ROLES_ATTR, None)
    if roles is None:
        roles = dict(Membership.objects.filter(user_id=user.pk).values_list("department_id", "role"))
        setattr(user, _ROLES_ATTR, roles)
    return roles


def forget_roles(user) -> None:
    """Drop the cached roles after a membership change (services call this)."""
    if user is not None and hasattr(user, _ROLES_ATTR):
        delattr(user, _ROLES_ATTR)


def role_in(user, department) -> str | None:
    department_id = department.pk if isinstance(department, Department) else department
    return user_roles(user).get(department_id)


def _departments_with(user, role: str) -> list[int]:
    need = ROLE_RANK[role]
    return [dept for dept, r in user_roles(user).items() if ROLE_RANK[r] >= need]


def _is_super(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


# Read-only actions platform staff may do everywhere: seeing objects, reading the full audit log.
STAFF_READ_ACTIONS = frozenset({"view", "audit"})


def _is_staff_viewer(user, action: str) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff and action in STAFF_READ_ACTIONS)


class Rule:
    """How one model answers `can` and `visible_to`."""

    actions: dict[str, str] = {}

    def q(self, user, action: str, model) -> Q:
        raise NotImplementedError

    def can(self, user, action: str, obj) -> bool:
        raise NotImplementedError

    def until(self, user, action: str, obj):
        """When an allowed `action` stops being allowed by itself (a share's end); None: never by itself."""
        return None


def _nothing() -> Q:
    return Q(pk__in=[])


class DepartmentRule(Rule):
    actions = {"view": Role.VIEWER, "submit": Role.MEMBER, "manage": Role.MAINTAINER, "administer": Role.ADMIN}

    def q(self, user, action, model):
        return Q(pk__in=_departments_with(user, self.actions[action]))

    def can(self, user, action, obj):
        role = role_in(user, obj)
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[self.actions[action]]


class OwnedRule(Rule):
    """An object owned by one department, reachable by others through shares."""

    actions = {
        "view": Role.VIEWER,
        "use": Role.MEMBER,
        "change": Role.MEMBER,
        "delete": Role.MAINTAINER,
        "share": Role.MAINTAINER,
    }
    # Which share levels grant an action, and the role the grantee needs for it.
    share_grants = {"view": ((ShareLevel.VIEW, ShareLevel.USE), Role.VIEWER), "use": ((ShareLevel.USE,), Role.MEMBER)}

    def __init__(self, department_field: str = "department", actions: dict[str, str] | None = None):
        self.department_field = department_field
        if actions is not None:
            self.actions = actions

    def _department_id(self, obj) -> int:
        return getattr(obj, f"{self.department_field}_id")

    def _active_shares(self, user, action: str, model):
        grant = self.share_grants.get(action)
        if grant is None:
            return None
        levels, role = grant
        departments = _departments_with(user, role)
        if not departments:
            return None
        now = timezone.now()
        return Share.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            department_id__in=departments,
            level__in=levels,
        ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def q(self, user, action, model):
        condition = Q(**{f"{self.department_field}__in": _departments_with(user, self.actions[action])})
        shares = self._active_shares(user, action, model)
        if shares is not None:
            # Evaluated here (one query) so that integer and UUID keys match on every database.
            shared = [model._meta.pk.to_python(oid) for oid in shares.values_list("object_id", flat=True)]
            if shared:
                condition |= Q(pk__in=shared)
        return condition

    def can(self, user, action, obj):
        role = role_in(user, self._department_id(obj))
        if role is not None and ROLE_RANK[role] >= ROLE_RANK[self.actions[action]]:
            return True
        shares = self._active_shares(user, action, type(obj))
        return shares is not None and shares.filter(object_id=str(obj.pk)).exists()

    def until(self, user, action, obj):
        role = role_in(user, self._department_id(obj))
        if role is not None and ROLE_RANK[role] >= ROLE_RANK[self.actions[action]]:
            return None
        shares = self._active_shares(user, action, type(obj))
        ends = list(shares.filter(object_id=str(obj.pk)).values_list("expires_at", flat=True)) if shares is not None else []
        return None if not ends or None in ends else max(ends)


class JobRule(OwnedRule):
    """Jobs: viewers see them; the requester (still a member) or a maintainer may cancel; maintainers share."""

    actions = {"view": Role.VIEWER, "cancel": Role.MAINTAINER, "share": Role.MAINTAINER}
    share_grants = {"view": ((ShareLevel.VIEW, ShareLevel.USE), Role.VIEWER)}

    def q(self, user, action, model):
        condition = super().q(user, action, model)
        if action == "cancel":
            condition |= Q(requested_by_id=user.pk, department__in=_departments_with(user, Role.MEMBER))
        return condition

    def can(self, user, action, obj):
        if super().can(user, action, obj):
            return True
        if action == "cancel" and obj.requested_by_id == user.pk:
            role = role_in(user, obj.department_id)
            return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MEMBER]
        return False


class ChildRule(Rule):
    """An object that belongs to an owned parent (a dataset's version): the parent's rule decides."""

    def __init__(self, parent_field: str, parent_model):
        self.parent_field = parent_field
        self.parent_model = parent_model

    @property
    def actions(self):
        return rule_for(self.parent_model).actions

    def q(self, user, action, model):
        return Q(**{f"{self.parent_field}__in": visible_to(user, self.parent_model, action).values("pk")})

    def can(self, user, action, obj):
        return can(user, action, getattr(obj, self.parent_field))


class MembershipRule(Rule):
    actions = {"view": Role.VIEWER, "change": Role.MAINTAINER, "delete": Role.MAINTAINER}

    def q(self, user, action, model):
        return Q(department__in=_departments_with(user, self.actions[action]))

    def can(self, user, action, obj):
        role = role_in(user, obj.department_id)
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[self.actions[action]]


class AuditRule(Rule):
    """`view`: a department's activity feed (viewers); `audit`: the audit viewer and its export (admins)."""

    actions = {"view": Role.VIEWER, "audit": Role.ADMIN}

    def q(self, user, action, model):
        return Q(department__in=_departments_with(user, self.actions[action]))

    def can(self, user, action, obj):
        role = role_in(user, obj.department_id) if obj.department_id else None
        return role is not None and ROLE_RANK[role] >= ROLE_RANK[self.actions[action]]


class OwnTokenRule(Rule):
    actions = {"view": Role.VIEWER, "change": Role.VIEWER, "delete": Role.VIEWER}

    def q(self, user, action, model):
        return Q(user_id=user.pk)

    def can(self, user, action, obj):
        return obj.user_id == user.pk


class ShareRule(Rule):
    """A share is seen by the receiving department and managed by the owner's maintainers.

    The owner side needs the shared object's department: parts pass it via `can(…)`
    on the shared object (`share` action); here we cover the receiving side.
    """

    actions = {"view": Role.VIEWER}

    def q(self, user, action, model):
        return Q(department__in=_departments_with(user, Role.VIEWER))

    def can(self, user, action, obj):
        return action == "view" and role_in(user, obj.department_id) is not None


class AccessRequestRule(Rule):
    """An access request is seen and withdrawn by the person who asked; the owning department's
    maintainers see and decide it. Its object's own rule does not apply: the asker cannot see it yet."""

    actions = {"view": Role.VIEWER, "decide": Role.MAINTAINER, "withdraw": Role.VIEWER}

    def q(self, user, action, model):
        mine = Q(requested_by_id=user.pk)
        deciders = Q(department__in=_departments_with(user, Role.MAINTAINER))
        return {"view": mine | deciders, "decide": deciders, "withdraw": mine}[action]

    def can(self, user, action, obj):
        mine = obj.requested_by_id == user.pk
        role = role_in(user, obj.department_id)
        decider = role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.MAINTAINER]
        return {"view": mine or decider, "decide": decider, "withdraw": mine}[action]


_RULES: dict[type, Rule] = {}


def register(model: type[models.Model], rule: Rule) -> None:
    _RULES[model] = rule


def rule_for(model) -> Rule:
    model = model if isinstance(model, type) else type(model)
    model = model._meta.concrete_model
    try:
        return _RULES[model]
    except KeyError:
        raise LookupError(f"No policy rule for {model.__name__}: register one in its app's ready().") from None


def _check_action(rule: Rule, action: str, model) -> None:
    if action not in rule.actions:
        raise ValueError(f"Unknown action {action!r} for {model.__name__}; known: {sorted(rule.actions)}")


def can(user, action: str, obj) -> bool:
    """May `user` do `action` to `obj`? Anonymous and inactive users may do nothing."""
    rule = rule_for(obj)
    _check_action(rule, action, type(obj))
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if _is_super(user) or _is_staff_viewer(user, action):
        return True
    return rule.can(user, action, obj)


def allowed_until(user, action: str, obj):
    """For an allowed action: the moment it stops being allowed without any change being made
    (the end of the share that grants it), or None. Caches of `can` answers (the predict fast
    path) keep them no longer than this; every other change moves lepton.counters' generation."""
    if _is_super(user) or _is_staff_viewer(user, action):
        return None
    return rule_for(obj).until(user, action, obj)


def visible_to(user, model, action: str = "view", queryset=None):
    """The objects of `model` (or of `queryset`) on which `user` may do `action`."""
    rule = rule_for(model)
    _check_action(rule, action, model)
    qs = queryset if queryset is not None else model._default_manager.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return qs.none()
    if _is_super(user) or _is_staff_viewer(user, action):
        return qs
    return qs.filter(rule.q(user, action, model))


def get_visible_or_404(user, model, action: str = "view", queryset=None, **lookup):
    """One object the user may act on, or 404 whether it is missing or out of reach."""
    return get_object_or_404(visible_to(user, model, action, queryset), **lookup)


def require(user, action: str, obj) -> None:
    """Raise NotFound when `obj` is out of the user's sight, Forbidden when seen but `action` is not allowed.

    What services call before a change; views and the API turn the errors into 404 and 403.
    """
    from django.utils.translation import gettext as _

    from lepton.errors import Forbidden, NotFound

    if not can(user, "view", obj):
        raise NotFound()
    if not can(user, action, obj):
        raise Forbidden(_("Your role does not allow '%(action)s' here.") % {"action": action})


def departments_for(user, action: str = "view") -> Iterable[Department]:
    return visible_to(user, Department, action)


def register_core() -> None:
    from lepton.jobs.models import Job

    register(Department, DepartmentRule())
    register(Membership, MembershipRule())
    register(AuditEvent, AuditRule())
    register(ApiToken, OwnTokenRule())
    register(Share, ShareRule())
    register(Job, JobRule())
    from lepton.collab.models import AccessRequest

    register(AccessRequest, AccessRequestRule())
