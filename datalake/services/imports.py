"""Database imports: a dataset whose versions are read from a production database by a query.

Set up by a maintainer (URL, password stored encrypted, one read-only query, an optional
interval); each run is a job that publishes a new version, unless the rows are identical
to the latest version's, in which case nothing new is made and the import says so.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake.engine.errors import IngestError
from datalake.engine.profile import _jsonable
from datalake.models import DatabaseImport, Dataset, DatasetVersion, VersionStatus
from lepton import audit, crypto, policy
from lepton.errors import Conflict, Forbidden, Invalid
from lepton.i18n import translated
from lepton.jobs.services import job_submit
from lepton.netguard import address_problem

from .versions import version_fail, version_finish

IMPORT_KIND = "datalake.import"
IMPORT_FIELDS = ["url", "query", "interval_minutes", "enabled"]


class ImportStatus:
    PUBLISHED = "published"
    UNCHANGED = "unchanged"
    FAILED = "failed"


def _parsed_url(url, password):
    """The URL parsed and checked against LEPTON_IMPORT_ALLOWED_HOSTS, with the password kept apart."""
    from datalake.engine.dbimport import parse_database_url

    try:
        parsed = parse_database_url(url)
    except IngestError as exc:
        message = translated(exc.message)
        raise Invalid(message, fields={"url": [message]}, code="bad_url") from None
    allowed = settings.LEPTON_IMPORT_ALLOWED_HOSTS
    if allowed and "*" not in allowed and parsed.host.lower() not in {h.lower() for h in allowed}:
        message = _("Imports may connect only to %(hosts)s (LEPTON_IMPORT_ALLOWED_HOSTS); %(host)s is not one of them.") % {
            "hosts": ", ".join(allowed),
            "host": parsed.host,
        }
        raise Invalid(message, fields={"url": [message]}, code="host_not_allowed")
    forbidden = address_problem(parsed.host)
    if forbidden:
        message = _(
            "%(host)s leads to %(address)s, a link-local or reserved address (such as a cloud metadata service); "
            "imports may not connect there."
        ) % {
            "host": parsed.host,
            "address": forbidden,
        }
        raise Invalid(message, fields={"url": [message]}, code="host_not_allowed")
    if _is_platform_database(parsed):
        message = _("That is Lepton's own database; imports read from production systems, not from the platform.")
        raise Invalid(message, fields={"url": [message]}, code="platform_database")
    if password is None:
        password = parsed.password
    return dataclasses.replace(parsed, password=None), password


LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


def _is_platform_database(parsed) -> bool:
    """Whether the URL names the database this platform runs on (whose tables hold every department's data)."""
    own = settings.DATABASES["default"]
    if parsed.scheme != "postgresql" or not own["ENGINE"].endswith("postgresql"):
        return False
    from django.db import connection

    names = {own.get("NAME"), connection.settings_dict.get("NAME")}
    host = (own.get("HOST") or "").lower()
    same_host = parsed.host.lower() == host or (parsed.host.lower() in LOOPBACK and host in LOOPBACK)
    return same_host and parsed.port == int(own.get("PORT") or 5432) and parsed.database in names


def _checked_query(query, scheme: str) -> str:
    from datalake.engine.dbimport import check_select

    try:
        return check_select(query, dialect=scheme)
    except IngestError as exc:
        message = translated(exc.message)
        raise Invalid(message, fields={"query": [message]}, code=exc.code) from None


def _checked_interval(minutes) -> int | None:
    if minutes in (None, ""):
        return None
    low, high = settings.LEPTON_IMPORT_MIN_INTERVAL_MINUTES, 366 * 24 * 60
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        message = _("Give the interval in whole minutes, from %(low)s to %(high)s, or leave it empty to run by hand.") % {
            "low": low,
            "high": high,
        }
        raise Invalid(message, fields={"interval_minutes": [message]})
    return minutes


def _may_set_up(actor, dataset: Dataset) -> None:
    policy.require(actor, "view", dataset)
    if not policy.can(actor, "manage", dataset.department):
        raise Forbidden(_("Maintainers set up database imports (they hold credentials)."))
    if dataset.is_deleted:
        raise Conflict(_("The dataset is in the trash; restore it first."), code="dataset_deleted")


def database_import_create(
    *,
    actor,
    dataset: Dataset,
    url: str,
    query: str,
    password: str | None = None,
    interval_minutes: int | None = None,
    enabled: bool = True,
) -> DatabaseImport:
    """Make `dataset` read its versions from a database (maintainers). Nothing runs until asked or due.

    The password (given apart, or inside the URL) is stored encrypted; the URL is kept without it.
    """
    _may_set_up(actor, dataset)
    parsed, password = _parsed_url(url, password)
    query = _checked_query(query, parsed.scheme)
    interval = _checked_interval(interval_minutes)
    with transaction.atomic():
        if DatabaseImport.objects.filter(dataset=dataset).exists():
            raise Conflict(_("This dataset already has a database import; change that one."), code="import_exists")
        db_import = DatabaseImport.objects.create(
            dataset=dataset,
            department=dataset.department,
            url=parsed.without_password(),
            password_encrypted=crypto.encrypt(password) if password else "",
            query=query,
            interval_minutes=interval,
            enabled=bool(enabled),
            next_run_at=timezone.now() if interval and enabled else None,
            created_by=actor,
        )
        audit.record(
            actor=actor,
            action="import.create",
            obj=db_import,
            changes={"url": db_import.url, "query": query[:2000], "interval_minutes": interval, "password_set": bool(password)},
        )
    return db_import


def database_import_update(*, actor, db_import: DatabaseImport, password: str | None = None, **values) -> DatabaseImport:
    """Change the URL, query, interval or enabled flag (maintainers); `password` replaces the stored one ("" clears it)."""
    unknown = set(values) - set(IMPORT_FIELDS)
    if unknown:
        raise Invalid(
            _("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            fields={f: [_("Unknown field.")] for f in unknown},
        )
    _may_set_up(actor, db_import.dataset)
    if "url" in values:
        parsed, in_url = _parsed_url(values["url"], password)
        values["url"] = parsed.without_password()
        password = in_url if password is None else password
    scheme = (values.get("url") or db_import.url).split("://", 1)[0]
    if "query" in values or "url" in values:
        values["query"] = _checked_query(values.get("query", db_import.query), scheme)
    if "interval_minutes" in values:
        values["interval_minutes"] = _checked_interval(values["interval_minutes"])
    if "enabled" in values:
        values["enabled"] = bool(values["enabled"])
    with transaction.atomic():
        db_import = DatabaseImport.objects.select_for_update().get(pk=db_import.pk)
        changes = audit.diff(db_import, IMPORT_FIELDS, values)
        if password is not None:
            db_import.password_encrypted = crypto.encrypt(password) if password else ""
            changes["password_set"] = bool(password)
        if not changes:
            return db_import
        for field, value in values.items():
            setattr(db_import, field, value)
        if db_import.interval_minutes and db_import.enabled:
            if db_import.next_run_at is None or "interval_minutes" in changes or "enabled" in changes:
                db_import.next_run_at = timezone.now()
        else:
            db_import.next_run_at = None
        db_import.updated_at = timezone.now()
        db_import.save()
        audit.record(actor=actor, action="import.update", obj=db_import, changes=changes)
    return db_import


def database_import_delete(*, actor, db_import: DatabaseImport) -> None:
    """Stop importing (maintainers): the dataset and its versions stay, the credentials go."""
    _may_set_up(actor, db_import.dataset)
    with transaction.atomic():
        audit.record(actor=actor, action="import.delete", obj=db_import, changes={"url": db_import.url})
        db_import.delete()


def database_import_run(*, actor, db_import: DatabaseImport) -> DatasetVersion:
    """Queue one run now (members of the department); its version is pending until published."""
    policy.require(actor, "use", db_import)
    if db_import.dataset.is_deleted:
        raise Conflict(_("The dataset is in the trash; restore it first."), code="dataset_deleted")
    return _submit(actor, db_import, scheduled=False)


def _submit(actor, db_import: DatabaseImport, *, scheduled: bool) -> DatasetVersion:
    with transaction.atomic():
        db_import = DatabaseImport.objects.select_for_update().get(pk=db_import.pk)
        running = db_import.dataset.versions.filter(status=VersionStatus.PENDING, source="import").first()
        if running is not None:
            raise Conflict(_("A run of this import is already queued or running."), code="import_running")
        version = DatasetVersion.objects.create(
            dataset=db_import.dataset, source="import", created_by=actor, options={"import": str(db_import.pk)}
        )
        job = job_submit(
            actor=actor,
            department=db_import.department,
            kind=IMPORT_KIND,
            params={"version": str(version.pk)},
            user_request=False,
        )
        version.job = job
        version.save(update_fields=["job"])
        if db_import.interval_minutes and db_import.enabled:
            db_import.next_run_at = timezone.now() + timedelta(minutes=db_import.interval_minutes)
            db_import.save(update_fields=["next_run_at"])
        audit.record(
            actor=actor,
            action="import.run",
            obj=db_import,
            changes={"version": str(version.pk), "scheduled": scheduled},
        )
    return version


def imports_submit_due(now=None) -> list[str]:
    """Queue a run of every enabled import whose time has come (the dispatcher calls this; see settings).

    A run acts for the person who set the import up; when they may no longer start jobs in the
    department, the import is disabled with that reason instead of running as nobody.
    """
    now = now or timezone.now()
    queued = []
    due = DatabaseImport.objects.filter(enabled=True, next_run_at__lte=now, dataset__deleted_at__isnull=True)
    for db_import in due.select_related("dataset", "department", "created_by"):
        owner = db_import.created_by
        if owner is None or not owner.is_active or not policy.can(owner, "submit", db_import.department):
            message = _(
                "Disabled: the person who set up this import can no longer run jobs here; a maintainer must save it again."
            )
            DatabaseImport.objects.filter(pk=db_import.pk).update(
                enabled=False, next_run_at=None, last_status=ImportStatus.FAILED, last_message=message
            )
            continue
        try:
            version = _submit(owner, db_import, scheduled=True)
        except Conflict:  # the last run is still going: look again at the next interval
            DatabaseImport.objects.filter(pk=db_import.pk).update(next_run_at=now + timedelta(minutes=db_import.interval_minutes))
            continue
        queued.append(str(version.pk))
    return queued


def _record(db_import_id, status: str, message: str, now=None) -> None:
    DatabaseImport.objects.filter(pk=db_import_id).update(
        last_status=status, last_message=message[:2000], last_run_at=now or timezone.now()
    )


def import_execute(version_id, *, progress=lambda pct, msg: None) -> DatasetVersion | None:
    """Run a queued import: read the rows, and publish them unless identical to the latest version.

    Returns the published or failed version, or None when the rows were unchanged (the pending
    version is then removed: an unchanged run adds nothing). Idempotent like version_ingest.
    """
    from datalake.engine.dbimport import import_query, parse_database_url

    version = DatasetVersion.objects.select_related("dataset__department").filter(pk=version_id).first()
    if version is None or version.status != VersionStatus.PENDING:
        return version
    db_import = DatabaseImport.objects.filter(pk=version.options.get("import")).first()
    if db_import is None:
        return version_fail(version, _("The database import was deleted before this run started."), {})
    try:
        password = crypto.decrypt(db_import.password_encrypted) if db_import.password_encrypted else None
    except crypto.CredentialError as exc:
        _record(db_import.pk, ImportStatus.FAILED, str(exc))
        return version_fail(version, str(exc), {"code": "credential_error"})
    url = dataclasses.replace(parse_database_url(db_import.url), password=password)
    with tempfile.TemporaryDirectory(prefix="lepton-import-") as folder:
        out = os.path.join(folder, "import.parquet")
        progress(5, _("Reading from %(host)s") % {"host": url.host})
        try:
            result = import_query(
                url,
                db_import.query,
                out,
                timeout_s=settings.LEPTON_IMPORT_TIMEOUT_SECONDS,
                max_rows=settings.LEPTON_IMPORT_MAX_ROWS,
                progress=lambda rows: progress(30, _("%(rows)s rows read") % {"rows": rows}),
            )
        except IngestError as exc:
            _record(db_import.pk, ImportStatus.FAILED, translated(exc.message))
            return version_fail(version, exc.message, {"code": exc.code, "details": exc.details})
        latest = version.dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
        if latest is not None and latest.parquet_sha256 == result.sha256:
            with transaction.atomic():
                if DatasetVersion.objects.filter(pk=version.pk, status=VersionStatus.PENDING).delete()[0]:
                    message = _("Unchanged since v%(number)s: no new version.") % {"number": latest.number}
                    _record(db_import.pk, ImportStatus.UNCHANGED, message)
                    audit.record(actor=None, action="import.unchanged", obj=db_import, changes={"version": latest.number})
            return None
        names = {c.identifier: c.name for c in result.columns}
        report = {**_jsonable(dataclasses.asdict(result)), "source": db_import.url}
        finished = version_finish(version, out, names=names, report=report, progress=progress)
    if finished.status == VersionStatus.PUBLISHED:
        _record(
            db_import.pk,
            ImportStatus.PUBLISHED,
            _("Published v%(number)s with %(rows)s rows.") % {"number": finished.number, "rows": finished.row_count},
        )
    else:
        _record(db_import.pk, ImportStatus.FAILED, finished.error_message)
    return finished


def database_import_for(actor, dataset: Dataset) -> DatabaseImport | None:
    """The dataset's import, if the actor may see it (members of the department)."""
    db_import = DatabaseImport.objects.filter(dataset=dataset).first()
    if db_import is None or not policy.can(actor, "view", db_import):
        return None
    return db_import
