"""Job kinds of the data lake."""

from rest_framework import serializers

from lepton.jobs.registry import JobError, job_kind


class IngestParams(serializers.Serializer):
    version = serializers.UUIDField()


@job_kind("datalake.ingest", params=IngestParams, time_limit=3 * 3600, label="Ingest a dataset version")
def ingest_version(ctx, params):
    """Convert, profile, check and publish one uploaded version (datalake.services.version_ingest)."""
    from datalake.models import VersionStatus
    from datalake.services import version_ingest

    def progress(percent, message):
        ctx.check_cancelled()
        ctx.progress(percent, message)

    version = version_ingest(params["version"], progress=progress)
    if version.status == VersionStatus.FAILED:
        raise JobError(version.error_message)
    ctx.log(f"Published {version} with {version.row_count} rows.")
    return {
        "version": str(version.pk),
        "number": version.number,
        "rows": version.row_count,
        "result_ref": f"datalake.datasetversion:{version.pk}",
    }


class RecipeRunParams(serializers.Serializer):
    version = serializers.UUIDField()


@job_kind("datalake.recipe", params=RecipeRunParams, time_limit=3 * 3600, label="Run a preparation recipe")
def run_recipe(ctx, params):
    """Apply a recipe and publish the output version (datalake.services.recipe_execute)."""
    from datalake.models import VersionStatus
    from datalake.services import recipe_execute

    def progress(percent, message):
        ctx.check_cancelled()
        ctx.progress(percent, message)

    version = recipe_execute(params["version"], progress=progress)
    if version.status == VersionStatus.FAILED:
        raise JobError(version.error_message)
    ctx.log(f"Published {version} with {version.row_count} rows.")
    return {
        "version": str(version.pk),
        "number": version.number,
        "rows": version.row_count,
        "result_ref": f"datalake.datasetversion:{version.pk}",
    }
