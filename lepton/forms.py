"""Browser forms of the core: login (throttled), department switcher, members, jobs, tokens.

Forms validate and present; every write goes through a service. `apply_service_error()`
turns a service's `Invalid`/`Forbidden`/`Conflict` into form errors, so the browser shows the
same reasons the API returns.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework import serializers

from lepton.errors import ServiceError
from lepton.jobs.registry import JobKind, all_kinds
from lepton.middleware import client_ip
from lepton.models import Role, TokenScope


def apply_service_error(form: forms.Form, error: ServiceError, field_map: dict[str, str] | None = None) -> None:
    """Attach a service error to `form`: named fields to those fields, the rest as a form-wide error."""
    field_map = field_map or {}
    placed = False
    for key, messages in (error.fields or {}).items():
        name = field_map.get(key, key)
        if name in form.fields:
            for message in messages:
                form.add_error(name, message)
            placed = True
    if not placed:
        form.add_error(None, error.message)


# --- login throttling ----------------------------------------------------------------------


class LoginThrottle:
    """Counts failed logins per username and per client IP in the cache.

    After `LOGIN_FAILURE_LIMIT` failures within `LOGIN_FAILURE_WINDOW_SECONDS` for either
    key, every attempt is refused until the window (started by the first failure) ends, even
    with the right password. The cache is shared by all web processes (Redis in production).
    """

    def __init__(self, username: str, ip: str | None):
        # Hashed, so that odd characters in a username cannot break a cache key.
        name = hashlib.sha256((username or "").strip().lower().encode()).hexdigest()[:32]
        self.keys = [f"lepton:login-fail:user:{name}"]
        if ip:
            self.keys.append(f"lepton:login-fail:ip:{ip}")

    def blocked_for(self) -> int:
        """Seconds until attempts are allowed again; 0 when not blocked."""
        limit = settings.LOGIN_FAILURE_LIMIT
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        now = time.time()
        wait = 0
        for key in self.keys:
            count = cache.get(f"{key}:count", 0)
            since = cache.get(f"{key}:since")
            if count >= limit and since is not None:
                wait = max(wait, int(math.ceil(since + window - now)))
        return max(wait, 0)

    def record_failure(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        for key in self.keys:
            # `add` only sets when missing: the window runs from the first failure.
            cache.add(f"{key}:since", time.time(), timeout=window)
            cache.add(f"{key}:count", 0, timeout=window)
            try:
                cache.incr(f"{key}:count")
            except ValueError:  # expired between add and incr
                cache.set(f"{key}:count", 1, timeout=window)

    def reset_user(self) -> None:
        """A successful login clears the username's count (the IP's count stays)."""
        cache.delete_many([f"{self.keys[0]}:count", f"{self.keys[0]}:since"])


class ThrottledLogin:
    """Throttling and one generic message for every wrong login, for the site's and the admin's login forms.

    Why not django-axes: this throttle already counts per username and per IP in the shared
    cache (Redis), answers with one message and needs no tables; both login pages use it, and
    a lock-out is written to the audit log (`login.locked`, seen by staff).
    """

    error_messages = {
        "invalid_login": _("The username or password is not right."),
        "inactive": _("The username or password is not right."),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request) if self.request is not None else None
        throttle = LoginThrottle(username, ip)
        wait = throttle.blocked_for()
        if wait:
            raise self.throttled_error(wait)
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            throttle.record_failure()
            wait = throttle.blocked_for()
            if wait:
                from lepton import audit

                audit.record(
                    actor=None,
                    action="login.locked",
                    object_repr=username[:200],
                    changes={"username": username[:150], "seconds": wait},
                )
                raise self.throttled_error(wait) from None
            raise
        throttle.reset_user()
        return cleaned

    @staticmethod
    def throttled_error(seconds: int) -> forms.ValidationError:
        minutes = max(1, math.ceil(seconds / 60))
        message = ngettext(
            "Too many failed attempts; try again in %(minutes)d minute.",
            "Too many failed attempts; try again in %(minutes)d minutes.",
            minutes,
        ) % {"minutes": minutes}
        return forms.ValidationError(message, code="throttled")


class LoginForm(ThrottledLogin, AuthenticationForm):
    """Django's login form, throttled (ThrottledLogin)."""


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    """The admin's login form, under the same throttle (lepton/admin.py sets it on the site)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _("The username or password is not right."),
        "inactive": _("The username or password is not right."),
    }


# --- departments and members ---------------------------------------------------------------


class DepartmentSwitchForm(forms.Form):
    department = forms.SlugField(label=_("Department"))
    next = forms.CharField(required=False, widget=forms.HiddenInput)


def _role_choices(may_administer: bool) -> list[tuple[str, str]]:
    return [(value, label) for value, label in Role.choices if may_administer or value != Role.ADMIN]


class MemberAddForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, may_administer: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(may_administer)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


# --- jobs ------------------------------------------------------------------------------------

PARAM_PREFIX = "param_"


def startable_kinds() -> list[JobKind]:
    """Kinds people may start from the Jobs page, the platform self-check first."""
    kinds = [kind for kind in all_kinds().values() if kind.user_startable]
    return sorted(kinds, key=lambda k: (k.name != "lepton.selfcheck", k.label.lower()))


def _form_field_for(field: serializers.Field) -> forms.Field:
    """A plain form field for one serializer field; the serializer still validates on submit."""
    required = field.required and field.default is serializers.empty
    initial = None if field.default is serializers.empty else field.default
    common = {"required": required, "initial": initial, "help_text": field.help_text or "", "label": field.label or None}
    if isinstance(field, serializers.BooleanField):
        return forms.BooleanField(**{**common, "required": False})
    if isinstance(field, serializers.IntegerField):
        return forms.IntegerField(min_value=field.min_value, max_value=field.max_value, **common)
    if isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        return forms.FloatField(min_value=field.min_value, max_value=field.max_value, **common)
    if isinstance(field, serializers.ChoiceField):
        return forms.ChoiceField(choices=list(field.choices.items()), **common)
    return forms.CharField(**common)


class JobStartForm(forms.Form):
    """Start a job: department, kind, priority and one field per parameter of the chosen kind."""

    department = forms.ChoiceField(label=_("Department"))
    kind = forms.ChoiceField(label=_("Kind"))
    priority = forms.IntegerField(
        label=_("Priority"),
        initial=5,
        help_text=_("1 (lowest) to 10 (highest); higher runs first."),
        widget=forms.NumberInput(attrs={"min": 1, "max": 10}),
    )

    def __init__(self, *args, departments=(), current_department=None, **kwargs):
        super().__init__(*args, **kwargs)
        kinds = startable_kinds()
        self.kinds = {kind.name: kind for kind in kinds}
        self.fields["kind"].choices = [(kind.name, kind.label) for kind in kinds]
        self.fields["department"].choices = [(d.slug, d.name) for d in departments]
        if current_department is not None:
            self.fields["department"].initial = current_department.slug
        chosen = (self.data.get("kind") if self.is_bound else None) or self.initial.get("kind")
        self.job_kind = self.kinds.get(chosen) or (kinds[0] if kinds else None)
        if self.job_kind is not None:
            self.fields["kind"].initial = self.job_kind.name
            for name, field in self.job_kind.params().fields.items():
                if not field.read_only:
                    self.fields[PARAM_PREFIX + name] = _form_field_for(field)

    def param_fields(self):
        return [self[name] for name in self.fields if name.startswith(PARAM_PREFIX)]

    def params(self) -> dict:
        """The parameters the user filled in; left-out optional ones take the kind's defaults."""
        return {
            name[len(PARAM_PREFIX) :]: value
            for name, value in self.cleaned_data.items()
            if name.startswith(PARAM_PREFIX) and value not in (None, "")
        }

    def field_map(self) -> dict[str, str]:
        """Service error keys (`params.steps`) → this form's field names (`param_steps`)."""
        return {f"params.{name[len(PARAM_PREFIX) :]}": name for name in self.fields if name.startswith(PARAM_PREFIX)}


# --- API tokens ------------------------------------------------------------------------------


class TokenCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("What will use this token, e.g. “MES export”."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=TokenScope.choices,
        initial=[TokenScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Read: look at data and jobs. Write: change things. Predict: call prediction endpoints."),
    )
    expires_on = forms.DateField(
        label=_("Expires on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Optional. The token stops working at the end of this day."),
    )

    def expires_at(self) -> datetime.datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        end_of_day = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min)
        return timezone.make_aware(end_of_day)


def add_service_errors(form, exc, field_for=None) -> None:
    """Show a service's refusal (lepton.errors.ServiceError) on a form: each field's errors on that
    field where the form has it (`field_for` maps service field names), the rest above the form."""
    for key, errors in exc.fields.items():
        name = field_for(key) if field_for else (key if key in form.fields else None)
        form.add_error(name if name in form.fields else None, errors)
    if not exc.fields:
        form.add_error(None, exc.message)
