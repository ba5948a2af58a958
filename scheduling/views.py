"""Production-scheduling pages: problems, adding one from a file, runs and their Gantt charts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from lepton import policy
from lepton.context_processors import current_department
from lepton.errors import ServiceError, raise_for_access
from lepton.forms import add_service_errors
from models_repo.selectors import models_visible
from scheduling import selectors, services
from scheduling.engine.rules import MAKESPAN_RULES
from scheduling.engine.table import to_tables
from scheduling.figures import run_figures
from scheduling.forms import (
    EDITOR_ADD_ROWS,
    EDITOR_BLANK_ROWS,
    EDITOR_MAX_ROWS,
    EDITOR_TABLES,
    DatasetProblemForm,
    PolicyTrainForm,
    ProblemEditForm,
    ProblemUploadForm,
    RunForm,
)
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
    if context["may_add"]:
        context["dataset_form"] = DatasetProblemForm(versions=selectors.dataset_versions_readable(request.user))
    return render(request, "scheduling/index.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def problem_from_dataset(request: HttpRequest) -> HttpResponse:
    """Build a problem from a dataset version: choose the version, then map its columns (the column
    lists come with the version: an htmx fragment, or this page again without JavaScript)."""
    department = _adding_department(request)
    versions = list(selectors.dataset_versions_readable(request.user))
    if request.method == "POST":
        form = DatasetProblemForm(request.POST, versions=versions)
        if form.is_valid():
            try:
                problem = services.problem_from_dataset(
                    actor=request.user, department=department, name=form.cleaned_data["name"],
                    dataset_version=form.version, mapping=form.mapping(), alternatives=form.cleaned_data["alternatives"],
                )  # fmt: skip
            except ServiceError as exc:
                raise_for_access(exc)
                add_service_errors(form, exc, form.field_for)
            else:
                messages.success(
                    request, _("Problem “%(name)s” built from %(dataset)s.") % {"name": problem.name, "dataset": form.version}
                )
                return redirect("scheduling:problem", problem.pk)
        status = 400
    else:
        form = DatasetProblemForm(initial=request.GET.dict(), versions=versions)
        status = 200
    template = "scheduling/partials/_from_dataset.html" if request.htmx else "scheduling/from_dataset.html"
    return render(request, template, {"dataset_form": form, "department": department}, status=status)


def _adding_department(request: HttpRequest):
    """The current department, where the user adds problems (403 when their role may not)."""
    department = current_department(request)
    if department is None or not policy.can(request.user, "submit", department):
        raise PermissionDenied
    return department


@login_required
@require_http_methods(["GET", "POST"])
def problem_edit(request: HttpRequest, pk=None) -> HttpResponse:
    """The table editor: a new problem, or (with `pk`) a copy of one to edit, saved as a new problem —
    problems are not changed once made, since runs point at them. "Add rows" and a row's "Remove"
    submit the form when JavaScript is off; static/js/scheduling-editor.js does both in the page."""
    department = _adding_department(request)
    source = get_object_or_404(selectors.problems_visible(request.user), pk=pk) if pk else None
    if source is not None and not _editable(source):
        messages.error(request, _("This problem is too large for the table editor; upload a changed file instead."))
        return redirect("scheduling:problem", source.pk)
    if request.method == "GET":
        tables = dict(zip(EDITOR_TABLES, to_tables(source.machines, source.jobs), strict=True)) if source else {}
        initial = {"name": _("%(name)s (copy)") % {"name": source.name}, "description": source.description} if source else {}
        form = ProblemEditForm(initial=initial)
        formsets = {table: formset(initial=tables.get(table), prefix=table) for table, formset in EDITOR_TABLES.items()}
        return _editor(request, form, formsets, source)
    form = ProblemEditForm(request.POST)
    formsets = {table: formset(request.POST, prefix=table) for table, formset in EDITOR_TABLES.items()}
    add, remove = request.POST.get("add"), request.POST.get("remove", "")
    if add in formsets or remove.partition("-")[0] in formsets:
        # Without JavaScript: the same rows again, with more blank ones or without the removed one.
        table, _dash, row = remove.partition("-")
        formsets = {
            name: EDITOR_TABLES[name](
                initial=formset.raw_rows(without=int(row) if name == table and row.isdigit() else None),
                prefix=name,
                blank=EDITOR_BLANK_ROWS + (EDITOR_ADD_ROWS if name == add else 0),
            )
            for name, formset in formsets.items()
        }
        return _editor(request, ProblemEditForm(initial=form.data), formsets, source)
    if form.is_valid() and all(formset.is_valid() for formset in formsets.values()):
        try:
            problem = services.problem_from_tables(
                actor=request.user, department=department, name=form.cleaned_data["name"],
                description=form.cleaned_data["description"], copy_of=source,
                **{table: formset.rows() for table, formset in formsets.items()},
            )  # fmt: skip
        except ServiceError as exc:
            raise_for_access(exc)
            _place_errors(form, formsets, exc)
        else:
            messages.success(request, _("Problem “%(name)s” saved; schedule it below.") % {"name": problem.name})
            return redirect("scheduling:problem", problem.pk)
    return _editor(request, form, formsets, source, status=400)


def _editable(problem) -> bool:
    """Whether the table editor can show `problem`: within its row limits (alternative machines go in
    the operations' alternatives cells, so a flexible problem is one row per operation too)."""
    return problem.n_operations <= EDITOR_MAX_ROWS["operations"] and all(
        len(rows) <= EDITOR_MAX_ROWS[table] for table, rows in (("machines", problem.machines), ("jobs", problem.jobs))
    )


def _place_errors(form, formsets, exc: ServiceError) -> None:
    """A service's refusal on the editor: `operations.3.duration` on that row's cell, the rest on the form."""
    for key, errors in exc.fields.items():
        table, _dot, rest = key.partition(".")
        row, _dot, column = rest.partition(".")
        formset = formsets.get(table)
        if formset is not None and row.isdigit() and int(row) < len(formset.forms) and column in formset.forms[int(row)].fields:
            formset.forms[int(row)].add_error(column, errors)
        else:
            form.add_error("name" if key == "name" else None, errors)
    if not exc.fields:
        form.add_error(None, exc.message)


def _editor(request, form, formsets, source, status: int = 200) -> HttpResponse:
    names = {
        table: sorted({str(row.get("name") or "").strip() for row in formsets[table].raw_rows()} - {""})
        for table in ("machines", "jobs")
    }
    context = {"form": form, "formsets": formsets, "source": source, "names": names, "limits": EDITOR_MAX_ROWS}
    return render(request, "scheduling/editor.html", context, status=status)


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
        "comparison": selectors.method_comparison(problem),
        "runs": problem.runs.select_related("job").order_by("-created_at")[:50],
        "may_run": policy.can(request.user, "use", problem),
    }
    context |= _origin(request, problem)
    return render(request, "scheduling/problem.html", context, status=status)


def _origin(request: HttpRequest, problem) -> dict:
    """Where the problem came from (a link where the user may follow it), and whether they may copy it."""
    from datalake import selectors as datalake_selectors
    from datalake.models import DatasetVersion

    origin, url = problem.origin or {}, None
    if origin.get("kind") == "dataset":
        version = DatasetVersion.objects.filter(pk=origin.get("dataset_version")).only("dataset_id").first()
        if version is not None and datalake_selectors.datasets_visible(request.user).filter(pk=version.dataset_id).exists():
            url = reverse("datalake:dataset", args=[version.dataset_id])
    elif origin.get("kind") == "copy" and selectors.problems_visible(request.user).filter(pk=origin.get("problem")).exists():
        url = reverse("scheduling:problem", args=[origin["problem"]])
    department = current_department(request)
    may_copy = department is not None and policy.can(request.user, "submit", department) and _editable(problem)
    mapping = [(role, origin["mapping"][role]) for role in DatasetProblemForm.ROLES if role in origin.get("mapping", {})]
    return {"origin": origin, "origin_url": url, "origin_mapping": mapping, "may_copy": may_copy}


@login_required
def run(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user).select_related("job"), pk=pk)
    live = run.status in (RunStatus.QUEUED, RunStatus.RUNNING)
    context = {
        "run": run,
        "problem": run.problem,
        "live": live,
        "figures": run_figures(run.problem, run, _=_) if run.status == RunStatus.SUCCEEDED else [],
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
