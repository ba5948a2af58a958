"""Preparation recipes: save, preview on a sample, run as a job that publishes a version with lineage."""

from __future__ import annotations

import os
import tempfile

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from datalake import selectors
from datalake.engine.profile import _jsonable
from datalake.models import Dataset, DatasetVersion, Recipe, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.i18n import translated
from lepton.jobs.services import job_submit

from .datasets import dataset_create, lineage_add
from .sensitive import inherit_classification, readable_parquet
from .versions import version_fail, version_finish

RECIPE_KIND = "datalake.recipe"


def _latest_published(dataset: Dataset) -> DatasetVersion | None:
    return dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()


def _columns_of(version: DatasetVersion) -> dict[str, str]:
    return {c["name"]: c["type"] for c in version.profile.get("columns", [])}


def _recipe_inputs(actor, input_dataset: Dataset, joins: dict) -> tuple[DatasetVersion, dict[str, DatasetVersion]]:
    """The latest published versions the recipe reads; the actor must be allowed to use each dataset."""
    datasets = {"input": input_dataset}
    if not isinstance(joins, dict):
        raise Invalid(_("joins must map a key to a dataset id."), fields={"joins": [_("Map keys to dataset ids.")]})
    for key, dataset_id in joins.items():
        joined = selectors.datasets_visible(actor, "use").filter(pk=str(dataset_id)).first() if _is_uuid(dataset_id) else None
        if joined is None:
            message = _("No dataset %(id)s that you may use.") % {"id": dataset_id}
            raise Invalid(message, fields={f"joins.{key}": [message]})
        datasets[str(key)] = joined
    versions = {}
    for key, dataset in datasets.items():
        if not policy.can(actor, "use", dataset):
            raise (
                NotFound()
                if not policy.can(actor, "view", dataset)
                else Forbidden(_("Your role does not allow using this dataset."))
            )
        version = _latest_published(dataset)
        if version is None:
            message = _("%(dataset)s has no published version yet.") % {"dataset": dataset.name}
            raise Invalid(message, fields={"input" if key == "input" else f"joins.{key}": [message]}, code="no_published_version")
        versions[key] = version
    return versions.pop("input"), versions


def _is_uuid(value) -> bool:
    import uuid as uuid_module

    try:
        uuid_module.UUID(str(value))
    except ValueError:
        return False
    return True


def _validate_steps(steps, main: DatasetVersion, joined: dict[str, DatasetVersion]) -> list[dict]:
    from datalake.engine.recipes import RecipeError, validate_recipe

    if not isinstance(steps, list) or not steps:
        raise Invalid(_("A recipe needs at least one step."), fields={"steps": [_("Add at least one step.")]})
    try:
        return validate_recipe(steps, _columns_of(main), inputs={k: _columns_of(v) for k, v in joined.items()})
    except RecipeError as exc:
        raise _invalid_recipe(exc) from None


def _invalid_recipe(exc) -> Invalid:
    """A RecipeError (the engine's English Phrase) as a 400 in the request's language, on the step's field."""
    key = "steps" if exc.step_index is None else f"steps.{exc.step_index}.{exc.field}"
    return Invalid(translated(exc.explained), fields={key: [translated(exc.message)]}, code="invalid_recipe")


def recipe_create(
    *, actor, input_dataset: Dataset, name: str, steps: list, joins: dict | None = None, output_name: str = ""
) -> Recipe:
    """Save a recipe in the input's department, with a new output dataset (members who may use the input)."""
    joins = joins or {}
    department = input_dataset.department
    if not policy.can(actor, "submit", department):
        raise NotFound() if not policy.can(actor, "view", department) else Forbidden(_("Members and above may create recipes."))
    name = (name or "").strip()
    if not name:
        raise Invalid(_("A recipe needs a name."), fields={"name": [_("A recipe needs a name.")]})
    main, joined = _recipe_inputs(actor, input_dataset, joins)
    cleaned = _validate_steps(steps, main, joined)
    with transaction.atomic():
        output = dataset_create(
            actor=actor,
            department=department,
            name=output_name or f"{input_dataset.name} ({name})",
            description=_("Prepared from %(input)s by the recipe “%(recipe)s”.") % {"input": input_dataset.name, "recipe": name},
        )
        recipe = Recipe.objects.create(
            department=department,
            name=name,
            input_dataset=input_dataset,
            output_dataset=output,
            joins={k: str(v) for k, v in joins.items()},
            steps=cleaned,
            created_by=actor,
        )
        audit.record(actor=actor, action="recipe.create", obj=recipe, changes={"name": name, "steps": len(cleaned)})
    return recipe


def recipe_preview(*, actor, recipe: Recipe, steps: list | None = None, sample_rows: int = 1000) -> dict:
    """Apply the (possibly edited) steps to the first rows of the inputs; nothing is stored."""
    from datalake.engine.preview import preview
    from datalake.engine.recipes import RecipeError, apply_recipe

    policy.require(actor, "view", recipe)
    main, joined = _recipe_inputs(actor, recipe.input_dataset, recipe.joins)
    cleaned = _validate_steps(steps if steps is not None else recipe.steps, main, joined)
    with tempfile.TemporaryDirectory(prefix="lepton-recipe-") as folder:
        inputs = {"input": _source(main, actor, folder), **{k: _source(v, actor, folder) for k, v in joined.items()}}
        out = os.path.join(folder, "preview.parquet")
        try:
            result = apply_recipe(cleaned, inputs, out, sample_rows=sample_rows, timeout_s=60)
        except RecipeError as exc:
            raise _invalid_recipe(exc) from None
        page = preview(out, names=result.names, page_size=50).as_dict()
    return {"rows": result.rows, "parameters": _jsonable(result.parameters), "preview": page}


def _source(version: DatasetVersion, actor, folder: str, *, check_access: bool = True) -> tuple[str, dict[str, str]]:
    """An input's Parquet and names through the one read path: masked unless the actor may unmask."""
    with readable_parquet(version, actor, purpose="recipe", check_access=check_access, folder=folder) as readable:
        return readable.path, readable.names


def recipe_run(*, actor, recipe: Recipe) -> DatasetVersion:
    """Queue a run on the inputs' latest published versions; the output version is pending until it publishes."""
    policy.require(actor, "change", recipe)
    main, joined = _recipe_inputs(actor, recipe.input_dataset, recipe.joins)
    _validate_steps(recipe.steps, main, joined)
    with transaction.atomic():
        version = DatasetVersion.objects.create(
            dataset=recipe.output_dataset,
            source="recipe",
            created_by=actor,
            options={"recipe": str(recipe.pk), "inputs": {"input": str(main.pk), **{k: str(v.pk) for k, v in joined.items()}}},
        )
        job = job_submit(
            actor=actor, department=recipe.department, kind=RECIPE_KIND, params={"version": str(version.pk)}, user_request=False
        )
        version.job = job
        version.save(update_fields=["job"])
        audit.record(
            actor=actor, action="recipe.run", obj=recipe, changes={"input": f"v{main.number}", "version": str(version.pk)}
        )
    return version


def recipe_execute(version_id, *, progress=lambda pct, msg: None) -> DatasetVersion:
    """Run a queued recipe version: apply the steps, profile, check, publish with lineage (idempotent)."""
    from datalake.engine.recipes import RecipeError, apply_recipe

    version = DatasetVersion.objects.select_related("dataset__department").get(pk=version_id)
    if version.status != VersionStatus.PENDING:
        return version
    recipe = Recipe.objects.filter(pk=version.options["recipe"]).first()
    inputs = {k: DatasetVersion.objects.filter(pk=v).first() for k, v in version.options["inputs"].items()}
    if recipe is None or None in inputs.values():
        return version_fail(version, _("The recipe or one of its inputs was deleted before this run started."), {})
    with tempfile.TemporaryDirectory(prefix="lepton-recipe-") as folder:
        out = os.path.join(folder, "output.parquet")
        progress(10, _("Applying the recipe"))
        try:
            # Read as the person who ran it (their access was checked when they asked for the run).
            sources = {k: _source(v, version.created_by, folder, check_access=False) for k, v in inputs.items()}
        except (Conflict, NotFound) as exc:
            return version_fail(version, exc.message, {"code": exc.code or "unreadable"})
        try:
            result = apply_recipe(
                recipe.steps,
                sources,
                out,
                timeout_s=settings.LEPTON_RECIPE_TIMEOUT_SECONDS,
            )
        except RecipeError as exc:
            return version_fail(version, exc.explained, {"code": "invalid_recipe"})
        inherit_classification(version, inputs.values(), [c.get("name") for c in result.columns])
        report = {
            "format": "recipe",
            "rows": result.rows,
            "columns": result.columns,
            "parameters": _jsonable(result.parameters),
            "recipe": str(recipe.pk),
            "steps": len(recipe.steps),
        }

        def lineage(published):
            for source in inputs.values():
                lineage_add(from_obj=source, to_obj=published, via=recipe)

        return version_finish(version, out, names=result.names, report=report, progress=progress, after_publish=lineage)
