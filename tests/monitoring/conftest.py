"""Fixtures of the monitoring tests: a model in production trained on Production's inspections, sampled inputs."""

import io
from datetime import timedelta

import numpy as np
import pytest

from datalake import services as datalake_services
from models_repo.models import ModelVersion, PredictionLog
from tests.models_repo.conftest import checker, inspections_csv, model_in_production  # noqa: F401 - a fixture

# Training rows: PSI's noise floor is about (bins − 1)·(1/n + 1/m) for n reference and m current
# values (≈ 0.09 with 160 and 300), so the "stable" cases need a reference of this size.
ROWS = 2000


@pytest.fixture
def drift_settings(settings):
    settings.LEPTON_DRIFT_MIN_SAMPLE = 100
    settings.LEPTON_DRIFT_WINDOW_HOURS = 24
    settings.LEPTON_DRIFT_INTERVAL_MINUTES = 60
    return settings


@pytest.fixture
def inspections(member, production):
    """A published dataset version of Production's inspections (tests.models_repo.conftest.inspections_csv, ROWS rows)."""
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    stream = io.BytesIO(inspections_csv(rows=ROWS))
    version = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=stream, filename="i.csv")
    published = datalake_services.version_ingest(version.pk)
    assert published.status == "published", published.error_message
    return published


@pytest.fixture
def deployed(owner, member, checker, inspections, production):  # noqa: F811 - checker is tests.models_repo's
    """The production version of "Quality predictor" (a random forest on temperature, pressure and line)."""
    model = model_in_production(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)
    return ModelVersion.objects.get(model=model, number=1)


def inputs(rows: int, *, seed: int = 11, temperature: float = 70.0, lines=("L1", "L2")) -> list[dict]:
    """Input records like the training data's (temperature ~ N(70, 5), pressure ~ N(5, 1)), optionally shifted."""
    rng = np.random.default_rng(seed)
    return [
        {
            "温度": round(float(rng.normal(temperature, 5)), 2),
            "pressure": round(float(rng.normal(5, 1)), 3),
            "line": str(rng.choice(lines)),
        }
        for _ in range(rows)
    ]


def log_inputs(version, records: list[dict], *, at, per_log: int = 5) -> None:
    """Sampled prediction logs holding `records`, `per_log` to an entry, all written at `at` (minus a second each)."""
    PredictionLog.objects.bulk_create(
        PredictionLog(
            model=version.model,
            version=version,
            created_at=at - timedelta(seconds=i),
            rows=per_log,
            inputs=records[start : start + per_log],
            outputs=["yes"] * len(records[start : start + per_log]),
        )
        for i, start in enumerate(range(0, len(records), per_log))
    )
