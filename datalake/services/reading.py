"""Reading published versions: preview, downloads and the SQL console."""

from __future__ import annotations

import contextlib
import os
import tempfile

from django.conf import settings
from django.utils.translation import gettext as _

from datalake.models import Dataset, DatasetVersion, VersionBlob, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Invalid, NotFound
from lepton.i18n import translated
from lepton.storage import get_storage

from .sensitive import classified, readable_parquet


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

    with readable_parquet(version, actor, purpose="preview") as readable:
        try:
            page = preview(
                readable.path,
                names=readable.names,
                page=page,
                page_size=page_size,
                sort=sort or None,
                descending=descending,
                filters=filters or (),
            ).as_dict()
        except PreviewError as exc:
            raise _preview_invalid(exc) from None
    if readable.masked:
        page["masked"] = readable.masked
    return page


def version_image_grid(*, actor, version: DatasetVersion, per_class: int = 8, label: str | None = None) -> dict:
    """The first images of each class of a published image version: {label: [image, …]} (see engine.preview.image_grid)."""
    from datalake.engine.preview import PreviewError, image_grid

    if not policy.can(actor, "view", version):
        raise NotFound()
    if version.format != "images":
        raise Conflict(_("This version holds a table, not images."), code="not_images")
    with readable_parquet(version, actor, purpose="preview") as readable:
        try:
            return image_grid(readable.path, per_class=per_class, label=label)
        except PreviewError as exc:
            raise _preview_invalid(exc) from None


IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"BM": "image/bmp"}


def version_image(*, actor, version: DatasetVersion, sha256: str) -> tuple[bytes, str]:
    """One image or thumbnail of a published image version, checksum-verified, with its content type."""
    if not policy.can(actor, "view", version):
        raise NotFound()
    if version.status != VersionStatus.PUBLISHED:
        raise Conflict(_("Only published versions can be read."), code="version_not_published")
    if not VersionBlob.objects.filter(version=version, sha256=sha256).exists():
        raise NotFound()
    data = get_storage().read_bytes(sha256)
    content_type = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), "application/octet-stream")
    return data, content_type


def version_export_csv(*, actor, version: DatasetVersion):
    """The version as CSV chunks (original column names, formula cells escaped), for a streamed download.

    Sensitive columns are masked for a reader who may not unmask (datalake.services.sensitive).
    """
    from datalake.engine.export import export_csv_iter

    stack = contextlib.ExitStack()
    readable = stack.enter_context(readable_parquet(version, actor, purpose="download"))
    audit.record(
        actor=actor, action="dataset.download", obj=version.dataset, changes={"version": version.number, "format": "csv"}
    )

    def chunks():
        with stack:  # the readable copy lives as long as the download streams
            yield from export_csv_iter(readable.path, names=readable.names)

    return chunks()


def version_parquet_open(*, actor, version: DatasetVersion):
    """The version's Parquet, opened for a download: as stored, or a decrypted (and, for a reader
    who may not unmask, masked) copy when the dataset has sensitive columns."""
    with readable_parquet(version, actor, purpose="download") as readable:
        stream = open(readable.path, "rb")  # noqa: SIM115 - the caller's response closes it
    # The copy's folder is gone now; the open file keeps its bytes until the response closes it.
    audit.record(
        actor=actor, action="dataset.download", obj=version.dataset, changes={"version": version.number, "format": "parquet"}
    )
    return stream


# --- the SQL console -----------------------------------------------------------------------


def _sql_versions(actor) -> dict[str, DatasetVersion]:
    """{view name: latest published version} of every dataset the actor may see.

    View names are `department.dataset` with hyphens as underscores (`supply_chain.daily_demand`).
    """
    latest = (
        DatasetVersion.objects.filter(
            status=VersionStatus.PUBLISHED, dataset__in=policy.visible_to(actor, Dataset).filter(deleted_at__isnull=True)
        )
        .select_related("dataset__department")
        .order_by("dataset_id", "-number")
    )
    versions, seen = {}, set()
    for version in latest:
        if version.dataset_id in seen:
            continue
        seen.add(version.dataset_id)
        dataset = version.dataset
        versions[f"{dataset.department.slug}.{dataset.slug}".replace("-", "_")] = version
    return versions


def sql_tables(actor) -> dict:
    """{view name: TableSource} of the latest published version of every dataset the actor may see.

    For listing only: a column hidden from the actor is left out, and the path is the stored
    file (`sql_sources` gives the files a query reads).
    """
    from datalake.engine.sql import TableSource

    from .sensitive import may_unmask

    tables = {}
    storage = get_storage()
    for name, version in _sql_versions(actor).items():
        columns = {c["identifier"]: c["name"] for c in version.schema if "identifier" in c}
        rules = classified(version)
        if rules and not may_unmask(actor, version.dataset):
            columns = {i: n for i, n in columns.items() if rules.get(i) != "hide"}
        tables[name] = TableSource(path=storage.verified_local_path(version.parquet_sha256), columns=columns)
    return tables


@contextlib.contextmanager
def sql_sources(actor, sql: str, folder: str):
    """{view name: TableSource} a query may read, every file through the one read path.

    A dataset with sensitive columns (or encrypted at rest) is decrypted and masked into
    `folder` only when the query names it: a view whose name is not in the SQL text cannot be
    read by it (names are plain identifiers), so it is left out rather than decrypted.
    """
    from datalake.engine.sql import TableSource

    text = (sql or "").lower()
    with contextlib.ExitStack() as stack:
        tables = {}
        for name, version in _sql_versions(actor).items():
            if (classified(version) or version.encryption_key_id) and name.split(".", 1)[1] not in text:
                continue
            readable = stack.enter_context(readable_parquet(version, actor, purpose="sql", check_access=False, folder=folder))
            tables[name] = TableSource(path=readable.path, columns=readable.names)
        yield tables


def sql_run(*, actor, sql: str, row_cap: int = 10_000) -> dict:
    """Run read-only SQL over the datasets the actor may see (sandboxed, time- and memory-limited)."""
    from datalake.engine.sql import QueryError, run_query

    if not (actor and actor.is_authenticated):
        raise NotFound()
    if isinstance(row_cap, bool) or not isinstance(row_cap, int) or not 1 <= row_cap <= 10_000:
        raise Invalid(_("row_cap must be from 1 to 10000."), fields={"row_cap": [_("From 1 to 10000.")]})
    with tempfile.TemporaryDirectory(prefix="lepton-sql-") as folder, sql_sources(actor, sql, folder) as tables:
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
    """The engine's refusal (a QueryError, an English Phrase) as a 400 in the request's language."""
    message = translated(exc.message)
    return Invalid(message, fields={"sql": [message]}, code=f"sql_{exc.code}")


def _preview_invalid(exc) -> Invalid:
    message = translated(exc.message)
    return Invalid(message, fields={exc.field: [message]})


def sql_export(*, actor, sql: str, folder: str) -> dict:
    """Write the whole result of a read-only query as CSV into `folder` (the caller streams and removes it).

    At most LEPTON_SQL_EXPORT_MAX_ROWS rows (the result says when more existed), within
    LEPTON_SQL_EXPORT_TIMEOUT_SECONDS and the console's memory limit; same sandbox as sql_run.
    """
    from datalake.engine.sql import QueryError, export_query_csv

    if not (actor and actor.is_authenticated):
        raise NotFound()
    with tempfile.TemporaryDirectory(prefix="lepton-sql-") as sources, sql_sources(actor, sql, sources) as tables:
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
