"""The main pages of the browser UI, filled with real objects, for the checks that go over all of them:
accessibility (tests/browser/test_accessibility.py) and the complete Chinese interface (tests/lepton/test_zh.py).

Everything is made through the services and run inline (ingest, training, a schedule), so no worker is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from models_repo.models import ModelVersion, PredictionLog
from scheduling import services as scheduling_services
from scheduling.engine.instance import job_shop
from tests.models_repo.conftest import model_in_production

# Names the tests create: user data, which a page shows as it is in any language.
USER_DATA = ("Inspections", "Quality predictor", "Press shop", "温度", "pressure", "line", "合格", "L1", "L2", "yes", "no")


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    # Which persona looks at it: "member" for everything a department member does, "owner" (maintainer) for the
    # column classification, "admin" for the audit viewer
    # (only department admins and staff have one), None for the login page.
    persona: str | None = "member"


def build_pages(*, owner, member, checker, dataset_version, department) -> list[Page]:
    """Make a model in production with some traffic and a finished schedule; return the pages to visit."""
    dataset = dataset_version.dataset
    model = model_in_production(
        owner=owner, member=member, checker=checker, dataset_version=dataset_version, department=department
    )
    version = ModelVersion.objects.get(model=model, number=1)
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(model=model, version=version, created_at=now - timedelta(minutes=k), rows=2,
                      latency_ms=10.0 + k, outputs=[True, False], status_code=200)
        for k in range(12)
    )  # fmt: skip
    problem = scheduling_services.problem_create(
        actor=member, department=department, name="Press shop", instance=job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]])
    )
    run = scheduling_services.run_start(actor=member, problem=problem, method="spt", time_limit=1)
    scheduling_services.run_execute(run.pk)
    return [
        Page("login", "/accounts/login/", persona=None),
        Page("home", "/"),
        Page("catalog", "/data/"),
        Page("dataset (profile, preview, upload form)", f"/data/{dataset.pk}/"),
        Page("dataset columns (classification)", f"/data/{dataset.pk}/columns/", persona="owner"),
        Page("data dashboard", f"/dashboards/data/{dataset.pk}/"),
        Page("models", "/models/"),
        Page("train form", "/models/train/"),
        Page("model", f"/models/{model.pk}/"),
        Page("training run", f"/models/runs/{version.run_id}/"),
        Page("model dashboard", f"/dashboards/models/{model.pk}/"),
        Page("dashboards", "/dashboards/"),
        Page("scheduling", "/scheduling/"),
        Page("shop problem", f"/scheduling/problems/{problem.pk}/"),
        Page("schedule (Gantt)", f"/scheduling/runs/{run.pk}/"),
        Page("jobs", "/jobs/"),
        Page("profile", "/profile/"),
        Page("audit", "/audit/", persona="admin"),
    ]
