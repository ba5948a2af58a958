"""Production-scheduling pages: problems, adding one from a file, runs and their Gantt charts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from lepton import policy
from lepton.context_processors import current_department
from lepton.errors import ServiceError, raise_for_access
from lepton.forms import add_service_errors
from models_repo.selectors import models_visible
from scheduling import selectors, services
from scheduling.engine.rules import MAKESPAN_RULES
from scheduling.figures import run_figures
from scheduling.forms import PolicyTrainForm, ProblemUploadForm, RunForm
from scheduling.models import Method, RunStatus
from scheduling.policies import TASK, policy_train_start


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """The shop problems the user may see; members add one from a file here."""
    department = current_department(request)
    form = ProblemUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if department is None:
            raise PermissionDenied
        if form.is_valid():
            raw = form.cleaned_data["file"].read(services.MAX_SIZE_TEXT + 1)
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                form.add_error("file", _("The file is not UTF-8 text."))
            else:
                try:
                    problem = services.problem_upload(
                        actor=request.user, department=department, name=form.cleaned_data["name"], text=text,
                        format=form.cleaned_data["format"] or None,
                    )  # fmt: skip
                except ServiceError as exc:
                    raise_for_access(exc)
                    add_service_errors(form, exc)
                else:
                    messages.success(request, _("Problem “%(name)s” added; schedule it below.") % {"name": problem.name})
                    return redirect("scheduling:problem", problem.pk)
        status = 400
    context = {
        "department": department,
        "problems": selectors.problems_visible(request.user).order_by("department__name", "name")[:200],
        "runs": selectors.runs_visible(request.user).order_by("-created_at")[:15],
        "form": form,
        "may_add": department is not None and policy.can(request.user, "submit", department),
    }
    return render(request, "scheduling/index.html", context, status=status)


def _comparison(problem) -> list[dict]:
    """The best finished run of each method on this problem, best makespan first."""
    best: dict[str, object] = {}
    for run in problem.runs.filter(status=RunStatus.SUCCEEDED, breakdowns_seed__isnull=True).order_by("makespan", "-created_at"):
        best.setdefault(run.method, run)
    rows = sorted(best.values(), key=lambda r: r.makespan)
    reference = problem.best_known or min((r.lower_bound for r in rows if r.lower_bound), default=None)
    return [{"run": r, "gap": (r.makespan - reference) / reference if reference else None, "reference": reference} for r in rows]


@login_required
@require_http_methods(["GET", "POST"])
def problem(request: HttpRequest, pk) -> HttpResponse:
    problem = get_object_or_404(selectors.problems_visible(request.user), pk=pk)
    form = RunForm(request.POST or None, policies=selectors.policy_versions_usable(request.user)[:100])
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            methods = [data["method"]]
            if data["compare"]:
                methods += [m for m in (*MAKESPAN_RULES, Method.CPSAT) if m != data["method"]]
            try:
                runs = [
                    services.run_start(
                        actor=request.user,
                        problem=problem,
                        method=method,
                        time_limit=data["time_limit"],
                        seed=data["seed"],
                        breakdowns_seed=data["breakdowns_seed"],
                        replications=(data["replications"] or 0) if method == data["method"] else 0,
                        policy_version=form.chosen_policy() if method == data["method"] else None,
                    )  # fmt: skip
                    for method in methods
                ]
            except ServiceError as exc:
                raise_for_access(exc)
                add_service_errors(form, exc)
            else:
                messages.success(request, _("%(count)s run(s) queued.") % {"count": len(runs)})
                return redirect("scheduling:run", runs[0].pk)
        status = 400
    context = {
        "problem": problem,
        "form": form,
        "comparison": _comparison(problem),
        "runs": problem.runs.select_related("job").order_by("-created_at")[:50],
        "may_run": policy.can(request.user, "use", problem),
    }
    return render(request, "scheduling/problem.html", context, status=status)


@login_required
def run(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user).select_related("job"), pk=pk)
    live = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    context = {
        "run": run,
        "problem": run.problem,
        "live": live,
        "figures": run_figures(run.problem, run) if run.status == RunStatus.SUCCEEDED else [],
        "gap": (run.makespan - run.lower_bound) / run.makespan if run.makespan and run.lower_bound is not None else None,
    }
    template = "scheduling/partials/_run_live.html" if request.htmx else "scheduling/run.html"
    return render(request, template, context)


@login_required
@require_POST
def problem_delete(request: HttpRequest, pk) -> HttpResponse:
    problem = get_object_or_404(selectors.problems_visible(request.user), pk=pk)
    try:
        services.problem_delete(actor=request.user, problem=problem)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
        return redirect("scheduling:problem", problem.pk)
    messages.success(request, _("Problem “%(name)s” deleted with its runs.") % {"name": problem.name})
    return redirect("scheduling:index")


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user), pk=pk)
    try:
        services.run_cancel(actor=request.user, run=run)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cancel asked for; a search that has started keeps its best schedule."))
    return redirect("scheduling:run", run.pk)


@login_required
@require_http_methods(["GET", "POST"])
def policies(request: HttpRequest) -> HttpResponse:
    """The learnt policies the user may apply; members train a new one over a generated family here."""
    department = current_department(request)
    targets = (
        models_visible(request.user, "use").filter(department=department, task=TASK, archived_at__isnull=True)
        if department is not None
        else []
    )
    may_register = department is not None and policy.can(request.user, "manage", department)
    form = PolicyTrainForm(
        request.POST or None, models=targets, may_register=may_register, initial={"model": request.GET.get("model", "")}
    )
    status = 200
    if request.method == "POST":
        if department is None:
            raise PermissionDenied
        if form.is_valid():
            try:
                model, model_name = form.target()
                run = policy_train_start(
                    actor=request.user, department=department, spec=form.spec(), model=model, model_name=model_name
                )
            except ServiceError as exc:
                raise_for_access(exc)
                add_service_errors(form, exc, form.field_for)
            else:
                messages.success(request, _("The training is queued; this page follows it."))
                return redirect("models_repo:run", run.pk)
        status = 400
    may_submit = department is not None and policy.can(request.user, "submit", department)
    context = {
        "department": department,
        "versions": selectors.policy_versions_usable(request.user)[:100],
        "form": form,
        "may_submit": may_submit,
        "may_train": may_submit and bool(form.fields["model"].choices),
    }
    return render(request, "scheduling/policies.html", context, status=status)
