"""Learnt scheduling policies: trained on a generated family, kept in the model repository, applied without retraining.

A policy is a version of a registered model of task `scheduling_policy` (flavor `qpolicy`): its
artifact is the policy's JSON (scheduling.engine.qlearning.Policy, with what it was trained on),
stored in the lake and checksum-verified when read. The model repository keeps the record, the
versions, aliases and promotion (models_repo.services); it knows this kind through
models_repo.external (registered in SchedulingConfig.ready), so it neither serves predictions from
it nor imports this module. Here:

- `policy_train_start` / `policy_train_execute`: a training run (job kind `scheduling.train_policy`,
  cpu queue) over a generated family (scheduling.engine.family), registered with its held-out gaps;
- `policy_find` / `policy_for_run`: the version a person may apply (own department, or a `use`
  share), checked against the problem: an incompatible one is refused before anything is queued;
- `policy_apply`: what a `policy` run computes in the worker (no learning).

Write functions follow scheduling.services' rules: `actor=`, the policy, one transaction, an audit event.
"""

from __future__ import annotations

import json
import math
import time

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lepton import policy
from lepton.errors import Forbidden, Invalid, NotFound
from lepton.i18n import translated
from models_repo.external import ExternalKind
from models_repo.models import ModelVersion, RegisteredModel, TrainingRun, VersionState
from models_repo.selectors import models_visible
from models_repo.services import (
    external_artifact,
    external_training_claim,
    external_training_finish,
    external_training_start,
    external_training_stop,
)
from scheduling.engine import family, qlearning
from scheduling.engine.instance import Instance
from scheduling.engine.qlearning import Policy
from scheduling.engine.simulator import NON_DELAY
from scheduling.engine.solve import SolveResult

TASK = "scheduling_policy"
FLAVOR = "qpolicy"
TRAIN_KIND = "scheduling.train_policy"
ALGORITHM = "Q-learning over a family of generated shops"


def _rerun(*, actor, run: TrainingRun) -> TrainingRun:
    return policy_train_start(actor=actor, department=run.department, spec=run.spec, model=run.registered_model, name=run.name)


def _score(version: ModelVersion, reference: ModelVersion, metric: str) -> float | None:
    """`version`'s `metric` on the held-out shops `reference` was measured on (the promotion gate's re-scoring)."""
    spec = reference.holdout.get("family")
    if not spec:
        return None
    try:
        measured = family.evaluate(policy_load(version), family.Family.from_dict(spec))
    except ValueError:
        return None
    return measured["metrics"].get(metric)


KIND = ExternalKind(
    flavor=FLAVOR,
    task=TASK,
    not_served=gettext_lazy(
        "A scheduling policy does not answer predictions: it is applied from a shop problem (a schedule run with the "
        "method “Learnt policy”)."
    ),
    train_url="scheduling:policies",
    version_template="scheduling/partials/_policy_version.html",
    rerun=_rerun,
    score=_score,
)


# --- training ------------------------------------------------------------------------------------


def _family_error(exc: family.FamilyError) -> Invalid:
    """The engine's refusal, worded for people (translated), on the field it names."""
    limits = {
        "jobs": _("Give the lowest and the highest number of jobs: whole numbers from 2 to %(max)s.") % {"max": family.MAX_JOBS},
        "machines": _("Give the lowest and the highest number of machines: whole numbers from 2 to %(max)s.")
        % {"max": family.MAX_MACHINES},
        "instances": _("The number of training shops is a whole number from 1 to %(max)s.") % {"max": family.MAX_INSTANCES},
        "held_out": _("The number of held-out shops is a whole number from 1 to %(max)s.") % {"max": family.MAX_HELD_OUT},
        "seconds": _("The time budget must be more than 0 and at most %(max)s seconds.") % {"max": int(family.MAX_SECONDS)},
        "episodes": _("The number of episodes is a whole number from 1 to %(max)s, or empty for the time budget alone.")
        % {"max": family.MAX_EPISODES},
    }
    message = limits.get(exc.field) or translated(exc.message)
    return Invalid(message, fields={exc.field: [message]}, code="invalid_family")


def _clean_spec(spec: dict) -> dict:
    """The stored spec: {"family": Family.as_dict(), "seconds", "episodes", "seed"}; Invalid naming the field.

    Takes the request's flat shape (jobs, machines, instances, held_out, breakdowns, seconds,
    episodes, seed) or a stored spec (a re-run).
    """
    if not isinstance(spec, dict):
        raise Invalid(_("The spec must be an object."), fields={"spec": [_("Give an object.")]})
    if isinstance(spec.get("family"), dict):
        spec = {**spec["family"], **{k: v for k, v in spec.items() if k != "family"}}
    try:
        chosen = family.Family.from_dict(spec)
        seconds = spec.get("seconds", 60.0)
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            seconds = float(seconds)
        family.check_budget(seconds if isinstance(seconds, float) and math.isfinite(seconds) else -1.0, spec.get("episodes"))
    except family.FamilyError as exc:
        raise _family_error(exc) from None
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        message = _("%(field)s must be a whole number from 0 to 2147483647.") % {"field": "seed"}
        raise Invalid(message, fields={"seed": [message]})
    return {"family": chosen.as_dict(), "seconds": seconds, "episodes": spec.get("episodes"), "seed": seed}


def _label(spec: dict) -> str:
    shape = spec["family"]
    values = {
        "jobs": "–".join(map(str, shape["jobs"])), "machines": "–".join(map(str, shape["machines"])), "count": shape["instances"],
    }  # fmt: skip
    if shape["breakdowns"]:
        return _("Generated job shops: %(jobs)s jobs × %(machines)s machines, %(count)s shops, with breakdowns") % values
    return _("Generated job shops: %(jobs)s jobs × %(machines)s machines, %(count)s shops") % values


def policy_train_start(
    *, actor, department=None, spec: dict, model: RegisteredModel | None = None, model_name: str = "", name: str = ""
) -> TrainingRun:
    """Queue the training of a policy over a generated family, as the next version of `model` or of a new one.

    `spec`: jobs and machines ([lowest, highest]), instances (training shops), held_out (shops
    it is measured on, default 10), breakdowns, seconds (the time budget, at most
    family.MAX_SECONDS), episodes (optional: then repeatable), seed. `model` is an existing
    policy model the actor may use; `model_name` registers a new one in `department`
    (maintainers). Nothing is queued when anything is refused.
    """
    if department is None and model is None:
        raise Invalid(_("Choose a department for the new model."), fields={"department": [_("Choose a department.")]})
    if department is not None and not policy.can(actor, "view", department):
        raise NotFound()
    cleaned = _clean_spec(spec)
    return external_training_start(
        actor=actor, department=department, kind=KIND, job_kind=TRAIN_KIND, spec=cleaned, label=_label(cleaned),
        model=model, model_name=model_name, name=name,
    )  # fmt: skip


def policy_train_execute(run_id, *, progress=lambda pct, msg: None, should_stop=lambda: False) -> TrainingRun:
    """Train a queued policy run (in a worker), measure it on the held-out shops, register the version.

    Claimed with compare-and-set: a second delivery does nothing. A cancel ends the run cancelled,
    with no version (a policy stopped half-way is not what was asked for).
    """
    run = external_training_claim(run_id)
    if run is None:
        return TrainingRun.objects.get(pk=run_id)
    started, cpu_started = time.monotonic(), time.process_time()
    spec = run.spec
    chosen = family.Family.from_dict(spec["family"])
    training = family.train(
        chosen, seconds=spec["seconds"], episodes=spec.get("episodes"), seed=spec["seed"],
        progress=lambda fraction, message: progress(100 * fraction, message), should_stop=should_stop,
    )  # fmt: skip
    if training.info["stopped"] == "cancel":
        message = _("Cancelled after %(episodes)s episodes; no version was registered.") % {"episodes": training.info["episodes"]}
        return external_training_stop(run_id, message, cancelled=True)
    progress(96, _("Measuring the policy on %(count)s held-out shops") % {"count": chosen.held_out})
    measured = family.evaluate(training.policy, chosen)
    trained_on = training.policy.trained_on
    return external_training_finish(
        run_id,
        artifact=training.policy.to_json().encode(),
        algorithm=ALGORITHM,
        params={**{k: v for k, v in training.info.items() if k != "curve"}, "seed": spec["seed"]},
        metrics=measured["metrics"],
        holdout={
            "metric": "mean_gap",
            "indices": measured["keys"],
            "rows": len(measured["keys"]),
            "family": chosen.as_dict(),
            "instances": measured["instances"],
        },  # fmt: skip
        output={"trained_on": trained_on},
        curves={"episodes": [{"episodes": e, "training_gap": g} for e, g in training.info["curve"]]},
        started=started,
        cpu_started=cpu_started,
    )


# --- applying --------------------------------------------------------------------------------------


def policy_load(version: ModelVersion) -> Policy:
    """The policy of a version, read from its checksum-verified artifact; ValueError when it is not a usable policy."""
    return family.read(external_artifact(version))


def _field_error(field: str, message: str, kind=Invalid, code: str | None = None):
    return kind(message, fields={field: [message]}, code=code)


def policy_find(user, *, version=None, model: str = "", alias: str = "", field: str = "policy_version") -> ModelVersion:
    """The policy version a person asks for — by id, or "department/model" and an alias (default production).

    NotFound when they may not see it, Forbidden when they may see but not use it (own department's
    members, or a `use` share), Invalid when it is not a ready scheduling policy.
    """
    versions = ModelVersion.objects.filter(model__in=models_visible(user)).select_related("model__department")
    if version:
        found = versions.filter(pk=version).first()
        what = str(version)
    else:
        department, _slash, slug = (model or "").partition("/")
        alias = alias or "production"
        found = versions.filter(model__department__slug=department, model__slug=slug, aliases__name=alias).first()
        what = f"{model}@{alias}"
    if found is None:
        raise _field_error(field, _("No scheduling policy that you may see is %(what)s.") % {"what": what}, NotFound)
    if not policy.can(user, "use", found.model):
        raise _field_error(field, _("Your role does not allow applying %(version)s (its members, or a use share, may).") % {
            "version": found,
        }, Forbidden)  # fmt: skip
    if found.flavor != FLAVOR:
        raise _field_error(field, _("%(version)s is not a scheduling policy.") % {"version": found}, code="not_a_policy")
    if found.status != VersionState.READY or found.archived_at is not None or found.model.archived_at is not None:
        raise _field_error(field, _("%(version)s is archived or not ready; choose another version.") % {"version": found})
    return found


def policy_for_run(version: ModelVersion, instance: Instance, *, breakdowns: bool, field: str = "policy_version") -> list:
    """The notes (scheduling.engine.family.check) of applying `version` to `instance`; Invalid when it cannot be applied."""
    try:
        return family.check(policy_load(version), instance, breakdowns=breakdowns)
    except ValueError as exc:
        from scheduling.services import engine_error_text

        reason = engine_error_text(exc)
        message = _("%(version)s cannot be applied to this problem: %(reason)s") % {"version": version, "reason": reason}
        raise _field_error(field, message, code="incompatible_policy") from None


def policy_apply(run, instance: Instance) -> tuple:
    """(SolveResult, Policy): the schedule a `policy` run's version builds on `instance` — no learning.

    Its info names the version, the notes of family.check, and each rule's makespan under the same
    breakdowns (the comparison a reader wants first).
    """
    version = run.policy_version
    if version is None:
        raise RuntimeError(_("The policy version this run was to apply is gone (its model was deleted)."))
    learnt = policy_load(version)
    notes = family.check(learnt, instance, breakdowns=run.breakdowns_seed is not None)
    scheme = learnt.trained_on.get("scheme", NON_DELAY)
    schedule = qlearning.apply(instance, learnt, scheme=scheme, breakdowns_seed=run.breakdowns_seed)
    rules = family.rule_makespans(instance, scheme=scheme, breakdowns_seed=run.breakdowns_seed)
    extra = {
        "policy_version": {
            "id": str(version.pk), "model": f"{version.model.department.slug}/{version.model.slug}", "name": version.model.name,
            "number": version.number, "sha256": version.artifact_sha256, "trained_on": learnt.trained_on,
        },
        "notes": [[code, values] for code, values in notes],
        "rules": rules,
        "best_rule": min(rules.values()),
        "kept": _("the learnt policy %(version)s (no retraining)") % {"version": version},
    }  # fmt: skip
    return SolveResult(schedule=schedule, method="policy", extra=json.loads(json.dumps(extra))), learnt
