"""Recalling a dataset version (bad data) and what it touches downstream.

`version_recall` (maintainers of the dataset's department) follows the lineage graph
(lepton.LineageEdge) from the version, at the moment of the recall, and writes one RecallImpact per
object reached: derived dataset versions (recipes, batch predictions), training runs, the model
versions registered from them (with the aliases that hold them), shop problems. The departments
that own them are e-mailed after the commit; their pages show a banner (`recalls_touching`).
With `block_predictions`, each affected model version refuses predictions (409,
`refuse_recalled`) until a maintainer of the model's department acknowledges its impact.
Everything is audited.
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Replace
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake.models import DatasetVersion, Recall, RecallImpact, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import ROLE_RANK, LineageEdge, Membership, Role

VERSION_TYPE = "datalake.datasetversion"
MODEL_VERSION_TYPE = "models_repo.modelversion"
MAX_REASON = 2000
MAX_DEPTH = 20  # lineage is acyclic; this bounds a walk over a corrupted graph


def downstream(version: DatasetVersion) -> list[tuple[str, str, int]]:
    """(object type, id, steps from the version) of everything made from it, nearest first."""
    seen = {(VERSION_TYPE, str(version.pk))}
    frontier = list(seen)
    found: list[tuple[str, str, int]] = []
    for depth in range(1, MAX_DEPTH + 1):
        if not frontier:
            break
        condition = Q()
        for object_type, object_id in frontier:
            condition |= Q(from_type=object_type, from_id=object_id)
        frontier = []
        for to_type, to_id in LineageEdge.objects.filter(condition).values_list("to_type", "to_id").order_by("to_type", "to_id"):
            if (to_type, to_id) not in seen:
                seen.add((to_type, to_id))
                frontier.append((to_type, to_id))
                found.append((to_type, to_id, depth))
    return found


def _object(object_type: str, object_id: str):
    try:
        model = apps.get_model(object_type)
        return model.objects.filter(pk=object_id).first()
    except (LookupError, ValueError, ValidationError):  # an edge to an unknown kind or a malformed key
        return None


def _owner(obj):
    """The department that owns a lineage object (None for a kind without one)."""
    for path in ("department", "dataset.department", "model.department"):
        value = obj
        for attr in path.split("."):
            value = getattr(value, attr, None)
        if value is not None:
            return value
    return None


def _aliases(obj) -> list[str]:
    if not hasattr(obj, "aliases"):
        return []
    return sorted(obj.aliases.values_list("name", flat=True))


def version_recall(*, actor, version: DatasetVersion, reason: str, block_predictions: bool = False) -> Recall:
    """Recall a published version: flag everything downstream, tell its owners; nothing changes on bad input."""
    policy.require(actor, "delete", version.dataset)  # maintainers of the dataset's department
    reason = (reason or "").strip()
    if not reason:
        raise Invalid(_("Say why the version is recalled."), fields={"reason": [_("This field is required.")]})
    if len(reason) > MAX_REASON:
        message = _("Keep the reason under %(n)d characters.") % {"n": MAX_REASON}
        raise Invalid(message, fields={"reason": [message]})
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset__department").get(pk=version.pk)
        if version.status != VersionStatus.PUBLISHED:
            message = _("Only a published version can be recalled.")
            raise Invalid(message, fields={"version": [message]})
        if Recall.objects.filter(version=version).exists():
            raise Conflict(_("This version is already recalled."), code="already_recalled")
        recall = Recall.objects.create(version=version, reason=reason, block_predictions=block_predictions, created_by=actor)
        impacts = []
        for object_type, object_id, depth in downstream(version):
            obj = _object(object_type, object_id)
            department = _owner(obj) if obj is not None else None
            if department is None:
                continue  # deleted since, or a kind without an owner: nothing to flag
            impacts.append(
                RecallImpact(
                    recall=recall, object_type=object_type, object_id=object_id, department=department,
                    label=str(obj)[:300], depth=depth, aliases=_aliases(obj),
                    blocking=block_predictions and object_type == MODEL_VERSION_TYPE,
                )
            )  # fmt: skip
        RecallImpact.objects.bulk_create(impacts)
        _tell(recall, impacts)
        audit.record(
            actor=actor, action="dataset_version.recall", obj=version, department=version.dataset.department,
            changes={"reason": reason, "block_predictions": block_predictions, "affected": len(impacts)},
        )  # fmt: skip
    return recall


def impact_acknowledge(*, actor, impact: RecallImpact) -> RecallImpact:
    """A maintainer of the affected object's department acknowledges it (predictions resume if blocked)."""
    if not visible_impacts(actor).filter(pk=impact.pk).exists():
        raise NotFound()
    role = policy.role_in(actor, impact.department_id)
    if not actor.is_superuser and (role is None or ROLE_RANK[role] < ROLE_RANK[Role.MAINTAINER]):
        raise Forbidden(_("Only a maintainer of %(department)s can acknowledge this.") % {"department": impact.department})
    with transaction.atomic():
        impact = RecallImpact.objects.select_for_update().select_related("recall__version__dataset").get(pk=impact.pk)
        if impact.acknowledged_at is not None:
            raise Conflict(_("This is already acknowledged."), code="already_acknowledged")
        impact.acknowledged_at = timezone.now()
        impact.acknowledged_by = actor
        impact.save(update_fields=["acknowledged_at", "acknowledged_by"])
        audit.record(
            actor=actor, action="recall_impact.acknowledge", obj=impact, department=impact.department,
            object_repr=impact.label, changes={"recall": str(impact.recall_id), "blocking": impact.blocking},
        )  # fmt: skip
    return impact


def visible_recalls(user):
    """Recalls of the user's departments' versions, or touching something their departments own."""
    if not getattr(user, "is_authenticated", False):
        return Recall.objects.none()
    if user.is_superuser:
        return Recall.objects.all()
    departments = list(policy.user_roles(user))
    return Recall.objects.filter(
        Q(version__dataset__department__in=departments) | Q(impacts__department__in=departments)
    ).distinct()


def visible_impacts(user):
    if not getattr(user, "is_authenticated", False):
        return RecallImpact.objects.none()
    if user.is_superuser:
        return RecallImpact.objects.all()
    departments = list(policy.user_roles(user))
    return RecallImpact.objects.filter(Q(department__in=departments) | Q(recall__version__dataset__department__in=departments))


def _blocking():
    return RecallImpact.objects.filter(object_type=MODEL_VERSION_TYPE, blocking=True, acknowledged_at__isnull=True)


def blocked_annotation(version_field: str = "version_id") -> Exists:
    """Whether a recall blocks the model version in `version_field`, for the query that loads it.

    The predict endpoint reads it with the alias and its version, so that the check costs no
    query of its own. object_id holds str(uuid); a UUID column cast to text is that on
    PostgreSQL and 32 bare hex digits on SQLite: both sides are compared without dashes.
    """
    bare = Replace(Cast(OuterRef(version_field), CharField()), Value("-"), Value(""))
    return Exists(_blocking().annotate(bare_id=Replace("object_id", Value("-"), Value(""))).filter(bare_id=bare))


def refuse_recalled(version) -> None:
    """Conflict (409) while a recall blocks this model version's predictions and is not acknowledged.

    A version loaded with `blocked_annotation` as `recall_blocked` that is not blocked costs no query.
    """
    if getattr(version, "recall_blocked", None) is False:
        return
    impact = _blocking().filter(object_id=str(version.pk)).select_related("recall__version__dataset").first()
    if impact is not None:
        recalled = impact.recall.version
        raise Conflict(
            _(
                "Predictions are stopped: this version was trained on %(version)s, recalled on %(date)s. "
                "A maintainer of the model's department must acknowledge the recall first."
            )
            % {"version": recalled, "date": f"{impact.recall.created_at:%Y-%m-%d}"},
            code="recalled_data",
        )


def recalls_touching(obj) -> list[dict]:
    """The recalls to show as a banner on an object's page: of it, of its versions, or upstream of them."""
    label = obj._meta.label_lower
    keys: list[tuple[str, str]] = []
    own = Recall.objects.none()
    if label == "datalake.dataset":
        ids = [str(pk) for pk in DatasetVersion.objects.filter(dataset=obj).values_list("pk", flat=True)]
        keys = [(VERSION_TYPE, pk) for pk in ids]
        own = Recall.objects.filter(version__dataset=obj)
    elif label == "datalake.datasetversion":
        keys = [(VERSION_TYPE, str(obj.pk))]
        own = Recall.objects.filter(version=obj)
    elif label == "models_repo.registeredmodel":
        keys = [(MODEL_VERSION_TYPE, str(pk)) for pk in obj.versions.values_list("pk", flat=True)]
    else:
        keys = [(audit.object_type(obj), str(obj.pk))]
    condition = Q(pk__in=[])
    for object_type, object_id in keys:
        condition |= Q(object_type=object_type, object_id=object_id)
    impacts = list(RecallImpact.objects.filter(condition).select_related("recall__version__dataset", "recall__created_by"))
    banners = []
    for recall in own.select_related("version__dataset", "created_by"):
        banners.append({"recall": recall, "impact": None, "own": True})
    for impact in impacts:
        banners.append({"recall": impact.recall, "impact": impact, "own": False})
    return banners


def _tell(recall: Recall, impacts: list[RecallImpact]) -> None:
    """An in-app notice, and an e-mail from a job after the commit, to the maintainers and admins of
    every department the recall touches (the recalling one included), naming what of theirs is affected."""
    from django.urls import reverse

    from lepton.collab.services import notify

    by_department: dict[int, list[RecallImpact]] = {recall.version.dataset.department_id: []}
    for impact in impacts:
        by_department.setdefault(impact.department_id, []).append(impact)
    people: dict[int, list] = {}
    for membership in Membership.objects.filter(
        department_id__in=by_department, role__in=[Role.MAINTAINER, Role.ADMIN], user__is_active=True
    ).select_related("user"):
        people.setdefault(membership.department_id, []).append(membership.user)
    url = reverse("datalake:recalls")
    for department_id, affected in by_department.items():
        lines = [_("%(version)s was recalled: %(reason)s") % {"version": recall.version, "reason": recall.reason}]
        lines += [f"- {i.label}" + (f" ({', '.join(i.aliases)})" if i.aliases else "") for i in affected]
        if any(impact.blocking for impact in affected):
            lines.append(_("Predictions of the affected model versions are stopped until a maintainer acknowledges."))
        notify(people.get(department_id, []), "\n".join(lines), url, email=True)
