"""Read queries of production scheduling, always filtered by what the user may see."""

from lepton import policy
from scheduling.models import RunStatus, ScheduleRun, ShopProblem


def problems_visible(user, action: str = "view"):
    return policy.visible_to(user, ShopProblem, action).select_related("department")


def runs_visible(user, action: str = "view"):
    return policy.visible_to(user, ScheduleRun, action).select_related("department", "problem__department")


def dataset_versions_readable(user, limit: int = 500):
    """Published table versions of the datasets the user may read (their departments' and shared ones),
    newest first per dataset: what a problem may be built from (scheduling.services.problem_from_dataset)."""
    from datalake import selectors as datalake_selectors
    from datalake.models import DatasetVersion, VersionStatus

    return (
        DatasetVersion.objects.filter(dataset__in=datalake_selectors.datasets_visible(user), status=VersionStatus.PUBLISHED)
        .exclude(format="images")
        .select_related("dataset__department")
        .order_by("dataset__department__slug", "dataset__slug", "-number")[:limit]
    )


def policy_versions_usable(user):
    """Ready, unarchived versions of the scheduling policies the user may apply (own department or a `use` share)."""
    from models_repo.models import ModelVersion, VersionState
    from models_repo.selectors import models_visible
    from scheduling.policies import FLAVOR, TASK

    models = models_visible(user, "use").filter(task=TASK, archived_at__isnull=True)
    return (
        ModelVersion.objects.filter(model__in=models, flavor=FLAVOR, status=VersionState.READY, archived_at__isnull=True)
        .select_related("model__department")
        .prefetch_related("aliases")
        .order_by("model__department__slug", "model__slug", "-number")
    )


def method_comparison(problem) -> list[dict]:
    """The best finished run of each method on this problem, best makespan first."""
    best: dict[str, object] = {}
    for run in problem.runs.filter(status=RunStatus.SUCCEEDED, breakdowns_seed__isnull=True).order_by("makespan", "-created_at"):
        best.setdefault(run.method, run)
    rows = sorted(best.values(), key=lambda r: r.makespan)
    reference = problem.best_known or min((r.lower_bound for r in rows if r.lower_bound), default=None)
    return [{"run": r, "gap": (r.makespan - reference) / reference if reference else None, "reference": reference} for r in rows]
