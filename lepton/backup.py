"""Back up and restore a whole installation: the database and the lake blobs it names, in one tar file.

    manage.py backup /backups/lepton-2026-12-06.tar     # .tar.gz / .tgz: gzip-compressed
    manage.py restore /backups/lepton-2026-12-06.tar [--force]

Why one archive and not a folder: one file is moved, copied off-site and checksummed as a
whole, and it is written under a temporary name and renamed when complete, so a crash never
leaves something that looks like a finished backup. Inside (`tar -tf` lists it):

    lepton-backup/database.jsonl     every row of every table (Django's serializer, one object a line)
    lepton-backup/blobs/ab/cdef…     each blob the database names, under its sha256
    lepton-backup/manifest.json      written last: format, migrations, row counts, the database
                                     file's sha256, every blob's sha256 and size, the audit head

Why the database goes through Django's serializer rather than pg_dump: the same archive works
for the embedded SQLite and PostgreSQL (and moves between them), needs no client binary of the
server's exact version, and restore loads it in one transaction of our own. Two things make it
exact, which `manage.py dumpdata` is not: datetimes keep their microseconds (Django's encoder
cuts them to milliseconds, and the audit chain hashes `at` to the microsecond), and every row
keeps its primary key, contenttypes and permissions included (natural keys would renumber users,
whose ids the sealed audit events name). Restore therefore replaces the target's contenttypes
and permissions by the archive's, and refuses a target whose applied migrations differ.

Consistency: the rows are read in one transaction (REPEATABLE READ on PostgreSQL, one snapshot);
blobs are immutable and content-addressed, so copying them afterwards gives exactly the bytes
the snapshot names. A blob deleted in between (a purge committed after the snapshot) fails the
backup with its name: run it again.

Restore checks everything before it writes anything: the archive reads to its end, every
blob's bytes hash to their name, the database file matches its checksum, every blob the
manifest lists is there. Then blobs go to the lake (content-addressed: existing ones are kept)
and the database is emptied and loaded in one transaction, which is rolled back if anything
fails, including a blob the loaded rows name that the lake lacks or an audit chain that
verified at backup and no longer does.

Which blobs the database names is asked of each installed app (`blob_references()` on its
AppConfig, yielding (sha256, what names it)), so this core module imports none of the parts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from lepton import audit
from lepton.storage import CHUNK, BlobNotFound, BlobStorage, CorruptBlob, get_storage

FORMAT = "lepton-backup"
FORMAT_VERSION = 1
ROOT = "lepton-backup"
MANIFEST = f"{ROOT}/manifest.json"
DATABASE = f"{ROOT}/database.jsonl"
BLOBS = f"{ROOT}/blobs/"
LOAD_BATCH = 1000
# Rows that `migrate` itself writes: a target holding only these counts as empty.
MIGRATION_MADE = {"contenttypes.contenttype", "auth.permission"}

Log = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do. Nothing was changed."""


@dataclass
class Summary:
    rows: Counter = field(default_factory=Counter)
    blobs: int = 0
    blob_bytes: int = 0
    blobs_written: int = 0
    audit: dict = field(default_factory=dict)


class ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder without its loss: datetimes and times keep their microseconds."""

    def default(self, o):
        if isinstance(o, datetime):
            return o.isoformat()
        if isinstance(o, time):
            return o.isoformat()
        return super().default(o)


def _models():
    """Every concrete table Django manages, in a stable order (app label, model name)."""
    found = [m for m in apps.get_models() if m._meta.managed and not m._meta.proxy]
    return sorted(found, key=lambda m: m._meta.label_lower)


def blob_references() -> Iterator[tuple[str, str]]:
    """(sha256, what names it) for every blob the database names, from each app that declares them."""
    for config in apps.get_app_configs():
        refs = getattr(config, "blob_references", None)
        if refs is not None:
            yield from ((sha, owner) for sha, owner in refs() if sha)


def _applied_migrations() -> list[str]:
    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        raise BackupError("The database has no tables yet: run `python manage.py migrate` first.")
    return sorted(f"{app}.{name}" for app, name in recorder.applied_migrations())


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


# --- backup ---------------------------------------------------------------------------------


def create_backup(path: str, *, storage: BlobStorage | None = None, log: Log = lambda line: None) -> Summary:
    """Write the database and every blob it names to the tar file `path` (which must not exist)."""
    storage = storage or get_storage()
    if os.path.exists(path):
        raise BackupError(f"{path} already exists; give a new file name (a backup is never overwritten).")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BackupError(f"The folder {folder} does not exist.")
    mode = "w:gz" if path.endswith((".gz", ".tgz")) else "w"
    partial = f"{path}.partial"
    summary = Summary()
    work = tempfile.mkdtemp(prefix="lepton-backup-", dir=folder)
    try:
        dump = os.path.join(work, "database.jsonl")
        manifest = _dump_database(dump, summary, log)
        with tarfile.open(partial, mode) as tar:
            tar.add(dump, arcname=DATABASE)
            os.unlink(dump)
            manifest["blobs"] = _copy_blobs(storage, manifest.pop("_refs"), tar, work, summary, log)
            data = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(timezone.now().timestamp()), 0o644
            tar.addfile(info, io.BytesIO(data))
        with open(partial, "rb+") as done:
            os.fsync(done.fileno())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _dump_database(dump: str, summary: Summary, log: Log) -> dict:
    """Serialize every table from one snapshot; returns the manifest without its blob list."""
    digest, size = hashlib.sha256(), 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        migrations = _applied_migrations()
        with open(dump, "w", encoding="utf-8", newline="\n") as out:
            for model in _models():
                label = model._meta.label_lower
                rows = model._base_manager.order_by("pk").iterator(chunk_size=2000)
                counter = _CountingWriter(out)
                serializers.serialize("jsonl", rows, stream=counter, cls=ExactJSONEncoder)
                summary.rows[label] = counter.objects
                if counter.objects:
                    log(f"database: {label} {counter.objects} rows")
        refs: dict[str, str] = {}
        for sha, owner in blob_references():
            refs.setdefault(sha, owner)
        report = audit.verify()
    with open(dump, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    summary.audit = {"ok": report.ok, "checked": report.checked, "pending": report.pending, "head": report.head}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": timezone.now().astimezone(UTC).isoformat(),
        "database": {"vendor": connection.vendor, "sha256": digest.hexdigest(), "bytes": size},
        "migrations": migrations,
        "rows": dict(sorted(summary.rows.items())),
        "audit": summary.audit,
        "_refs": refs,
    }


class _CountingWriter:
    """A text stream that counts the objects (lines) the jsonl serializer writes through it."""

    def __init__(self, out):
        self.out, self.objects = out, 0

    def write(self, text: str) -> int:
        self.objects += text.count("\n")
        return self.out.write(text)


def _copy_blobs(storage: BlobStorage, refs: dict[str, str], tar: tarfile.TarFile, work: str, summary: Summary, log: Log) -> list:
    listed = []
    total = len(refs)
    for number, sha in enumerate(sorted(refs), start=1):
        local = os.path.join(work, sha)
        try:
            with open(local, "wb") as out:
                size = storage.copy_to(sha, out)  # verifies the checksum while copying
        except BlobNotFound:
            raise BackupError(
                f"The lake lacks blob {sha}, which {refs[sha]} names. If it was purged while the backup ran, "
                f"run the backup again; otherwise restore it from an older copy of the lake."
            ) from None
        except CorruptBlob:
            raise BackupError(f"Blob {sha} ({refs[sha]}) is damaged in the lake: its bytes do not match its name.") from None
        tar.add(local, arcname=f"{BLOBS}{sha[:2]}/{sha[2:]}")
        os.unlink(local)
        listed.append({"sha256": sha, "bytes": size})
        summary.blobs += 1
        summary.blob_bytes += size
        if number == total or number % 100 == 0:
            log(f"blobs: {number}/{total} ({_human(summary.blob_bytes)})")
    return listed


# --- restore --------------------------------------------------------------------------------


def restore_backup(
    path: str, *, force: bool = False, storage: BlobStorage | None = None, log: Log = lambda line: None
) -> Summary:
    """Check the archive whole, write its blobs to the lake, then replace the database in one transaction."""
    storage = storage or get_storage()
    if not os.path.isfile(path):
        raise BackupError(f"{path} is not a file.")
    manifest, blob_members = _verify_archive(path, log)
    _check_target(manifest, force)
    summary = Summary(audit=manifest.get("audit", {}))
    _write_blobs(path, manifest, blob_members, storage, summary, log)
    _load_database(path, manifest, storage, summary, log)
    return summary


def _open(path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{path} is not a Lepton backup, or it is damaged: {exc}.") from None


def _damaged(path: str, exc: Exception) -> BackupError:
    return BackupError(f"{path} is damaged or truncated ({exc or type(exc).__name__}); nothing was changed.")


def _verify_archive(path: str, log: Log) -> tuple[dict, dict[str, str]]:
    """Read the whole archive once: the manifest, and the sha256 of every member. Writes nothing."""
    manifest = None
    database_digest = None
    blob_members: dict[str, str] = {}  # sha256 → member name
    try:
        with _open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                src = tar.extractfile(member)
                digest = hashlib.sha256()
                if member.name == MANIFEST:
                    data = src.read()
                    try:
                        manifest = json.loads(data)
                    except ValueError:
                        raise BackupError(f"{path}: its manifest is not valid JSON; nothing was changed.") from None
                    continue
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                if member.name == DATABASE:
                    database_digest = digest.hexdigest()
                elif member.name.startswith(BLOBS):
                    sha = member.name[len(BLOBS) :].replace("/", "")
                    if digest.hexdigest() != sha:
                        raise BackupError(
                            f"{path}: blob {sha} in the archive does not match its checksum (damaged); nothing was changed."
                        )
                    blob_members[sha] = member.name
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise _damaged(path, exc) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} has no Lepton backup manifest (not a backup, or truncated); nothing was changed.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} is backup format {manifest.get('format_version')}; this release reads {FORMAT_VERSION}.")
    if not all(key in manifest for key in ("created_at", "database", "migrations", "rows", "blobs")):
        raise BackupError(f"{path}: its manifest is incomplete; nothing was changed.")
    if database_digest is None:
        raise BackupError(f"{path} holds no database file; nothing was changed.")
    if database_digest != manifest["database"]["sha256"]:
        raise BackupError(f"{path}: the database file does not match its checksum (damaged); nothing was changed.")
    missing = [b["sha256"] for b in manifest["blobs"] if b["sha256"] not in blob_members]
    if missing:
        raise BackupError(
            f"{path} lacks {len(missing)} of the blobs its manifest lists (first: {missing[0]}); nothing was changed."
        )
    size = sum(b["bytes"] for b in manifest["blobs"])
    log(f"checked: database file and {len(blob_members)} blobs ({_human(size)}), made {manifest['created_at']}")
    return manifest, blob_members


def _user_rows() -> Counter:
    """Rows in tables other than those `migrate` fills."""
    found = Counter()
    for model in _models():
        label = model._meta.label_lower
        if label not in MIGRATION_MADE:
            count = model._base_manager.count()
            if count:
                found[label] = count
    return found


def _check_target(manifest: dict, force: bool) -> None:
    try:
        here = _applied_migrations()
    except DatabaseError as exc:
        raise BackupError(f"The database cannot be read: {exc}") from None
    if here != manifest["migrations"]:
        only_here = sorted(set(here) - set(manifest["migrations"]))
        only_there = sorted(set(manifest["migrations"]) - set(here))
        detail = "; ".join(
            part
            for part in (
                f"applied here, not in the backup: {', '.join(only_here[:5])}" if only_here else "",
                f"in the backup, not applied here: {', '.join(only_there[:5])}" if only_there else "",
            )
            if part
        )
        raise BackupError(
            f"The database's migrations differ from the backup's ({detail}). Restore with the Lepton release that "
            "made the backup into a database migrated by it (then upgrade as usual); nothing was changed."
        )
    rows = _user_rows()
    if rows and not force:
        shown = ", ".join(f"{label} {count}" for label, count in rows.most_common(5))
        raise BackupError(
            f"The database is not empty ({shown}…). Restore replaces everything in it: run again with --force "
            "to do that, or restore into a new database. Nothing was changed."
        )


def _write_blobs(path: str, manifest: dict, members: dict[str, str], storage: BlobStorage, summary: Summary, log: Log) -> None:
    wanted = {b["sha256"] for b in manifest["blobs"]}
    total = len(wanted)
    done = 0
    try:
        with _open(path) as tar:
            for member in tar:
                sha = member.name[len(BLOBS) :].replace("/", "") if member.name.startswith(BLOBS) else ""
                if sha not in wanted:
                    continue
                done += 1
                summary.blobs += 1
                summary.blob_bytes += member.size
                if not storage.exists(sha):
                    stored = storage.put_stream(tar.extractfile(member))
                    if stored.sha256 != sha:  # the file changed since it was checked
                        storage.delete(stored.sha256)
                        raise BackupError(f"{path} changed while being restored (blob {sha}); the database was not touched.")
                    summary.blobs_written += 1
                if done == total or done % 100 == 0:
                    kept = done - summary.blobs_written
                    log(f"blobs: {done}/{total} ({summary.blobs_written} written, {kept} already in the lake)")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(path, exc) from None


def _load_database(path: str, manifest: dict, storage: BlobStorage, summary: Summary, log: Log) -> None:
    try:
        with _open(path) as tar, transaction.atomic():
            _empty_tables()
            stream = io.TextIOWrapper(tar.extractfile(DATABASE), encoding="utf-8")
            _insert(serializers.deserialize("jsonl", stream), summary)
            _reset_sequences()
            _check_loaded(manifest, summary, storage)
            audit.record(
                actor=None,
                action="platform.restore",
                changes={
                    "archive": os.path.basename(path),
                    "made": manifest["created_at"],
                    "rows": sum(summary.rows.values()),
                    "blobs": summary.blobs,
                },
            )
    except (DeserializationError, IntegrityError) as exc:
        raise BackupError(f"{path}: the database file could not be loaded ({exc}); the database was not changed.") from None
    finally:
        ContentType.objects.clear_cache()
    for label in sorted(summary.rows):
        log(f"database: {label} {summary.rows[label]} rows")


def _empty_tables() -> None:
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    connection.ops.execute_sql_flush(connection.ops.sql_flush(no_style(), tables, reset_sequences=False, allow_cascade=False))


def _insert(objects, summary: Summary) -> None:
    """Insert deserialized objects keeping their primary keys: in batches per model, m2m links after."""
    batch, m2m = [], []

    def flush():
        if batch:
            model = type(batch[0])
            if model._meta.parents:  # bulk_create refuses multi-table inheritance: one raw save each
                for obj in batch:
                    obj.save_base(raw=True, force_insert=True)
            else:
                model._base_manager.bulk_create(batch)  # no save(), no signals: the rows as they were
            summary.rows[model._meta.label_lower] += len(batch)
            batch.clear()
        for obj, links in m2m:
            for name, pks in links.items():
                getattr(obj, name).set(pks)
        m2m.clear()

    for item in objects:
        obj = item.object
        if batch and (type(batch[0]) is not type(obj) or len(batch) >= LOAD_BATCH):
            flush()
        batch.append(obj)
        if item.m2m_data:
            m2m.append((obj, {name: pks for name, pks in item.m2m_data.items() if pks}))
    flush()


def _reset_sequences() -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), _models())
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _check_loaded(manifest: dict, summary: Summary, storage: BlobStorage) -> None:
    """Inside the load transaction: the rows are all there, every blob they name is in the lake, and an
    audit chain that verified at backup still does. Raises BackupError (the transaction rolls back)."""
    expected = {label: count for label, count in manifest["rows"].items() if count}
    loaded = {label: count for label, count in summary.rows.items() if count}
    if expected != loaded:
        differ = sorted(set(expected.items()) ^ set(loaded.items()))[:5]
        raise BackupError(f"The loaded rows differ from the manifest's counts ({differ}); nothing was changed in the database.")
    listed = {b["sha256"] for b in manifest["blobs"]}
    for sha, owner in blob_references():
        if sha not in listed and not storage.exists(sha):
            raise BackupError(f"{owner} names blob {sha}, which neither the archive nor the lake holds; nothing was changed.")
    if manifest.get("audit", {}).get("ok"):
        report = audit.verify()
        if not report.ok:
            raise BackupError(
                f"The restored audit chain does not verify (event {report.broken_id}: {report.reason}) although it did "
                "when the backup was made; nothing was changed in the database."
            )
