"""Continuous learning: a new dataset version re-trains the model; a passing candidate asks for promotion."""

import io

import pytest

from datalake import services as datalake_services
from lepton.errors import Forbidden, Invalid
from lepton.models import Membership
from models_repo import services
from models_repo.models import ModelVersion, PromotionRequest, TrainingRun
from tests.models_repo.conftest import SPEC, inspections_csv


def _publish_new_version(member, dataset, seed, capture):
    upload = datalake_services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO(inspections_csv(seed=seed)), filename=f"i{seed}.csv"
    )
    with capture(execute=True):
        published = datalake_services.version_ingest(upload.pk)
    assert published.status == "published"
    return published


def test_setting_it_up_needs_a_maintainer_and_a_valid_spec(owner, member, predictor, inspections):
    dataset = inspections.dataset
    with pytest.raises(Forbidden):
        services.continuous_set(actor=member, model=predictor, dataset=dataset, spec=SPEC)
    with pytest.raises(Invalid) as err:
        services.continuous_set(actor=owner, model=predictor, dataset=dataset, spec={**SPEC, "target": "nope"})
    assert "spec.target" in err.value.fields
    services.continuous_set(actor=owner, model=predictor, dataset=dataset, spec=SPEC, auto_promote=True)
    predictor.refresh_from_db()
    assert (predictor.retrain_dataset, predictor.retrain_by, predictor.auto_promote) == (dataset, owner, True)


def test_a_new_version_retrains_and_a_passing_candidate_opens_a_request(
    owner, member, predictor, inspections, django_capture_on_commit_callbacks
):
    services.continuous_set(actor=owner, model=predictor, dataset=inspections.dataset, spec=SPEC, auto_promote=True)
    new = _publish_new_version(member, inspections.dataset, 11, django_capture_on_commit_callbacks)
    run = TrainingRun.objects.get()
    assert (run.automatic, run.dataset_version, run.created_by) == (True, new, owner)
    services.training_execute(run.pk)
    version = ModelVersion.objects.get(run=run)
    request = PromotionRequest.objects.get()
    assert (request.version, request.status, request.automatic, request.requested_by) == (version, "pending", True, None)


def test_without_auto_promote_or_with_the_author_gone_nothing_is_asked(
    owner, member, predictor, inspections, django_capture_on_commit_callbacks
):
    services.continuous_set(actor=owner, model=predictor, dataset=inspections.dataset, spec=SPEC, auto_promote=False)
    _publish_new_version(member, inspections.dataset, 12, django_capture_on_commit_callbacks)
    services.training_execute(TrainingRun.objects.get().pk)
    assert ModelVersion.objects.count() == 1 and not PromotionRequest.objects.exists()
    Membership.objects.filter(user=owner).delete()  # the maintainer who set it up left the department
    _publish_new_version(member, inspections.dataset, 13, django_capture_on_commit_callbacks)
    assert TrainingRun.objects.count() == 1  # skipped, with a warning in the log
