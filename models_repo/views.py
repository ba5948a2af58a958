"""Model-repository pages: models and runs, training from a form, a run's metrics and curves,
a model's versions and aliases, promotion requests and their inbox."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from datalake import selectors as datalake_selectors
from datalake.models import DatasetVersion, VersionStatus
from lepton import policy
from lepton.context_processors import current_department
from lepton.errors import ServiceError, raise_for_access
from lepton.forms import add_service_errors
from lepton.history import parse_at
from lepton.jobs.models import FINISHED_STATUSES, JobStatus
from models_repo import selectors, services
from models_repo.external import by_task
from models_repo.figures import run_figures
from models_repo.forms import (
    BatchPredictForm,
    DecisionForm,
    ModelCreateForm,
    ModelSettingsForm,
    PromotionForm,
    TrainForm,
    VersionUploadForm,
)
from models_repo.models import AliasEvent, PromotionRequest, PromotionStatus, RunStatus


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """Models and recent runs the user may see; maintainers register a model here."""
    department = current_department(request)
    form = ModelCreateForm(request.POST or None)
    show_archived = request.GET.get("archived") == "1"
    status = 200
    if request.method == "POST":
        if department is None:
            raise PermissionDenied
        if form.is_valid():
            try:
                model = services.model_create(actor=request.user, department=department, **form.cleaned_data)
            except ServiceError as exc:
                raise_for_access(exc)
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Model “%(name)s” registered; train a first version.") % {"name": model.name})
                return redirect("models_repo:model", model.pk)
        status = 400
    context = {
        "department": department,
        "models": selectors.models_visible(request.user)
        .filter(archived_at__isnull=not show_archived)
        .order_by("department__name", "name")[:200],
        "show_archived": show_archived,
        "runs": selectors.runs_visible(request.user).order_by("-created_at")[:20],
        "pending": selectors.promotions_visible(request.user).filter(status=PromotionStatus.PENDING).count(),
        "form": form,
        "may_register": department is not None and policy.can(request.user, "manage", department),
        "may_train": department is not None and policy.can(request.user, "submit", department),
    }
    return render(request, "models_repo/index.html", context, status=status)


def _trainable_versions(user):
    datasets = datalake_selectors.datasets_visible(user, "use")
    latest = {}
    for version in (
        DatasetVersion.objects.filter(dataset__in=datasets, status=VersionStatus.PUBLISHED)
        .select_related("dataset__department")
        .order_by("dataset__department__slug", "dataset__slug", "-number")[:2000]
    ):
        latest.setdefault(version.dataset_id, version)
    return list(latest.values())


@login_required
@require_http_methods(["GET", "POST"])
def train(request: HttpRequest) -> HttpResponse:
    """Start a training run from a form; errors come back on the form naming the field."""
    versions = _trainable_versions(request.user)
    models = [m for m in selectors.models_visible(request.user, "use") if by_task(m.task) is None]
    initial = {"dataset_version": request.GET.get("version", ""), "registered_model": request.GET.get("model", "")}
    form = TrainForm(request.POST or None, versions=versions, models=models, initial=initial)
    if request.method == "POST" and form.is_valid():
        version = next(v for v in versions if str(v.pk) == form.cleaned_data["dataset_version"])
        model = next((m for m in models if str(m.pk) == form.cleaned_data.get("registered_model")), None)
        try:
            run = services.training_start(
                actor=request.user,
                dataset_version=version,
                spec=form.spec(),
                registered_model=model,
                name=form.cleaned_data["name"],
            )
        except ServiceError as exc:
            raise_for_access(exc)
            add_service_errors(form, exc, form.field_for)
        else:
            messages.success(request, _("The run is queued; this page follows it."))
            return redirect("models_repo:run", run.pk)
    selected = next(
        (v for v in versions if str(v.pk) == (form["dataset_version"].value() or "")), versions[0] if versions else None
    )
    context = {"form": form, "versions": versions, "selected": selected}
    return render(request, "models_repo/train.html", context, status=400 if form.is_bound else 200)


@login_required
def run(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user).select_related("job", "analysis_job", "registered_model"), pk=pk)
    analysis = run.analysis_job
    analysing = analysis is not None and analysis.status not in FINISHED_STATUSES
    context = {
        "run": run,
        "live": run.status in (RunStatus.QUEUED, RunStatus.RUNNING) or analysing,
        "analysing": analysing,
        "analysis_failed": analysis is not None and analysis.status in (JobStatus.FAILED, JobStatus.CANCELLED),
        "figures": run_figures(run, _=_),
        "versions": list(run.versions.select_related("model")),
        "may_rerun": policy.can(request.user, "submit", run.department),
    }
    template = "models_repo/partials/_run_live.html" if request.htmx else "models_repo/run.html"
    return render(request, template, context)


@login_required
@require_POST
def run_rerun(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user), pk=pk)
    try:
        again = services.training_rerun(actor=request.user, run=run)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
        return redirect("models_repo:run", run.pk)
    messages.success(request, _("Re-run queued with the same spec, seed and data version."))
    return redirect("models_repo:run", again.pk)


@login_required
@require_POST
def run_cancel(request: HttpRequest, pk) -> HttpResponse:
    run = get_object_or_404(selectors.runs_visible(request.user), pk=pk)
    try:
        services.training_cancel(actor=request.user, run=run)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cancel requested; what finished is kept."))
    return redirect("models_repo:run", run.pk)


def _try_version(model, versions):
    """The version the try-it form uses: production, else the newest; tabular ones only."""
    production = next((a.version for a in model.aliases.all() if a.name == services.PRODUCTION), None)
    version = production or (versions[0] if versions else None)
    if version is None or version.task not in ("classification", "regression"):
        return None
    return version


def _aliases_as_of(request: HttpRequest, model) -> dict:
    """The model page's "as of" box: the aliases at ?at= (a date or date-time), or its error."""
    value = request.GET.get("at", "").strip()
    if not value:
        return {"as_of": "", "as_of_aliases": None, "as_of_error": ""}
    try:
        at = parse_at(value)
    except ServiceError as error:
        return {"as_of": value, "as_of_aliases": None, "as_of_error": error.message}
    return {"as_of": value, "as_of_at": at, "as_of_aliases": selectors.aliases_at(model, at), "as_of_error": ""}


@login_required
def model(
    request: HttpRequest,
    pk,
    *,
    try_values=None,
    try_result=None,
    try_error="",
    settings_form=None,
    upload_form=None,
    batch_form=None,
    status=200,
) -> HttpResponse:
    model = get_object_or_404(selectors.models_visible(request.user), pk=pk)
    may_change = policy.can(request.user, "change", model)
    external = by_task(model.task)  # a kind another part trains and applies: no upload, no try-it, its own page
    if may_change and settings_form is None:
        settings_form = ModelSettingsForm(model=model, datasets=_retrain_datasets(request.user))
    versions = list(model.versions.select_related("run").prefetch_related("aliases").order_by("-number")[:100])
    try_version = _try_version(model, versions)
    context = {
        "try_version": try_version,
        "try_fields": [
            {"name": c["name"], "type": c.get("type", "string"), "value": (try_values or {}).get(c["name"], "")}
            for c in (try_version.input_schema if try_version else [])
        ],
        "try_result": try_result,
        "try_error": try_error,
        "model": model,
        "versions": versions,
        "history": AliasEvent.objects.filter(model=model).select_related("from_version", "to_version", "actor")[:50],
        **_aliases_as_of(request, model),
        "requests": PromotionRequest.objects.filter(model=model).select_related("version", "requested_by", "decided_by")[:50],
        "may_change": may_change,
        "settings_form": settings_form if may_change else None,
        "upload_form": (upload_form or VersionUploadForm()) if may_change and external is None else None,
        "external": external,
        "may_use": policy.can(request.user, "use", model),
        "promotion_form": PromotionForm(),
        "decision_form": DecisionForm(),
        "metric_names": sorted({name for v in versions for name in v.metrics})[:8],
        "batch_form": (batch_form or _batch_form(request, model)) if policy.can(request.user, "use", model) else None,
        "lineage": selectors.version_lineage(request.user, versions),
    }
    return render(request, "models_repo/model.html", context, status=status)


model_page = model  # the form views below show the page again with their result or errors


def _retrain_datasets(user):
    return list(datalake_selectors.datasets_visible(user, "use").order_by("department__slug", "slug")[:500])


@login_required
@require_POST
def model_settings(request: HttpRequest, pk) -> HttpResponse:
    """Save the description, card, gate and continuous learning; errors come back on the form (400)."""
    model = _model_or_404(request, pk, "change")
    datasets = _retrain_datasets(request.user)
    form = ModelSettingsForm(request.POST, datasets=datasets)
    if form.is_valid():
        dataset = next((d for d in datasets if str(d.pk) == form.cleaned_data["retrain_dataset"]), None)
        try:
            with transaction.atomic():
                services.model_update(actor=request.user, model=model, **form.model_values())
                if dataset is not None or model.retrain_dataset_id is not None:
                    services.continuous_set(
                        actor=request.user,
                        model=model,
                        dataset=dataset,
                        spec=form.cleaned_data.get("retrain_spec"),
                        auto_promote=form.cleaned_data["auto_promote"],
                    )
        except ServiceError as exc:
            raise_for_access(exc)
            add_service_errors(form, exc, lambda key: "retrain_spec" if key.startswith("spec") else key.split(".")[0])
        else:
            messages.success(request, _("The model's settings are saved."))
            return redirect("models_repo:model", model.pk)
    return model_page(request, pk, settings_form=form, status=400)


@login_required
@require_POST
def try_it(request: HttpRequest, pk) -> HttpResponse:
    """Predict one row typed into the model page (the API's checks; members and above)."""
    from datalake.services.recalls import refuse_recalled
    from models_repo.api.predict import predict_table_rows

    model = _model_or_404(request, pk, "use")
    versions = list(model.versions.order_by("-number")[:1])
    version = _try_version(model, versions)
    if version is None:
        raise Http404
    values = {c["name"]: request.POST.get(f"col:{c['name']}", "") for c in version.input_schema}
    row = {}
    for column in version.input_schema:
        raw = values[column["name"]].strip()
        if raw == "":
            row[column["name"]] = None
        elif column.get("type") == "boolean":
            row[column["name"]] = raw.lower() in ("1", "true", "yes", "on")
        else:
            row[column["name"]] = raw  # numbers are parsed by the checks, which name a bad one
    try:
        refuse_recalled(version)
        result, _ignored = predict_table_rows(model, version, [row], source="browser")
    except ServiceError as exc:
        raise_for_access(exc)
        message = " ".join(str(e) for errors in exc.fields.values() for e in errors) or exc.message
        return model_page(request, pk, try_values=values, try_error=message, status=400)
    answer = {"version": version.number, "prediction": result["predictions"][0]}
    if result.get("probabilities"):
        answer["probabilities"] = sorted(result["probabilities"][0].items(), key=lambda kv: -kv[1])
    return model_page(request, pk, try_values=values, try_result=answer)


@login_required
@require_POST
def version_upload(request: HttpRequest, pk) -> HttpResponse:
    """Register a version from an ONNX, .keras or skops file (maintainers); each refusal is a form error (400)."""
    model = _model_or_404(request, pk, "change")
    form = VersionUploadForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            version = services.version_upload(
                actor=request.user, model=model, stream=data["file"], filename=data["file"].name,
                input_schema=data["input_schema"], output=data["output"], description=data["description"],
            )  # fmt: skip
        except ServiceError as exc:
            raise_for_access(exc)
            add_service_errors(form, exc)
        else:
            if version.status == "validating":
                message = _("v%(number)s is uploaded; a worker checks it before it serves.")
            else:
                message = _("v%(number)s is registered from the uploaded file.")
            messages.success(request, message % {"number": version.number})
            return redirect("models_repo:model", model.pk)
    return model_page(request, pk, upload_form=form, status=400)


def _model_or_404(request, pk, action: str = ""):
    """The model if the user may see it (else 404) and, with `action`, do that to it (else 403)."""
    model = get_object_or_404(selectors.models_visible(request.user), pk=pk)
    if action and not policy.can(request.user, action, model):
        raise PermissionDenied
    return model


@login_required
@require_POST
def promote(request: HttpRequest, pk, number: int) -> HttpResponse:
    model = _model_or_404(request, pk)
    version = get_object_or_404(model.versions, number=number)
    form = PromotionForm(request.POST)
    form.is_valid()
    try:
        promotion = services.promotion_request(actor=request.user, version=version, reason=form.cleaned_data.get("reason", ""))
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        if promotion.status == PromotionStatus.CHECKING:
            messages.success(
                request,
                _("v%(number)s is being scored against production on the same rows; the request waits for approval if it passes.")
                % {"number": number},
            )
        elif promotion.status == PromotionStatus.GATE_FAILED:
            messages.error(
                request, _("v%(number)s failed the gate: %(reason)s") % {"number": number, "reason": promotion.gate.get("reason")}
            )
        else:
            messages.success(
                request, _("v%(number)s passed the gate and waits for a maintainer's approval.") % {"number": number}
            )
    return redirect("models_repo:model", model.pk)


@login_required
@require_POST
def decide(request: HttpRequest, pk, decision: str) -> HttpResponse:
    if decision not in ("approve", "reject"):
        raise Http404
    promotion = get_object_or_404(selectors.promotions_visible(request.user), pk=pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    note = form.cleaned_data.get("note", "")
    try:
        if decision == "approve":
            services.promotion_approve(actor=request.user, request=promotion, note=note)
            messages.success(request, _("Approved: production now serves v%(number)s.") % {"number": promotion.version.number})
        else:
            services.promotion_reject(actor=request.user, request=promotion, note=note)
            messages.success(request, _("Rejected."))
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    if request.POST.get("next") == "inbox":
        return redirect("models_repo:inbox")
    return redirect("models_repo:model", promotion.model_id)


@login_required
@require_POST
def rollback(request: HttpRequest, pk) -> HttpResponse:
    model = _model_or_404(request, pk)
    try:
        alias = services.production_rollback(actor=request.user, model=model, reason=request.POST.get("reason", ""))
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Production is back on v%(number)s.") % {"number": alias.version.number})
    return redirect("models_repo:model", model.pk)


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Promotion requests waiting for a decision, with the gate's verdict, and the recent decided ones."""
    visible = selectors.promotions_visible(request.user)
    waiting = [p for p in visible.filter(status=PromotionStatus.PENDING).order_by("created_at")[:100]]
    checking = list(visible.filter(status=PromotionStatus.CHECKING).order_by("created_at")[:100])
    rows = [{"request": p, "may_decide": policy.can(request.user, "change", p.model)} for p in waiting]
    recent = visible.exclude(status=PromotionStatus.PENDING).order_by("-created_at")[:30]
    context = {"rows": rows, "checking": checking, "recent": recent, "decision_form": DecisionForm()}
    return render(request, "models_repo/inbox.html", context)


@login_required
def compare(request: HttpRequest, pk) -> HttpResponse:
    """Two to four versions side by side: metrics, params, data, curves (?v=1&v=2…)."""
    from models_repo.figures import compare_figures

    model = _model_or_404(request, pk)
    all_versions = list(model.versions.order_by("-number")[:100])
    raw = request.GET.getlist("v")
    error = ""
    numbers: list[int] = []
    for value in raw:
        try:
            number = int(value)
        except ValueError:
            error = _("“%(value)s” is not a version number.") % {"value": value[:20]}
            break
        if number not in numbers:
            numbers.append(number)
    if not error and raw and not 2 <= len(numbers) <= selectors.COMPARE_MAX:
        error = _("Pick between 2 and %(n)s versions to compare.") % {"n": selectors.COMPARE_MAX}
    comparison = figures = None
    if not error and numbers:
        comparison = selectors.versions_compared(model, numbers)
        if comparison["missing"]:
            error = _("%(model)s has no version %(numbers)s.") % {
                "model": model.name,
                "numbers": ", ".join(str(n) for n in comparison["missing"]),
            }
            comparison = None
        else:
            shown = {v.number: v for v in model.versions.filter(number__in=numbers).select_related("run")}
            figures = compare_figures([shown[n] for n in numbers], _=_)
    context = {"model": model, "all_versions": all_versions, "numbers": numbers, "comparison": comparison,
               "figures": figures, "error": error}  # fmt: skip
    return render(request, "models_repo/compare.html", context, status=400 if error else 200)


@login_required
@require_POST
def archive(request: HttpRequest, pk) -> HttpResponse:
    model = _model_or_404(request, pk)
    archived = request.POST.get("archived") != "0"
    try:
        services.model_archive(actor=request.user, model=model, archived=archived, reason=request.POST.get("reason", ""))
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The model is archived.") if archived else _("The model is restored."))
    return redirect("models_repo:model", model.pk)


@login_required
@require_POST
def version_archive(request: HttpRequest, pk, number: int) -> HttpResponse:
    model = _model_or_404(request, pk)
    version = get_object_or_404(model.versions, number=number)
    archived = request.POST.get("archived") != "0"
    try:
        services.version_archive(actor=request.user, version=version, archived=archived)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        text = _("v%(number)s is archived.") if archived else _("v%(number)s is restored.")
        messages.success(request, text % {"number": number})
    return redirect("models_repo:model", model.pk)


def _batch_form(request, model, data=None) -> BatchPredictForm:
    versions = [v for v in model.versions.prefetch_related("aliases").order_by("-number")[:100] if v.archived_at is None]
    versions = [v for v in versions if v.task in services.BATCH_TASKS]
    return BatchPredictForm(data, data_versions=_trainable_versions(request.user), model_versions=versions)


@login_required
@require_POST
def batch(request: HttpRequest, pk) -> HttpResponse:
    """Queue a batch prediction; errors come back on the model page's form (400)."""
    model = _model_or_404(request, pk, "use")
    form = _batch_form(request, model, request.POST)
    if form.is_valid():
        data = next(v for v in _trainable_versions(request.user) if str(v.pk) == form.cleaned_data["dataset_version"])
        version = model.versions.get(number=int(form.cleaned_data["version"]))
        try:
            pending = services.batch_predict_start(
                actor=request.user, model=model, version=version, dataset_version=data,
                output_name=form.cleaned_data["output_name"],
            )  # fmt: skip
        except ServiceError as exc:
            raise_for_access(exc)
            add_service_errors(form, exc)
        else:
            text = _("Batch prediction queued: %(dataset)s gets a new version when it is done.")
            messages.success(request, text % {"dataset": pending.dataset.name})
            return redirect("datalake:dataset", pending.dataset_id)
    return model_page(request, pk, batch_form=form, status=400)
