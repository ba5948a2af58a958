"""Datasets: create, edit, declared checks, storage use, trash, purge, diff and lineage."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from datalake.engine.checks import CheckSpecError, validate_check
from datalake.models import Dataset, DatasetVersion, Recipe, VersionBlob, VersionStatus
from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.i18n import translated, translated_fields
from lepton.models import Department, LineageEdge
from lepton.storage import get_storage

EDITABLE_FIELDS = ["name", "description", "tags", "discoverable", "checks"]


def clean_tags(tags) -> list[str]:
    """Tags as stored: lowercase, trimmed, unique, sorted, at most 30 (datasets and models alike)."""
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
    tags = clean_tags(tags)
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
        values["tags"] = clean_tags(values["tags"])
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
            fields = {f"checks.{index}.{k}": v for k, v in translated_fields(exc.fields).items()}
            raise Invalid(translated(exc.message), fields=fields) from None
    return cleaned


def department_storage_used(department: Department) -> int:
    """Bytes of raw uploads, Parquet and images kept for the department's datasets (trash included)."""
    totals = (
        DatasetVersion.objects.filter(dataset__department=department)
        .exclude(status=VersionStatus.FAILED)
        .aggregate(raw=Sum("raw_bytes"), parquet=Sum("parquet_bytes"), blobs=Sum("blob_bytes"))
    )
    return (totals["raw"] or 0) + (totals["parquet"] or 0) + (totals["blobs"] or 0)


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


def blobs_in_use(shas) -> set[str]:
    """The digests among `shas` that some version still names (raw upload, Parquet or image)."""
    shas, used = sorted(shas), set()
    for start in range(0, len(shas), 5000):  # SQLite allows at most 32 766 parameters per query
        chunk = shas[start : start + 5000]
        used.update(DatasetVersion.objects.filter(raw_sha256__in=chunk).values_list("raw_sha256", flat=True))
        used.update(DatasetVersion.objects.filter(parquet_sha256__in=chunk).values_list("parquet_sha256", flat=True))
        used.update(VersionBlob.objects.filter(sha256__in=chunk).values_list("sha256", flat=True))
    return used


def dataset_purge(*, actor, dataset: Dataset) -> None:
    """Delete a trashed dataset for good, with the stored bytes no other version shares (department admins)."""
    policy.require(actor, "view", dataset)
    if not policy.can(actor, "administer", dataset.department):
        raise Forbidden(_("Only a department admin may purge datasets."))
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.deleted_at is None:
            raise Conflict(_("Move the dataset to the trash before purging it."), code="not_deleted")
        _purge(actor, dataset, "dataset.purge")


def trash_expire(limit: int = 100) -> int:
    """Purge datasets that have been in the trash longer than TRASH_DAYS (the dispatcher's periodic pass).

    Each in its own transaction, re-checked under its lock (a restore in between wins); the audit
    event names the system as the actor. Returns how many were purged.
    """
    cutoff = timezone.now() - timedelta(days=TRASH_DAYS)
    purged = 0
    for pk in list(Dataset.objects.filter(deleted_at__lt=cutoff).order_by("deleted_at").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            dataset = Dataset.objects.select_for_update().filter(pk=pk, deleted_at__lt=cutoff).first()
            if dataset is not None:
                _purge(None, dataset, "dataset.expire")
                purged += 1
    return purged


def _purge(actor, dataset: Dataset, action: str) -> None:
    """Delete a locked, trashed dataset's rows now and its stored bytes no other version shares after commit."""
    storage = get_storage()
    blobs = set()
    for raw, parquet in dataset.versions.values_list("raw_sha256", "parquet_sha256"):
        blobs.update(b for b in (raw, parquet) if b)
    blobs.update(VersionBlob.objects.filter(version__dataset=dataset).values_list("sha256", flat=True))
    audit.record(actor=actor, action=action, obj=dataset, changes={"slug": dataset.slug, "versions": dataset.versions.count()})
    # A recipe that reads from or writes into the dataset cannot run without it: it goes too
    # (the versions it made elsewhere and their lineage stay).
    for recipe in Recipe.objects.filter(Q(input_dataset=dataset) | Q(output_dataset=dataset)).select_for_update():
        audit.record(actor=actor, action="recipe.delete", obj=recipe, changes={"reason": f"{action} {dataset.slug}"})
        recipe.delete()
    dataset.delete()
    shared = blobs_in_use(blobs)
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
    from .sensitive import masked_profile

    # Profiles without the values of sensitive columns for a reader who may not unmask them.
    a_profile, b_profile = masked_profile(a, actor), masked_profile(b, actor)
    result = version_diff({"rows": a.row_count, "profile": a_profile}, {"rows": b.row_count, "profile": b_profile})
    return {"from": old_n, "to": new_n, **result}


LINEAGE_HOPS = 3  # dataset version → run → model version → predictions: how far past other objects the graph follows


def dataset_lineage(*, actor, dataset: Dataset) -> dict:
    """Edges into and out of the dataset's versions, as plain data, and on through other objects.

    From the dataset's versions the graph follows edges through objects that are not dataset
    versions (training runs, model versions, jobs) up to LINEAGE_HOPS steps, so a model trained
    on the data and the predictions it made appear; it stops at other datasets' versions.
    Every node is labelled only for people who may see it.
    """
    policy.require(actor, "view", dataset)
    version_ids = [str(pk) for pk in dataset.versions.values_list("pk", flat=True)]
    vtype = audit.object_type(DatasetVersion)
    found: dict[int, LineageEdge] = {}
    frontier = {(vtype, i) for i in version_ids}
    seen = set(frontier)
    for _hop in range(LINEAGE_HOPS):
        if not frontier:
            break
        query = Q(pk__in=[])
        for kind in {k for k, _i in frontier}:
            ids = [i for k, i in frontier if k == kind]
            query |= Q(from_type=kind, from_id__in=ids) | Q(to_type=kind, to_id__in=ids)
        step = [e for e in LineageEdge.objects.filter(query) if e.pk not in found]
        found.update((e.pk, e) for e in step)
        frontier = set()
        for edge in step:
            for node in ((edge.from_type, edge.from_id), (edge.to_type, edge.to_id)):
                if node not in seen:
                    seen.add(node)
                    if node[0] != vtype:  # walk on through runs and models, not into other datasets
                        frontier.add(node)
    edges = sorted(found.values(), key=lambda e: e.pk)
    ids = {e.from_id for e in edges if e.from_type == vtype} | {e.to_id for e in edges if e.to_type == vtype}
    versions = {str(v.pk): v for v in DatasetVersion.objects.filter(pk__in=ids).select_related("dataset__department")}
    others = _lineage_objects(actor, {(e.from_type, e.from_id) for e in edges} | {(e.to_type, e.to_id) for e in edges}, vtype)

    def node(kind, object_id):
        v = versions.get(object_id) if kind == vtype else None
        if v is None:
            return others.get((kind, object_id), {"type": kind, "id": object_id})
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


def _lineage_objects(actor, nodes: set[tuple[str, str]], skip: str) -> dict[tuple[str, str], dict]:
    """Labels and links of the lineage's other objects (runs, model versions…), found by their type's model.

    The data lake does not import the parts that add edges: each object is looked up by its
    "app_label.model" type, shown by its str() and get_absolute_url() when the person may view
    it, and as "an object you cannot see" (or "deleted") otherwise.
    """
    from django.apps import apps

    out: dict[tuple[str, str], dict] = {}
    for kind in {k for k, _i in nodes if k != skip}:
        try:
            model = apps.get_model(kind)
        except (LookupError, ValueError):
            continue
        ids = [i for k, i in nodes if k == kind]
        try:
            objects = {str(o.pk): o for o in model.objects.filter(pk__in=ids)}
        except (ValueError, TypeError):
            continue
        for object_id in ids:
            obj = objects.get(object_id)
            if obj is None:
                out[(kind, object_id)] = {"type": kind, "id": object_id, "label": _("deleted")}
            elif not policy.can(actor, "view", obj):
                out[(kind, object_id)] = {"type": kind, "id": object_id, "label": _("an object you cannot see")}
            else:
                url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else ""
                out[(kind, object_id)] = {"type": kind, "id": object_id, "label": str(obj), "url": url}
    return out
