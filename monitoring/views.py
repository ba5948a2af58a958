"""The dashboards: a department's, the platform's (staff), a dataset's, the scheduling one, and a model's drift panel.

Each page takes a period (monitoring.forms.PeriodForm, GET), reads its numbers from
monitoring.selectors and draws them with monitoring.figures; htmx polls the page every
30 seconds and swaps the figures in place. A period that cannot be shown is a form error
(status 400) and no figures.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _

from lepton import policy
from lepton.context_processors import current_department
from lepton.errors import NotFound
from lepton.models import Department
from monitoring import figures, selectors
from monitoring.forms import period_form

REFRESH_SECONDS = 30


def _page(request, template: str, context: dict, form) -> HttpResponse:
    context = {**context, "form": form, "refresh": REFRESH_SECONDS}
    return render(request, template, context, status=200 if form.is_valid() else 400)


def _jobs_figures(jobs: dict, prefix: str) -> list[dict]:
    status_names = {"succeeded": _("succeeded"), "failed": _("failed"), "cancelled": _("cancelled"),
                    "running": _("running"), "queued": _("queued")}  # fmt: skip
    return [
        figures.time_series(
            f"{prefix}-jobs", _("Jobs by status (when queued)"), jobs["x"],
            [(status_names.get(s, s), v) for s, v in jobs["by_status"].items()], bars=True, stacked=True,
        ),
        figures.time_series(
            f"{prefix}-queues", _("Jobs by queue"), jobs["x"], list(jobs["by_queue"].items()), bars=True, stacked=True
        ),
        figures.time_series(
            f"{prefix}-wait", _("Queue wait (seconds)"), jobs["x"],
            [(_("median"), jobs["wait_p50"]), (_("95th percentile"), jobs["wait_p95"])], y_title="s",
        ),
    ]  # fmt: skip


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """The current department's dashboard (or ?department=<slug> of one the user may see)."""
    slug = request.GET.get("department")
    if slug:
        department = get_object_or_404(policy.visible_to(request.user, Department, "view"), slug=slug)
    else:
        department = current_department(request)
    form, period = period_form(request)
    context = {"department": department}
    if department is not None and period is not None:
        data = selectors.department(department, *period)
        context["data"] = data
        figs = _jobs_figures(data["jobs"], "dept")
        for k, (problem, points) in enumerate(sorted(data["schedules"].items())):
            x = [p["at"] for p in points]
            figs.append(
                figures.time_series(
                    f"dept-sched-{k}", _("%(problem)s: makespan of finished runs") % {"problem": problem}, x,
                    [(_("makespan"), [p["makespan"] for p in points])],
                )
            )  # fmt: skip
            figs.append(
                figures.time_series(
                    f"dept-util-{k}", _("%(problem)s: mean machine utilisation") % {"problem": problem}, x,
                    [(_("utilisation"), [p["utilisation"] for p in points])], y_format=".0%",
                )
            )  # fmt: skip
        context["figures"] = figs
    return _page(request, "monitoring/index.html", context, form)


@login_required
def platform(request: HttpRequest) -> HttpResponse:
    """Platform staff only: everyone else gets 404, as for any page they may not see."""
    if not (request.user.is_active and request.user.is_staff):
        raise Http404
    form, period = period_form(request)
    context = {}
    if period is not None:
        data = selectors.platform(*period)
        api, web, users = data["api"], data["web"], data["users"]
        quotas = data["quotas"]
        names = [q["department"].name for q in quotas]
        context["data"] = data
        context["figures"] = [
            *_jobs_figures(data["jobs"], "platform"),
            figures.usage_bars(
                "platform-gpu", _("GPU minutes this month against quotas"), names,
                [q["gpu_used"] for q in quotas], [q["gpu_limit"] for q in quotas], _("min"),
            ),
            figures.usage_bars(
                "platform-storage", _("Storage against quotas (MB)"), names,
                [q["storage_used"] / 1e6 for q in quotas], [q["storage_limit"] / 1e6 for q in quotas], "MB",
            ),
            figures.time_series(
                "platform-api-rate", _("API requests per minute"), api["x"],
                [(_("API"), api["rate"]), (_("pages"), web["rate"])],
            ),
            figures.time_series(
                "platform-api-latency", _("API latency (ms)"), api["x"],
                [("p50", api["p50"]), ("p95", api["p95"]), ("p99", api["p99"])], y_title="ms",
            ),
            figures.time_series(
                "platform-api-errors", _("API error rate"), api["x"],
                [(_("client errors (4xx)"), api["errors_4xx"]), (_("server errors (5xx)"), api["errors_5xx"])],
                y_format=".1%",
            ),
            figures.time_series(
                "platform-users", _("Active people per day"), users["x"], [(_("people"), users["users"])], bars=True
            ),
        ]  # fmt: skip
    return _page(request, "monitoring/platform.html", context, form)


@login_required
def dataset(request: HttpRequest, pk) -> HttpResponse:
    """Rows over versions, null-rate trends, quality-check history and the latest profile's histograms."""
    from datalake.selectors import datasets_visible

    obj = get_object_or_404(datasets_visible(request.user), pk=pk)
    history = selectors.dataset_history(obj)
    figs = []
    if history["versions"]:
        x = history["numbers"]
        figs.append(figures.bars("data-rows", _("Rows per version"), x, history["rows"]))
        figs.append(
            {
                **figures.time_series("data-nulls", _("Share of missing values per column"), x,
                                      sorted(history["nulls"].items()), y_format=".0%"),
            }
        )  # fmt: skip
        figs[-1]["figure"]["layout"]["xaxis"] = {"type": "category"}
        checks = history["checks"]
        figs.append(
            figures.time_series(
                "data-checks", _("Quality checks per version"), x,
                [(_("passed"), [c["passed"] for c in checks]), (_("failed"), [c["failed"] for c in checks])],
                bars=True, stacked=True,
            )
        )  # fmt: skip
        figs[-1]["figure"]["layout"]["xaxis"] = {"type": "category"}
        for k, (column, hist) in enumerate(history["histograms"][:12]):
            figs.append(figures.histogram(f"data-hist-{k}", column, hist["edges"], hist["counts"], x_title=column))
    return render(request, "monitoring/dataset.html", {"dataset": obj, "history": history, "figures": figs})


@login_required
def scheduling(request: HttpRequest) -> HttpResponse:
    """The department's latest finished schedule: its Gantt chart, utilisation, robustness, and the methods compared."""
    from scheduling.figures import robustness, run_figures
    from scheduling.models import RunStatus
    from scheduling.selectors import method_comparison, runs_visible

    department = current_department(request)
    latest = None
    if department is not None:
        latest = (
            runs_visible(request.user)
            .filter(problem__department=department, status=RunStatus.SUCCEEDED)
            .select_related("problem")
            .order_by("-finished_at")
            .first()
        )
    figs, comparison = [], []
    if latest is not None:
        figs = run_figures(latest.problem, latest, _=_)
        if not latest.info.get("robustness"):  # the latest robustness study of the department, when there is one
            studied = (
                runs_visible(request.user)
                .filter(problem__department=department, status=RunStatus.SUCCEEDED, info__has_key="robustness")
                .select_related("problem")
                .order_by("-finished_at")
                .first()
            )
            if studied is not None:
                figs.append(robustness(studied.info["robustness"], _=_))
        comparison = method_comparison(latest.problem)
        if comparison:
            figs.insert(
                0,
                figures.bars(
                    "sched-methods", _("Best makespan per method"),
                    [row["run"].get_method_display() for row in comparison], [row["run"].makespan for row in comparison],
                ),
            )  # fmt: skip
    context = {"department": department, "run": latest, "figures": figs, "comparison": comparison}
    return render(request, "monitoring/scheduling.html", context)


def drift_panel(user, model_id, *, number: int | None = None) -> dict:
    """The context of templates/monitoring/partials/_drift.html: `drift` (selectors.model_drift) and its figures.

    The model dashboard includes the partial with this context; NotFound when the user may not see the model.
    """
    drift = selectors.model_drift(user, model_id, number=number)
    limits = {"moderate": drift["settings"]["psi_moderate"], "significant": drift["settings"]["psi_significant"]}
    found = [
        figures.psi_bars(drift["features"], title=_("PSI per feature (latest window)"), **limits),
        figures.psi_over_time(drift["history"], title=_("PSI over time"), **limits),
    ]
    return {"drift": drift, "drift_figures": [f for f in found if f is not None]}


@login_required
def model_drift(request, pk):
    """The drift panel of a model alone (the model page loads it with htmx)."""
    try:
        context = drift_panel(request.user, pk)
    except NotFound:
        raise Http404() from None
    return render(request, "monitoring/partials/_drift.html", context)


MODEL_REFRESH_SECONDS = 5  # a model's requests are what people watch live (after a deployment, during an incident)


def model_figures(data: dict) -> list[dict]:
    """The model dashboard's figures from selectors.model_dashboard (the page and its tests draw the same)."""
    x = data["x"]
    found = [
        figures.time_series("model-requests", _("Prediction requests"), x, [(_("requests"), data["requests"])], bars=True),
        figures.time_series(
            "model-latency", _("Latency (ms)"), x,
            [("p50", data["p50"]), ("p95", data["p95"]), ("p99", data["p99"])], y_title="ms",
        ),
        figures.time_series("model-errors", _("Error rate (refused requests)"), x, [(_("errors"), data["error_rate"])],
                            y_format=".1%"),
        figures.distribution("model-outputs", _("Predictions served"), data["outputs"], y_title=_("predicted rows")),
    ]  # fmt: skip
    if len(data["versions"]) > 1:
        found.append(
            figures.time_series(
                "model-versions", _("Requests per version"), x, list(data["versions"].items()), bars=True, stacked=True
            )
        )
    names = {"accuracy": _("accuracy"), "mae": _("MAE"), "rmse": _("RMSE"), "rows": _("rows with ground truth")}
    title = _("Real performance (by prediction time)")
    found.append(figures.performance("model-performance", title, x, data["performance"], names))
    return [f for f in found if f is not None]


@login_required
def model_dashboard(request, pk):
    """A model's live dashboard: requests, latency, errors, predictions, versions, drift and real performance."""
    try:
        model = selectors.drift_model(request.user, pk)
    except NotFound:
        raise Http404() from None
    form, period = period_form(request)
    context = {"model": model, "refresh": MODEL_REFRESH_SECONDS}
    if period is not None:
        data = selectors.model_dashboard(request.user, pk, *period)
        rate = data["totals"]["error_rate"]
        context.update(data=data, figures=model_figures(data), error_pct=None if rate is None else round(rate * 100, 2))
        context.update(drift_panel(request.user, pk))
    return render(request, "monitoring/model.html", {**context, "form": form}, status=200 if form.is_valid() else 400)
