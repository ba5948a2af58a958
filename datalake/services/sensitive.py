"""Sensitive columns: classification, who reads them in clear, encryption at rest, the one read path.

- A maintainer classifies a dataset's columns `personal` or `confidential` with a masking mode
  (`hide` or `hash`); everything else is `public` (`columns_classify`, audited).
- Clear values are for the owning department only: its maintainers and admins, and members it
  granted `UnmaskGrant` to (`may_unmask`). Everyone else, other departments reading through a
  share included, sees the masked values. Every read in clear of a classified column is audited,
  one `dataset.unmask` event per read.
- Every read of a version's rows (preview, image grid, CSV/Parquet downloads, the SQL console,
  recipes, training and batch predictions, scheduling) goes through `readable_parquet`.
- A version whose dataset has classified columns is stored with those columns (and the footer)
  encrypted with the data key (`encrypt_for_storage` at publication, `version_reencrypt` when a
  column is classified later or the key is rotated). The rows of a version never change: a
  re-encryption writes a new stored object and drops the old one (and the raw upload).
- No key, or the wrong one: classifying, uploading into a classified dataset and reading an
  encrypted version fail with a clear message; nothing is ever written unencrypted instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from datalake.engine.sensitive import DataKeyError, KeyRing, encrypt_file, rewrite
from datalake.models import ColumnLevel, Dataset, DatasetVersion, MaskMode, UnmaskGrant, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Invalid, NotFound
from lepton.i18n import translated
from lepton.models import ROLE_RANK, Role
from lepton.storage import get_storage

SENSITIVE_LEVELS = (ColumnLevel.PERSONAL, ColumnLevel.CONFIDENTIAL)


# --- the data key ----------------------------------------------------------------------------


def key_ring() -> KeyRing:
    """The configured data keys; DataKeyError when LEPTON_DATA_KEY is missing or malformed."""
    return KeyRing.from_text(settings.LEPTON_DATA_KEY, settings.LEPTON_DATA_KEY_PREVIOUS)


def _key_conflict(exc: DataKeyError, doing: str) -> Conflict:
    message = _(
        "%(doing)s needs the data key of sensitive columns, and it is not usable: %(reason)s "
        "Ask an operator to set LEPTON_DATA_KEY (see docs/operations.md, “Data keys and rotation”)."
    ) % {"doing": doing, "reason": translated(exc.message)}
    return Conflict(message, code=exc.code)


def require_data_key(dataset: Dataset, doing: str) -> KeyRing | None:
    """The key ring when the dataset has classified columns (Conflict if it is not usable), else None."""
    if not dataset.sensitive_columns:
        return None
    try:
        return key_ring()
    except DataKeyError as exc:
        raise _key_conflict(exc, doing) from None


# --- who sees what ---------------------------------------------------------------------------


def may_unmask(user, dataset: Dataset) -> bool:
    """Whether `user` reads the dataset's sensitive columns in clear.

    Superusers; maintainers and admins of the owning department; members of it holding an
    UnmaskGrant. Never through a share, never platform staff by being staff.
    """
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    role = policy.role_in(user, dataset.department_id)
    if role is None:
        return False
    if ROLE_RANK[role] >= ROLE_RANK[Role.MAINTAINER]:
        return True
    return UnmaskGrant.objects.filter(department_id=dataset.department_id, user_id=user.pk).exists()


def classified(version: DatasetVersion) -> dict[str, str]:
    """{stored identifier: mask mode} of the version's columns its dataset classifies."""
    rules = version.dataset.sensitive_columns or {}
    out = {}
    for column in version.schema or []:
        rule = rules.get(column.get("name"))
        if rule:
            out[column.get("identifier", column["name"])] = rule.get("mode", MaskMode.HIDE)
    return out


def masked_profile(version: DatasetVersion, user) -> dict:
    """The version's profile, without the values of classified columns for a reader who may not unmask.

    Counts (rows, nulls, distinct) stay; min, max, mean, quantiles, histograms and top values go.
    """
    profile = version.profile or {}
    rules = version.dataset.sensitive_columns or {}
    if not rules or not profile.get("columns") or may_unmask(user, version.dataset):
        return profile
    columns = []
    for column in profile["columns"]:
        if column.get("name") in rules:
            keep = {k: column.get(k) for k in ("name", "type", "kind", "count", "nulls", "distinct", "null_fraction")}
            column = {**keep, "min": None, "max": None, "mean": None, "std": None, "quantiles": {}}
            column.update({"histogram": None, "top_values": [], "masked": rules[column["name"]].get("mode", "hide")})
        columns.append(column)
    return {**profile, "columns": columns}


# "(e.g. '…')" in an English warning, "（例如 '…'）" in a Chinese one (stored in the uploader's language).
_EXAMPLE = re.compile(r" ?[(（](?:e\.g\.|例如) ?'.*?'[)）]")


def masked_reports(version: DatasetVersion, user, *, unmask: bool | None = None) -> tuple[list, dict]:
    """The version's check results and ingest report, without values of classified columns.

    A failed check keeps its message and count but loses its sample of failing values when it
    looks at a classified column; ingest warnings lose their "(e.g. '…')" examples. A reader
    who may unmask gets both as stored. `unmask` is may_unmask's answer when the caller knows it.
    """
    results, report = version.check_results or [], version.ingest_report or {}
    rules = version.dataset.sensitive_columns or {}
    if not rules or (unmask if unmask is not None else may_unmask(user, version.dataset)):
        return results, report
    masked_results = []
    for result in results:
        check = result.get("check") or {}
        looked_at = [check.get("column")] + list(check.get("columns") or [])
        if any(name in rules for name in looked_at if isinstance(name, str)):
            result = {**result, "sample": [], "masked": True}
        masked_results.append(result)
    if report.get("warnings"):
        report = {**report, "warnings": [_EXAMPLE.sub("", str(w)) for w in report["warnings"]]}
    return masked_results, report


@dataclass
class Readable:
    """A local Parquet file a reader may scan, and what was masked in it."""

    path: str
    names: dict[str, str]  # {stored identifier: original name} of the columns in the file
    masked: dict[str, str] = field(default_factory=dict)  # {original name: hide|hash}
    clear: bool = True  # classified columns are in clear (the reader may unmask)


@contextlib.contextmanager
def readable_parquet(
    version: DatasetVersion, user, *, purpose: str, check_access: bool = True, folder: str | None = None
) -> Iterator[Readable]:
    """The one read path of a version's rows: a Parquet file with what `user` may read.

    A version with no classified column and no encryption is read where it is stored. Otherwise
    the rows are decrypted into a temporary plain copy (in `folder` when given and left there for
    the caller to remove, else removed on exit): in clear for a reader who may unmask (audited,
    one event per read), with hidden columns left out and hashed ones hashed for everyone else.
    `check_access=False` is for jobs whose access was checked when they were asked for.
    """
    if check_access and not policy.can(user, "view", version):
        raise NotFound()
    if version.status != VersionStatus.PUBLISHED:
        raise Conflict(_("Only published versions can be read."), code="version_not_published")
    names = {c["identifier"]: c["name"] for c in version.schema if "identifier" in c}
    stored = get_storage().verified_local_path(version.parquet_sha256)
    rules = classified(version)
    encrypted = bool(version.encryption_key_id)
    if not rules and not encrypted:
        yield Readable(stored, names)
        return
    clear = may_unmask(user, version.dataset)
    try:
        ring = key_ring()
    except DataKeyError as exc:
        raise _key_conflict(exc, _("Reading %(dataset)s") % {"dataset": version.dataset.name}) from None
    own = folder is None
    where = tempfile.mkdtemp(prefix="lepton-read-") if own else folder
    try:
        target = os.path.join(where, f"readable-{version.pk}-{os.urandom(4).hex()}.parquet")
        hide = [] if clear else [i for i, mode in rules.items() if mode == MaskMode.HIDE]
        hashed = [] if clear else [i for i, mode in rules.items() if mode == MaskMode.HASH]
        try:
            kept = rewrite(stored, target, ring, encrypted=encrypted, hide=hide, hashed=hashed)
        except DataKeyError as exc:
            raise _key_conflict(exc, _("Reading %(dataset)s") % {"dataset": version.dataset.name}) from None
        masked = {names.get(i, i): mode for i, mode in rules.items()}
        if clear and rules:
            with transaction.atomic():
                audit.record(
                    actor=user,
                    action="dataset.unmask",
                    obj=version.dataset,
                    changes={"version": version.number, "purpose": purpose, "columns": sorted(masked)},
                )
        yield Readable(target, {i: names.get(i, i) for i in kept}, {} if clear else masked, clear)
    finally:
        if own:
            shutil.rmtree(where, ignore_errors=True)


# --- classification --------------------------------------------------------------------------


def columns_classify(*, actor, dataset: Dataset, columns) -> Dataset:
    """Set the classification of some columns: {name: {"level": public|personal|confidential, "mode": hide|hash}}.

    Maintainers of the dataset's department. Names must be columns of the latest published
    version. Classifying needs a usable data key; the published versions are then encrypted
    again (new stored objects, same rows) so that the classified columns are encrypted at rest.
    """
    policy.require(actor, "view", dataset)
    policy.require(actor, "share", dataset)  # maintainers (the role that shares the dataset)
    if not isinstance(columns, dict) or not columns:
        message = _("Give an object {column: {level, mode}} with at least one column.")
        raise Invalid(message, fields={"columns": [message]})
    latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
    known = [c["name"] for c in (latest.schema if latest else [])]
    wanted, errors = {}, {}
    for name, rule in columns.items():
        key = f"columns.{name}"
        if name not in known:
            errors[key] = [
                _("The latest version has no column “%(name)s” (its columns: %(columns)s).")
                % {"name": name, "columns": ", ".join(known[:30]) or _("none yet: upload a version first")}
            ]
            continue
        if not isinstance(rule, dict):
            errors[key] = [_("Give an object with level and mode.")]
            continue
        unknown = set(rule) - {"level", "mode"}
        level, mode = rule.get("level", ColumnLevel.PUBLIC), rule.get("mode", MaskMode.HIDE)
        if unknown:
            errors[key] = [_("Unknown fields: %(fields)s.") % {"fields": ", ".join(sorted(map(str, unknown)))}]
        elif level not in ColumnLevel.values:
            errors[key] = [_("Level must be one of: %(choices)s.") % {"choices": ", ".join(ColumnLevel.values)}]
        elif mode not in MaskMode.values:
            errors[key] = [_("Mode must be one of: %(choices)s.") % {"choices": ", ".join(MaskMode.values)}]
        else:
            wanted[name] = None if level == ColumnLevel.PUBLIC else {"level": level, "mode": mode}
    if errors:
        raise Invalid(next(iter(errors.values()))[0], fields=errors, code="invalid_classification")
    rules = dict(dataset.sensitive_columns or {})
    for name, rule in wanted.items():
        if rule is None:
            rules.pop(name, None)
        else:
            rules[name] = rule
    if rules:
        try:
            key_ring()
        except DataKeyError as exc:
            raise _key_conflict(exc, _("Classifying columns")) from None
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        before = dict(dataset.sensitive_columns or {})
        if before == rules:
            return dataset
        dataset.sensitive_columns = rules
        dataset.updated_at = timezone.now()
        dataset.save(update_fields=["sensitive_columns", "updated_at"])
        changed = {n: [before.get(n), rules.get(n)] for n in sorted(set(before) | set(rules)) if before.get(n) != rules.get(n)}
        audit.record(actor=actor, action="dataset.classify", obj=dataset, changes={"columns": changed})
    versions_reencrypt(dataset=dataset, actor=actor)
    return dataset


def inherit_classification(version: DatasetVersion, inputs, columns: list[str]) -> None:
    """Classify the output's columns that carry an input's classified column (same name), before it is stored.

    A recipe or batch prediction run by someone who may unmask reads clear values; its output is
    encrypted and masked like its inputs instead of publishing them in clear. Audited as the
    platform's doing.
    """
    inherited = {}
    for source in inputs:
        for name, rule in (source.dataset.sensitive_columns or {}).items():
            if name in columns:
                inherited.setdefault(name, rule)
    if not inherited:
        return
    with transaction.atomic():
        output = Dataset.objects.select_for_update().get(pk=version.dataset_id)
        rules = dict(output.sensitive_columns or {})
        added = {n: r for n, r in inherited.items() if n not in rules}
        if added:
            output.sensitive_columns = {**rules, **added}
            output.save(update_fields=["sensitive_columns"])
            audit.record(actor=None, action="dataset.classify", obj=output, changes={"columns": added, "inherited": True})
    version.dataset.sensitive_columns = {**rules, **added}


# --- encryption at rest ----------------------------------------------------------------------


def encrypt_for_storage(version: DatasetVersion, parquet_path: str, names: dict[str, str]) -> tuple[str, list[str], str]:
    """(path to store, encrypted stored columns, key id) for a new version's Parquet.

    The plain file is returned untouched when the dataset classifies none of its columns;
    otherwise an encrypted copy beside it. DataKeyError when a key is needed and not usable:
    the caller fails the version rather than store it in clear.
    """
    rules = version.dataset.sensitive_columns or {}
    columns = sorted(i for i, n in names.items() if n in rules)
    if not columns:
        return parquet_path, [], ""
    ring = key_ring()
    target = parquet_path + ".encrypted"
    encrypt_file(parquet_path, target, columns, ring)
    return target, columns, ring.current_id


def version_reencrypt(version: DatasetVersion, ring: KeyRing, *, actor=None) -> bool:
    """Store the version again encrypted under the current key if its classified columns or key need it.

    Idempotent: a version already encrypted with the current key over every classified column is
    left alone (False). Columns once encrypted stay encrypted. The old stored object, and the raw
    upload, are deleted once no other version names them.
    """
    needed = set(classified(version)) | set(version.encrypted_columns or [])
    if not needed or (needed <= set(version.encrypted_columns or []) and version.encryption_key_id == ring.current_id):
        return False
    storage = get_storage()
    old_sha, raw_sha = version.parquet_sha256, version.raw_sha256
    source = storage.verified_local_path(old_sha)
    folder = tempfile.mkdtemp(prefix="lepton-encrypt-")
    try:
        target = os.path.join(folder, "data.parquet")
        encrypt_file(source, target, sorted(needed), ring, encrypted=bool(version.encryption_key_id))
        with open(target, "rb") as stream:
            blob = storage.put_stream(stream)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with transaction.atomic():
        locked = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        if locked.parquet_sha256 != old_sha:  # someone else re-encrypted it meanwhile
            transaction.on_commit(lambda: drop_unneeded(blob.sha256))
            return False
        locked.parquet_sha256, locked.parquet_bytes = blob.sha256, blob.size
        locked.encrypted_columns, locked.encryption_key_id = sorted(needed), ring.current_id
        locked.save(update_fields=["parquet_sha256", "parquet_bytes", "encrypted_columns", "encryption_key_id"])
        audit.record(
            actor=actor,
            action="dataset.encrypt",
            obj=version.dataset,
            changes={"version": version.number, "columns": sorted(needed), "key": ring.current_id},
        )
        transaction.on_commit(lambda: drop_unneeded(old_sha, raw_sha))
    version.refresh_from_db()
    return True


def drop_unneeded(*shas: str) -> None:
    """Delete the stored objects among `shas` that nothing still needs.

    A Parquet or image a version names is needed; a raw upload only while a version that names it
    is pending or failed (ingest, retry): a published version never reads its raw upload again,
    and for a classified dataset the raw upload is the last clear copy of its rows.
    """
    from datalake.models import VersionBlob

    storage = get_storage()
    for sha in {s for s in shas if s}:
        needed = (
            DatasetVersion.objects.filter(parquet_sha256=sha).exists()
            or VersionBlob.objects.filter(sha256=sha).exists()
            or DatasetVersion.objects.filter(raw_sha256=sha).exclude(status=VersionStatus.PUBLISHED).exists()
        )
        if not needed:
            storage.delete(sha)


def versions_reencrypt(*, dataset: Dataset | None = None, actor=None) -> dict:
    """Encrypt again every published version that needs it (classification changed, key rotated).

    Returns {"encrypted": n, "unchanged": n}. Conflict when the data key is not usable.
    """
    try:
        ring = key_ring()
    except DataKeyError as exc:
        raise _key_conflict(exc, _("Encrypting versions")) from None
    versions = DatasetVersion.objects.filter(status=VersionStatus.PUBLISHED).select_related("dataset")
    if dataset is not None:
        versions = versions.filter(dataset=dataset)
    else:
        versions = versions.exclude(encryption_key_id="") | versions.exclude(dataset__sensitive_columns={})
    counts = {"encrypted": 0, "unchanged": 0}
    for version in versions.order_by("dataset_id", "number"):
        try:
            done = version_reencrypt(version, ring, actor=actor)
        except DataKeyError as exc:
            raise _key_conflict(exc, _("Encrypting %(version)s") % {"version": version}) from None
        counts["encrypted" if done else "unchanged"] += 1
    return counts


# --- unmask grants ---------------------------------------------------------------------------


def unmask_grant(*, actor, department, user) -> UnmaskGrant:
    """Let a member of `department` read its sensitive columns in clear (the department's maintainers)."""
    policy.require(actor, "manage", department)
    if policy.role_in(user, department.pk) is None:
        message = _("%(user)s is not a member of %(department)s.") % {"user": user.get_username(), "department": department.name}
        raise Invalid(message, fields={"user": [message]})
    with transaction.atomic():
        grant, created = UnmaskGrant.objects.get_or_create(department=department, user=user, defaults={"granted_by": actor})
        if created:
            audit.record(actor=actor, action="dataset.unmask_grant", obj=department, changes={"user": user.get_username()})
    return grant


def unmask_revoke(*, actor, department, user) -> None:
    """Take back an unmask grant (the department's maintainers)."""
    policy.require(actor, "manage", department)
    with transaction.atomic():
        deleted, _rows = UnmaskGrant.objects.filter(department=department, user=user).delete()
        if deleted:
            audit.record(actor=actor, action="dataset.unmask_revoke", obj=department, changes={"user": user.get_username()})
