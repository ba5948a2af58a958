"""Versions registered from uploaded model files: ONNX, .keras and skops, never pickles.

The file is spooled to a temporary folder (bounded memory, size-capped), recognised from its
bytes and checked there (models_repo.engine.uploaded); only a file that passes is stored in the
lake (content-addressed) and becomes a version, so a refused upload leaves no version and no
blob. ONNX and skops files are checked completely in the request and are `ready` at once. A
.keras file is loaded with safe_mode in a worker (`models_repo.validate_upload`: TensorFlow
costs seconds and hundreds of MB, never paid by a web process): its version is `validating`
until then and `invalid`, with the reason, when Keras refuses it; only ready versions serve or
take an alias.
"""

from __future__ import annotations

import os
import tempfile

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from lepton import audit, policy
from lepton.collab.services import watchers_notify
from lepton.errors import Conflict, Forbidden, Invalid
from lepton.i18n import translated
from lepton.jobs.services import job_submit
from lepton.storage import CHUNK, BlobNotFound, CorruptBlob, get_storage
from models_repo.engine import uploaded
from models_repo.engine.uploaded import UploadRefused
from models_repo.models import ModelVersion, RegisteredModel, VersionSource, VersionState

from .training import _refuse_external

VALIDATE_KIND = "models_repo.validate_upload"
FLAVORS = {uploaded.ONNX: "onnx", uploaded.SKOPS: "sklearn", uploaded.KERAS: "keras"}


def _refused(exc: UploadRefused) -> Invalid:
    """The engine's refusal (a phrase) as the API's 400, in the request's language."""
    message = translated(exc.message)
    return Invalid(message, fields={exc.field: [message]}, code=exc.code)


def _spool(stream, path: str, limit: int) -> int:
    """Copy the upload to `path`, refusing an empty file and stopping as soon as it passes `limit`."""
    too_large = _("The file is larger than the %(limit)s bytes a model upload may have (LEPTON_MODEL_UPLOAD_MAX_BYTES).") % {
        "limit": limit
    }
    if getattr(stream, "size", None) is not None and stream.size > limit:
        raise Invalid(too_large, fields={"file": [too_large]}, code="too_large")
    size = 0
    with open(path, "wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise Invalid(too_large, fields={"file": [too_large]}, code="too_large")
            out.write(chunk)
    if size == 0:
        message = _("The file is empty.")
        raise Invalid(message, fields={"file": [message]}, code="empty_file")
    return size


def version_upload(
    *, actor, model: RegisteredModel, stream, filename: str, input_schema=None, output=None, description: str = ""
) -> ModelVersion:
    """Register the next version of `model` from an uploaded ONNX, .keras or skops file (maintainers).

    `input_schema` (a list of {name, type, nullable}, or its JSON) is read from the file where
    the file names its inputs (ONNX graph inputs, a pipeline's feature_names_in_) and required
    otherwise; `output` ({"classes": [...]}) names the classes of a graph or Keras model whose
    file does not. Pickle and joblib files, unknown formats, damaged files, skops files with
    types off the allowlist, empty and too-large files are refused (Invalid) with nothing stored.
    """
    policy.require(actor, "view", model)
    if not policy.can(actor, "change", model):
        raise Forbidden(_("Maintainers register versions of a model."))
    if model.archived_at is not None:
        raise Conflict(_("%(model)s is archived; restore it before adding versions.") % {"model": model.name}, code="archived")
    _refuse_external(model, "file")
    try:
        schema = uploaded.clean_schema(input_schema)
        classes = uploaded.clean_classes(output)
    except UploadRefused as exc:
        raise _refused(exc) from None
    with tempfile.TemporaryDirectory(prefix="lepton-model-upload-") as folder:
        path = os.path.join(folder, "upload")
        _spool(stream, path, settings.LEPTON_MODEL_UPLOAD_MAX_BYTES)
        try:
            kind = uploaded.detect(path, filename)
            if kind == uploaded.ONNX:
                info = uploaded.inspect_onnx(path, schema, classes)
            elif kind == uploaded.SKOPS:
                info = uploaded.inspect_skops(path, schema)
            else:
                info = uploaded.inspect_keras_archive(path, schema, classes)
        except UploadRefused as exc:
            raise _refused(exc) from None
        with open(path, "rb") as f:
            blob = get_storage().put_stream(f)
    keras = kind == uploaded.KERAS
    with transaction.atomic():
        locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            model=locked,
            number=number,
            source=VersionSource.UPLOAD,
            flavor=FLAVORS[kind],
            task=info["task"],
            artifact_sha256=blob.sha256,
            artifact_bytes=blob.size,
            input_schema=info["input_schema"],
            output={"classes": info["classes"]} if info["classes"] else {},
            description=description or "",
            status=VersionState.VALIDATING if keras else VersionState.READY,
            created_by=actor,
        )
        if not locked.task:
            RegisteredModel.objects.filter(pk=locked.pk).update(task=info["task"])
        audit.record(
            actor=actor,
            action="version.upload",
            obj=locked,
            changes={
                "version": number,
                "format": kind,
                "filename": (filename or "")[:200],
                "sha256": blob.sha256,
                "bytes": blob.size,
                "status": version.status,
            },
        )
        watchers_notify(
            locked, _("New version v%(number)s of %(model)s, uploaded.") % {"number": number, "model": locked.name}, actor=actor
        )
        if keras:
            job_submit(
                actor=actor, department=locked.department, kind=VALIDATE_KIND, params={"version": str(version.pk)},
                user_request=False,
            )  # fmt: skip
    return version


def version_validate(version_id) -> ModelVersion:
    """Load an uploaded .keras version with safe_mode and run it on one row; ready or invalid (idempotent).

    Runs in a worker (the job kind `models_repo.validate_upload`); imports TensorFlow.
    """
    version = ModelVersion.objects.select_related("model").get(pk=version_id)
    if version.status != VersionState.VALIDATING:
        return version
    reason = ""
    with tempfile.TemporaryDirectory(prefix="lepton-validate-") as folder:
        path = os.path.join(folder, "model.keras")  # Keras wants the suffix; the lake names blobs by checksum
        try:
            with open(path, "wb") as out:
                get_storage().copy_to(version.artifact_sha256, out)
            uploaded.validate_keras(path, version.input_schema, version.output.get("classes"))
        except (CorruptBlob, BlobNotFound):
            reason = _("The stored file is missing or does not match its checksum.")
        except UploadRefused as exc:
            reason = translated(exc.message)  # the job's language: the person who uploaded it
    status = VersionState.INVALID if reason else VersionState.READY
    with transaction.atomic():
        changed = ModelVersion.objects.filter(pk=version.pk, status=VersionState.VALIDATING).update(
            status=status, status_reason=reason
        )
        if changed:
            audit.record(
                actor=None,
                action="version.validate",
                obj=version.model,
                changes={"version": version.number, "status": status, "reason": reason},
            )
    version.refresh_from_db()
    return version


def not_ready_reason(version: ModelVersion) -> str:
    """Why `version` may not serve or take an alias; empty when it is ready."""
    if version.status == VersionState.VALIDATING:
        return _("v%(number)s is still being validated (an uploaded .keras file is loaded once in a worker first).") % {
            "number": version.number
        }
    if version.status == VersionState.INVALID:
        return _("v%(number)s was refused at validation: %(reason)s") % {
            "number": version.number,
            "reason": version.status_reason,
        }
    return ""
