"""Reading published versions: preview, downloads and the SQL console."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from datalake.models import Dataset, DatasetVersion, VersionBlob, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Invalid, NotFound
from lepton.storage import get_storage


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


def version_image_grid(*, actor, version: DatasetVersion, per_class: int = 8, label: str | None = None) -> dict:
    """The first images of each class of a published image version: {label: [image, …]} (see engine.preview.image_grid)."""
    from datalake.engine.preview import PreviewError, image_grid

    path, _names = _readable(actor, version)
    if version.format != "images":
        raise Conflict(_("This version holds a table, not images."), code="not_images")
    try:
        return image_grid(path, per_class=per_class, label=label)
    except PreviewError as exc:
        raise Invalid(exc.message, fields={exc.field: [exc.message]}) from None


IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"BM": "image/bmp"}


def version_image(*, actor, version: DatasetVersion, sha256: str) -> tuple[bytes, str]:
    """One image or thumbnail of a published image version, checksum-verified, with its content type."""
    _readable(actor, version)
    if not VersionBlob.objects.filter(version=version, sha256=sha256).exists():
        raise NotFound()
    data = get_storage().read_bytes(sha256)
    content_type = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), "application/octet-stream")
    return data, content_type


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
        raise _query_invalid(exc) from None
    return result.as_dict()


def _query_invalid(exc) -> Invalid:
    return Invalid(exc.message, fields={"sql": [exc.message]}, code=f"sql_{exc.code}")


def sql_export(*, actor, sql: str, folder: str) -> dict:
    """Write the whole result of a read-only query as CSV into `folder` (the caller streams and removes it).

    At most LEPTON_SQL_EXPORT_MAX_ROWS rows (the result says when more existed), within
    LEPTON_SQL_EXPORT_TIMEOUT_SECONDS and the console's memory limit; same sandbox as sql_run.
    """
    import os

    from datalake.engine.sql import QueryError, export_query_csv

    if not (actor and actor.is_authenticated):
        raise NotFound()
    tables = sql_tables(actor)
    audit.record(actor=actor, action="sql.export", changes={"sql": (sql or "")[:2000], "tables": len(tables)})
    try:
        result = export_query_csv(
            sql or "",
            tables,
            os.path.join(folder, "result.csv"),
            max_rows=settings.LEPTON_SQL_EXPORT_MAX_ROWS,
            timeout_s=settings.LEPTON_SQL_EXPORT_TIMEOUT_SECONDS,
            memory_limit=settings.LEPTON_SQL_MEMORY_LIMIT,
        )
    except QueryError as exc:
        raise _query_invalid(exc) from None
    return result.as_dict()
