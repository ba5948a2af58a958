"""Fixtures of the model-repository tests: a small inspection dataset, a registered model, versions."""

import io

import numpy as np
import pytest

from datalake import services as datalake_services
from models_repo import services
from models_repo.models import ModelVersion
from tests.factories import MembershipFactory, UserFactory

# What a run records for its holdout; versions made directly with it compare recorded metrics.
HOLDOUT = {"rows": 40, "metric": "f1_macro", "indices": list(range(40)), "dataset_version": "same"}

SPEC = {
    "task": "classification",
    "target": "合格",
    "features": ["温度", "pressure", "line"],
    "algorithms": [{"name": "random_forest", "params": {"n_estimators": 20}}],
    "seed": 7,
}


def inspections_csv(rows=200, seed=3) -> bytes:
    """Parts fail when temperature + 3 × pressure ≥ 86 (the 合格 column is yes/no)."""
    rng = np.random.default_rng(seed)
    lines = ["温度,pressure,line,合格"]
    for _ in range(rows):
        temp, pressure = rng.normal(70, 5), rng.normal(5, 1)
        line = rng.choice(["L1", "L2"])
        ok = "yes" if temp + 3 * pressure < 86 else "no"
        lines.append(f"{temp:.2f},{pressure:.3f},{line},{ok}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def inspections(member, production):
    """A published dataset version of Production's inspections."""
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    stream = io.BytesIO(inspections_csv())
    version = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=stream, filename="i.csv")
    published = datalake_services.version_ingest(version.pk)
    assert published.status == "published", published.error_message
    return published


@pytest.fixture
def predictor(owner, production):
    return services.model_create(actor=owner, department=production, name="Quality predictor")


@pytest.fixture
def v1(predictor):
    return ModelVersion.objects.create(
        model=predictor, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64,
        metrics={"f1_macro": 0.8}, holdout=HOLDOUT,
    )  # fmt: skip


@pytest.fixture
def checker(production):
    """A second maintainer of Production (approves what the owner requests)."""
    user = UserFactory(username="max-maintainer")
    MembershipFactory(user=user, department=production, role="maintainer")
    return user


def model_in_production(*, owner, member, checker, dataset_version, department, spec=SPEC):
    """ "Quality predictor" trained by `member` on `dataset_version`, its v1 promoted to production."""
    model = services.model_create(actor=owner, department=department, name="Quality predictor")
    run = services.training_execute(
        services.training_start(actor=member, dataset_version=dataset_version, spec=spec, registered_model=model).pk
    )
    version = ModelVersion.objects.get(run=run)
    services.promotion_approve(actor=checker, request=services.promotion_request(actor=member, version=version))
    return model
