"""Every state change of working together: access requests, notices, comments, watches, and
the share-expiry reminder (a periodic pass of settings.LEPTON_PERIODIC_TASKS).

Each function takes the acting user as `actor=`, checks the policy, changes its rows in one
transaction with its audit event, and tells people after commit: in-app notices are rows
written with the change; e-mail goes out from a job (`NOTICE_EMAIL_KIND`), so a slow mail
server never holds up a request or the dispatcher. Shares themselves are granted and revoked
by lepton.services.share_grant / share_revoke.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from lepton import audit, policy, selectors, services
from lepton.collab import targets
from lepton.collab.models import AccessRequest, AccessRequestStatus, Comment, Notice, Watch
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import ROLE_RANK, Department, Membership, Role, Share, ShareLevel

User = get_user_model()

NOTICE_EMAIL_KIND = "lepton.notice_emails"
MAX_COMMENT_CHARS = 10_000
MENTION = re.compile(r"(?<![\w.@])@([\w.+-]+)")


# --- notices ---------------------------------------------------------------------------------


def notify(users, message: str, url: str = "", *, email: bool = False) -> list[Notice]:
    """Tell each active person once (in the app, and by e-mail from a job when `email`)."""
    people = {u.pk: u for u in users if u is not None and u.is_active}
    if not people:
        return []
    notices = Notice.objects.bulk_create(
        [Notice(user_id=pk, message=message[:2000], url=url[:300], emailed=False) for pk in people]
    )
    if email:
        ids = [n.pk for n in notices]
        transaction.on_commit(lambda: _queue_emails(ids))
    return notices


def _queue_emails(ids: list[int]) -> None:
    from lepton.jobs.services import platform_job_submit

    platform_job_submit(kind=NOTICE_EMAIL_KIND, params={"notices": ids}, priority=2)


def notice_emails_send(notice_ids: list[int]) -> int:
    """E-mail the notices not yet e-mailed (job kind lepton.notice_emails); how many messages went.

    Each notice is marked before its message goes, so a retried job does not send it twice.
    """
    notices = list(Notice.objects.filter(pk__in=notice_ids, emailed=False).select_related("user").order_by("pk"))
    languages = selectors.languages_of({notice.user_id for notice in notices})
    messages = []
    for notice in notices:
        if not notice.user.email:
            continue
        body = notice.message + (f"\n\n{notice.url}\n" if notice.url else "\n")
        with translation.override(languages[notice.user_id]):  # in the language the person reads Lepton in
            subject = _("[Lepton] %(message)s") % {"message": notice.message.splitlines()[0][:120]}
        messages.append((subject, body, settings.DEFAULT_FROM_EMAIL, [notice.user.email]))
    Notice.objects.filter(pk__in=[n.pk for n in notices]).update(emailed=True)
    return send_mass_mail(messages, fail_silently=False) if messages else 0


def notices_read(*, actor, notice: Notice | None = None) -> int:
    """Mark one of the actor's notices (or all of them) read; how many changed."""
    unread = Notice.objects.filter(user_id=actor.pk, read_at__isnull=True)
    if notice is not None:
        if notice.user_id != actor.pk:
            raise NotFound()
        unread = unread.filter(pk=notice.pk)
    return unread.update(read_at=timezone.now())


def _people(department_id: int, role: str = Role.VIEWER) -> list:
    memberships = Membership.objects.filter(department_id=department_id, user__is_active=True).select_related("user")
    return [m.user for m in memberships if ROLE_RANK[m.role] >= ROLE_RANK[role]]


# --- shares: the expiry reminder -----------------------------------------------------------------


def shares_remind_due(now: datetime | None = None) -> int:
    """Tell both departments of each share ending within LEPTON_SHARE_REMIND_DAYS (once per share);
    how many shares were reminded. The owner's maintainers and the receiving department's people
    get an in-app notice and an e-mail."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.LEPTON_SHARE_REMIND_DAYS)
    due = Share.objects.filter(reminded_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon).select_related(
        "content_type", "department"
    )
    reminded = 0
    for share in due:
        with transaction.atomic():
            # Compare-and-set: two passes at once remind once.
            if Share.objects.filter(pk=share.pk, reminded_at__isnull=True).update(reminded_at=now) != 1:
                continue
            try:
                obj = share.content_type.get_object_for_this_type(pk=share.object_id)
            except share.content_type.model_class().DoesNotExist:
                continue
            message = _("The share of %(object)s with %(department)s ends on %(date)s.") % {
                "object": obj,
                "department": share.department.name,
                "date": f"{share.expires_at:%Y-%m-%d %H:%M} UTC",
            }
            owners = _people(obj.department_id, Role.MAINTAINER)
            receivers = _people(share.department_id)
            notify([*owners, *receivers], message, targets.url_of(obj) if targets.is_registered(obj) else "", email=True)
            audit.record(
                actor=None,
                action="share.remind",
                obj=obj,
                department=obj.department,
                changes={"to": share.department.slug, "expires_at": share.expires_at},
            )
            reminded += 1
    return reminded


def shares_managed(user):
    """Shares of the objects the user may share (their department's maintainers), any kind."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import CharField
    from django.db.models.functions import Cast

    condition = Q(pk__in=[])
    for kind in targets.kinds(shareable=True):
        keys = policy.visible_to(user, kind.model, "share").annotate(_key=Cast("pk", CharField())).values("_key")
        condition |= Q(content_type=ContentType.objects.get_for_model(kind.model), object_id__in=keys)
    return Share.objects.filter(condition).select_related("department", "content_type", "granted_by")


def shares_of(user, obj):
    """The shares of one object, for its page's panel: only its maintainers see them."""
    if not policy.can(user, "share", obj):
        return Share.objects.none()
    return Share.objects.filter(content_type=targets.content_type_of(obj), object_id=str(obj.pk)).select_related(
        "department", "granted_by"
    )


def discoverable_set(*, actor, obj, discoverable: bool):
    """Mark a shareable object discoverable by other departments, or not (its maintainers): they
    then see its metadata and may ask for access. The part's own service changes and audits it."""
    kind = targets.kind_of(obj) if targets.is_registered(obj) else None
    if kind is None or not kind.shareable or kind.set_discoverable is None:
        raise NotFound()
    policy.require(actor, "share", obj)
    return kind.set_discoverable(actor, obj, bool(discoverable))


# --- access requests -----------------------------------------------------------------------------


def discoverable_or_404(user, obj) -> None:
    """Another department may ask for an object only when it is marked discoverable."""
    if not targets.kind_of(obj).shareable or not targets.kind_of(obj).discoverable(obj):
        raise NotFound()


def access_request_create(
    *, actor, obj, level: str = ShareLevel.VIEW, purpose: str = "", department: Department | None = None
) -> AccessRequest:
    """Ask the owning department for `level` on a discoverable `obj`, for one of the actor's departments.

    Its maintainers are told (in-app and by e-mail). Refused: an object that is not
    discoverable (NotFound), one's own department's object, a second pending request of the
    same department, a department that already has that access.
    """
    if not (actor and actor.is_authenticated and actor.is_active):
        raise NotFound()
    discoverable_or_404(actor, obj)
    mine = policy.user_roles(actor)
    errors = {}
    if level not in ShareLevel.values:
        errors["level"] = [_("Choose one of: %(choices)s.") % {"choices": ", ".join(ShareLevel.values)}]
    purpose = (purpose or "").strip()
    if not purpose:
        errors["purpose"] = [_("Say what you need it for.")]
    elif len(purpose) > 300:
        errors["purpose"] = [_("At most 300 characters.")]
    if department is None:
        others = [d for d in mine if d != obj.department_id]
        if len(others) == 1:
            department = Department.objects.get(pk=others[0])
        else:
            errors["department"] = [_("Choose the department that needs access.")]
    elif department.pk not in mine:
        errors["department"] = [_("You are not in this department.")]
    elif department.pk == obj.department_id:
        errors["department"] = [_("This department owns it already.")]
    if errors:
        raise Invalid(_("The request cannot be sent."), fields=errors)
    content_type = targets.content_type_of(obj)
    existing = Share.objects.filter(content_type=content_type, object_id=str(obj.pk), department=department).first()
    if existing is not None and existing.is_active() and (existing.level == ShareLevel.USE or existing.level == level):
        raise Invalid(
            _("%(department)s already has this access.") % {"department": department.name},
            fields={"level": [_("Already granted.")]},
            code="already_shared",
        )
    duplicate = Invalid(
        _("%(department)s already asked for this; wait for the decision or withdraw that request.")
        % {"department": department.name},
        fields={"object_id": [_("A request is already pending.")]},
        code="duplicate_request",
    )
    pending = AccessRequest.objects.filter(
        content_type=content_type, object_id=str(obj.pk), requester_department=department, status=AccessRequestStatus.PENDING
    )
    if pending.exists():
        raise duplicate
    try:
        with transaction.atomic():
            request = AccessRequest.objects.create(
                content_type=content_type,
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                department_id=obj.department_id,
                requester_department=department,
                requested_by=actor,
                level=level,
                purpose=purpose,
            )
            audit.record(
                actor=actor,
                action="access_request.create",
                obj=obj,
                department=obj.department,
                changes={"request": str(request.pk), "from": department.slug, "level": level, "purpose": purpose},
            )
            message = _("%(user)s (%(department)s) asks for %(level)s access to %(object)s: %(purpose)s") % {
                "user": actor.get_username(),
                "department": department.name,
                "level": request.get_level_display(),
                "object": obj,
                "purpose": purpose,
            }
            notify(_people(obj.department_id, Role.MAINTAINER), message, _inbox_url(), email=True)
    except IntegrityError:
        raise duplicate from None  # a second request raced this one: access_request_one_pending keeps one
    return request


def _inbox_url() -> str:
    from django.urls import reverse

    return reverse("access_inbox")


def _pending(request: AccessRequest) -> AccessRequest:
    request = AccessRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != AccessRequestStatus.PENDING:
        raise Conflict(
            _("This request is already %(status)s.") % {"status": request.get_status_display().lower()},
            code="already_decided",
        )
    return request


def _object_of(request: AccessRequest):
    return request.content_type.get_object_for_this_type(pk=request.object_id)


def access_request_approve(
    *, actor, request: AccessRequest, expires_at: datetime | None = None, level: str | None = None
) -> AccessRequest:
    """Grant the request (the owning department's maintainers): creates the share, tells the asker.

    Refused: deciding one's own request, a request no longer pending (409), an expiry in the past.
    """
    _require_decide(actor, request)
    if request.requested_by_id == actor.pk:
        raise Invalid(
            _("You cannot approve your own request; another maintainer decides it."),
            fields={"request": [_("Your own request.")]},
            code="own_request",
        )
    obj = _object_of(request)
    with transaction.atomic():
        request = _pending(request)
        share = services.share_grant(
            actor=actor,
            obj=obj,
            department=request.requester_department,
            level=level or request.level,
            purpose=request.purpose,
            expires_at=expires_at,
            replace=True,
        )
        request.status, request.decided_at, request.decided_by, request.share = (
            AccessRequestStatus.APPROVED,
            timezone.now(),
            actor,
            share,
        )
        request.save(update_fields=["status", "decided_at", "decided_by", "share"])
        audit.record(
            actor=actor,
            action="access_request.approve",
            obj=obj,
            department=obj.department,
            changes={"request": str(request.pk), "from": request.requester_department.slug, "level": share.level,
                     "expires_at": expires_at},
        )  # fmt: skip
        message = _("Your request for %(object)s was approved: %(department)s may %(level)s it.") % {
            "object": obj,
            "department": request.requester_department.name,
            "level": share.level,
        }
        notify([request.requested_by], message, targets.url_of(obj), email=True)
    return request


def access_request_reject(*, actor, request: AccessRequest, reason: str) -> AccessRequest:
    """Refuse the request with a reason (the owning department's maintainers); the asker is told why."""
    _require_decide(actor, request)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Give a reason for the refusal."), fields={"reason": [_("Say why.")]})
    if len(reason) > 2000:
        raise Invalid(_("The reason is too long."), fields={"reason": [_("At most 2000 characters.")]})
    obj = _object_of(request)
    with transaction.atomic():
        request = _pending(request)
        request.status, request.decided_at, request.decided_by, request.reason = (
            AccessRequestStatus.REJECTED,
            timezone.now(),
            actor,
            reason,
        )
        request.save(update_fields=["status", "decided_at", "decided_by", "reason"])
        audit.record(
            actor=actor,
            action="access_request.reject",
            obj=obj,
            department=obj.department,
            changes={"request": str(request.pk), "from": request.requester_department.slug, "reason": reason},
        )
        message = _("Your request for %(object)s was refused: %(reason)s") % {"object": request.object_repr, "reason": reason}
        notify([request.requested_by], message, _inbox_url(), email=True)
    return request


def access_request_withdraw(*, actor, request: AccessRequest) -> AccessRequest:
    """The asker takes a pending request back."""
    if not policy.can(actor, "view", request):
        raise NotFound()
    if not policy.can(actor, "withdraw", request):
        raise Forbidden(_("Only the person who asked may withdraw a request."))
    with transaction.atomic():
        request = _pending(request)
        request.status, request.decided_at = AccessRequestStatus.WITHDRAWN, timezone.now()
        request.save(update_fields=["status", "decided_at"])
        audit.record(
            actor=actor,
            action="access_request.withdraw",
            obj=request,
            department=request.department,
            object_repr=request.object_repr,
            changes={"request": str(request.pk), "from": request.requester_department.slug},
        )
    return request


def _require_decide(actor, request: AccessRequest) -> None:
    if not policy.can(actor, "view", request):
        raise NotFound()
    if not policy.can(actor, "decide", request):
        raise Forbidden(_("Only the owning department's maintainers decide access requests."))


# --- comments and watches ------------------------------------------------------------------------


def _require_view(actor, obj) -> None:
    if not targets.is_registered(obj) or not policy.can(actor, "view", obj):
        raise NotFound()


def comment_add(*, actor, obj, body: str) -> Comment:
    """Add a comment to an object's thread (anyone who may see it); each @username mentioned who
    may also see it is told in the app."""
    _require_view(actor, obj)
    body = (body or "").strip()
    if not body:
        raise Invalid(_("Write something first."), fields={"body": [_("The comment is empty.")]})
    if len(body) > MAX_COMMENT_CHARS:
        raise Invalid(
            _("The comment is too long."),
            fields={"body": [_("At most %(count)d characters.") % {"count": MAX_COMMENT_CHARS}]},
        )
    names = list(dict.fromkeys(MENTION.findall(body)))[:20]
    mentioned = [
        u for u in User.objects.filter(username__in=names, is_active=True) if u.pk != actor.pk and policy.can(u, "view", obj)
    ]
    owner = targets.owner_of(obj)
    with transaction.atomic():
        comment = Comment.objects.create(
            content_type=targets.content_type_of(obj),
            object_id=str(obj.pk),
            author=actor,
            body=body,
            mentions=sorted(u.get_username() for u in mentioned),
        )
        audit.record(
            actor=actor,
            action="comment.add",
            obj=obj,
            department=owner.department,
            changes={"comment": str(comment.pk), "mentions": comment.mentions},
        )
        message = _("%(user)s mentioned you on %(object)s: %(excerpt)s") % {
            "user": actor.get_username(),
            "object": obj,
            "excerpt": body[:200],
        }
        notify(mentioned, message, targets.url_of(obj))
    return comment


def comments_of(user, obj):
    """An object's thread, oldest first (empty for anyone who may not see the object)."""
    if not targets.is_registered(obj) or not policy.can(user, "view", obj):
        return Comment.objects.none()
    return Comment.objects.filter(content_type=targets.content_type_of(obj), object_id=str(obj.pk)).select_related("author")


def watch(*, actor, obj) -> Watch:
    """Follow an object (anyone who may see it); watching twice is one watch."""
    _require_view(actor, obj)
    with transaction.atomic():
        found, created = Watch.objects.get_or_create(user=actor, content_type=targets.content_type_of(obj), object_id=str(obj.pk))
        if created:
            audit.record(actor=actor, action="watch.add", obj=obj, department=targets.owner_of(obj).department)
    return found


def unwatch(*, actor, obj) -> None:
    _require_view(actor, obj)
    with transaction.atomic():
        deleted, _rows = Watch.objects.filter(
            user=actor, content_type=targets.content_type_of(obj), object_id=str(obj.pk)
        ).delete()
        if deleted:
            audit.record(actor=actor, action="watch.remove", obj=obj, department=targets.owner_of(obj).department)


def is_watching(user, obj) -> bool:
    if not (user and user.is_authenticated):
        return False
    return Watch.objects.filter(user_id=user.pk, content_type=targets.content_type_of(obj), object_id=str(obj.pk)).exists()


def watchers_notify(obj, message: str, *, actor=None) -> None:
    """Tell the people watching `obj` (who may still see it), after the caller's transaction commits.

    Called by the parts' services (a new dataset version, a failed check, a promotion); runs on
    commit so a rolled-back change tells no one, and the caller's own transaction stays short.
    """
    content_type, object_id, url = targets.content_type_of(obj), str(obj.pk), targets.url_of(obj)
    actor_id = getattr(actor, "pk", None)

    def send():
        people = [
            w.user
            for w in Watch.objects.filter(content_type=content_type, object_id=object_id).select_related("user")
            if w.user_id != actor_id and policy.can(w.user, "view", obj)
        ]
        notify(people, message, url)

    transaction.on_commit(send)
