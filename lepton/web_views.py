"""The browser shell: department home, members, jobs, profile and tokens, the department switcher.

Views are thin: every read starts from `lepton.policy` / `lepton.selectors` (outsiders get
404), every write calls a service, and a service's error becomes a form error or a message.
A view serves the whole page, or only its live fragment when htmx asks (`request.htmx`).
"""

from __future__ import annotations

import csv
import json
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import i18n as i18n_views
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from lepton import history, oidc, policy, selectors, services
from lepton.context_processors import SESSION_DEPARTMENT, current_department
from lepton.errors import Forbidden, ServiceError
from lepton.filtersets import AuditEventFilterSet, JobFilterSet
from lepton.forms import (
    DepartmentSwitchForm,
    JobStartForm,
    LoginForm,
    MemberAddForm,
    MemberRoleForm,
    TokenCreateForm,
    apply_service_error,
)
from lepton.jobs import services as job_services
from lepton.jobs.models import Job, JobStatus
from lepton.jobs.registry import all_kinds
from lepton.middleware import LANGUAGE_SESSION_KEY
from lepton.models import ApiToken, Department, Membership, Role

JOBS_PER_PAGE = 25
AUDIT_PER_PAGE = 50


def _job_rows_context(request: HttpRequest, jobs) -> dict:
    """What `_job_rows.html` needs: the jobs with `may_cancel`, whether to keep polling, where to come back."""
    jobs = list(jobs)
    for job in jobs:
        # In memory: the policy reads the user's roles once per request.
        job.may_cancel = not job.is_finished and policy.can(request.user, "cancel", job)
    htmx = getattr(request, "htmx", None)
    return {
        "jobs": jobs,
        "polling": any(not job.is_finished for job in jobs),
        "next_url": (htmx.current_url_abs_path if htmx else None) or request.get_full_path(),
        "highlight": request.GET.get("highlight", ""),
    }


def login_required(view):
    """Like Django's, but an htmx request (a poll) gets a client-side redirect, not a login page to swap in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                login = resolve_url(settings.LOGIN_URL)
                return HttpResponseClientRedirect(f"{login}?next={request.path}")
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


# --- auth ----------------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    """Login with throttling (see `lepton.forms.LoginThrottle`) and one generic error message."""

    authentication_form = LoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        # The "Sign in with …" link when single sign-on is configured (lepton/oidc.py).
        return {**super().get_context_data(**kwargs), "sso_name": oidc.provider_name()}


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The language switcher: Django's set_language (the cookie, a safe `next`); a signed-in person's choice is
    also kept on their profile, so it follows them to any device (lepton.middleware.UserLanguageMiddleware)."""
    language = request.POST.get("language", "")
    response = i18n_views.set_language(request)
    if language not in dict(settings.LANGUAGES):
        messages.error(request, _("Unknown language; choose one from the list."))
        return response
    if request.user.is_authenticated:
        services.profile_set_language(actor=request.user, language=language)
        request.session[LANGUAGE_SESSION_KEY] = language
    return response


# --- department home and members -----------------------------------------------------------


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The current department's home, or what to do next when the user belongs to none."""
    department = current_department(request)
    if department is None:
        return render(request, "lepton/home_empty.html")
    return _department_page(request, department)


@login_required
@require_GET
def department_home(request: HttpRequest, slug: str) -> HttpResponse:
    department = policy.get_visible_or_404(request.user, Department, "view", slug=slug)
    return _department_page(request, department)


def _department_page(
    request: HttpRequest, department: Department, *, add_form=None, member_errors=None, status: int = 200
) -> HttpResponse:
    user = request.user
    may_administer = policy.can(user, "administer", department)
    context = {
        "department": department,
        "my_role": Role(my_role).label if (my_role := policy.role_in(user, department)) else None,
        "may_manage": policy.can(user, "manage", department),
        "may_administer": may_administer,
        "may_submit": policy.can(user, "submit", department),
        "members": selectors.department_members(user, department),
        "role_form": MemberRoleForm(),
        "add_form": add_form or MemberAddForm(may_administer=may_administer),
        "member_errors": member_errors or {},
        "activity": selectors.department_activity(user, department),
        "active_jobs_url": f"{reverse('jobs')}?department={department.slug}&status=queued&status=running",
        **_job_rows_context(request, selectors.department_jobs_active(user, department)),
    }
    return render(request, "lepton/department_home.html", context, status=status)


@login_required
@require_POST
def department_switch(request: HttpRequest) -> HttpResponse:
    """Make another department the current one; only departments the user may view (else 404)."""
    form = DepartmentSwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a department."))
        return redirect("home")
    department = policy.get_visible_or_404(request.user, Department, "view", slug=form.cleaned_data["department"])
    request.session[SESSION_DEPARTMENT] = department.slug
    target = _safe_next(request, reverse("home"))
    # A page of the previous department would keep showing it: go to the new one's home instead.
    if target.startswith(reverse("department_home", args=["x"]).rsplit("x", 1)[0]):
        target = reverse("home")
    return redirect(target)


@login_required
@require_POST
def membership_add(request: HttpRequest, slug: str) -> HttpResponse:
    department = policy.get_visible_or_404(request.user, Department, "view", slug=slug)
    may_administer = policy.can(request.user, "administer", department)
    form = MemberAddForm(request.POST, may_administer=may_administer)
    if form.is_valid():
        try:
            person = services.user_find(form.cleaned_data["username"])
            services.membership_add(actor=request.user, department=department, user=person, role=form.cleaned_data["role"])
        except Forbidden as error:
            raise PermissionDenied(error.message) from None
        except ServiceError as error:
            apply_service_error(form, error, {"user": "username"})
        else:
            role = Role(form.cleaned_data["role"]).label
            messages.success(request, _("%(user)s was added as %(role)s.") % {"user": person.get_username(), "role": role})
            return redirect("department_home", slug=department.slug)
    return _department_page(request, department, add_form=form, status=400)


def _membership(request: HttpRequest, department: Department, username: str) -> Membership:
    return policy.get_visible_or_404(request.user, Membership, "view", department=department, user__username=username)


@login_required
@require_POST
def membership_change_role(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    department = policy.get_visible_or_404(request.user, Department, "view", slug=slug)
    membership = _membership(request, department, username)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(actor=request.user, membership=membership, role=form.cleaned_data["role"])
        except Forbidden as error:
            raise PermissionDenied(error.message) from None
        except ServiceError as error:
            return _department_page(request, department, member_errors={username: error.message}, status=error.status)
        role = Role(form.cleaned_data["role"]).label
        messages.success(request, _("%(user)s is now %(role)s.") % {"user": username, "role": role})
        return redirect("department_home", slug=department.slug)
    return _department_page(request, department, member_errors={username: _("Choose a role.")}, status=400)


@login_required
@require_POST
def membership_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    department = policy.get_visible_or_404(request.user, Department, "view", slug=slug)
    membership = _membership(request, department, username)
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except Forbidden as error:
        raise PermissionDenied(error.message) from None
    except ServiceError as error:
        return _department_page(request, department, member_errors={username: error.message}, status=error.status)
    messages.success(request, _("%(user)s was removed from %(department)s.") % {"user": username, "department": department})
    return redirect("department_home", slug=department.slug)


# --- jobs ----------------------------------------------------------------------------------


def _start_form(request: HttpRequest, data=None, initial=None) -> JobStartForm:
    return JobStartForm(
        data,
        initial=initial,
        departments=policy.visible_to(request.user, Department, "view"),
        current_department=current_department(request),
    )


def _fair_share_context(user) -> dict:
    """The fair-share panel's rows; it keeps refreshing itself while a department has work in flight."""
    rows = selectors.fair_share(user)
    return {"fair_share": rows, "fair_share_live": any(r["active"] or r["waiting"] for r in rows)}


def _jobs_page(request: HttpRequest, start_form: JobStartForm | None = None, status: int = 200) -> HttpResponse:
    if getattr(request, "htmx", False) and request.GET.get("panel") == "fair-share":
        return render(request, "lepton/partials/_fair_share.html", _fair_share_context(request.user))
    filterset = JobFilterSet(request.GET, queryset=selectors.jobs_visible(request.user), request=request)
    page = Paginator(filterset.qs, JOBS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page_obj": page,
        **_job_rows_context(request, page.object_list),
        "filter": filterset,
        "poll_url": f"{reverse('jobs')}?{request.GET.urlencode()}",
        "query": query.urlencode(),
        "statuses": JobStatus.choices,
        "kind_choices": sorted(all_kinds()),
        "selected_statuses": request.GET.getlist("status"),
        "departments": policy.visible_to(request.user, Department, "view"),
        "start_form": start_form or _start_form(request),
    }
    if getattr(request, "htmx", False):
        return render(request, "lepton/partials/_job_rows.html", context, status=status)
    context |= _fair_share_context(request.user)
    return render(request, "lepton/jobs.html", context, status=status)


@login_required
@require_GET
def jobs(request: HttpRequest) -> HttpResponse:
    """Jobs the user may see, filtered; htmx polls get only the table body."""
    return _jobs_page(request)


@login_required
@require_http_methods(["GET", "POST"])
def job_start(request: HttpRequest) -> HttpResponse:
    """POST: start a job through `job_submit`. GET (htmx): the form with the fields of another kind."""
    if request.method == "GET":
        form = _start_form(request, initial=request.GET.dict())
        return render(request, "lepton/partials/_job_start_form.html", {"start_form": form})
    form = _start_form(request, data=request.POST)
    if form.is_valid():
        department = policy.get_visible_or_404(request.user, Department, "view", slug=form.cleaned_data["department"])
        try:
            job = job_services.job_submit(
                actor=request.user,
                department=department,
                kind=form.cleaned_data["kind"],
                params=form.params(),
                priority=form.cleaned_data["priority"],
            )
        except ServiceError as error:
            apply_service_error(form, error, form.field_map())
        else:
            messages.success(request, _("Job “%(kind)s” was queued.") % {"kind": form.job_kind.label})
            return redirect(f"{reverse('jobs')}?highlight={job.pk}")
    return _jobs_page(request, start_form=form, status=400)


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder)


@login_required
@require_GET
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    job = policy.get_visible_or_404(
        request.user, Job, "view", queryset=Job.objects.select_related("department", "requested_by"), pk=pk
    )
    context = {
        "job": job,
        "log_lines": job.log_lines.all()[:500],
        "may_cancel": not job.is_finished and policy.can(request.user, "cancel", job),
        "show_traceback": request.user.is_staff,
        "params_json": _pretty_json(job.params),
        "result_json": _pretty_json(job.result) if job.result else "",
    }
    if getattr(request, "htmx", False):
        return render(request, "lepton/partials/_job_live.html", context)
    return render(request, "lepton/job_detail.html", context)


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk) -> HttpResponse:
    job = policy.get_visible_or_404(request.user, Job, "view", pk=pk)
    try:
        job = job_services.job_cancel(actor=request.user, job=job)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        if job.status == JobStatus.CANCELLED:
            messages.success(request, _("The job was cancelled."))
        else:
            messages.info(request, _("Cancel asked for; the job stops at its next step."))
    return redirect(_safe_next(request, reverse("job_detail", args=[job.pk])))


# --- profile and API tokens ----------------------------------------------------------------


def _profile_page(request: HttpRequest, form=None, new_token=None, new_secret=None, status: int = 200) -> HttpResponse:
    context = {
        "tokens": policy.visible_to(request.user, ApiToken, "view"),
        "form": form or TokenCreateForm(),
        "new_token": new_token,
        "new_secret": new_secret,
        "memberships": policy.visible_to(request.user, Membership, "view").filter(user=request.user).select_related("department"),
    }
    return render(request, "lepton/profile.html", context, status=status)


@never_cache
@login_required
@require_GET
def profile(request: HttpRequest) -> HttpResponse:
    return _profile_page(request)


@never_cache
@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Create a token and show its secret on this response only; it is never shown again."""
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            token, secret = services.token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
            )
        except ServiceError as error:
            apply_service_error(form, error, {"expires_at": "expires_on"})
        else:
            return _profile_page(request, new_token=token, new_secret=secret)
    return _profile_page(request, form=form, status=400)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk) -> HttpResponse:
    token = policy.get_visible_or_404(request.user, ApiToken, "delete", pk=pk)
    try:
        services.token_revoke(actor=request.user, token=token)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The token “%(name)s” was revoked; it no longer works.") % {"name": token.name})
    return redirect("profile")


# --- audit viewer --------------------------------------------------------------------------


def _audit_filter(request: HttpRequest) -> AuditEventFilterSet:
    return AuditEventFilterSet(request.GET, queryset=selectors.audit_events(request.user), request=request)


def _audit_page(request: HttpRequest, filterset: AuditEventFilterSet) -> HttpResponse:
    valid = filterset.is_valid()
    events = filterset.qs if valid else filterset.queryset.none()
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page_obj": page,
        "events": page.object_list,
        "filter": filterset,
        "form": filterset.form,
        "query": query.urlencode(),
        "may_audit": selectors.may_audit(request.user),
        "departments": policy.visible_to(request.user, Department, "view")
        if not request.user.is_staff
        else Department.objects.all(),
    }
    return render(request, "lepton/audit.html", context, status=200 if valid else 400)


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log of the departments the user administers (staff: all), filtered and paginated."""
    return _audit_page(request, _audit_filter(request))


class _Echo:
    """A file-like object whose write() returns the line, so csv.writer feeds a streaming response."""

    def write(self, value):
        return value


# A spreadsheet runs a cell that starts with one of these as a formula: such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


AUDIT_CSV_HEADER = ["at", "seq", "actor", "action", "object_type", "object_id", "object", "department", "ip", "changes", "hash"]


def _audit_csv_rows(events):
    writer = csv.writer(_Echo())
    yield writer.writerow(AUDIT_CSV_HEADER)
    for event in events.iterator(chunk_size=2000):
        yield writer.writerow(
            [
                _cell(value)
                for value in (
                    event.at.isoformat(),
                    event.seq,
                    event.actor_label,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.object_repr,
                    event.department.slug if event.department else "",
                    event.ip,
                    json.dumps(event.changes, ensure_ascii=False, sort_keys=True, cls=DjangoJSONEncoder),
                    event.hash,
                )
            ]
        )


@login_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered audit log as CSV, streamed row by row (no page limit); bad filters show the page's errors."""
    filterset = _audit_filter(request)
    if not filterset.is_valid():
        return _audit_page(request, filterset)
    response = StreamingHttpResponse(_audit_csv_rows(filterset.qs), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="lepton-audit.csv"'
    return response


# --- who could see an object, as of a date ------------------------------------------------


class _AccessQuery:
    """The /audit/access/ inputs, checked: `object` as "app.model:id" (as the audit log names
    objects) and `at`; errors by field, as form errors."""

    def __init__(self, request: HttpRequest):
        self.object_text = request.GET.get("object", "").strip()
        self.at_text = request.GET.get("at", "").strip()
        self.errors: dict[str, list[str]] = {}
        self.obj = self.at = None
        if not self.object_text:
            return
        try:
            self.at = history.parse_at(self.at_text)
        except ServiceError as error:
            self.errors.update(error.fields)
        self.obj = self._object(request.user)

    def _object(self, user):
        from django.apps import apps
        from django.http import Http404

        kind, _sep, ident = self.object_text.partition(":")
        try:
            model = apps.get_model(kind)
        except (LookupError, ValueError):
            model = None
        if model is None or not ident or "department" not in {f.name for f in model._meta.fields}:
            self.errors["object"] = [_("Name an object as the audit log does: app.model:id (e.g. datalake.dataset:…).")]
            return None
        try:
            obj = model._default_manager.select_related("department").get(pk=ident)
        except (model.DoesNotExist, ValueError, ValidationError):
            raise Http404 from None
        # The object's department admins and staff may ask; to anyone else it does not exist.
        if not (user.is_staff or policy.can(user, "administer", obj.department)):
            raise Http404
        return obj


@login_required
@require_GET
def audit_access(request: HttpRequest) -> HttpResponse:
    """Who could see an object (a dataset, a model, …) on a given date, and through what."""
    query = _AccessQuery(request)
    rows = history.who_could_see(query.obj, query.at) if query.obj is not None and not query.errors else None
    context = {"query": query, "rows": rows, "may_audit": selectors.may_audit(request.user)}
    return render(request, "lepton/audit_access.html", context, status=400 if query.errors else 200)
