"""The registry: models, versions from runs, aliases with history, gated promotion, rollback."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from datalake.services import lineage_add
from datalake.services.datasets import clean_tags
from lepton import audit, policy
from lepton.collab.services import watchers_notify
from lepton.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from lepton.i18n import translated
from lepton.models import Department
from models_repo.models import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    PromotionRequest,
    PromotionSettings,
    PromotionStatus,
    RegisteredModel,
    TrainingRun,
    VersionSource,
)

PRODUCTION = "production"
# Aliases that only a promotion request (gate + approval) may move.
GUARDED_ALIASES = {PRODUCTION}
# Metrics where lower is better; every other recorded metric is higher-is-better. The gaps are a
# scheduling policy's to the best fixed rule (scheduling.engine.family).
LOWER_IS_BETTER = {"rmse", "mae", "mape", "log_loss", "mse", "mean_gap", "mean_gap_untrained", "worst_gap"}
EDITABLE_FIELDS = ["name", "description", "tags", "card", "gate_metric", "gate_threshold", "discoverable"]
CARD_FIELDS = ["intended_use", "data", "metrics", "limitations", "owner"]


def _clean_card(card) -> dict:
    if card in (None, ""):
        return {}
    if not isinstance(card, dict):
        raise Invalid(_("The model card must be an object."), fields={"card": [_("Give an object.")]})
    unknown = sorted(set(card) - set(CARD_FIELDS))
    if unknown:
        message = _("Unknown model card fields: %(names)s; use %(known)s.") % {
            "names": ", ".join(unknown),
            "known": ", ".join(CARD_FIELDS),
        }
        raise Invalid(message, fields={f"card.{unknown[0]}": [message]})
    return {k: str(v)[:5000] for k, v in card.items() if v not in (None, "")}


def model_create(
    *,
    actor,
    department: Department,
    name: str,
    slug: str = "",
    description: str = "",
    tags: list[str] | None = None,
    task: str = "",
    card: dict | None = None,
) -> RegisteredModel:
    """Register a new, empty model in `department` (maintainers)."""
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "manage", department):
        raise Forbidden(_("Maintainers register models."))
    name = (name or "").strip()
    if not name:
        raise Invalid(_("A model needs a name."), fields={"name": [_("A model needs a name.")]})
    slug = slugify(slug or name) or f"model-{timezone.now():%Y%m%d%H%M%S}"
    with transaction.atomic():
        if RegisteredModel.objects.filter(department=department, slug=slug).exists():
            message = _("%(department)s already has a model '%(slug)s'.") % {"department": department.name, "slug": slug}
            raise Invalid(message, fields={"slug": [message]}, code="slug_taken")
        model = RegisteredModel.objects.create(
            department=department,
            slug=slug,
            name=name[:200],
            description=description or "",
            tags=clean_tags(tags),
            task=task or "",
            card=_clean_card(card),
            created_by=actor,
        )
        audit.record(actor=actor, action="model.create", obj=model, changes={"name": model.name, "slug": slug})
    return model


def model_update(*, actor, model: RegisteredModel, **values) -> RegisteredModel:
    """Change name, description, tags, the model card, the promotion gate or discoverability (maintainers)."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    policy.require(actor, "change", model)
    if "name" in values and not str(values["name"] or "").strip():
        raise Invalid(_("A model needs a name."), fields={"name": [_("A model needs a name.")]})
    if "tags" in values:
        values["tags"] = clean_tags(values["tags"])
    if "discoverable" in values:
        values["discoverable"] = bool(values["discoverable"])
    if "card" in values:
        values["card"] = _clean_card(values["card"])
    if "gate_threshold" in values and values["gate_threshold"] not in (None, ""):
        try:
            values["gate_threshold"] = float(values["gate_threshold"])
        except (TypeError, ValueError):
            raise Invalid(_("The gate threshold must be a number."), fields={"gate_threshold": [_("A number.")]}) from None
    elif "gate_threshold" in values:
        values["gate_threshold"] = None
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        changes = audit.diff(model, EDITABLE_FIELDS, values)
        if not changes:
            return model
        for field, value in values.items():
            setattr(model, field, value)
        model.updated_at = timezone.now()
        model.save(update_fields=[*values, "updated_at"])
        audit.record(actor=actor, action="model.update", obj=model, changes=changes)
    return model


def version_from_run(run: TrainingRun) -> ModelVersion:
    """The next version of the run's model, made from the run's artifact (inside the run's transaction)."""
    model = RegisteredModel.objects.select_for_update().get(pk=run.registered_model_id)
    existing = ModelVersion.objects.filter(model=model, run=run).first()
    if existing is not None:
        return existing
    number = (model.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion.objects.create(
        model=model,
        number=number,
        source=VersionSource.RUN,
        run=run,
        flavor=run.flavor,
        task=run.task,
        artifact_sha256=run.artifact_sha256,
        artifact_bytes=run.artifact_bytes,
        input_schema=run.input_schema,
        output=run.output,
        metrics=run.metrics,
        holdout={**run.holdout, "dataset_version": str(run.dataset_version_id or "")},
        dataset_version=run.dataset_version,
        created_by=run.created_by,
    )
    if not model.task:
        RegisteredModel.objects.filter(pk=model.pk).update(task=run.task)
    if not model.gate_metric and run.holdout.get("metric"):
        RegisteredModel.objects.filter(pk=model.pk).update(gate_metric=_metric_name(run.holdout["metric"], run.metrics))
    lineage_add(from_obj=run, to_obj=version)
    audit.record(actor=None, action="model.version", obj=model, changes={"version": number, "run": str(run.pk)})
    watchers_notify(model, _("New version v%(number)s of %(model)s, trained by a run.") % {"number": number, "model": model.name})
    transaction.on_commit(lambda: _announce(version))
    transaction.on_commit(lambda: version_onnx_queue(version.pk), robust=True)
    return version


def _announce(version: ModelVersion) -> None:
    """Tell listeners (models_repo.signals.version_registered) about a new version; their errors never undo it."""
    import logging

    from models_repo.signals import version_registered

    for receiver, result in version_registered.send_robust(sender=ModelVersion, version=version):
        if isinstance(result, Exception):
            logging.getLogger("lepton.models_repo").error("version_registered receiver %r failed: %s", receiver, result)


def _metric_name(scoring: str, metrics: dict) -> str:
    """The recorded metric a scoring name refers to (neg_root_mean_squared_error → rmse)."""
    aliases = {"neg_root_mean_squared_error": "rmse", "neg_mean_absolute_error": "mae", "accuracy": "accuracy"}
    name = aliases.get(scoring, scoring)
    return name if name in metrics else next(iter(metrics), name)


# --- aliases -----------------------------------------------------------------------------------------


def _move_alias(
    actor, model: RegisteredModel, alias: str, version: ModelVersion | None, reason: str, *, rollback: bool = False
) -> None:
    current = ModelAlias.objects.select_for_update().filter(model=model, name=alias).first()
    before = current.version if current else None
    if before == version:
        return
    if version is None:
        current.delete()
    elif current is None:
        ModelAlias.objects.create(model=model, name=alias, version=version, updated_by=actor)
    else:
        current.version = version
        current.updated_by = actor
        current.updated_at = timezone.now()
        current.save(update_fields=["version", "updated_by", "updated_at"])
    AliasEvent.objects.create(
        model=model,
        alias=alias,
        from_version=before,
        to_version=version,
        actor=actor if actor else None,
        reason=reason or "",
        rollback=rollback,
    )
    audit.record(
        actor=actor,
        action="model.alias",
        obj=model,
        changes={
            "alias": alias,
            "from": f"v{before.number}" if before else None,
            "to": f"v{version.number}" if version else None,
            "reason": reason,
        },
    )
    transaction.on_commit(lambda: _alias_moved(model.pk))
    watchers_notify(
        model,
        _("%(model)s: %(alias)s now points at %(version)s.")
        % {"model": model.name, "alias": alias, "version": f"v{version.number}" if version else "—"},
        actor=actor,
    )


def _alias_moved(model_id) -> None:
    """Tell serving caches that an alias of this model moved (models_repo.serving)."""
    from models_repo import serving

    serving.invalidate(model_id)


def _require_ready(version: ModelVersion) -> None:
    """An uploaded version still validating, or refused, takes no alias (models_repo.services.uploads)."""
    from .uploads import not_ready_reason

    reason = not_ready_reason(version)
    if reason:
        raise Invalid(reason, fields={"version": [reason]}, code="version_not_ready")


def _clean_alias(alias: str) -> str:
    alias = (alias or "").strip().lower()
    if not alias or slugify(alias) != alias or len(alias) > 40:
        message = _("An alias is a short lowercase word (letters, digits, - and _), e.g. staging.")
        raise Invalid(message, fields={"alias": [message]})
    return alias


def alias_set(*, actor, model: RegisteredModel, alias: str, version: ModelVersion, reason: str = "") -> ModelAlias:
    """Point an alias at a version (maintainers); `production` moves only through a promotion request."""
    policy.require(actor, "change", model)
    alias = _clean_alias(alias)
    if alias in GUARDED_ALIASES:
        message = _("“%(alias)s” moves only through a promotion request (gate and approval).") % {"alias": alias}
        raise Invalid(message, fields={"alias": [message]}, code="guarded_alias")
    if version.model_id != model.pk:
        raise Invalid(_("That version belongs to another model."), fields={"version": [_("Not a version of this model.")]})
    if version.archived_at is not None:
        raise Invalid(_("An archived version cannot take an alias."), fields={"version": [_("Archived.")]})
    _require_ready(version)
    with transaction.atomic():
        _move_alias(actor, model, alias, version, reason)
    return ModelAlias.objects.get(model=model, name=alias)


def alias_remove(*, actor, model: RegisteredModel, alias: str, reason: str = "") -> None:
    policy.require(actor, "change", model)
    alias = _clean_alias(alias)
    if alias in GUARDED_ALIASES:
        message = _("“%(alias)s” moves only through a promotion request or a rollback.") % {"alias": alias}
        raise Invalid(message, fields={"alias": [message]}, code="guarded_alias")
    with transaction.atomic():
        if not ModelAlias.objects.filter(model=model, name=alias).exists():
            raise NotFound(_("The model has no alias “%(alias)s”.") % {"alias": alias})
        _move_alias(actor, model, alias, None, reason)


# --- promotion ---------------------------------------------------------------------------------------


def _settings(department_id) -> PromotionSettings:
    return PromotionSettings.objects.filter(department_id=department_id).first() or PromotionSettings(department_id=department_id)


def promotion_settings_update(*, actor, department: Department, require_second_approver: bool) -> PromotionSettings:
    """Whether a maintainer other than the requester must approve (department admins)."""
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "administer", department):
        raise Forbidden(_("Department admins set the promotion rule."))
    with transaction.atomic():
        settings_row, _created = PromotionSettings.objects.select_for_update().get_or_create(department=department)
        if settings_row.require_second_approver != bool(require_second_approver):
            audit.record(
                actor=actor,
                action="promotion.settings",
                obj=department,
                changes={"require_second_approver": [settings_row.require_second_approver, bool(require_second_approver)]},
            )
            settings_row.require_second_approver = bool(require_second_approver)
            settings_row.save(update_fields=["require_second_approver"])
    return settings_row


def gate_check(model: RegisteredModel, candidate: ModelVersion) -> dict:
    """The automatic gate: the candidate must not be worse than production on the same holdout,
    or must meet the model's threshold. Returns {passed, metric, candidate, production, reason}."""
    current = ModelAlias.objects.filter(model=model, name=PRODUCTION).select_related("version").first()
    if not candidate.holdout.get("indices") and current is not None and current.version.holdout.get("indices"):
        # A version without a holdout of its own (an uploaded file) is scored on production's rows.
        return _gate_on_production_holdout(model, candidate, current.version)
    metric = model.gate_metric or _metric_name(candidate.holdout.get("metric", ""), candidate.metrics)
    score = candidate.metrics.get(metric)
    verdict = {"metric": metric, "candidate": score, "production": None, "threshold": model.gate_threshold}
    if score is None:
        return {**verdict, "passed": False, "reason": _("The candidate has no %(metric)s to compare.") % {"metric": metric}}
    lower = metric in LOWER_IS_BETTER
    if model.gate_threshold is not None:
        meets = score <= model.gate_threshold if lower else score >= model.gate_threshold
        if meets:
            return {
                **verdict,
                "passed": True,
                "reason": _("%(metric)s %(score).4g meets the threshold %(threshold).4g.")
                % {"metric": metric, "score": score, "threshold": model.gate_threshold},
            }
    if current is None:
        if model.gate_threshold is not None:
            return {
                **verdict,
                "passed": False,
                "reason": _("%(metric)s %(score).4g does not meet the threshold %(threshold).4g.")
                % {"metric": metric, "score": score, "threshold": model.gate_threshold},
            }
        return {**verdict, "passed": True, "reason": _("No version is in production yet.")}
    production = _score_on_candidate_holdout(current.version, candidate, metric)
    verdict["production"] = production
    verdict["production_version"] = current.version.number
    if production is None:
        return {
            **verdict,
            "passed": False,
            "reason": _("Production v%(number)s could not be scored on the candidate's holdout.")
            % {"number": current.version.number},
        }
    better_or_equal = score <= production if lower else score >= production
    values = {"metric": metric, "score": score, "production": production, "number": current.version.number}
    if better_or_equal:
        return {
            **verdict,
            "passed": True,
            "reason": _("%(metric)s %(score).4g is not worse than production v%(number)s (%(production).4g) on the same holdout.")
            % values,
        }
    return {
        **verdict,
        "passed": False,
        "reason": _("%(metric)s %(score).4g is worse than production v%(number)s (%(production).4g) on the same holdout.")
        % values,
    }


def _gate_on_production_holdout(model: RegisteredModel, candidate: ModelVersion, production: ModelVersion) -> dict:
    """The gate for a candidate with no holdout: both versions measured on production's holdout rows."""
    from models_repo import serving

    metric = model.gate_metric or _metric_name(production.holdout.get("metric", ""), production.metrics)
    ours = production.metrics.get(metric)
    score = serving.score_on_holdout(candidate, production, metric)
    verdict = {"metric": metric, "candidate": score, "production": ours, "threshold": model.gate_threshold,
               "production_version": production.number, "holdout": "production"}  # fmt: skip
    values = {"metric": metric, "score": score, "production": ours, "number": production.number}
    if score is None or ours is None:
        reason = _("v%(number)s's holdout could not score the candidate on %(metric)s (its columns or task differ).")
        return {**verdict, "passed": False, "reason": reason % values}
    lower = metric in LOWER_IS_BETTER
    if model.gate_threshold is not None and (score <= model.gate_threshold if lower else score >= model.gate_threshold):
        reason = _("%(metric)s %(score).4g on production's holdout meets the threshold %(threshold).4g.")
        return {**verdict, "passed": True, "reason": reason % {**values, "threshold": model.gate_threshold}}
    if score <= ours if lower else score >= ours:
        reason = _("%(metric)s %(score).4g is not worse than production v%(number)s (%(production).4g) on its holdout.")
        return {**verdict, "passed": True, "reason": reason % values}
    reason = _("%(metric)s %(score).4g is worse than production v%(number)s (%(production).4g) on its holdout.")
    return {**verdict, "passed": False, "reason": reason % values}


def _score_on_candidate_holdout(production: ModelVersion, candidate: ModelVersion, metric: str):
    """Production's metric on the candidate's holdout rows: recorded when both share the holdout, else re-scored."""
    same_data = production.holdout.get("dataset_version") == candidate.holdout.get("dataset_version")
    if same_data and production.holdout.get("indices") == candidate.holdout.get("indices"):
        return production.metrics.get(metric)
    from models_repo import serving

    return serving.score_on_holdout(production, candidate, metric)


def promotion_request(*, actor, version: ModelVersion, reason: str = "", automatic: bool = False) -> PromotionRequest:
    """Ask to put `version` in production: the gate runs now; a passing request waits for approval."""
    if actor is not None:
        policy.require(actor, "view", version.model)
        if not policy.can(actor, "use", version.model):
            raise Forbidden(_("Members and above may request a promotion."))
    if version.archived_at is not None:
        raise Invalid(_("An archived version cannot be promoted."), fields={"version": [_("Archived.")]})
    _require_ready(version)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=version.model_id)
        waiting = [PromotionStatus.PENDING, PromotionStatus.CHECKING]
        if PromotionRequest.objects.filter(model=model, version=version, status__in=waiting).exists():
            raise Conflict(_("A promotion of this version is already waiting for approval."), code="promotion_pending")
        current = ModelAlias.objects.filter(model=model, name=PRODUCTION).select_related("version").first()
        if current is not None and current.version_id == version.pk:
            raise Conflict(_("This version is already in production."), code="already_production")
        if actor is not None and current is not None and _needs_rescoring(current.version, version):
            # Re-scoring reads the data and runs both models: a job does it, not this request.
            return _queue_gate(actor, model, version, reason)
        gate = gate_check(model, version)
        request = PromotionRequest.objects.create(
            model=model,
            version=version,
            status=PromotionStatus.PENDING if gate["passed"] else PromotionStatus.GATE_FAILED,
            gate=gate,
            reason=reason or "",
            requested_by=actor,
            automatic=automatic,
        )
        audit.record(
            actor=actor,
            action="promotion.request",
            obj=model,
            changes={"version": version.number, "gate": gate["passed"], "reason": gate["reason"]},
        )
    return request


GATE_KIND = "models_repo.gate"


def _needs_rescoring(production: ModelVersion, candidate: ModelVersion) -> bool:
    """Whether the gate must run a model on data: the two versions were not scored on the same rows."""
    if not candidate.holdout.get("indices"):
        return bool(production.holdout.get("indices"))
    same_data = production.holdout.get("dataset_version") == candidate.holdout.get("dataset_version")
    return not (same_data and production.holdout.get("indices") == candidate.holdout.get("indices"))


def _queue_gate(actor, model: RegisteredModel, version: ModelVersion, reason: str) -> PromotionRequest:
    from lepton.jobs.services import job_submit

    request = PromotionRequest.objects.create(
        model=model,
        version=version,
        status=PromotionStatus.CHECKING,
        gate={"reason": _("Scoring production and the candidate on the same rows (a job)…")},
        reason=reason or "",
        requested_by=actor,
    )
    job = job_submit(actor=actor, department=model.department, kind=GATE_KIND, params={"request": str(request.pk)},
                     priority=7, user_request=False)  # fmt: skip
    request.gate = {**request.gate, "job": str(job.pk)}
    request.save(update_fields=["gate"])
    audit.record(actor=actor, action="promotion.request", obj=model, changes={"version": version.number, "gate": "checking"})
    return request


def promotions_settle() -> int:
    """Fail requests still checking whose gate job ended (a killed worker): the dispatcher's periodic pass."""
    from lepton.jobs.models import FINISHED_STATUSES, Job

    count = 0
    for request in PromotionRequest.objects.filter(status=PromotionStatus.CHECKING)[:100]:
        job = Job.objects.filter(pk=request.gate.get("job")).first() if request.gate.get("job") else None
        if job is None or job.status in FINISHED_STATUSES:
            reason = _("The gate job ended without a verdict (%(why)s); ask again.") % {
                "why": (job.error_message if job else "") or _("no job")
            }
            updated = PromotionRequest.objects.filter(pk=request.pk, status=PromotionStatus.CHECKING).update(
                status=PromotionStatus.GATE_FAILED, gate={**request.gate, "passed": False, "reason": reason}
            )
            count += updated
    return count


def promotion_gate_run(request_id) -> PromotionRequest:
    """Run the gate of a request left checking (the job): it then waits for approval or failed the gate."""
    request = PromotionRequest.objects.select_related("model", "version").get(pk=request_id)
    if request.status != PromotionStatus.CHECKING:
        return request
    try:
        gate = gate_check(request.model, request.version)
    except Exception as exc:  # the request must not stay "checking": it fails the gate with the reason
        gate = {"passed": False, "reason": _("The gate could not run: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"}}
    with transaction.atomic():
        locked = PromotionRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status != PromotionStatus.CHECKING:
            return locked
        locked.gate = {**gate, "job": locked.gate.get("job")}
        locked.status = PromotionStatus.PENDING if gate["passed"] else PromotionStatus.GATE_FAILED
        locked.save(update_fields=["gate", "status"])
        audit.record(
            actor=None, action="promotion.gate", obj=locked.model,
            changes={"version": locked.version.number, "gate": gate["passed"], "reason": gate["reason"]},
        )  # fmt: skip
    return locked


def _decidable(actor, request: PromotionRequest) -> None:
    model = request.model
    policy.require(actor, "view", model)
    if not policy.can(actor, "change", model):
        raise Forbidden(_("Maintainers approve or reject promotions."))
    if request.status != PromotionStatus.PENDING:
        raise Conflict(
            _("This request is %(status)s; only a waiting request can be decided.") % {"status": request.get_status_display()},
            code="not_pending",
        )


def promotion_approve(*, actor, request: PromotionRequest, note: str = "") -> PromotionRequest:
    """Approve a waiting request (a maintainer; another than the requester where the department says so)."""
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().select_related("model", "version").get(pk=request.pk)
        _decidable(actor, request)
        if _settings(request.model.department_id).require_second_approver and request.requested_by_id == actor.pk:
            raise Forbidden(_("A maintainer other than the requester must approve this promotion."))
        request.status = PromotionStatus.APPROVED
        request.decided_by, request.decided_at, request.decision_note = actor, timezone.now(), note or ""
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        _move_alias(actor, request.model, request.alias, request.version, note or _("Promotion approved."))
        audit.record(actor=actor, action="promotion.approve", obj=request.model, changes={"version": request.version.number})
    return request


def promotion_reject(*, actor, request: PromotionRequest, note: str = "") -> PromotionRequest:
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().select_related("model", "version").get(pk=request.pk)
        _decidable(actor, request)
        if not (note or "").strip():
            raise Invalid(_("Say why the promotion is rejected."), fields={"note": [_("Give a reason.")]})
        request.status = PromotionStatus.REJECTED
        request.decided_by, request.decided_at, request.decision_note = actor, timezone.now(), note
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit.record(actor=actor, action="promotion.reject", obj=request.model, changes={"version": request.version.number})
    return request


def production_rollback(*, actor, model: RegisteredModel, reason: str = "") -> ModelAlias:
    """Point production back at the version it held before the last move (maintainers), one click."""
    policy.require(actor, "view", model)
    if not policy.can(actor, "change", model):
        raise Forbidden(_("Maintainers roll production back."))
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        # Production's versions as a stack: a promotion pushes, a rollback pops.
        stack: list = []
        for event in AliasEvent.objects.filter(model=model, alias=PRODUCTION).order_by("created_at", "id"):
            if event.rollback:
                if stack:
                    stack.pop()
            else:
                stack.append(event.to_version)
        if len(stack) < 2 or stack[-2] is None or stack[-2].archived_at is not None:
            raise Conflict(_("There is no earlier production version to roll back to."), code="nothing_to_roll_back")
        _move_alias(actor, model, PRODUCTION, stack[-2], reason or _("Rollback."), rollback=True)
    return ModelAlias.objects.get(model=model, name=PRODUCTION)


# --- the ONNX fast path ------------------------------------------------------------------------------

ONNX_KIND = "models_repo.onnx_convert"


def version_onnx_queue(version_id) -> None:
    """Queue the ONNX conversion of a scikit-learn version made from a run (after its transaction).

    Runs in `transaction.on_commit` of `version_from_run`, so the training job is not made
    longer and the worker sees the committed version. The job runs with the rights of the
    person who trained the run; when they may no longer start jobs in the department, the
    version records why it stays native. The version serves natively until the job is done.
    """
    from lepton.jobs.services import job_submit

    version = ModelVersion.objects.select_related("model__department", "run__created_by").filter(pk=version_id).first()
    if version is None or version.flavor != "sklearn" or version.onnx_sha256 or version.run is None:
        return
    try:
        job = job_submit(
            actor=version.run.created_by, department=version.model.department, kind=ONNX_KIND,
            params={"version": str(version.pk)}, priority=3, user_request=False,
        )  # fmt: skip
    except (Forbidden, NotFound):
        report = {
            "status": "native",
            "reason": _("Not converted: the person who trained it may no longer start jobs in %(department)s.")
            % {"department": version.model.department.name},
        }
        ModelVersion.objects.filter(pk=version.pk).update(onnx_report=report)
        return
    ModelVersion.objects.filter(pk=version.pk, onnx_sha256="").update(onnx_report={"status": "pending", "job": str(job.pk)})


def _report_in_language(report: dict) -> dict:
    """An ONNX report as stored for the version page: the engine's reasons in the job's language."""
    variants = {name: {**v, "reason": translated(v.get("reason", ""))} for name, v in (report.get("variants") or {}).items()}
    return {**report, "reason": translated(report.get("reason", "")), **({"variants": variants} if variants else {})}


def version_onnx_convert(version_id, *, progress=lambda pct, msg: None) -> ModelVersion:
    """Convert a scikit-learn version to ONNX, check it on the run's holdout, store what is used.

    The report (engine.onnx.prepare) goes to `onnx_report`; when the conversion reproduced
    the native predictions, the ONNX blob's checksum goes to `onnx_sha256` and each offered
    quantised variant's to its report entry. Idempotent: a version already decided is
    returned as it is. Data or an artifact that cannot be read leave the version native,
    with the reason in its report.
    """
    import tempfile

    from lepton.storage import BlobNotFound, CorruptBlob, get_storage
    from models_repo.engine import onnx as onnx_engine
    from models_repo.engine import tabular
    from models_repo.engine.errors import TrainingError
    from models_repo.engine.spec import parse_spec

    from .training import _columns, _named_parquet

    version = ModelVersion.objects.select_related("model", "run", "dataset_version").get(pk=version_id)
    if version.flavor != "sklearn" or version.onnx_report.get("status") in ("used", "native"):
        return version
    run, data, indices = version.run, version.dataset_version, version.holdout.get("indices")
    storage = get_storage()
    models: dict[str, bytes] = {}
    if run is None or data is None or not indices:
        report = {"status": "native", "reason": _("Not converted: the run's holdout rows are not available to check it on.")}
    else:
        try:
            spec = parse_spec(run.spec, _columns(data, run.created_by))
            with tempfile.TemporaryDirectory(prefix="lepton-onnx-") as folder:
                progress(5, _("Reading the holdout rows"))
                parquet = _named_parquet(storage, data, folder, actor=run.created_by, purpose="conversion check")
                pipeline = tabular.load_model(storage.verified_local_path(version.artifact_sha256))
                X, y = onnx_engine.read_holdout(parquet, indices, pipeline, spec)
            progress(20, _("Converting and checking on %(rows)s holdout rows") % {"rows": len(X)})
            metric = version.holdout.get("metric") or spec.scoring
            report, models = onnx_engine.prepare(pipeline, X, y, metric=metric, seed=spec.seed)
        except (TrainingError, ServiceError, CorruptBlob, BlobNotFound, KeyError, ValueError) as exc:
            error = translated(exc.message) if isinstance(exc, TrainingError) else str(exc)
            report = {"status": "native", "reason": _("Not converted: %(error)s") % {"error": error[:300]}}
    report = _report_in_language(report)
    progress(90, _("Storing the ONNX model"))
    blobs = {name: storage.put_bytes(blob) for name, blob in models.items()}
    for name, blob in blobs.items():
        if name != "onnx":
            report["variants"][name]["sha256"] = blob.sha256
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        locked.onnx_sha256 = blobs["onnx"].sha256 if "onnx" in blobs else ""
        locked.onnx_report = report
        locked.save(update_fields=["onnx_sha256", "onnx_report"])
        offered = sorted(n for n, v in report.get("variants", {}).items() if v.get("offered"))
        audit.record(
            actor=None, action="model.onnx", obj=locked.model,
            changes={"version": locked.number, "status": report["status"], "variants": offered},
        )  # fmt: skip
    return locked
