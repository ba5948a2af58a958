"""Job kinds of the data lake: both publish one dataset version (or fail it with its reason)."""

from rest_framework import serializers

from lepton.jobs.registry import JobError, job_kind


class VersionParams(serializers.Serializer):
    version = serializers.UUIDField()


def _publish(ctx, version_id, execute) -> dict:
    """Run `execute(version_id, progress=…)` (a service) and report the published version."""
    from datalake.models import VersionStatus

    def progress(percent, message):
        ctx.check_cancelled()
        ctx.progress(percent, message)

    version = execute(version_id, progress=progress)
    if version.status == VersionStatus.FAILED:
        raise JobError(version.error_message)
    ctx.log(f"Published {version} with {version.row_count} rows.")
    return {
        "version": str(version.pk),
        "number": version.number,
        "rows": version.row_count,
        "result_ref": f"datalake.datasetversion:{version.pk}",
    }


@job_kind("datalake.ingest", params=VersionParams, time_limit=3 * 3600, label="Ingest a dataset version")
def ingest_version(ctx, params):
    """Convert, profile, check and publish one uploaded version (datalake.services.version_ingest)."""
    from datalake.services import version_ingest

    return _publish(ctx, params["version"], version_ingest)


@job_kind("datalake.recipe", params=VersionParams, time_limit=3 * 3600, label="Run a preparation recipe")
def run_recipe(ctx, params):
    """Apply a recipe and publish the output version (datalake.services.recipe_execute)."""
    from datalake.services import recipe_execute

    return _publish(ctx, params["version"], recipe_execute)
