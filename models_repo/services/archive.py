"""Archiving models and versions: out of the way, kept whole, restorable.

An archived model is hidden from the model list (unless asked for), predicts nothing, takes
no new training and no continuous learning; its versions, aliases and history stay as they
are, so restoring it gives back exactly what it was. An archived version takes no alias and
no promotion; one that an alias points at cannot be archived (move the alias first).
Pending promotion requests of what is archived are withdrawn. All audited.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from lepton import audit, policy
from lepton.errors import Conflict
from models_repo.models import ModelVersion, PromotionRequest, PromotionStatus, RegisteredModel


def _withdraw(requests, actor, note: str) -> int:
    return requests.filter(status=PromotionStatus.PENDING).update(
        status=PromotionStatus.WITHDRAWN, decided_by=actor, decided_at=timezone.now(), decision_note=note
    )


def model_archive(*, actor, model: RegisteredModel, archived: bool = True, reason: str = "") -> RegisteredModel:
    """Archive (or restore with archived=False) a model (maintainers of its department)."""
    policy.require(actor, "change", model)
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if (locked.archived_at is not None) == archived:
            return locked
        locked.archived_at = timezone.now() if archived else None
        locked.updated_at = timezone.now()
        locked.save(update_fields=["archived_at", "updated_at"])
        withdrawn = (
            _withdraw(PromotionRequest.objects.filter(model=locked), actor, _("The model was archived.")) if archived else 0
        )
        audit.record(
            actor=actor,
            action="model.archive" if archived else "model.restore",
            obj=locked,
            changes={"reason": reason[:500], "withdrawn_requests": withdrawn},
        )
    return locked


def version_archive(*, actor, version: ModelVersion, archived: bool = True, reason: str = "") -> ModelVersion:
    """Archive (or restore) one version; refused while an alias points at it."""
    policy.require(actor, "change", version.model)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        if (locked.archived_at is not None) == archived:
            return locked
        if archived:
            names = sorted(locked.aliases.values_list("name", flat=True))
            if names:
                raise Conflict(
                    _("v%(number)s is %(aliases)s; point the alias at another version before archiving it.")
                    % {"number": locked.number, "aliases": ", ".join(names)},
                    code="has_alias",
                )
        locked.archived_at = timezone.now() if archived else None
        locked.save(update_fields=["archived_at"])
        withdrawn = (
            _withdraw(PromotionRequest.objects.filter(version=locked), actor, _("The version was archived.")) if archived else 0
        )
        audit.record(
            actor=actor,
            action="version.archive" if archived else "version.restore",
            obj=locked.model,
            changes={"version": locked.number, "reason": reason[:500], "withdrawn_requests": withdrawn},
        )
    return locked
