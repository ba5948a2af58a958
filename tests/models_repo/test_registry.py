"""The registry's rules: models, aliases with history, gated promotion with approval, rollback.

Versions here are made directly from recorded metrics on one shared holdout (what a run
records), so the gate compares the recorded numbers; training itself is tested elsewhere.
"""

import pytest

from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.models import AuditEvent
from models_repo import services
from models_repo.models import AliasEvent, ModelAlias, ModelVersion, PromotionStatus
from tests.models_repo.conftest import HOLDOUT


def _version(model, number, f1, holdout=HOLDOUT):
    return ModelVersion.objects.create(
        model=model,
        number=number,
        flavor="sklearn",
        task="classification",
        artifact_sha256=f"{number:064x}",
        metrics={"f1_macro": f1, "accuracy": f1},
        holdout=holdout,
    )


def _to_production(requester, approver, version):
    request = services.promotion_request(actor=requester, version=version, reason="better recall")
    assert request.status == PromotionStatus.PENDING, request.gate
    return services.promotion_approve(actor=approver, request=request, note="checked")


# --- models --------------------------------------------------------------------------------------


def test_maintainers_register_models_members_and_outsiders_cannot(owner, member, outsider, production, predictor):
    tagged = services.model_create(actor=owner, department=production, name="Tagged", tags=["QA", " qa ", "Line-3"])
    assert (predictor.slug, tagged.slug, tagged.tags) == ("quality-predictor", "tagged", ["line-3", "qa"])
    with pytest.raises(Forbidden):
        services.model_create(actor=member, department=production, name="Mine")
    with pytest.raises(NotFound):
        services.model_create(actor=outsider, department=production, name="Theirs")
    with pytest.raises(Invalid) as err:
        services.model_create(actor=owner, department=production, name="Quality predictor")
    assert err.value.code == "slug_taken"
    assert AuditEvent.objects.filter(action="model.create", actor=owner).count() == 2


def test_model_card_and_gate_are_validated(owner, predictor):
    services.model_update(
        actor=owner, model=predictor, card={"intended_use": "Flag parts for re-inspection"}, gate_threshold="0.8"
    )
    predictor.refresh_from_db()
    assert predictor.card == {"intended_use": "Flag parts for re-inspection"} and predictor.gate_threshold == 0.8
    with pytest.raises(Invalid) as err:
        services.model_update(actor=owner, model=predictor, card={"colour": "red"})
    assert "card.colour" in err.value.fields
    with pytest.raises(Invalid) as err:
        services.model_update(actor=owner, model=predictor, gate_threshold="high")
    assert "gate_threshold" in err.value.fields


# --- aliases -------------------------------------------------------------------------------------


def test_aliases_move_with_history_and_production_is_guarded(owner, member, predictor):
    v1, v2 = _version(predictor, 1, 0.80), _version(predictor, 2, 0.85)
    services.alias_set(actor=owner, model=predictor, alias="staging", version=v1, reason="first look")
    services.alias_set(actor=owner, model=predictor, alias="staging", version=v2, reason="newer")
    assert ModelAlias.objects.get(model=predictor, name="staging").version == v2
    history = list(AliasEvent.objects.filter(model=predictor).order_by("created_at", "id"))
    assert [(e.from_version, e.to_version, e.reason) for e in history] == [(None, v1, "first look"), (v1, v2, "newer")]
    with pytest.raises(Invalid) as err:
        services.alias_set(actor=owner, model=predictor, alias="production", version=v2)
    assert err.value.code == "guarded_alias"
    with pytest.raises(Invalid):
        services.alias_set(actor=owner, model=predictor, alias="Bad Alias!", version=v2)
    with pytest.raises(Forbidden):
        services.alias_set(actor=member, model=predictor, alias="mine", version=v2)
    services.alias_remove(actor=owner, model=predictor, alias="staging", reason="done")
    assert not ModelAlias.objects.filter(model=predictor).exists()


# --- promotion -----------------------------------------------------------------------------------


def test_first_promotion_passes_the_gate_and_waits_for_another_maintainer(owner, member, checker, predictor):
    v1 = _version(predictor, 1, 0.80)
    request = services.promotion_request(actor=owner, version=v1)
    assert request.status == PromotionStatus.PENDING and request.gate["passed"] is True
    with pytest.raises(Forbidden, match="other than the requester"):
        services.promotion_approve(actor=owner, request=request)
    with pytest.raises(Forbidden):
        services.promotion_approve(actor=member, request=request)
    assert not ModelAlias.objects.filter(model=predictor, name="production").exists()
    services.promotion_approve(actor=checker, request=request, note="looks right")
    assert ModelAlias.objects.get(model=predictor, name="production").version == v1
    request.refresh_from_db()
    assert (request.status, request.decided_by) == (PromotionStatus.APPROVED, checker)
    with pytest.raises(Conflict):
        services.promotion_approve(actor=checker, request=request)


def test_self_approval_is_allowed_where_the_department_says_so(admin, owner, production, predictor):
    with pytest.raises(Forbidden):
        services.promotion_settings_update(actor=owner, department=production, require_second_approver=False)
    services.promotion_settings_update(actor=admin, department=production, require_second_approver=False)
    request = services.promotion_request(actor=owner, version=_version(predictor, 1, 0.8))
    services.promotion_approve(actor=owner, request=request)
    assert ModelAlias.objects.get(model=predictor, name="production").version.number == 1


def test_a_worse_candidate_fails_the_gate_with_the_reason_and_changes_nothing(owner, checker, predictor):
    v1 = _version(predictor, 1, 0.85)
    _to_production(owner, checker, v1)
    worse = _version(predictor, 2, 0.80)
    request = services.promotion_request(actor=owner, version=worse)
    assert request.status == PromotionStatus.GATE_FAILED
    assert request.gate["production"] == 0.85 and request.gate["candidate"] == 0.80
    assert "worse than production v1" in request.gate["reason"]
    with pytest.raises(Conflict):
        services.promotion_approve(actor=checker, request=request)
    assert ModelAlias.objects.get(model=predictor, name="production").version == v1


def test_a_threshold_lets_a_candidate_in_that_meets_it(owner, checker, predictor):
    _to_production(owner, checker, _version(predictor, 1, 0.90))
    services.model_update(actor=owner, model=predictor, gate_threshold=0.75)
    request = services.promotion_request(actor=owner, version=_version(predictor, 2, 0.78))
    assert request.status == PromotionStatus.PENDING and "meets the threshold" in request.gate["reason"]


def test_rejection_needs_a_reason_and_rollback_returns_to_the_previous_version(owner, checker, predictor):
    v1, v2 = _version(predictor, 1, 0.80), _version(predictor, 2, 0.90)
    _to_production(owner, checker, v1)
    _to_production(owner, checker, v2)
    v3 = _version(predictor, 3, 0.95)
    request = services.promotion_request(actor=owner, version=v3)
    with pytest.raises(Invalid):
        services.promotion_reject(actor=checker, request=request, note=" ")
    services.promotion_reject(actor=checker, request=request, note="drifted data")
    assert ModelAlias.objects.get(model=predictor, name="production").version == v2
    services.production_rollback(actor=checker, model=predictor, reason="v2 misfires on line 4")
    assert ModelAlias.objects.get(model=predictor, name="production").version == v1
    last = AliasEvent.objects.filter(model=predictor, alias="production").first()
    assert (last.from_version, last.to_version, last.reason) == (v2, v1, "v2 misfires on line 4")
    with pytest.raises(Conflict):
        services.production_rollback(actor=checker, model=predictor)  # v1 had no earlier version


def test_duplicate_and_pointless_requests_are_conflicts(owner, checker, predictor):
    v1 = _version(predictor, 1, 0.8)
    services.promotion_request(actor=owner, version=v1)
    with pytest.raises(Conflict) as err:
        services.promotion_request(actor=owner, version=v1)
    assert err.value.code == "promotion_pending"


def test_outsiders_and_viewers_cannot_touch_the_registry(outsider, viewer, owner, predictor):
    v1 = _version(predictor, 1, 0.8)
    with pytest.raises(NotFound):
        services.promotion_request(actor=outsider, version=v1)
    with pytest.raises(Forbidden):
        services.promotion_request(actor=viewer, version=v1)
    with pytest.raises(NotFound):
        services.alias_set(actor=outsider, model=predictor, alias="staging", version=v1)
    request = services.promotion_request(actor=owner, version=v1)
    with pytest.raises(NotFound):
        services.promotion_approve(actor=outsider, request=request)
