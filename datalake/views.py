"""Data-lake pages: the catalog, a dataset with its versions, profile and checks, uploads."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from datalake import selectors, services
from datalake.figures import lineage_figure
from datalake.filtersets import DatasetFilterSet
from datalake.forms import (
    ColumnClassificationForm,
    DatabaseImportForm,
    DatasetCreateForm,
    DatasetSettingsForm,
    RecipeForm,
    RecipeStepsForm,
    RetryForm,
    SavedQueryForm,
    UploadForm,
    describe_step,
    recipe_builder_config,
)
from datalake.models import Dataset, DatasetVersion, Recipe, SavedQuery, VersionStatus
from datalake.services.sensitive import masked_profile
from lepton import policy
from lepton.context_processors import current_department
from lepton.errors import ServiceError, raise_for_access
from lepton.models import Department


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    """The catalog: datasets the user may see, searchable; members create new ones here."""
    department = current_department(request)
    form = DatasetCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if department is None:
            raise PermissionDenied  # no department: nothing to create in
        if form.is_valid():
            try:
                dataset = services.dataset_create(actor=request.user, department=department, **form.cleaned_data)
            except ServiceError as exc:
                for field, errors in exc.fields.items():
                    form.add_error(field if field in form.fields else None, errors)
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, _("Dataset “%(name)s” created. Upload a first file.") % {"name": dataset.name})
                return redirect("datalake:dataset", dataset.pk)
        status = 400
    filterset = DatasetFilterSet(request.GET, queryset=selectors.datasets_visible(request.user), request=request)
    discoverable = DatasetFilterSet(request.GET, queryset=selectors.datasets_discoverable(request.user), request=request)
    filter_error = "" if filterset.is_valid() else " ".join(str(e) for errors in filterset.errors.values() for e in errors)
    query = request.GET.get("q", "").strip()
    listed = filterset.qs.order_by("department__name", "name") if not filter_error else Dataset.objects.none()
    page = Paginator(listed, CATALOG_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "tag": request.GET.get("tag", "").strip(),
        "filterset": filterset,
        "selected_formats": request.GET.getlist("format"),
        "selected_quality": request.GET.getlist("quality"),
        "selected_department": request.GET.get("department", ""),
        "filter_error": filter_error,
        "filtered": any(request.GET.get(k) for k in ("q", "tag", "department", "format", "quality")),
        "discoverable": discoverable.qs[:100] if not filter_error else [],
        "department": department,
        "datasets": page,
        "paging": _paging_query(request),
        "query": query,
        "form": form,
        "may_create": department is not None and policy.can(request.user, "submit", department),
        "storage_used": services.department_storage_used(department) if department else None,
        "departments": Department.objects.filter(pk__in=selectors.datasets_visible(request.user).values("department")).order_by(
            "name"
        ),
    }
    return render(request, "datalake/index.html", context, status=status)


CATALOG_PAGE_SIZE = 50


def _paging_query(request) -> str:
    """The current filters as a query string without `page`, for the page links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _dataset_or_404(request, pk) -> Dataset:
    return get_object_or_404(selectors.datasets_visible(request.user), pk=pk)


def _profile_figures(version) -> list[dict]:
    """Plotly histograms of the numeric columns (at most six) of a published version."""
    figures = []
    for column in (version.profile or {}).get("columns", []):
        histogram = column.get("histogram")
        if not histogram or len(histogram["edges"]) < 3:
            continue
        edges = histogram["edges"]
        figures.append(
            {
                "id": f"hist-{len(figures)}",
                "figure": {
                    "data": [
                        {
                            "type": "bar",
                            "x": [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)],
                            "y": histogram["counts"],
                            "marker": {"color": "#2f4aa8"},
                        }
                    ],
                    "layout": {"title": {"text": column["name"], "font": {"size": 13}}, "height": 220, "bargap": 0.05},
                },
            }
        )
        if len(figures) == 6:
            break
    return figures


@login_required
def dataset(
    request: HttpRequest, pk, *, recipe_form=None, upload_form=None, import_form=None, settings_form=None, status: int = 200
) -> HttpResponse:
    """A dataset's page; the views behind its forms render it again with their bound form (and 400) on errors."""
    dataset = _dataset_or_404(request, pk)
    versions = list(selectors.versions_visible(request.user, dataset).select_related("recall").order_by("-created_at")[:50])
    latest = next((v for v in versions if v.status == VersionStatus.PUBLISHED), None)
    if latest is not None:
        # Only in memory: the page shows no value of a sensitive column the reader may not unmask.
        latest.profile = masked_profile(latest, request.user)
        rules = dataset.sensitive_columns or {}
        if rules and latest.profile.get("columns"):
            columns = [{**c, "level": rules.get(c.get("name"), {}).get("level")} for c in latest.profile["columns"]]
            latest.profile = {**latest.profile, "columns": columns}
    preview, preview_error = None, ""
    sort, descending = request.GET.get("sort", ""), request.GET.get("desc") == "1"
    if latest is not None:
        try:
            page = int(request.GET.get("page", 1))
        except ValueError:
            page = 1
        try:
            preview = services.version_preview(
                actor=request.user, version=latest, page=page, page_size=25, sort=sort, descending=descending
            )
        except ServiceError as exc:
            preview_error = exc.message
    made_by = policy.visible_to(request.user, Recipe).filter(output_dataset=dataset).select_related("input_dataset").first()
    may_change = policy.can(request.user, "change", dataset)
    recipe_form = recipe_form or RecipeForm()
    lineage = services.dataset_lineage(actor=request.user, dataset=dataset)["edges"]
    context = {
        "recipes": _recipe_rows(request.user, dataset),
        "made_by": made_by,
        "made_by_steps": [describe_step(s) for s in made_by.steps] if made_by else [],
        "recipe_form": recipe_form,
        "recipe_builder": _recipe_builder(request.user, latest) if may_change and latest else None,
        "recipe_errors": getattr(recipe_form, "step_errors", {}),
        "lineage": lineage,
        "lineage_figure": _lineage_figure(request.user, dataset, lineage),
        "preview": preview,
        "preview_error": preview_error,
        "sort": sort,
        "descending": descending,
        "dataset": dataset,
        "versions": versions,
        "latest": latest,
        "figures": _profile_figures(latest) if latest else [],
        "upload_form": upload_form or UploadForm(),
        "retry_form": RetryForm(),
        "may_change": may_change,
        "settings_form": settings_form or (DatasetSettingsForm(dataset=dataset) if may_change else None),
        "may_delete": policy.can(request.user, "delete", dataset),
        "may_classify": policy.can(request.user, "share", dataset),
        "sensitive_columns": dataset.sensitive_columns or {},
        "unmasked": services.may_unmask(request.user, dataset),
        "trash_days": services.TRASH_DAYS,
        "live": any(v.status == VersionStatus.PENDING for v in versions),
        "images": _image_grid(request.user, latest),
        **_import_context(request.user, dataset, import_form),
    }
    if request.htmx:
        return render(request, "datalake/partials/_versions.html", context)
    return render(request, "datalake/dataset.html", context, status=status)


dataset_page = dataset  # called by the form views to show the page again with their errors


def _image_grid(user, latest) -> dict | None:
    """Thumbnails of an image version, a few per class, with the class counts of its profile."""
    if latest is None or latest.format != "images":
        return None
    counts = (latest.profile or {}).get("images", {}).get("classes", {})
    grid = services.version_image_grid(actor=user, version=latest, per_class=IMAGES_PER_CLASS)
    return {"classes": [{"label": label, "count": counts.get(label), "images": images} for label, images in grid.items()]}


IMAGES_PER_CLASS = 12


def _import_context(user, dataset: Dataset, form=None) -> dict:
    db_import = services.database_import_for(user, dataset)
    may_set_up = policy.can(user, "manage", dataset.department)
    if form is None and may_set_up:
        form = DatabaseImportForm(instance=db_import)
    return {"db_import": db_import, "import_form": form, "may_set_up_import": may_set_up}


def _recipe_rows(user, dataset: Dataset) -> list[dict]:
    """The recipes reading this dataset, each with its readable steps and the last run's version (one query)."""
    recipes = list(policy.visible_to(user, Recipe).filter(input_dataset=dataset).select_related("output_dataset"))
    last_runs = {}
    runs = DatasetVersion.objects.filter(dataset__in=[r.output_dataset_id for r in recipes], source="recipe")
    for version in runs.order_by("-created_at").only("dataset_id", "number", "status", "options", "created_at"):
        last_runs.setdefault(str(version.options.get("recipe", "")), version)
    return [{"recipe": r, "steps": [describe_step(s) for s in r.steps], "last_run": last_runs.get(str(r.pk))} for r in recipes]


def _recipe_builder(user, latest) -> dict:
    """The builder's data: the latest version's columns and the datasets a join step may read."""
    columns = [{"name": c["name"], "type": c["type"]} for c in (latest.profile or {}).get("columns", [])]
    usable = selectors.datasets_visible(user, "use").filter(version_count__gt=0).order_by("department__slug", "name")[:200]
    datasets = [
        {"id": str(d.pk), "label": f"{d.name} ({d.department.slug}.{d.slug})", "columns": d.columns_text.splitlines()}
        for d in usable
    ]
    return recipe_builder_config(columns, datasets)


def _lineage_figure(user, dataset: Dataset, edges: list[dict]) -> dict | None:
    """The Plotly lineage graph: recipe names and dataset links limited to what the user may see."""
    via_ids = {e["via"]["id"] for e in edges if e["via"].get("id")}
    recipes = dict(policy.visible_to(user, Recipe).filter(pk__in=[i for i in via_ids if _uuid(i)]).values_list("pk", "name"))
    seen = {n["dataset"] for e in edges for n in (e["from"], e["to"]) if n.get("dataset")}
    return lineage_figure(
        edges,
        dataset_id=str(dataset.pk),
        recipes={str(k): v for k, v in recipes.items()},
        links={d: reverse("datalake:dataset", args=[d]) for d in seen},
        texts={
            "this": _("This dataset"),
            "dataset": _("Other datasets"),
            "hidden": _("Datasets you cannot see"),
            "recipe": _("Recipe"),
            "run": _("Training runs"),
            "model": _("Model versions"),
            "other": _("Other objects"),
            "unknown_recipe": _("a recipe you cannot see"),
        },
    )


@login_required
@require_POST
def upload(request: HttpRequest, pk) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        file = form.cleaned_data["file"]
        try:
            services.dataset_upload(
                actor=request.user, dataset=dataset, stream=file, filename=file.name, options=form.ingest_options()
            )
        except ServiceError as exc:
            form.add_error("file", exc.message)
        else:
            messages.success(request, _("“%(file)s” uploaded; it is being ingested.") % {"file": file.name})
            return redirect("datalake:dataset", dataset.pk)
    return dataset_page(request, dataset.pk, upload_form=form, status=400)


@login_required
@require_POST
def retry(request: HttpRequest, pk, version_pk) -> HttpResponse:
    """Ingest a failed version again, with the encoding and delimiter chosen on its row."""
    dataset = _dataset_or_404(request, pk)
    version = get_object_or_404(selectors.versions_visible(request.user, dataset), pk=version_pk)
    form = RetryForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid encoding and delimiter."))
        return redirect("datalake:dataset", dataset.pk)
    options = {**version.options, **form.ingest_options()}
    try:
        services.version_retry(actor=request.user, version=version, options=options)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The upload is being ingested again."))
    return redirect("datalake:dataset", dataset.pk)


@login_required
def download(request: HttpRequest, pk, version_pk) -> HttpResponse:
    from datalake.api.views import download_response

    dataset = _dataset_or_404(request, pk)
    version = get_object_or_404(selectors.versions_visible(request.user, dataset), pk=version_pk)
    try:
        return download_response(request.user, version, request.GET.get("as", "parquet"))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("datalake:dataset", dataset.pk)


@login_required
def image(request: HttpRequest, pk, version_pk, sha256: str) -> HttpResponse:
    """One image or thumbnail of an image version (immutable: cached by the browser)."""
    dataset = _dataset_or_404(request, pk)
    version = get_object_or_404(selectors.versions_visible(request.user, dataset), pk=version_pk)
    try:
        data, content_type = services.version_image(actor=request.user, version=version, sha256=sha256)
    except ServiceError as exc:
        raise Http404 from exc
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@login_required
@require_POST
def import_save(request: HttpRequest, pk) -> HttpResponse:
    """Set up or change the dataset's database import (maintainers); errors come back on the form."""
    dataset = _dataset_or_404(request, pk)
    current = services.database_import_for(request.user, dataset)
    form = DatabaseImportForm(request.POST, instance=current)
    if form.is_valid():
        values = form.cleaned_data
        password = values.pop("password") or None  # empty: keep the stored one
        if values.pop("clear_password", False):
            password = ""
        try:
            if current is None:
                services.database_import_create(actor=request.user, dataset=dataset, password=password, **values)
            else:
                services.database_import_update(actor=request.user, db_import=current, password=password, **values)
        except ServiceError as exc:
            raise_for_access(exc)
            for field, errors in exc.fields.items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(request, _("The database import is saved."))
            return redirect("datalake:dataset", dataset.pk)
    return dataset_page(request, dataset.pk, import_form=form, status=400)


@login_required
@require_POST
def import_run(request: HttpRequest, pk) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    current = services.database_import_for(request.user, dataset)
    if current is None:
        raise Http404
    try:
        services.database_import_run(actor=request.user, db_import=current)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The import is running; the new version appears here when it is published."))
    return redirect("datalake:dataset", dataset.pk)


@login_required
@require_POST
def import_delete(request: HttpRequest, pk) -> HttpResponse:
    dataset = _dataset_or_404(request, pk)
    current = services.database_import_for(request.user, dataset)
    if current is None:
        raise Http404
    try:
        services.database_import_delete(actor=request.user, db_import=current)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The database import is removed; the versions it made stay."))
    return redirect("datalake:dataset", dataset.pk)


@login_required
@require_POST
def dataset_settings(request: HttpRequest, pk) -> HttpResponse:
    """Change name, description, tags, discoverability and checks (members); errors come back on the form."""
    dataset = _dataset_or_404(request, pk)
    if not policy.can(request.user, "change", dataset):
        raise PermissionDenied
    form = DatasetSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.dataset_update(actor=request.user, dataset=dataset, **form.cleaned_data)
        except ServiceError as exc:
            raise_for_access(exc)
            for field, errors in exc.fields.items():
                name, _dot, rest = field.partition(".")
                if name == "checks" and rest:  # checks.<index>.<key>: name the check by its position
                    index, _dot, key = rest.partition(".")
                    errors = [
                        _("Check %(number)s (%(field)s): %(message)s") % {"number": int(index) + 1, "field": key, "message": e}
                        for e in errors
                    ]
                form.add_error(name if name in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(request, _("The dataset's settings are saved."))
            return redirect("datalake:dataset", dataset.pk)
    return dataset_page(request, dataset.pk, settings_form=form, status=400)


@login_required
@require_POST
def dataset_trash(request: HttpRequest, pk) -> HttpResponse:
    """Move the dataset to the trash (maintainers); it can be restored from the trash page for 30 days."""
    dataset = _dataset_or_404(request, pk)
    try:
        services.dataset_delete(actor=request.user, dataset=dataset)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
        return redirect("datalake:dataset", dataset.pk)
    messages.success(
        request,
        _("“%(name)s” is in the trash; restore it from the trash within %(days)s days.")
        % {"name": dataset.name, "days": services.TRASH_DAYS},
    )
    return redirect("datalake:trash")


@login_required
def trash(request: HttpRequest) -> HttpResponse:
    """Datasets in the trash the user may see, with the day each is purged; restore and purge buttons by role."""
    rows = []
    for dataset in selectors.datasets_visible(request.user, trash=True).order_by("-deleted_at")[:500]:
        rows.append(
            {
                "dataset": dataset,
                "purge_on": dataset.deleted_at + timedelta(days=services.TRASH_DAYS),
                "may_restore": policy.can(request.user, "delete", dataset),
                "may_purge": policy.can(request.user, "administer", dataset.department),
            }
        )
    return render(request, "datalake/trash.html", {"rows": rows, "days": services.TRASH_DAYS})


def _trashed_or_404(request, pk) -> Dataset:
    return get_object_or_404(selectors.datasets_visible(request.user, trash=True), pk=pk)


@login_required
@require_POST
def trash_restore(request: HttpRequest, pk) -> HttpResponse:
    dataset = _trashed_or_404(request, pk)
    try:
        services.dataset_restore(actor=request.user, dataset=dataset)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
        return redirect("datalake:trash")
    messages.success(request, _("“%(name)s” is restored.") % {"name": dataset.name})
    return redirect("datalake:dataset", dataset.pk)


@login_required
@require_POST
def trash_purge(request: HttpRequest, pk) -> HttpResponse:
    dataset = _trashed_or_404(request, pk)
    try:
        services.dataset_purge(actor=request.user, dataset=dataset)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("“%(name)s” is deleted for good, with its stored files.") % {"name": dataset.name})
    return redirect("datalake:trash")


SQL_ROWS_SHOWN = 10_000


def _sql_page(request: HttpRequest, *, sql: str, result=None, error: str = "", save_form=None, status: int = 200):
    tables = {name: list(source.columns.values()) for name, source in sorted(services.sql_tables(request.user).items())}
    if not sql and tables:
        sql = f"SELECT * FROM {next(iter(tables))} LIMIT 100"
    departments = policy.departments_for(request.user, "submit").order_by("name")
    context = {
        "tables": tables,
        "sql": sql,
        "result": result,
        "error": error,
        "saved": policy.visible_to(request.user, SavedQuery).select_related("department", "created_by").order_by("name"),
        "save_form": save_form or SavedQueryForm(departments=departments, initial={"department": current_department(request)}),
        "may_save": departments.exists(),
        "rows_shown": SQL_ROWS_SHOWN,
    }
    return render(request, "datalake/sql.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def sql_console(request: HttpRequest) -> HttpResponse:
    """Read-only SQL over the datasets the user may see; saved queries and the views are listed beside the editor."""
    sql = request.POST.get("sql", "")
    if request.method == "GET" and request.GET.get("query"):
        saved = (
            policy.visible_to(request.user, SavedQuery).filter(pk=request.GET["query"]).first()
            if _uuid(request.GET["query"])
            else None
        )
        if saved is None:
            raise Http404
        sql = saved.sql
    if request.method != "POST":
        return _sql_page(request, sql=sql)
    try:
        result = services.sql_run(actor=request.user, sql=sql, row_cap=SQL_ROWS_SHOWN)
    except ServiceError as exc:
        return _sql_page(request, sql=sql, error=exc.message, status=400)
    return _sql_page(request, sql=sql, result=result)


def _uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@login_required
@require_POST
def sql_export(request: HttpRequest) -> HttpResponse:
    """The whole result of the query in the editor as a CSV download; errors come back on the console."""
    from datalake.api.views import sql_export_response

    sql = request.POST.get("sql", "")
    try:
        return sql_export_response(request.user, sql)
    except ServiceError as exc:
        return _sql_page(request, sql=sql, error=exc.message, status=400)


@login_required
@require_POST
def sql_save(request: HttpRequest) -> HttpResponse:
    """Save the query in the editor for a department; a taken name or bad SQL is a form error."""
    departments = policy.departments_for(request.user, "submit").order_by("name")
    form = SavedQueryForm(request.POST, departments=departments)
    sql = request.POST.get("sql", "")
    if form.is_valid():
        try:
            query = services.saved_query_create(actor=request.user, sql=sql, **form.cleaned_data)
        except ServiceError as exc:
            for field, errors in exc.fields.items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("Query “%(name)s” saved for %(department)s.") % {"name": query.name, "department": query.department.name},
            )
            return redirect(f"{reverse('datalake:sql')}?query={query.pk}")
    return _sql_page(request, sql=sql, save_form=form, error=" ".join(form.errors.get("sql", [])), status=400)


@login_required
@require_POST
def sql_query_delete(request: HttpRequest, pk) -> HttpResponse:
    query = get_object_or_404(policy.visible_to(request.user, SavedQuery), pk=pk)
    try:
        services.saved_query_delete(actor=request.user, query=query)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Query “%(name)s” deleted.") % {"name": query.name})
    return redirect("datalake:sql")


def _recipe_errors(exc: ServiceError) -> list[tuple[int | None, str | None, str]]:
    """(step index or None, form field, line) for each error of a service error; step lines read "Step 3 (columns): …"."""
    found = []
    for key, errors in exc.fields.items():
        parts = str(key).split(".")
        for error in errors:
            if parts[0] == "steps" and len(parts) > 1 and parts[1].isdigit():
                number = int(parts[1])
                line = _("Step %(number)s (%(field)s): %(message)s") % {
                    "number": number + 1,
                    "field": ".".join(parts[2:]) or "op",
                    "message": error,
                }
                found.append((number, "steps", line))
            else:
                found.append((None, parts[0] if parts[0] in ("name", "steps", "joins") else None, str(error)))
    return found or [(None, None, exc.message)]


@login_required
@require_POST
def recipe_create(request: HttpRequest, pk) -> HttpResponse:
    """Save a recipe built on this dataset's page; errors come back on the page (400) naming the step and field."""
    source = _dataset_or_404(request, pk)
    form = RecipeForm(request.POST)
    if form.is_valid():
        try:
            recipe = services.recipe_create(
                actor=request.user,
                input_dataset=source,
                name=form.cleaned_data["name"],
                steps=form.cleaned_data["steps"],
                joins=form.cleaned_data["joins"],
            )
        except ServiceError as exc:
            raise_for_access(exc)
            form.step_errors = {}
            for number, field, line in _recipe_errors(exc):
                if number is not None:
                    form.step_errors.setdefault(number, []).append(line)
                form.add_error(field, line)
        else:
            messages.success(
                request,
                _("Recipe “%(name)s” saved; run it to publish %(output)s.")
                % {"name": recipe.name, "output": recipe.output_dataset.name},
            )
            return redirect("datalake:dataset", source.pk)
    return dataset(request, source.pk, recipe_form=form, status=400)


@login_required
@require_POST
def recipe_preview(request: HttpRequest, pk) -> HttpResponse:
    """The builder's steps applied to the first rows of this dataset (nothing is saved), as a fragment."""
    source = _dataset_or_404(request, pk)
    form = RecipeStepsForm(request.POST)
    result, errors = None, []
    if form.is_valid():
        # recipe_preview asks the policy about the recipe's department: an unsaved recipe answers the same.
        draft = Recipe(
            department=source.department,
            input_dataset=source,
            output_dataset=source,
            joins=form.cleaned_data["joins"],
            steps=[],
        )
        try:
            result = services.recipe_preview(actor=request.user, recipe=draft, steps=form.cleaned_data["steps"])
        except ServiceError as exc:
            raise_for_access(exc)
            errors = [line for _number, _field, line in _recipe_errors(exc)]
    else:
        errors = [e for field_errors in form.errors.values() for e in field_errors]
    context = {"result": result, "errors": errors}
    if result is not None:
        steps = form.cleaned_data["steps"]
        context["columns"] = list(zip(result["preview"]["columns"], result["preview"]["types"], strict=False))
        context["parameters"] = [
            {"number": i + 1, "step": describe_step(step) if isinstance(step, dict) else "", "values": _flatten(params)}
            for i, (step, params) in enumerate(zip(steps, result["parameters"], strict=False))
            if params
        ]
    # base.html's htmx config does not swap 4xx answers, so the fragment with its errors comes back as 200 to htmx.
    status = 200 if result is not None or request.htmx else 400
    return render(request, "datalake/partials/_recipe_preview.html", context, status=status)


def _flatten(value, path: str = "") -> list[str]:
    """'columns › 温度 › mean: 70.25' lines of a step's reported parameters."""
    if isinstance(value, dict):
        lines = []
        for key, inner in value.items():
            lines += _flatten(inner, f"{path} › {key}" if path else str(key))
        return lines
    if isinstance(value, float):
        value = f"{value:.6g}"
    return [f"{path}: {value}" if path else str(value)]


@login_required
@require_POST
def recipe_run(request: HttpRequest, pk) -> HttpResponse:
    """Run a recipe on its input's latest version; the output's page shows the job's progress."""
    recipe = get_object_or_404(policy.visible_to(request.user, Recipe), pk=pk)
    try:
        services.recipe_run(actor=request.user, recipe=recipe)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("datalake:dataset", recipe.input_dataset_id)
    messages.success(request, _("The recipe is running; the new version appears here when it is published."))
    return redirect("datalake:dataset", recipe.output_dataset_id)


# --- recalls ---------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def version_recall(request: HttpRequest, pk, version_pk) -> HttpResponse:
    """Recall a published version (maintainers): the form shows what it will flag downstream."""
    from datalake.forms import RecallForm
    from datalake.services import recalls

    dataset = _dataset_or_404(request, pk)
    version = get_object_or_404(selectors.versions_visible(request.user, dataset), pk=version_pk)
    if not policy.can(request.user, "delete", dataset):
        raise PermissionDenied
    form = RecallForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                recall = recalls.version_recall(actor=request.user, version=version, **form.cleaned_data)
            except ServiceError as exc:
                raise_for_access(exc)
                for field, errors in exc.fields.items():
                    form.add_error(field if field in form.fields else None, errors)
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    _("%(version)s is recalled; %(n)d objects downstream are flagged and their departments told.")
                    % {"version": version, "n": recall.impacts.count()},
                )
                return redirect("datalake:recalls")
        status = 400
    affected = recalls.downstream(version)
    context = {"dataset": dataset, "version": version, "form": form, "affected": len(affected)}
    return render(request, "datalake/recall.html", context, status=status)


@login_required
def recalls_list(request: HttpRequest) -> HttpResponse:
    """Recalls of the user's departments' data or touching what they own, with what each flagged."""
    from datalake.services import recalls

    rows = (
        recalls.visible_recalls(request.user)
        .select_related("version__dataset__department", "created_by")
        .prefetch_related("impacts__department", "impacts__acknowledged_by")[:200]
    )
    roles = policy.user_roles(request.user)
    may_acknowledge = {pk for pk, role in roles.items() if role in ("maintainer", "admin")}
    return render(
        request,
        "datalake/recalls.html",
        {"recalls": rows, "may_acknowledge": may_acknowledge, "is_superuser": request.user.is_superuser},
    )


@login_required
@require_POST
def recall_acknowledge(request: HttpRequest, pk) -> HttpResponse:
    from datalake.services import recalls

    impact = get_object_or_404(recalls.visible_impacts(request.user), pk=pk)
    try:
        recalls.impact_acknowledge(actor=request.user, impact=impact)
    except ServiceError as exc:
        raise_for_access(exc)
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Acknowledged: %(label)s.") % {"label": impact.label})
    return redirect("datalake:recalls")


@login_required
@require_http_methods(["GET", "POST"])
def dataset_columns(request: HttpRequest, pk) -> HttpResponse:
    """Classify the columns of a dataset as public, personal or confidential (maintainers)."""
    dataset = _dataset_or_404(request, pk)
    if not policy.can(request.user, "share", dataset):
        raise PermissionDenied
    latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
    names = [c["name"] for c in (latest.schema if latest else [])]
    form = ColumnClassificationForm(request.POST or None, columns=names, rules=dataset.sensitive_columns or {})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.columns_classify(actor=request.user, dataset=dataset, columns=form.columns())
            except ServiceError as exc:
                raise_for_access(exc)
                for field, errors in exc.fields.items():
                    name = field.partition(".")[2]
                    form.add_error(f"level-{name}" if f"level-{name}" in form.fields else None, errors)
                if not exc.fields:
                    form.add_error(None, exc.message)
            else:
                messages.success(request, _("The classification of the columns is saved."))
                return redirect("datalake:dataset", dataset.pk)
        status = 400
    context = {"dataset": dataset, "latest": latest, "form": form}
    return render(request, "datalake/columns.html", context, status=status)
