"""Browser pages of alerting: alert history (acknowledge, resolve), rules (maintainers change them), notifications.

Every list starts from monitoring.alerts.selectors (the policy); every change goes through
monitoring.alerts.services. Objects out of reach are 404; a role that may not act is 403.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lepton import policy
from lepton.context_processors import current_department
from lepton.crypto import CredentialError
from lepton.errors import Forbidden, Invalid, ServiceError, raise_for_access
from lepton.models import Department
from monitoring.alerts import selectors, services
from monitoring.alerts.filtersets import AlertFilterSet
from monitoring.alerts.forms import AlertRuleForm
from monitoring.alerts.models import Alert, AlertRule, Notification

PAGE_SIZE = 50


def _department(request) -> Department | None:
    slug = request.GET.get("department")
    if slug:
        return get_object_or_404(policy.visible_to(request.user, Department, "view"), slug=slug)
    return current_department(request)


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    """The department's alerts, newest first, filtered by state and kind (unresolved ones by default)."""
    department = _department(request)
    alerts = selectors.alerts_visible(request.user).filter(department=department)
    query = request.GET.copy()
    if "state" not in query:
        query.setlist("state", ["open", "acknowledged"])
    filterset = AlertFilterSet(query, queryset=alerts, request=request)
    page = Paginator(filterset.qs if filterset.is_valid() else alerts.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    for alert in page:
        alert.may_change = policy.can(request.user, "change", alert)
    kept = query.copy()
    kept.pop("page", None)
    context = {"department": department, "page_obj": page, "filter": filterset, "selected_states": query.getlist("state"),
               "query": kept.urlencode()}  # fmt: skip
    return render(request, "monitoring/alerts.html", context, status=200 if filterset.is_valid() else 400)


def _alert_action(request, pk, service, done: str) -> HttpResponse:
    alert = policy.get_visible_or_404(request.user, Alert, pk=pk)
    try:
        service(actor=request.user, alert=alert)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back(request, "monitoring:alert_list")


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk) -> HttpResponse:
    return _alert_action(request, pk, services.alert_acknowledge, _("Alert acknowledged."))


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk) -> HttpResponse:
    return _alert_action(request, pk, services.alert_resolve, _("Alert resolved."))


@login_required
def rule_list(request: HttpRequest) -> HttpResponse:
    department = _department(request)
    rules = selectors.rules_visible(request.user).filter(department=department).order_by("name", "pk")
    context = {
        "department": department,
        "rules": rules,
        "may_manage": department is not None and policy.can(request.user, "manage", department),
        "may_read": request.user.is_staff
        or (department is not None and policy.role_in(request.user, department) not in (None, "viewer")),
    }
    return render(request, "monitoring/alert_rules.html", context)


def _rule_form_page(request, form, department, rule=None, status=200) -> HttpResponse:
    secret = ""
    if rule is not None:
        try:
            secret = rule.webhook_secret()
        except CredentialError:
            secret = None  # the page says to renew it
    context = {"form": form, "department": department, "rule": rule, "secret": secret}
    return render(request, "monitoring/alert_rule_form.html", context, status=status)


@login_required
def rule_create(request: HttpRequest) -> HttpResponse:
    department = _department(request)
    if department is None:
        raise Http404
    if not policy.can(request.user, "manage", department):
        raise_for_access(Forbidden(_("Maintainers of the department manage its alert rules.")))
    form = AlertRuleForm(request.POST or None, department=department)
    if request.method == "POST":
        if form.is_valid():
            try:
                rule = services.rule_create(actor=request.user, department=department, **form.values())
            except Invalid as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Rule “%(name)s” created.") % {"name": rule.name})
                return redirect("monitoring:alert_rule_edit", pk=rule.pk)
        return _rule_form_page(request, form, department, status=400)
    return _rule_form_page(request, form, department)


@login_required
def rule_edit(request: HttpRequest, pk) -> HttpResponse:
    rule = policy.get_visible_or_404(request.user, AlertRule, pk=pk)
    if not policy.can(request.user, "change", rule):
        raise_for_access(Forbidden(_("Maintainers of the department manage its alert rules.")))
    initial = {f: getattr(rule, f) for f in services.RULE_FIELDS}
    form = AlertRuleForm(request.POST or None, initial=initial, department=rule.department)
    if request.method == "POST":
        if form.is_valid():
            try:
                rule = services.rule_update(actor=request.user, rule=rule, **form.values())
            except Invalid as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Rule “%(name)s” saved.") % {"name": rule.name})
                return redirect("monitoring:alert_rule_list")
        return _rule_form_page(request, form, rule.department, rule, status=400)
    return _rule_form_page(request, form, rule.department, rule)


@login_required
@require_POST
def rule_toggle(request: HttpRequest, pk) -> HttpResponse:
    """Disable an enabled rule (resolving its alerts) or enable a disabled one."""
    rule = policy.get_visible_or_404(request.user, AlertRule, pk=pk)
    try:
        rule = services.rule_update(actor=request.user, rule=rule, enabled=not rule.enabled)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        done = _("Rule “%(name)s” enabled.") if rule.enabled else _("Rule “%(name)s” disabled; its alerts are resolved.")
        messages.success(request, done % {"name": rule.name})
    return _back(request, "monitoring:alert_rule_list")


@login_required
@require_POST
def rule_secret_renew(request: HttpRequest, pk) -> HttpResponse:
    rule = policy.get_visible_or_404(request.user, AlertRule, pk=pk)
    try:
        services.rule_secret_renew(actor=request.user, rule=rule)
    except ServiceError as exc:
        raise_for_access(exc)
        raise
    messages.success(request, _("A new webhook secret was made: give it to the receiver, the old one no longer verifies."))
    return redirect("monitoring:alert_rule_edit", pk=rule.pk)


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.notifications_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "monitoring/notifications.html", {"page_obj": page})


@login_required
@require_POST
def notification_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`notification` in the form) or all of the person's notifications read."""
    chosen = request.POST.get("notification")
    notification = None
    if chosen:
        if not chosen.isdigit():
            raise Http404
        notification = get_object_or_404(Notification, pk=int(chosen), user_id=request.user.pk)
    services.notifications_read(actor=request.user, notification=notification)
    return _back(request, "monitoring:notification_list")
