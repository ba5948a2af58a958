"""Read queries of the model repository, always filtered by what the user may see."""

from django.db.models import Prefetch
from django.utils.translation import gettext

from lepton import policy
from models_repo.models import AliasEvent, ModelAlias, PromotionRequest, RegisteredModel, TrainingRun


def runs_visible(user, action: str = "view"):
    return policy.visible_to(user, TrainingRun, action).select_related("department")


def models_visible(user, action: str = "view"):
    aliases = Prefetch("aliases", queryset=ModelAlias.objects.select_related("version").order_by("name"))
    return policy.visible_to(user, RegisteredModel, action).select_related("department").prefetch_related(aliases)


def promotions_visible(user):
    return policy.visible_to(user, PromotionRequest).select_related("model__department", "version", "requested_by", "decided_by")


COMPARE_MAX = 4


def versions_compared(model: RegisteredModel, numbers: list[int]) -> dict:
    """Side by side: metrics (best marked), params (differences marked), data, holdouts, aliases.

    `numbers` are 2…COMPARE_MAX version numbers of `model` (the caller checks the user may see it).
    Metrics compare fairly only on the same holdout: `same_holdout` says whether they were
    scored on the same rows of the same data version.
    """
    from models_repo.services.registry import LOWER_IS_BETTER

    found = {v.number: v for v in model.versions.filter(number__in=numbers).select_related("run").prefetch_related("aliases")}
    versions = [found[n] for n in numbers if n in found]
    metric_names = sorted({name for v in versions for name in v.metrics})
    metrics = []
    for name in metric_names:
        values = [v.metrics.get(name) for v in versions]
        known = [(value, i) for i, value in enumerate(values) if isinstance(value, int | float)]
        best = None
        if len(known) > 1 and len({value for value, _ in known}) > 1:
            best = (min(known) if name in LOWER_IS_BETTER else max(known))[1]
        metrics.append({"name": name, "values": values, "best": best, "lower_is_better": name in LOWER_IS_BETTER})
    params_of = [dict(v.run.params) if v.run else {} for v in versions]
    param_names = sorted({name for p in params_of for name in p})
    params = []
    for name in param_names:
        values = [p.get(name) for p in params_of]
        params.append({"name": name, "values": values, "differs": len({repr(v) for v in values}) > 1})
    holdouts = {(str(v.dataset_version_id), tuple(v.holdout.get("indices") or ())) for v in versions}
    return {
        "versions": [
            {
                "number": v.number,
                "flavor": v.flavor,
                "source": v.source,
                "algorithm": v.run.algorithm if v.run else "",
                "run": str(v.run_id) if v.run_id else None,
                "dataset_version": str(v.dataset_version_id) if v.dataset_version_id else None,
                "dataset": v.run.dataset_label if v.run else "",
                "holdout": {k: v.holdout.get(k) for k in ("rows", "metric", "method")},
                "aliases": sorted(a.name for a in v.aliases.all()),
                "created_at": v.created_at.isoformat(),
                "archived": v.archived_at is not None,
            }
            for v in versions
        ],
        "missing": [n for n in numbers if n not in found],
        "metrics": metrics,
        "params": params,
        "same_holdout": len(holdouts) == 1 and all(v.holdout.get("indices") for v in versions),
    }


def version_lineage(user, versions) -> list[dict]:
    """Per version: the data version and run it came from, predictions logged, batch outputs."""
    from django.db.models import Count

    from datalake import selectors as datalake_selectors
    from datalake.models import DatasetVersion
    from lepton import audit
    from lepton.models import LineageEdge
    from models_repo.models import ModelVersion, PredictionLog

    ids = [str(v.pk) for v in versions]
    vtype, dtype = audit.object_type(ModelVersion), audit.object_type(DatasetVersion)
    edges = list(LineageEdge.objects.filter(from_type=vtype, from_id__in=ids, to_type=dtype))
    wanted = {e.to_id for e in edges} | {str(v.dataset_version_id) for v in versions if v.dataset_version_id}
    data = {str(d.pk): d for d in DatasetVersion.objects.filter(pk__in=wanted).select_related("dataset__department")}
    readable = set(
        datalake_selectors.datasets_visible(user)
        .filter(pk__in={d.dataset_id for d in data.values()})
        .values_list("pk", flat=True)
    )
    outputs: dict[str, list] = {}
    for edge in edges:
        made = data.get(edge.to_id)
        if made is not None and made.dataset_id in readable:
            outputs.setdefault(edge.from_id, []).append(made)
    logged = dict(
        PredictionLog.objects.filter(version_id__in=ids).values("version").annotate(n=Count("id")).values_list("version", "n")
    )
    rows = []
    for v in versions:
        source = data.get(str(v.dataset_version_id)) if v.dataset_version_id else None
        rows.append(
            {
                "version": v,
                "data": source if source is not None and source.dataset_id in readable else None,
                "data_hidden": source is not None and source.dataset_id not in readable,
                "logged": logged.get(v.pk, 0),
                "outputs": outputs.get(str(v.pk), []),
            }
        )
    return rows


def aliases_at(model: RegisteredModel, at) -> list[dict]:
    """Which version each alias of `model` pointed at, at the moment `at` (from the alias history):
    [{"alias", "version" (number or None when removed), "since", "by"}], by alias name."""
    held: dict[str, dict] = {}
    events = AliasEvent.objects.filter(model=model, created_at__lte=at).select_related("to_version", "actor")
    for event in events.order_by("-created_at", "-id"):
        if event.alias not in held:
            held[event.alias] = {
                "alias": event.alias,
                "version": event.to_version.number if event.to_version else None,
                "since": event.created_at,
                "by": event.actor.get_username() if event.actor else gettext("system"),
            }
    return [held[name] for name in sorted(held) if held[name]["version"] is not None]
