"""Panels of working together that any object's page includes, for any registered kind
(lepton.collab.targets):

    {% load collab %}
    {% shares_panel dataset %}     the object's shares, revoke buttons and the share form (its maintainers only)
    {% together_panel dataset %}   watch button, comment thread and the object's activity
    {% together_panel version %}   (the same for a version or a run)

Each reads through lepton.collab.selectors / services, so what a panel shows is what the
policy lets the person see; the forms post to lepton.collab.views.
"""

from __future__ import annotations

from django import template

from lepton import policy
from lepton.collab import selectors, services, targets
from lepton.collab.forms import CommentForm, ShareForm

register = template.Library()


@register.inclusion_tag("lepton/partials/_shares.html", takes_context=True)
def shares_panel(context, obj):
    request = context["request"]
    user = request.user
    if not policy.can(user, "share", obj):
        return {"visible": False}
    shares = list(services.shares_of(user, obj))
    form = ShareForm(
        initial={"object_type": targets.label_of(obj), "object_id": str(obj.pk)}, owner_department_id=obj.department_id
    )
    return {
        "visible": True,
        "object": obj,
        "shares": shares,
        "form": form,
        "can_discover": targets.kind_of(obj).set_discoverable is not None,
        "discoverable": bool(getattr(obj, "discoverable", False)),
        "object_type": targets.label_of(obj),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("lepton/partials/_together.html", takes_context=True)
def together_panel(context, obj, anchor: str = ""):
    request = context["request"]
    user = request.user
    if not (user.is_authenticated and targets.is_registered(obj) and policy.can(user, "view", obj)):
        return {"visible": False}
    label = targets.label_of(obj)
    return {
        "visible": True,
        "object": obj,
        "anchor": anchor or f"together-{obj.pk}",
        # A page's own object has the plain heading; a part of it (a version) is named.
        "named": "" if anchor else str(obj),
        "object_type": label,
        "watching": services.is_watching(user, obj),
        "comments": list(services.comments_of(user, obj)),
        "form": CommentForm(initial={"object_type": label, "object_id": str(obj.pk)}),
        "activity": list(selectors.activity_of(user, obj)),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }
