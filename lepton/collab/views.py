"""Browser pages of working together: shares, access requests (the /access/ inbox), comments,
watches and activity feeds.

Thin as everywhere: reads start from the policy (lepton.collab.selectors), writes call
lepton.collab.services or lepton.services, and a service's refusal becomes a form error
shown on the page again (400), never a half change. The panels on the datasets', models'
and shop problems' pages come from lepton/templatetags/collab.py and post here.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from lepton import policy, selectors, services
from lepton.collab import selectors as collab_selectors
from lepton.collab import services as collab_services
from lepton.collab import targets
from lepton.collab.forms import AccessRequestForm, ApproveForm, CommentForm, RejectForm, ShareForm
from lepton.collab.models import AccessRequest
from lepton.errors import NotFound, ServiceError, raise_for_access
from lepton.forms import apply_service_error
from lepton.models import Department, Share
from lepton.web_views import _safe_next, login_required

PAGE_SIZE = 50


def _target(request: HttpRequest, label: str, object_id: str, action: str = "view", *, shareable: bool = False):
    """The object a form names, or 404 when it is unknown or out of the user's reach for `action`."""
    try:
        obj = targets.find(label, object_id, shareable=shareable)
    except ServiceError:
        raise Http404() from None
    if not policy.can(request.user, "view", obj):
        raise Http404()
    if not policy.can(request.user, action, obj):
        raise PermissionDenied(_("Your role does not allow '%(action)s' here.") % {"action": action})
    return obj


# --- shares ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def share_create(request: HttpRequest) -> HttpResponse:
    """Share an object with another department (its maintainers): the panel posts here; errors show on this page."""
    data = request.POST if request.method == "POST" else request.GET
    obj = _target(request, data.get("object_type", ""), data.get("object_id", ""), "share", shareable=True)
    form = ShareForm(
        request.POST if request.method == "POST" else None,
        initial={"object_type": targets.label_of(obj), "object_id": str(obj.pk)},
        owner_department_id=obj.department_id,
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                share = services.share_grant(
                    actor=request.user,
                    obj=obj,
                    department=form.cleaned_data["department"],
                    level=form.cleaned_data["level"],
                    purpose=form.cleaned_data["purpose"],
                    expires_at=form.expires_at(),
                )
            except ServiceError as error:
                raise_for_access(error)
                apply_service_error(form, error, {"expires_at": "expires_on"})
            else:
                messages.success(
                    request,
                    _("%(object)s is shared with %(department)s.") % {"object": obj, "department": share.department.name},
                )
                return redirect(targets.url_of(obj) + "#shares")
        status = 400
    return render(request, "lepton/share_form.html", {"object": obj, "form": form}, status=status)


@login_required
@require_POST
def share_revoke(request: HttpRequest, pk) -> HttpResponse:
    share = Share.objects.select_related("content_type", "department").filter(pk=pk).first()
    if share is None:
        raise Http404()
    try:
        obj = share.content_type.get_object_for_this_type(pk=share.object_id)
        services.share_revoke(actor=request.user, share=share)
    except (ServiceError, share.content_type.model_class().DoesNotExist) as error:
        if isinstance(error, ServiceError):
            raise_for_access(error)
        raise Http404() from None
    messages.success(request, _("The share with %(department)s was revoked.") % {"department": share.department.name})
    return redirect(_safe_next(request, targets.url_of(obj) + "#shares" if targets.is_registered(obj) else "/"))


@login_required
@require_POST
def discoverable_toggle(request: HttpRequest) -> HttpResponse:
    """Make an object discoverable by other departments, or hide it again (its maintainers)."""
    obj = _target(request, request.POST.get("object_type", ""), request.POST.get("object_id", ""), "share", shareable=True)
    value = request.POST.get("discoverable") == "1"
    try:
        collab_services.discoverable_set(actor=request.user, obj=obj, discoverable=value)
    except ServiceError as error:
        raise_for_access(error)
        messages.error(request, error.message)
    else:
        if value:
            messages.success(request, _("Other departments now see what %(object)s is and may ask for access.") % {"object": obj})
        else:
            messages.success(request, _("%(object)s is no longer discoverable.") % {"object": obj})
    return redirect(targets.url_of(obj) + "#shares")


# --- access requests -------------------------------------------------------------------------


@login_required
@require_GET
def discover(request: HttpRequest) -> HttpResponse:
    """What other departments made discoverable (datasets, models, shop problems): metadata only."""
    query = request.GET.get("q", "").strip()
    found = collab_selectors.discoverable_for(request.user, query)
    rows = [{"type": label, "object": obj, "kind": obj._meta.verbose_name} for label, obj in found]
    return render(request, "lepton/discover.html", {"rows": rows, "q": query})


def _my_other_departments(user, obj):
    return policy.visible_to(user, Department).exclude(pk=obj.department_id).order_by("name")


@login_required
@require_http_methods(["GET", "POST"])
def access_request_create(request: HttpRequest, object_type: str, object_id: str) -> HttpResponse:
    """A discoverable object's metadata and the form to ask for access; anything else is a 404."""
    try:
        obj = targets.find(object_type, object_id, shareable=True)
        collab_services.discoverable_or_404(request.user, obj)
    except ServiceError:
        raise Http404() from None
    departments = _my_other_departments(request.user, obj)
    form = AccessRequestForm(request.POST if request.method == "POST" else None, departments=departments)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                collab_services.access_request_create(
                    actor=request.user,
                    obj=obj,
                    level=form.cleaned_data["level"],
                    purpose=form.cleaned_data["purpose"],
                    department=form.cleaned_data["department"],
                )
            except NotFound:
                raise Http404() from None
            except ServiceError as error:
                apply_service_error(form, error, {"object_id": "purpose"})
            else:
                messages.success(request, _("Your request was sent to the maintainers of %(department)s.")
                                 % {"department": obj.department.name})  # fmt: skip
                return redirect("access_inbox")
        status = 400
    context = {
        "object": obj,
        "form": form,
        "has_access": policy.can(request.user, "view", obj),
        "no_department": not departments.exists(),
    }
    return render(request, "lepton/access_request.html", context, status=status)


def _inbox(request: HttpRequest, *, failed: AccessRequest | None = None, error: str = "", status: int = 200) -> HttpResponse:
    incoming = list(collab_selectors.requests_incoming(request.user)[:PAGE_SIZE])
    outgoing = list(collab_selectors.requests_outgoing(request.user)[:PAGE_SIZE])
    context = {
        "incoming": incoming,
        "outgoing": outgoing,
        "failed_id": failed.pk if failed else None,
        "error": error,
        "approve_form": ApproveForm(),
        "reject_form": RejectForm(),
    }
    return render(request, "lepton/access_inbox.html", context, status=status)


@login_required
@require_GET
def access_inbox(request: HttpRequest) -> HttpResponse:
    """Requests to decide (incoming) and the ones the user sent (outgoing)."""
    return _inbox(request)


def _request_or_404(request: HttpRequest, pk) -> AccessRequest:
    return policy.get_visible_or_404(request.user, AccessRequest, "view", pk=pk)


def _decide(request: HttpRequest, pk, form_class, call, done: str) -> HttpResponse:
    access_request = _request_or_404(request, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        return _inbox(request, failed=access_request, error=first, status=400)
    try:
        call(access_request, form)
    except ServiceError as error:
        raise_for_access(error)
        detail = next(iter(error.fields.values()))[0] if error.fields else ""
        message = f"{error.message} {detail}".strip() if detail and detail != error.message else error.message
        return _inbox(request, failed=access_request, error=message, status=400 if error.status == 400 else error.status)
    messages.success(request, done % {"object": access_request.object_repr})
    return redirect("access_inbox")


@login_required
@require_POST
def access_request_approve(request: HttpRequest, pk) -> HttpResponse:
    return _decide(
        request,
        pk,
        ApproveForm,
        lambda r, form: collab_services.access_request_approve(actor=request.user, request=r, expires_at=form.expires_at()),
        _("Approved: %(object)s is shared."),
    )


@login_required
@require_POST
def access_request_reject(request: HttpRequest, pk) -> HttpResponse:
    return _decide(
        request,
        pk,
        RejectForm,
        lambda r, form: collab_services.access_request_reject(actor=request.user, request=r, reason=form.cleaned_data["reason"]),
        _("Refused: the request for %(object)s."),
    )


@login_required
@require_POST
def access_request_withdraw(request: HttpRequest, pk) -> HttpResponse:
    return _decide(
        request,
        pk,
        ApproveForm,  # no fields of its own: an empty form is always valid
        lambda r, form: collab_services.access_request_withdraw(actor=request.user, request=r),
        _("Withdrawn: your request for %(object)s."),
    )


# --- comments, watches, activity -------------------------------------------------------------


@login_required
@require_POST
def comment_add(request: HttpRequest) -> HttpResponse:
    obj = _target(request, request.POST.get("object_type", ""), request.POST.get("object_id", ""))
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            collab_services.comment_add(actor=request.user, obj=obj, body=form.cleaned_data["body"])
        except ServiceError as error:
            raise_for_access(error)
            apply_service_error(form, error)
        else:
            return redirect(targets.url_of(obj) + "#comments")
    return render(request, "lepton/comment_form.html", {"object": obj, "form": form}, status=400)


@login_required
@require_POST
def watch_toggle(request: HttpRequest) -> HttpResponse:
    obj = _target(request, request.POST.get("object_type", ""), request.POST.get("object_id", ""))
    if request.POST.get("watch") == "0":
        collab_services.unwatch(actor=request.user, obj=obj)
        messages.success(request, _("You no longer watch %(object)s.") % {"object": obj})
    else:
        collab_services.watch(actor=request.user, obj=obj)
        messages.success(request, _("You watch %(object)s: new versions, promotions and failed checks are told to you.")
                         % {"object": obj})  # fmt: skip
    return redirect(_safe_next(request, targets.url_of(obj)))


@login_required
@require_GET
def department_activity(request: HttpRequest, slug: str) -> HttpResponse:
    """Everything that happened in a department (its audit events), newest first."""
    department = policy.get_visible_or_404(request.user, Department, "view", slug=slug)
    events = selectors.department_activity(request.user, department, limit=None)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "lepton/activity.html", {"department": department, "page_obj": page, "action": action})


@login_required
@require_GET
def notice_list(request: HttpRequest) -> HttpResponse:
    """What the platform told the person: requests to decide, decisions, shares ending, mentions, watched objects."""
    page = Paginator(collab_selectors.notices_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page_obj": page, "to_decide": collab_selectors.pending_to_decide(request.user)}
    return render(request, "lepton/notices.html", context)


@login_required
@require_POST
def notices_read(request: HttpRequest) -> HttpResponse:
    collab_services.notices_read(actor=request.user)
    return redirect(_safe_next(request, "/"))
