"""Versions: uploads (whole or resumable), ingest, publication and failure of dataset versions."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake.engine.checks import CheckSpecError, blocking_failures, run_checks
from datalake.engine.profile import _jsonable, profile_parquet
from datalake.engine.sensitive import DataKeyError
from datalake.models import Dataset, DatasetVersion, QualityStatus, UploadSession, VersionBlob, VersionStatus
from lepton import audit, policy
from lepton.collab.services import watchers_notify
from lepton.errors import Conflict, Invalid, NotFound
from lepton.i18n import translated_all
from lepton.jobs.services import job_submit
from lepton.models import Department
from lepton.storage import get_storage

from .datasets import blobs_in_use, department_storage_used
from .sensitive import drop_unneeded, encrypt_for_storage, require_data_key

INGEST_KIND = "datalake.ingest"
# Ingest options a person may set (datalake.engine.types.IngestOptions has more, for the platform).
USER_OPTIONS = ("format", "encoding", "delimiter", "quote_char", "header", "sheet", "skip_bad_lines", "skip_bad_files")
# Options of image zips (datalake.engine.images.ImageOptions); the rest are for tables.
IMAGE_OPTIONS = ("skip_bad_files",)


def dataset_upload(*, actor, dataset: Dataset, stream: BinaryIO, filename: str, options: dict | None = None) -> DatasetVersion:
    """Store the uploaded bytes (streamed, content-addressed) and queue their ingest as a new version.

    Identical bytes to an existing version are refused with its number; an upload that would
    exceed the department's storage quota is refused before anything is kept.
    """
    policy.require(actor, "change", dataset)
    if dataset.is_deleted:
        raise Conflict(_("The dataset is in the trash; restore it first."), code="dataset_deleted")
    # Refused before a byte is kept: a classified dataset's rows are never stored without the key.
    require_data_key(dataset, _("Uploading into a dataset with sensitive columns"))
    blob = get_storage().put_stream(stream)
    try:
        return _create_pending_version(actor, dataset, blob, filename, options)
    except Exception:
        # Refused or failed: keep nothing, unless another version holds the same bytes.
        if not blobs_in_use([blob.sha256]):
            get_storage().delete(blob.sha256)
        raise


def _check_options(options) -> None:
    if options is not None and not isinstance(options, dict):
        raise Invalid(_("Options must be an object."), fields={"options": [_("Options must be an object.")]})
    unknown = set(options or {}) - set(USER_OPTIONS)
    if unknown:
        message = _("Unknown ingest options: %(names)s; use %(known)s.") % {
            "names": ", ".join(sorted(unknown)),
            "known": ", ".join(USER_OPTIONS),
        }
        raise Invalid(message, fields={"options": [message]})


def _create_pending_version(actor, dataset: Dataset, blob, filename: str, options: dict | None) -> DatasetVersion:
    _check_size(blob.size or 1, field="file")
    if blob.size == 0:
        raise Invalid(_("The file is empty."), fields={"file": [_("The file is empty.")]}, code="empty_file")
    _check_options(options)
    with transaction.atomic():
        same = dataset.versions.filter(raw_sha256=blob.sha256).exclude(status=VersionStatus.FAILED).first()
        if same is not None:
            label = f"v{same.number}" if same.number else _("a version being ingested")
            message = _("These bytes are identical to %(version)s; nothing new was created.") % {"version": label}
            raise Conflict(message, fields={"file": [message]}, code="duplicate_upload")
        department = Department.objects.select_for_update().get(pk=dataset.department_id)
        used = department_storage_used(department)
        if used + blob.size > department.storage_bytes_quota:
            message = _(
                "This upload (%(size)s bytes) would pass %(department)s's storage quota (%(used)s of %(quota)s bytes used)."
            ) % {"size": blob.size, "department": department.name, "used": used, "quota": department.storage_bytes_quota}
            raise Invalid(message, fields={"file": [message]}, code="quota_exceeded")
        version = DatasetVersion.objects.create(
            dataset=dataset,
            original_filename=os.path.basename(filename or "upload")[:255],
            raw_sha256=blob.sha256,
            raw_bytes=blob.size,
            options=options or {},
            created_by=actor,
        )
        job = job_submit(
            actor=actor, department=department, kind=INGEST_KIND, params={"version": str(version.pk)}, user_request=False
        )
        version.job = job
        version.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="dataset.upload",
            obj=dataset,
            changes={"version": str(version.pk), "file": version.original_filename, "bytes": blob.size},
        )
    return version


def version_retry(*, actor, version: DatasetVersion, options: dict | None = None) -> DatasetVersion:
    """Ingest a failed version's kept upload again, optionally with other options (e.g. an encoding)."""
    policy.require(actor, "change", version.dataset)
    _check_options(options)
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().select_related("dataset__department").get(pk=version.pk)
        if version.status != VersionStatus.FAILED:
            raise Conflict(
                _("Only a failed version can be retried; this one is %(status)s.") % {"status": version.status},
                code="version_not_failed",
            )
        if options is not None:
            version.options = options
        job = job_submit(
            actor=actor,
            department=version.dataset.department,
            kind=INGEST_KIND,
            params={"version": str(version.pk)},
            user_request=False,
        )
        version.status, version.error_message, version.check_results, version.job = VersionStatus.PENDING, "", [], job
        version.save(update_fields=["options", "status", "error_message", "check_results", "job"])
        audit.record(
            actor=actor,
            action="dataset.retry",
            obj=version.dataset,
            changes={"version": str(version.pk), "options": version.options},
        )
    return version


def version_ingest(version_id, *, progress=lambda pct, msg: None) -> DatasetVersion:
    """Run the engine on a pending version and publish it, or mark it failed with the reasons.

    Idempotent: a version that is already published or failed is returned unchanged, so a job
    re-run after a lost worker does no harm. Files are written to temporary paths first; the
    version row changes only once, at the end, in one transaction.
    """
    from datalake.engine.ingest import IngestError, IngestOptions, ingest

    version = DatasetVersion.objects.select_related("dataset__department").get(pk=version_id)
    if version.status != VersionStatus.PENDING:
        return version
    storage = get_storage()
    workdir = tempfile.mkdtemp(prefix="lepton-ingest-")
    try:
        raw_path = os.path.join(workdir, os.path.basename(version.original_filename) or "upload")
        with open(raw_path, "wb") as out:
            storage.copy_to(version.raw_sha256, out)
        progress(10, _("Converting to Parquet"))
        parquet_path = os.path.join(workdir, "data.parquet")

        def converting(done: int, total: int) -> None:
            progress(10 + int(50 * done / total) if total else 10, _("Converting to Parquet"))

        chosen = version.options.get("format")
        if chosen == "images" or (chosen is None and _is_image_zip(raw_path)):
            return _ingest_images(version, raw_path, workdir, progress)
        user_options = {k: v for k, v in version.options.items() if k in USER_OPTIONS and k not in IMAGE_OPTIONS}
        try:
            result = ingest(raw_path, parquet_path, IngestOptions(**user_options, temp_dir=workdir, progress=converting))
        except IngestError as exc:
            return version_fail(version, exc.message, {"code": exc.code, "details": exc.details})
        # Profiles and checks speak the original column names (the Parquet stores safe identifiers).
        names = {c.identifier: c.name for c in result.columns}
        return version_finish(version, parquet_path, names=names, report=_jsonable(dataclasses.asdict(result)), progress=progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _is_image_zip(path: str) -> bool:
    from datalake.engine.images import is_image_archive

    return is_image_archive(path)


def _ingest_images(version: DatasetVersion, raw_path: str, workdir: str, progress) -> DatasetVersion:
    """An image zip: each image (and a thumbnail) stored as a blob, a Parquet manifest as the version's table.

    Blobs this run stored are removed again when the version fails, unless another version uses them.
    """
    from datalake.engine.errors import IngestError
    from datalake.engine.images import ImageOptions, ingest_images

    storage = get_storage()
    stored: list[str] = []

    def put_blob(data: bytes) -> str:
        sha = storage.put_bytes(data).sha256
        stored.append(sha)
        return sha

    def reading(done: int, total: int) -> None:
        progress(10 + int(50 * done / total) if total else 10, _("Storing images"))

    manifest = os.path.join(workdir, "manifest.parquet")
    options = ImageOptions(skip_bad_files=bool(version.options.get("skip_bad_files")), progress=reading)
    try:
        result = ingest_images(raw_path, manifest, put_blob, options)
    except IngestError as exc:
        _drop_unused(stored)
        return version_fail(version, exc.message, {"code": exc.code, "details": exc.details, "format": "images"})
    report = _jsonable(dataclasses.asdict(result))
    images = {key: report.pop(key) for key in ("classes", "sizes", "modes", "formats")}
    images["skipped_count"] = report.get("skipped_count", 0)
    blobs = report.pop("blobs")
    finished = version_finish(
        version,
        manifest,
        names={c.identifier: c.name for c in result.columns},
        report=report,
        progress=progress,
        blobs=blobs,
        blob_bytes=result.blob_bytes,
        profile_extra={"images": images},
    )
    if finished.status != VersionStatus.PUBLISHED:
        _drop_unused(stored)
    return finished


def _drop_unused(shas: list[str], keep: str = "") -> None:
    """Delete the blobs among `shas` that no version names (a failed image ingest, joined upload chunks)."""
    storage = get_storage()
    for sha in set(shas) - blobs_in_use(shas) - {keep}:
        storage.delete(sha)


def version_finish(
    version: DatasetVersion,
    parquet_path: str,
    *,
    names: dict[str, str],
    report: dict,
    progress=lambda pct, msg: None,
    blobs: list[str] = (),
    blob_bytes: int = 0,
    profile_extra: dict | None = None,
    after_publish=None,
) -> DatasetVersion:
    """Profile, check, store and publish a pending version's Parquet, or fail it with the reasons.

    Shared by every way a version is made (upload, image zip, recipe, database import).
    `after_publish(version)` runs inside the publishing transaction (lineage edges).
    The department's storage quota is checked with the Parquet and blobs counted.
    """
    storage = get_storage()
    progress(60, _("Profiling"))
    profile = profile_parquet(parquet_path, names=names).as_dict()
    if profile_extra:
        profile.update(profile_extra)
    progress(80, _("Running quality checks"))
    checks = version.dataset.checks
    try:
        check_results = run_checks(parquet_path, checks, names=names) if checks else []
    except CheckSpecError as exc:
        message = _("A declared quality check does not fit this data: %(error)s") % {"error": translated_all(exc.message)}
        return version_fail(version, message, report)
    # Check messages are stored in the reader's language (datalake.services.words).
    results = [translated_all(r.as_dict()) for r in check_results]
    blocking = blocking_failures(check_results)
    if blocking:
        reasons = "; ".join(translated_all(r.message) for r in blocking)
        return version_fail(version, _("Blocking quality checks failed: %(reasons)s") % {"reasons": reasons}, report, results)
    # Classified columns are stored encrypted (datalake.services.sensitive); without a usable
    # key the version fails and nothing is stored, never a clear copy instead.
    try:
        stored_path, encrypted, key_id = encrypt_for_storage(version, parquet_path, names)
    except DataKeyError as exc:
        message = _(
            "This dataset has sensitive columns and the data key is not usable (%(reason)s); nothing was stored. "
            "Ask an operator to set LEPTON_DATA_KEY, then retry."
        ) % {"reason": translated_all(exc.message)}
        return version_fail(version, message, {**report, "code": exc.code})
    adding = os.path.getsize(stored_path) + blob_bytes
    refusal = _over_quota(version.dataset.department, adding)
    if refusal is None:
        with open(stored_path, "rb") as stream:
            blob = storage.put_stream(stream)
        with transaction.atomic():
            # Checked again under the department's lock: two versions publishing at once cannot both pass.
            refusal = _over_quota(Department.objects.select_for_update().get(pk=version.dataset.department_id), adding)
            if refusal is None:
                published = version_publish(
                    version,
                    blob,
                    report,
                    profile,
                    results,
                    blobs=blobs,
                    blob_bytes=blob_bytes,
                    encryption=(encrypted, key_id),
                )
                if after_publish is not None and published.status == VersionStatus.PUBLISHED:
                    after_publish(published)
                if key_id and published.status == VersionStatus.PUBLISHED:
                    raw = published.raw_sha256
                    transaction.on_commit(lambda: drop_unneeded(raw))
                return published
        _drop_unused([blob.sha256])
    return version_fail(version, refusal, {**report, "code": "quota_exceeded"})


def _over_quota(department: Department, adding: int) -> str | None:
    """Why `adding` more bytes would pass the department's storage quota, or None when they fit."""
    used = department_storage_used(department)
    if used + adding <= department.storage_bytes_quota:
        return None
    return _(
        "Publishing this version (%(size)s bytes) would pass %(department)s's storage quota (%(used)s of %(quota)s "
        "bytes used); free space or ask an admin for a larger quota, then retry."
    ) % {"size": adding, "department": department.name, "used": used, "quota": department.storage_bytes_quota}


def _quality_status(check_results: list) -> str:
    if not check_results:
        return QualityStatus.UNCHECKED
    return QualityStatus.PASSING if all(r.get("passed") for r in check_results) else QualityStatus.WARNING


def version_publish(
    version: DatasetVersion,
    blob,
    report: dict,
    profile: dict,
    check_results: list,
    *,
    blobs: list[str] = (),
    blob_bytes: int = 0,
    encryption: tuple[list[str], str] = ((), ""),
) -> DatasetVersion:
    """Make a pending version visible in one transaction: number, files, schema, profile, checks.

    `blobs` are the further stored blobs the version needs (images of an image dataset); they
    are listed in the same transaction, so purge never deletes what a published version names.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=version.dataset_id)
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if version.status != VersionStatus.PENDING:
            return version
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version.number = number
        version.status = VersionStatus.PUBLISHED
        version.format = str(report.get("format") or version.source)[:20]
        version.parquet_sha256, version.parquet_bytes = blob.sha256, blob.size
        version.blob_bytes = blob_bytes
        version.encrypted_columns, version.encryption_key_id = list(encryption[0]), encryption[1]
        version.row_count = report.get("rows", report.get("row_count"))
        version.schema = report.get("columns", report.get("schema", []))
        version.profile, version.check_results = profile, translated_all(check_results)
        # The engine's warnings (and an image upload's skipped files) in the language of the job.
        version.ingest_report = translated_all({k: v for k, v in report.items() if k not in ("columns", "schema", "blobs")})
        version.published_at = timezone.now()
        version.save()
        VersionBlob.objects.bulk_create([VersionBlob(version=version, sha256=sha) for sha in sorted(set(blobs))], batch_size=5000)
        dataset.updated_at = version.published_at
        dataset.columns_text = "\n".join(c.get("name", "") for c in version.schema)
        dataset.format = version.format
        dataset.quality_status = _quality_status(check_results)
        dataset.version_count = dataset.versions.filter(status=VersionStatus.PUBLISHED).count()
        dataset.latest_number = number
        dataset.save(update_fields=["updated_at", "columns_text", "format", "quality_status", "version_count", "latest_number"])
        audit.record(actor=None, action="dataset.publish", obj=dataset, changes={"version": number, "rows": version.row_count})
        transaction.on_commit(lambda: _announce(version))
        _tell_watchers_published(dataset, version)
    return version


def _tell_watchers_published(dataset: Dataset, version: DatasetVersion) -> None:
    """Tell the dataset's watchers (lepton.collab) of the new version, and of its failed non-blocking checks."""
    message = _("New version v%(number)s of %(dataset)s (%(rows)s rows).") % {
        "number": version.number, "dataset": dataset.name, "rows": version.row_count,
    }  # fmt: skip
    failed = [r.get("message", "") for r in version.check_results or [] if not r.get("passed")]
    if failed:
        message += " " + _("Failed checks: %(checks)s") % {"checks": "; ".join(failed)[:500]}
    watchers_notify(dataset, message)


def _announce(version: DatasetVersion) -> None:
    """Tell listeners (continuous learning) about a published version; their errors never undo it."""
    import logging

    from datalake.signals import version_published

    for receiver, result in version_published.send_robust(sender=DatasetVersion, version=version):
        if isinstance(result, Exception):
            logging.getLogger("lepton.datalake").error("version_published receiver %r failed: %s", receiver, result)


def version_fail(version: DatasetVersion, message, report: dict, check_results: list | None = None) -> DatasetVersion:
    """Mark a pending version failed with its reason (the raw upload stays for a retry).

    `message` may be the engine's Phrase: it is stored in the active language (the job's), as
    are the Phrases in `report` (e.g. an image upload's bad files). A version refused by a
    blocking check marks its dataset's quality as failing.
    """
    message, report, check_results = translated_all(message), translated_all(report), translated_all(check_results)
    with transaction.atomic():
        updated = DatasetVersion.objects.filter(pk=version.pk, status=VersionStatus.PENDING).update(
            status=VersionStatus.FAILED, error_message=message[:5000], ingest_report=report, check_results=check_results or []
        )
        if updated:
            if check_results and blocking_failures_in(check_results):
                Dataset.objects.filter(pk=version.dataset_id).update(quality_status=QualityStatus.FAILING)
                watchers_notify(
                    version.dataset,
                    _("A new version of %(dataset)s was refused by a quality check: %(message)s")
                    % {"dataset": version.dataset.name, "message": message[:500]},
                )
            audit.record(
                actor=None,
                action="dataset.ingest_failed",
                obj=version.dataset,
                changes={"version": str(version.pk), "error": message[:500]},
            )
    version.refresh_from_db()
    return version


def version_abandon(version_id, message: str) -> None:
    """Fail a version that is still pending because its job ended without publishing it (crash, cancel)."""
    version = DatasetVersion.objects.select_related("dataset").filter(pk=version_id, status=VersionStatus.PENDING).first()
    if version is not None:
        version_fail(version, message, {"code": "job_ended"})


def versions_settle() -> list[str]:
    """Fail every pending version whose job has already failed or was cancelled (the dispatcher calls this).

    The job kinds fail their version themselves; this catches what they could not see: a job
    the reaper gave up on after its worker died, or one revoked after ignoring a cancel.
    """
    from lepton.jobs.models import JobStatus

    settled = []
    stuck = DatasetVersion.objects.filter(
        status=VersionStatus.PENDING, job__status__in=[JobStatus.FAILED, JobStatus.CANCELLED]
    ).select_related("job", "dataset")
    for version in stuck:
        reason = version.job.error_message or version.job.status
        version_fail(version, _("Its job ended without publishing it: %(reason)s") % {"reason": reason}, {"code": "job_ended"})
        settled.append(str(version.pk))
    return settled


def blocking_failures_in(check_results: list[dict]) -> bool:
    return any(r.get("blocking") and not r.get("passed") for r in check_results)


# --- resumable uploads ------------------------------------------------------------------


class _JoinedChunks:
    """A readable stream over stored chunks, in order, each verified on read; one chunk in memory at a time."""

    def __init__(self, shas: list[str]):
        self._shas = list(shas)
        self._current = memoryview(b"")
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        parts = []
        wanted = size if size >= 0 else float("inf")
        while wanted > 0:
            if self._position >= len(self._current):
                if not self._shas:
                    break
                self._current, self._position = memoryview(get_storage().read_bytes(self._shas.pop(0))), 0
                continue
            take = self._current[self._position : self._position + (len(self._current) if wanted == float("inf") else wanted)]
            self._position += len(take)
            wanted -= len(take)
            parts.append(bytes(take))
        return b"".join(parts)


def _check_size(size, field: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise Invalid(_("Give the file size in bytes."), fields={field: [_("Give the file size in bytes.")]})
    if size > settings.LEPTON_MAX_UPLOAD_BYTES:
        message = _("The file is larger than the %(limit)s bytes an upload may have.") % {
            "limit": settings.LEPTON_MAX_UPLOAD_BYTES
        }
        raise Invalid(message, fields={field: [message]}, code="too_large")
    return size


def upload_session_start(*, actor, dataset: Dataset, filename: str, size: int, options: dict | None = None) -> UploadSession:
    """Open a resumable upload of `size` bytes; chunks follow with upload_session_append."""
    policy.require(actor, "change", dataset)
    _check_size(size)
    _check_options(options)
    require_data_key(dataset, _("Uploading into a dataset with sensitive columns"))
    if not (filename or "").strip():
        raise Invalid(_("Give the file name."), fields={"filename": [_("Give the file name.")]})
    with transaction.atomic():
        session = UploadSession.objects.create(
            dataset=dataset, created_by=actor, filename=os.path.basename(filename)[:255], total_bytes=size, options=options or {}
        )
        audit.record(actor=actor, action="dataset.upload_start", obj=dataset, changes={"session": str(session.pk), "bytes": size})
    return session


def _own_session(actor, session: UploadSession) -> UploadSession:
    if session.created_by_id != getattr(actor, "pk", None):
        raise NotFound()
    policy.require(actor, "change", session.dataset)
    if session.completed_at is not None:
        raise Conflict(_("This upload is complete already."), code="upload_complete")
    if session.created_at < timezone.now() - timedelta(hours=settings.LEPTON_UPLOAD_SESSION_HOURS):
        raise Conflict(_("This upload expired; start a new one."), code="upload_expired")
    return session


def upload_session_append(*, actor, session: UploadSession, offset: int, stream: BinaryIO) -> UploadSession:
    """Append one chunk that starts at `offset` (which must equal the bytes received so far)."""
    _own_session(actor, session)
    data = stream.read(settings.LEPTON_MAX_CHUNK_BYTES + 1)
    if len(data) > settings.LEPTON_MAX_CHUNK_BYTES:
        message = _("A chunk may have at most %(limit)s bytes.") % {"limit": settings.LEPTON_MAX_CHUNK_BYTES}
        raise Invalid(message, fields={"chunk": [message]}, code="chunk_too_large")
    if not data:
        raise Invalid(_("The chunk is empty."), fields={"chunk": [_("The chunk is empty.")]})
    with transaction.atomic():
        session = UploadSession.objects.select_for_update().get(pk=session.pk)
        if offset != session.received_bytes:
            message = _("This chunk starts at byte %(offset)s but %(received)s bytes were received; resume from there.") % {
                "offset": offset,
                "received": session.received_bytes,
            }
            raise Conflict(message, fields={"offset": [message]}, code="wrong_offset")
        if session.received_bytes + len(data) > session.total_bytes:
            message = _("The chunk goes past the announced size of %(size)s bytes.") % {"size": session.total_bytes}
            raise Invalid(message, fields={"chunk": [message]}, code="past_end")
        blob = get_storage().put_bytes(data)
        session.chunks = [*session.chunks, blob.sha256]
        session.received_bytes += len(data)
        session.save(update_fields=["chunks", "received_bytes"])
    return session


def upload_session_complete(*, actor, session: UploadSession) -> DatasetVersion:
    """Join the chunks into one upload and create its version (as dataset_upload does)."""
    _own_session(actor, session)
    if session.received_bytes != session.total_bytes:
        message = _("Only %(received)s of %(size)s bytes arrived; send the rest first.") % {
            "received": session.received_bytes,
            "size": session.total_bytes,
        }
        raise Conflict(message, code="upload_incomplete")
    version = dataset_upload(
        actor=actor,
        dataset=session.dataset,
        stream=_JoinedChunks(session.chunks),
        filename=session.filename,
        options=session.options,
    )
    UploadSession.objects.filter(pk=session.pk).update(completed_at=timezone.now(), version=version)
    _drop_unused(session.chunks, keep=version.raw_sha256)
    session.refresh_from_db()
    return session.version
