"""Job kinds of the data lake: each publishes one dataset version (or fails it with its reason)."""

import errno

from django.utils.translation import gettext as _
from rest_framework import serializers

from lepton.jobs.registry import JobError, job_kind


class VersionParams(serializers.Serializer):
    version = serializers.UUIDField()


def _publish(ctx, version_id, execute) -> dict:
    """Run `execute(version_id, progress=…)` (a service) and report the published version.

    A run that ends without publishing fails its version with the reason (the raw upload is kept
    for a retry), unless the job will be tried again: a transient error with attempts left, or
    a killed worker (the reaper requeues the job and the version waits, still pending).
    """
    from datalake.services import version_abandon
    from lepton.jobs.registry import JobCancelled, JobTimedOut
    from lepton.jobs.runner import TRANSIENT_ERRORS

    def progress(percent, message):
        ctx.check_cancelled()
        ctx.progress(percent, message)

    try:
        version = execute(version_id, progress=progress)
    except JobCancelled:
        version_abandon(version_id, _("The job was cancelled; nothing was published. Retry to ingest again."))
        raise
    except JobTimedOut:
        version_abandon(
            version_id,
            _("The job passed its time limit of %(seconds)s s; nothing was published.") % {"seconds": f"{ctx.time_limit:.0f}"},
        )
        raise
    except TRANSIENT_ERRORS:
        if ctx.attempt >= ctx.job.max_attempts:
            version_abandon(version_id, _("The job kept failing on a transient error; nothing was published. Retry later."))
        raise
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            version_abandon(version_id, _failed(exc))
            raise
        message = _("The worker ran out of disk space; nothing was published and the upload is kept. Retry once space is free.")
        version_abandon(version_id, message)
        raise JobError(message) from exc
    except Exception as exc:
        version_abandon(version_id, _failed(exc))
        raise
    return _outcome(ctx, version)


def _failed(exc: Exception) -> str:
    # The job runs in the language of the person who asked (lepton.jobs.runner): the reason is stored in it.
    return _("The job failed (%(error)s); nothing was published.") % {"error": f"{type(exc).__name__}: {exc}"}


def _outcome(ctx, version) -> dict:
    from datalake.models import VersionStatus

    if version is None:  # a database import whose rows had not changed
        ctx.log(_("The rows are identical to the latest version: nothing new was published."))
        return {"version": None, "unchanged": True}
    if version.status == VersionStatus.FAILED:
        raise JobError(version.error_message)
    ctx.log(_("Published %(version)s with %(rows)s rows.") % {"version": version, "rows": version.row_count})
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


@job_kind("datalake.import", params=VersionParams, time_limit=3 * 3600, label="Import from a database")
def run_import(ctx, params):
    """Read a database import's rows and publish them unless unchanged (datalake.services.import_execute)."""
    from datalake.services import import_execute

    return _publish(ctx, params["version"], import_execute)
