"""Batch prediction: a dataset version in, a new version of an output dataset out, as a Job.

The output keeps every input column and adds `prediction` (and `probability_<class>` for
classifiers); it is published like any dataset version (profiled, checked, within the
department's quota) with lineage from the input version and from the model version.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

from django.db import transaction
from django.utils.translation import gettext as _

from datalake import selectors as datalake_selectors
from datalake.models import Dataset, DatasetVersion, VersionStatus
from datalake.services import dataset_create, lineage_add, version_fail, version_finish
from lepton import audit, policy
from lepton.errors import Forbidden, Invalid, NotFound, ServiceError
from lepton.jobs.services import job_submit
from lepton.storage import get_storage
from models_repo.engine.spec import column_kind
from models_repo.models import ModelVersion, PredictionLog, RegisteredModel

BATCH_KIND = "models_repo.batch_predict"
BATCH_TASKS = ("classification", "regression")
CHUNK_ROWS = 50_000


def _check_columns(version: ModelVersion, data: DatasetVersion) -> None:
    """Every input the model takes is in the data with a usable type, or a 400 naming the column."""
    columns = {c["name"]: c["type"] for c in data.schema}
    missing = [c["name"] for c in version.input_schema if c["name"] not in columns]
    if missing:
        message = _("The dataset lacks the model's input columns: %(columns)s.") % {"columns": ", ".join(missing)}
        raise Invalid(message, fields={"dataset_version": [message]}, code="missing_columns")
    for column in version.input_schema:
        if column.get("type") in ("number", "integer") and column_kind(columns[column["name"]]) not in ("integer", "number"):
            message = _("Column %(column)s is %(type)s in the dataset; the model takes numbers.") % {
                "column": column["name"],
                "type": columns[column["name"]],
            }
            raise Invalid(message, fields={"dataset_version": [message]}, code="wrong_type")


def batch_predict_start(
    *, actor, model: RegisteredModel, version: ModelVersion, dataset_version: DatasetVersion, output_name: str
) -> DatasetVersion:
    """Queue predictions of `version` over `dataset_version` into a new version of the output dataset.

    The output dataset (in the model's department) is found by the slug of `output_name` or
    created; the person must be allowed to use the model and the data and to add versions there.
    Returns the pending output version (its job does the work).
    """
    from django.utils.text import slugify

    if not policy.can(actor, "view", model):
        raise NotFound()
    if not policy.can(actor, "use", model):
        raise Forbidden(_("Your role does not allow predicting with this model (members and above may)."))
    if version.model_id != model.pk:
        raise NotFound()
    if model.archived_at is not None or version.archived_at is not None:
        message = _("An archived model or version does not predict; restore it first.")
        raise Invalid(message, fields={"version": [message]}, code="archived")
    if (version.task or "") not in BATCH_TASKS:
        message = _("Batch prediction takes tabular classification and regression versions; v%(n)s is %(task)s.") % {
            "n": version.number,
            "task": version.task or "?",
        }
        raise Invalid(message, fields={"version": [message]}, code="unsupported_task")
    dataset = dataset_version.dataset
    if not datalake_selectors.datasets_visible(actor).filter(pk=dataset.pk).exists():
        raise NotFound()
    if not policy.can(actor, "use", dataset):
        raise Forbidden(_("Your role does not allow using this dataset (members and above may)."))
    if dataset_version.status != VersionStatus.PUBLISHED:
        message = _("Only a published version can be predicted on.")
        raise Invalid(message, fields={"dataset_version": [message]}, code="not_published")
    _check_columns(version, dataset_version)
    name = (output_name or "").strip()
    if not name:
        message = _("Name the dataset that receives the predictions.")
        raise Invalid(message, fields={"output_name": [message]})
    slug = slugify(name)
    with transaction.atomic():
        output = Dataset.objects.filter(department=model.department, slug=slug, deleted_at__isnull=True).first() if slug else None
        if output is None:
            output = dataset_create(
                actor=actor, department=model.department, name=name, slug=slug,
                description=_("Predictions of %(model)s.") % {"model": str(model)}, tags=["predictions"],
            )  # fmt: skip
        elif not policy.can(actor, "change", output):
            raise Forbidden(_("Your role does not allow adding versions to %(dataset)s.") % {"dataset": output.name})
        if output.pk == dataset.pk:
            message = _("The predictions cannot be written into the dataset they are made from.")
            raise Invalid(message, fields={"output_name": [message]})
        pending = DatasetVersion.objects.create(
            dataset=output,
            source="prediction",
            created_by=actor,
            options={"batch": {"model": str(model.pk), "version": str(version.pk), "input": str(dataset_version.pk)}},
        )
        job = job_submit(
            actor=actor, department=model.department, kind=BATCH_KIND, params={"version": str(pending.pk)},
            user_request=False,
        )  # fmt: skip
        pending.job = job
        pending.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="model.batch_predict",
            obj=model,
            changes={"version": version.number, "input": str(dataset_version), "output": f"{output.slug}"},
        )
    return pending


def batch_predict_execute(output_id, *, progress=lambda pct, msg: None) -> DatasetVersion:
    """Predict a queued batch in this worker and publish its output version (idempotent)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datalake.engine.sniff import safe_identifiers
    from datalake.services.sensitive import inherit_classification
    from models_repo import serving
    from models_repo.services.training import _named_parquet

    pending = DatasetVersion.objects.select_related("dataset__department").get(pk=output_id)
    if pending.status != VersionStatus.PENDING:
        return pending
    batch = pending.options.get("batch", {})
    version = ModelVersion.objects.select_related("model").filter(pk=batch.get("version")).first()
    data = DatasetVersion.objects.filter(pk=batch.get("input"), status=VersionStatus.PUBLISHED).first()
    if version is None or data is None:
        return version_fail(pending, _("The model version or the input data was deleted before the batch started."), {})
    started = time.perf_counter()
    storage = get_storage()
    try:
        serving.predictor(version)  # loaded (ONNX where converted), checksum-verified, before any row is read
    except (serving.ArtifactUnavailable, serving.VersionNotReady) as exc:
        return version_fail(pending, exc.message, {"code": exc.code})
    names = [c["name"] for c in version.input_schema]
    with tempfile.TemporaryDirectory(prefix="lepton-batch-") as folder:
        progress(5, _("Reading %(dataset)s") % {"dataset": str(data)})
        try:
            source = pq.ParquetFile(_named_parquet(storage, data, folder, actor=pending.created_by, purpose="batch"))
        except ServiceError as exc:
            return version_fail(pending, exc.message, {"code": exc.code})
        out_path = os.path.join(folder, "predictions.parquet")
        writer = None
        rows = 0
        try:
            for batch_table in source.iter_batches(batch_size=CHUNK_ROWS):
                table = pa.Table.from_batches([batch_table])
                frame = table.to_pandas(date_as_object=False)
                _runtime, predicted = serving.predict_frame(version, frame[names])
                columns = {n: table.column(n) for n in table.column_names}
                columns[_free("prediction", columns)] = pa.array(predicted["predictions"])
                probabilities = predicted.get("probabilities") or []
                for key in probabilities[0] if probabilities else []:
                    columns[_free(f"probability_{key}", columns)] = pa.array(
                        [p.get(key) for p in probabilities], type=pa.float64()
                    )
                original = list(columns)
                identifiers = safe_identifiers(original)
                out = pa.table(list(columns.values()), names=identifiers)
                if writer is None:
                    metadata = json.dumps(
                        [{"name": n, "identifier": i} for i, n in zip(identifiers, original, strict=True)], ensure_ascii=False
                    )
                    schema = out.schema.with_metadata({"lepton.columns": metadata})
                    writer = pq.ParquetWriter(out_path, schema, compression="zstd")
                writer.write_table(out.cast(writer.schema))
                rows += out.num_rows
                progress(min(55, 5 + int(50 * rows / max(1, source.metadata.num_rows))), _("Predicted %(n)s rows") % {"n": rows})
        except (ValueError, TypeError, KeyError) as exc:
            if writer is not None:
                writer.close()
            return version_fail(pending, _("The model could not predict these rows: %(error)s") % {"error": exc}, {})
        if writer is None:
            return version_fail(pending, _("The input version has no rows."), {})
        writer.close()
        seconds = time.perf_counter() - started
        report = {
            "columns": _columns(out_path, dict(zip(identifiers, original, strict=True))),
            "format": "prediction",
            "rows": rows,
            "model": str(version.model),
            "model_version": version.number,
            "input": str(data),
            "seconds": round(seconds, 3),
        }

        def lineage(published):
            lineage_add(from_obj=data, to_obj=published, via=pending.job)
            lineage_add(from_obj=version, to_obj=published, via=pending.job)
            PredictionLog.objects.create(
                model=version.model, version=version, rows=rows, latency_ms=seconds * 1000, source="batch",
                outputs=[{"dataset_version": str(published.pk)}],
            )  # fmt: skip

        # The input's sensitive columns carried into the output stay classified (and encrypted).
        inherit_classification(pending, [data], original)
        return version_finish(
            pending, out_path, names=dict(zip(identifiers, original, strict=True)), report=report, progress=progress,
            after_publish=lineage,
        )  # fmt: skip


def _columns(path: str, names: dict[str, str]) -> list[dict[str, str]]:
    """The version's schema: each column's name, identifier and duckdb type, in file order."""
    import duckdb

    with duckdb.connect() as con:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
    return [{"name": names.get(row[0], row[0]), "identifier": row[0], "type": row[1]} for row in described]


def _free(name: str, taken) -> str:
    """`name`, or `name_2`, `name_3`… when the input already has such a column."""
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate
