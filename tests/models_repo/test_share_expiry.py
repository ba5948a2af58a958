"""A share's expiry ends the other department's use: training on a shared dataset, and predictions
with a shared model — also on the predict fast path, whose cached grant ends with the share."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from lepton.errors import NotFound
from lepton.models import Share
from lepton.services import share_grant, token_create
from models_repo import services
from tests.factories import MembershipFactory, UserFactory
from tests.models_repo import test_fastpath
from tests.models_repo.conftest import SPEC
from tests.models_repo.test_fastpath import SPLIT, URL, post
from tests.models_repo.test_predict import client_for

# The fast path's WSGI stack and a model in production on two numeric columns (fixtures).
app = test_fastpath.app
served = test_fastpath.served


@pytest.fixture
def quality_lead(quality):
    user = UserFactory(username="quentin-lead")
    MembershipFactory(user=user, department=quality, role="maintainer")
    return user


def test_training_on_a_shared_dataset_ends_with_the_share(owner, outsider, quality, quality_lead, inspections):
    share_grant(
        actor=owner, obj=inspections.dataset, department=quality, level="use", expires_at=timezone.now() + timedelta(days=1)
    )
    theirs = services.model_create(actor=quality_lead, department=quality, name="Their predictor")
    run = services.training_start(actor=outsider, dataset_version=inspections, spec=SPEC, registered_model=theirs)
    assert run.department == quality
    Share.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(NotFound):
        services.training_start(actor=outsider, dataset_version=inspections, spec=SPEC, registered_model=theirs)


def test_a_run_on_shared_data_without_a_model_belongs_to_the_trainers_department(
    owner, outsider, member, production, quality, inspections
):
    from lepton.errors import Invalid
    from lepton.models import Department
    from models_repo.models import TrainingRun

    share_grant(actor=owner, obj=inspections.dataset, department=quality, level="use")
    assert services.training_start(actor=member, dataset_version=inspections, spec=SPEC).department == production
    run = services.training_start(actor=outsider, dataset_version=inspections, spec=SPEC)
    assert run.department == quality and run.job.department == quality  # Quality's quota pays for it
    # Someone in two departments (neither the data's) says which one the run is for.
    third = Department.objects.create(name="Supply chain", slug="supply")
    MembershipFactory(user=outsider, department=third, role="member")
    with pytest.raises(Invalid) as refused:
        services.training_start(actor=outsider, dataset_version=inspections, spec=SPEC)
    assert "registered_model" in refused.value.fields
    assert TrainingRun.objects.count() == 2  # the refused start left nothing behind


def test_predictions_with_a_shared_model_end_with_the_share(owner, outsider, quality, served, app, settings):
    settings.LEPTON_PREDICT_GRANT_SECONDS = 3600  # the fast path would keep its grant for an hour
    share_grant(actor=owner, obj=served, department=quality, level="use", expires_at=timezone.now() + timedelta(seconds=3))
    secret = token_create(actor=outsider, name="quality-line", scopes=["predict"])[1]
    assert post(app, secret, SPLIT).status_code == 200  # the full view, which leaves a grant
    cached = post(app, secret, SPLIT)
    assert cached.status_code == 200 and cached.fast  # the fast path answers from the grant
    time.sleep(3.2)  # the share's end passes; nothing else changes
    ended = post(app, secret, SPLIT)
    assert ended.status_code == 404 and not ended.fast, ended.content
    assert client_for(outsider).post(URL, SPLIT, format="json").status_code == 404  # and Django's view agrees


def test_a_view_share_never_allowed_predictions(owner, outsider, quality, served):
    share_grant(actor=owner, obj=served, department=quality, level="view")
    assert client_for(outsider).post(URL, SPLIT, format="json").status_code == 403
