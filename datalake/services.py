"""Every state change of the data lake: datasets, uploads, ingest and publication.

Like the core services, each takes the acting user as `actor=`, checks the policy, writes
its audit event in its transaction and queues work with `transaction.on_commit`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from datalake import selectors
from datalake.engine.checks import CheckSpecError, blocking_failures, run_checks, validate_check
from datalake.engine.profile import _jsonable, profile_parquet
from datalake.models import Dataset, DatasetVersion, Recipe, UploadSession, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.services import job_submit
from lepton.models import Department, LineageEdge
from lepton.storage import get_storage

INGEST_KIND = "datalake.ingest"
# Ingest options a person may set (datalake.engine.types.IngestOptions has more, for the platform).
USER_OPTIONS = ("format", "encoding", "delimiter", "quote_char", "header", "sheet", "skip_bad_lines")
EDITABLE_FIELDS = ["name", "description", "tags", "discoverable", "checks"]


def _clean_tags(tags) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Invalid(_("Tags must be a list of words."), fields={"tags": [_("Give a list of words.")]})
    return sorted({t.strip().lower() for t in tags if t.strip()})[:30]


def dataset_create(
    *,
    actor,
    department: Department,
    name: str,
    slug: str = "",
    description: str = "",
    tags: list[str] | None = None,
    discoverable: bool = False,
) -> Dataset:
    """Create an empty dataset in `department` (members and above)."""
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "submit", department):
        raise Forbidden(_("Members and above may create datasets."))
    name = (name or "").strip()
    if not name:
        raise Invalid(_("A dataset needs a name."), fields={"name": [_("A dataset needs a name.")]})
    slug = slugify(slug or name) or f"dataset-{timezone.now():%Y%m%d%H%M%S}"  # Chinese names slugify to ""
    tags = _clean_tags(tags)
    with transaction.atomic():
        if Dataset.objects.filter(department=department, slug=slug).exists():
            message = _("%(department)s already has a dataset '%(slug)s'.") % {"department": department.name, "slug": slug}
            raise Invalid(message, fields={"slug": [message]}, code="slug_taken")
        dataset = Dataset.objects.create(
            department=department,
            slug=slug,
            name=name,
            description=description,
            tags=tags,
            discoverable=bool(discoverable),
            created_by=actor,
        )
        audit.record(actor=actor, action="dataset.create", obj=dataset, changes={"name": name, "slug": slug})
    return dataset


def dataset_update(*, actor, dataset: Dataset, **values) -> Dataset:
    """Change name, description, tags, discoverability or the declared checks (members)."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    policy.require(actor, "change", dataset)
    if "tags" in values:
        values["tags"] = _clean_tags(values["tags"])
    if "name" in values and not str(values["name"]).strip():
        raise Invalid(_("A dataset needs a name."), fields={"name": [_("A dataset needs a name.")]})
    if "checks" in values:
        values["checks"] = _validate_checks(dataset, values["checks"])
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        changes = audit.diff(dataset, EDITABLE_FIELDS, values)
        if not changes:
            return dataset
        for field, value in values.items():
            setattr(dataset, field, value)
        dataset.updated_at = timezone.now()
        dataset.save(update_fields=[*values, "updated_at"])
        audit.record(actor=actor, action="dataset.update", obj=dataset, changes=changes)
    return dataset


def _validate_checks(dataset: Dataset, checks) -> list[dict]:
    """Validate declared checks against the latest published schema (or only their shape, before any)."""
    if not isinstance(checks, list):
        raise Invalid(_("Checks must be a list."), fields={"checks": [_("Give a list of checks.")]})
    latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
    columns = {c["name"]: c["type"] for c in latest.profile.get("columns", [])} if latest else None
    cleaned = []
    for index, spec in enumerate(checks):
        try:
            cleaned.append(validate_check(spec, columns))
        except CheckSpecError as exc:
            raise Invalid(str(exc), fields={f"checks.{index}.{k}": v for k, v in exc.fields.items()}) from None
    return cleaned


def department_storage_used(department: Department) -> int:
    """Bytes of raw uploads and Parquet kept for the department's datasets (trash included)."""
    totals = (
        DatasetVersion.objects.filter(dataset__department=department)
        .exclude(status=VersionStatus.FAILED)
        .aggregate(raw=Sum("raw_bytes"), parquet=Sum("parquet_bytes"))
    )
    return (totals["raw"] or 0) + (totals["parquet"] or 0)


def dataset_upload(*, actor, dataset: Dataset, stream: BinaryIO, filename: str, options: dict | None = None) -> DatasetVersion:
    """Store the uploaded bytes (streamed, content-addressed) and queue their ingest as a new version.

    Identical bytes to an existing version are refused with its number; an upload that would
    exceed the department's storage quota is refused before anything is kept.
    """
    policy.require(actor, "change", dataset)
    if dataset.is_deleted:
        raise Conflict(_("The dataset is in the trash; restore it first."), code="dataset_deleted")
    blob = get_storage().put_stream(stream)
    try:
        return _create_pending_version(actor, dataset, blob, filename, options)
    except Exception:
        # Refused or failed: keep nothing, unless another version holds the same bytes.
        if not DatasetVersion.objects.filter(raw_sha256=blob.sha256).exists():
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

        user_options = {k: v for k, v in version.options.items() if k in USER_OPTIONS}
        try:
            result = ingest(raw_path, parquet_path, IngestOptions(**user_options, temp_dir=workdir, progress=converting))
        except IngestError as exc:
            return _fail(version, exc.message, {"code": exc.code, "details": exc.details})
        progress(60, _("Profiling"))
        # Profiles and checks speak the original column names (the Parquet stores safe identifiers).
        names = {c.identifier: c.name for c in result.columns}
        profile = profile_parquet(parquet_path, names=names).as_dict()
        progress(80, _("Running quality checks"))
        try:
            check_results = run_checks(parquet_path, version.dataset.checks, names=names) if version.dataset.checks else []
        except CheckSpecError as exc:
            return _fail(version, _("A declared quality check does not fit this data: %(error)s") % {"error": exc}, {})
        with open(parquet_path, "rb") as stream:
            blob = storage.put_stream(stream)
        report = _jsonable(dataclasses.asdict(result))
        blocking = blocking_failures(check_results)
        if blocking:
            return _fail(
                version,
                _("Blocking quality checks failed: %(reasons)s") % {"reasons": "; ".join(r.message for r in blocking)},
                report,
                [r.as_dict() for r in check_results],
            )
        return _publish(version, blob, report, profile, [r.as_dict() for r in check_results])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _publish(version: DatasetVersion, blob, report: dict, profile: dict, check_results: list) -> DatasetVersion:
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=version.dataset_id)
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if version.status != VersionStatus.PENDING:
            return version
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version.number = number
        version.status = VersionStatus.PUBLISHED
        version.parquet_sha256, version.parquet_bytes = blob.sha256, blob.size
        version.row_count = report.get("rows", report.get("row_count"))
        version.schema = report.get("columns", report.get("schema", []))
        version.profile, version.check_results = profile, check_results
        version.ingest_report = {k: v for k, v in report.items() if k not in ("columns", "schema")}
        version.published_at = timezone.now()
        version.save()
        dataset.updated_at = version.published_at
        dataset.columns_text = "\n".join(c.get("name", "") for c in version.schema)
        dataset.save(update_fields=["updated_at", "columns_text"])
        audit.record(actor=None, action="dataset.publish", obj=dataset, changes={"version": number, "rows": version.row_count})
    return version


def _fail(version: DatasetVersion, message: str, report: dict, check_results: list | None = None) -> DatasetVersion:
    with transaction.atomic():
        updated = DatasetVersion.objects.filter(pk=version.pk, status=VersionStatus.PENDING).update(
            status=VersionStatus.FAILED, error_message=message[:5000], ingest_report=report, check_results=check_results or []
        )
        if updated:
            audit.record(
                actor=None,
                action="dataset.ingest_failed",
                obj=version.dataset,
                changes={"version": str(version.pk), "error": message[:500]},
            )
    version.refresh_from_db()
    return version


def lineage_add(*, from_obj, to_obj, via=None) -> None:
    """Record that `to_obj` was made from `from_obj` (by a recipe run, a training run…)."""
    LineageEdge.objects.get_or_create(
        from_type=audit.object_type(from_obj),
        from_id=str(from_obj.pk),
        to_type=audit.object_type(to_obj),
        to_id=str(to_obj.pk),
        defaults={"via_type": audit.object_type(via) if via else "", "via_id": str(via.pk) if via else ""},
    )


TRASH_DAYS = 30


def dataset_delete(*, actor, dataset: Dataset) -> Dataset:
    """Move a dataset to the trash (maintainers): hidden everywhere, restorable for 30 days."""
    policy.require(actor, "delete", dataset)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.deleted_at is not None:
            raise Conflict(_("The dataset is already in the trash."), code="already_deleted")
        dataset.deleted_at = timezone.now()
        dataset.save(update_fields=["deleted_at"])
        audit.record(
            actor=actor,
            action="dataset.delete",
            obj=dataset,
            changes={"trash_until": dataset.deleted_at + timedelta(days=TRASH_DAYS)},
        )
    return dataset


def dataset_restore(*, actor, dataset: Dataset) -> Dataset:
    """Bring a dataset back from the trash (maintainers), within 30 days and if its slug is still free."""
    policy.require(actor, "delete", dataset)
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.deleted_at is None:
            raise Conflict(_("The dataset is not in the trash."), code="not_deleted")
        if dataset.deleted_at < timezone.now() - timedelta(days=TRASH_DAYS):
            raise Conflict(
                _("The dataset was deleted more than %(days)s days ago and can no longer be restored.") % {"days": TRASH_DAYS},
                code="trash_expired",
            )
        dataset.deleted_at = None
        dataset.save(update_fields=["deleted_at"])
        audit.record(actor=actor, action="dataset.restore", obj=dataset)
    return dataset


def dataset_purge(*, actor, dataset: Dataset) -> None:
    """Delete a trashed dataset for good, with the stored bytes no other version shares (department admins)."""
    policy.require(actor, "view", dataset)
    if not policy.can(actor, "administer", dataset.department):
        raise Forbidden(_("Only a department admin may purge datasets."))
    storage = get_storage()
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.deleted_at is None:
            raise Conflict(_("Move the dataset to the trash before purging it."), code="not_deleted")
        blobs = set()
        for raw, parquet in dataset.versions.values_list("raw_sha256", "parquet_sha256"):
            blobs.update(b for b in (raw, parquet) if b)
        audit.record(
            actor=actor, action="dataset.purge", obj=dataset, changes={"slug": dataset.slug, "versions": dataset.versions.count()}
        )
        dataset.delete()
        shared = set(DatasetVersion.objects.filter(raw_sha256__in=blobs).values_list("raw_sha256", flat=True)) | set(
            DatasetVersion.objects.filter(parquet_sha256__in=blobs).values_list("parquet_sha256", flat=True)
        )
        # Bytes go only once the rows are gone for good (after commit): a rollback keeps both.
        transaction.on_commit(lambda: [storage.delete(b) for b in blobs - shared])


def _number(value, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(_("Give a version number."), fields={field: [_("Give a version number.")]}) from None
    return number


def dataset_diff(*, actor, dataset: Dataset, old=None, new=None) -> dict:
    """Compare two published versions (default: the latest with the one before it)."""
    from datalake.engine.diff import version_diff

    policy.require(actor, "view", dataset)
    published = {v.number: v for v in dataset.versions.filter(status=VersionStatus.PUBLISHED)}
    new_n = _number(new, "to") or max(published, default=None)
    old_n = _number(old, "from") or (max((n for n in published if new_n and n < new_n), default=None))
    for field, number in (("to", new_n), ("from", old_n)):
        if number not in published:
            message = _("There is no published version %(number)s to compare.") % {"number": number if number else "—"}
            raise Invalid(message, fields={field: [message]}, code="no_such_version")
    a, b = published[old_n], published[new_n]
    result = version_diff({"rows": a.row_count, "profile": a.profile}, {"rows": b.row_count, "profile": b.profile})
    return {"from": old_n, "to": new_n, **result}


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
    _drop_chunks(session.chunks, keep=version.raw_sha256)
    session.refresh_from_db()
    return session.version


def _drop_chunks(shas: list[str], keep: str = "") -> None:
    storage = get_storage()
    in_use = set(DatasetVersion.objects.filter(raw_sha256__in=shas).values_list("raw_sha256", flat=True))
    for sha in set(shas) - in_use - {keep}:
        storage.delete(sha)


# --- reading published versions ----------------------------------------------------------


def _readable(actor, version: DatasetVersion) -> tuple[str, dict[str, str]]:
    """The local Parquet path and {identifier: original name} of a published version the actor may see."""
    if not policy.can(actor, "view", version):
        raise NotFound()
    if version.status != VersionStatus.PUBLISHED:
        raise Conflict(_("Only published versions can be read."), code="version_not_published")
    names = {c["identifier"]: c["name"] for c in version.schema if "identifier" in c}
    return get_storage().verified_local_path(version.parquet_sha256), names


def version_preview(
    *,
    actor,
    version: DatasetVersion,
    page: int = 1,
    page_size: int = 50,
    sort: str | None = None,
    descending: bool = False,
    filters: list | None = None,
) -> dict:
    """One page of rows (sorted and filtered on the server) of a published version."""
    from datalake.engine.preview import PreviewError, preview

    path, names = _readable(actor, version)
    try:
        return preview(
            path, names=names, page=page, page_size=page_size, sort=sort or None, descending=descending, filters=filters or ()
        ).as_dict()
    except PreviewError as exc:
        raise Invalid(exc.message, fields={exc.field: [exc.message]}) from None


def version_export_csv(*, actor, version: DatasetVersion):
    """The version as CSV chunks (original column names, formula cells escaped), for a streamed download."""
    from datalake.engine.export import export_csv_iter

    path, names = _readable(actor, version)
    audit.record(
        actor=actor, action="dataset.download", obj=version.dataset, changes={"version": version.number, "format": "csv"}
    )
    return export_csv_iter(path, names=names)


def version_parquet_path(*, actor, version: DatasetVersion) -> str:
    """The version's verified Parquet file, for a download as it is stored."""
    path, _names = _readable(actor, version)
    audit.record(
        actor=actor, action="dataset.download", obj=version.dataset, changes={"version": version.number, "format": "parquet"}
    )
    return path


# --- the SQL console -----------------------------------------------------------------------


def sql_tables(actor) -> dict:
    """{view name: TableSource} of the latest published version of every dataset the actor may see.

    View names are `department.dataset` with hyphens as underscores (`supply_chain.daily_demand`).
    """
    from datalake.engine.sql import TableSource

    tables = {}
    latest = (
        DatasetVersion.objects.filter(
            status=VersionStatus.PUBLISHED, dataset__in=policy.visible_to(actor, Dataset).filter(deleted_at__isnull=True)
        )
        .select_related("dataset__department")
        .order_by("dataset_id", "-number")
    )
    seen = set()
    storage = get_storage()
    for version in latest:
        if version.dataset_id in seen:
            continue
        seen.add(version.dataset_id)
        dataset = version.dataset
        name = f"{dataset.department.slug}.{dataset.slug}".replace("-", "_")
        columns = {c["identifier"]: c["name"] for c in version.schema if "identifier" in c}
        tables[name] = TableSource(path=storage.verified_local_path(version.parquet_sha256), columns=columns)
    return tables


def sql_run(*, actor, sql: str, row_cap: int = 10_000) -> dict:
    """Run read-only SQL over the datasets the actor may see (sandboxed, time- and memory-limited)."""
    from datalake.engine.sql import QueryError, run_query

    if not (actor and actor.is_authenticated):
        raise NotFound()
    if isinstance(row_cap, bool) or not isinstance(row_cap, int) or not 1 <= row_cap <= 10_000:
        raise Invalid(_("row_cap must be from 1 to 10000."), fields={"row_cap": [_("From 1 to 10000.")]})
    tables = sql_tables(actor)
    audit.record(actor=actor, action="sql.run", changes={"sql": (sql or "")[:2000], "tables": len(tables)})
    try:
        result = run_query(
            sql or "",
            tables,
            row_cap=row_cap,
            timeout_s=settings.LEPTON_SQL_TIMEOUT_SECONDS,
            memory_limit=settings.LEPTON_SQL_MEMORY_LIMIT,
        )
    except QueryError as exc:
        raise Invalid(exc.message, fields={"sql": [exc.message]}, code=f"sql_{exc.code}") from None
    return result.as_dict()


# --- recipes -----------------------------------------------------------------------------

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
        key = "steps" if exc.step_index is None else f"steps.{exc.step_index}.{exc.field}"
        raise Invalid(str(exc), fields={key: [exc.message]}, code="invalid_recipe") from None


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
    storage = get_storage()
    inputs = {"input": _source(storage, main), **{k: _source(storage, v) for k, v in joined.items()}}
    with tempfile.TemporaryDirectory(prefix="lepton-recipe-") as folder:
        out = os.path.join(folder, "preview.parquet")
        try:
            result = apply_recipe(cleaned, inputs, out, sample_rows=sample_rows, timeout_s=60)
        except RecipeError as exc:
            key = "steps" if exc.step_index is None else f"steps.{exc.step_index}.{exc.field}"
            raise Invalid(str(exc), fields={key: [exc.message]}, code="invalid_recipe") from None
        page = preview(out, names=result.names, page_size=50).as_dict()
    return {"rows": result.rows, "parameters": _jsonable(result.parameters), "preview": page}


def _source(storage, version: DatasetVersion) -> tuple[str, dict[str, str]]:
    names = {c["identifier"]: c["name"] for c in version.schema if "identifier" in c}
    return storage.verified_local_path(version.parquet_sha256), names


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

    version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
    if version.status != VersionStatus.PENDING:
        return version
    recipe = Recipe.objects.get(pk=version.options["recipe"])
    inputs = {k: DatasetVersion.objects.get(pk=v) for k, v in version.options["inputs"].items()}
    storage = get_storage()
    with tempfile.TemporaryDirectory(prefix="lepton-recipe-") as folder:
        out = os.path.join(folder, "output.parquet")
        progress(10, _("Applying the recipe"))
        try:
            result = apply_recipe(
                recipe.steps,
                {k: _source(storage, v) for k, v in inputs.items()},
                out,
                timeout_s=settings.LEPTON_RECIPE_TIMEOUT_SECONDS,
            )
        except RecipeError as exc:
            return _fail(version, str(exc), {"code": "invalid_recipe"})
        progress(60, _("Profiling"))
        profile = profile_parquet(out, names=result.names).as_dict()
        checks = version.dataset.checks
        try:
            check_results = run_checks(out, checks, names=result.names) if checks else []
        except CheckSpecError as exc:
            return _fail(version, _("A declared quality check does not fit this data: %(error)s") % {"error": exc}, {})
        with open(out, "rb") as stream:
            blob = storage.put_stream(stream)
    report = {
        "rows": result.rows,
        "columns": result.columns,
        "parameters": _jsonable(result.parameters),
        "recipe": str(recipe.pk),
        "steps": len(recipe.steps),
    }
    blocking = blocking_failures(check_results)
    if blocking:
        return _fail(
            version,
            _("Blocking quality checks failed: %(reasons)s") % {"reasons": "; ".join(r.message for r in blocking)},
            report,
            [r.as_dict() for r in check_results],
        )
    with transaction.atomic():
        version = _publish(version, blob, report, profile, [r.as_dict() for r in check_results])
        for source in inputs.values():
            lineage_add(from_obj=source, to_obj=version, via=recipe)
    return version


def dataset_lineage(*, actor, dataset: Dataset) -> dict:
    """Edges into and out of the dataset's versions (recipes, and later models), as plain data."""
    policy.require(actor, "view", dataset)
    version_ids = [str(pk) for pk in dataset.versions.values_list("pk", flat=True)]
    vtype = audit.object_type(DatasetVersion)
    edges = list(
        LineageEdge.objects.filter(Q(from_type=vtype, from_id__in=version_ids) | Q(to_type=vtype, to_id__in=version_ids))
    )
    ids = {e.from_id for e in edges if e.from_type == vtype} | {e.to_id for e in edges if e.to_type == vtype}
    versions = {str(v.pk): v for v in DatasetVersion.objects.filter(pk__in=ids).select_related("dataset__department")}

    def node(kind, object_id):
        v = versions.get(object_id) if kind == vtype else None
        if v is None:
            return {"type": kind, "id": object_id}
        visible = policy.can(actor, "view", v.dataset)
        return {
            "type": "dataset_version",
            "id": object_id,
            "dataset": str(v.dataset_id) if visible else None,
            "label": f"{v.dataset.department.slug}.{v.dataset.slug} v{v.number}" if visible else _("a dataset you cannot see"),
        }

    return {
        "edges": [
            {"from": node(e.from_type, e.from_id), "to": node(e.to_type, e.to_id), "via": {"type": e.via_type, "id": e.via_id}}
            for e in edges
        ]
    }
