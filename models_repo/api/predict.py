"""POST /api/v1/models/<department>/<model>/predict — predictions from a registered model.

Bodies (MLflow's scoring protocol works unchanged): `{"inputs": [...]}`,
`{"dataframe_split": {"columns": [...], "data": [[...]]}}`, `{"dataframe_records": [{...}]}`,
`{"instances": [...]}`; rows are objects keyed by column or lists in the input schema's order.
Sequence models take windows (lists of rows of channel values); image models take
`{"inputs": [{"image": "<base64>"}]}` or multipart files named `image`.

The version is the `production` alias by default, `?alias=` another, `?version=` a number.
The token needs the `predict` scope and the person `use` on the model (own department or a
share). Inputs are checked against the version's input schema before the model sees them:
a missing column, a value of the wrong type, NaN or infinity where the model takes none →
400 naming the field and row; extra columns are ignored and reported.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import math
import random
import threading
import time
from itertools import chain

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from prometheus_client import Counter, Histogram
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from datalake.services.recalls import blocked_annotation, refuse_recalled
from lepton import policy
from lepton.api.serializers import ErrorSerializer
from lepton.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from lepton.i18n import translated
from models_repo import serving
from models_repo.api import fastpath
from models_repo.engine.errors import TrainingError, said
from models_repo.models import ModelAlias, ModelVersion, PredictionLog, RegisteredModel

logger = logging.getLogger("lepton.serving")
SEQUENCE_TASKS = {"sequence_classification", "forecasting"}
ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}


def _invalid(message: str, field: str) -> Invalid:
    return Invalid(message, fields={field: [message]}, code="invalid_input")


def _resolve(user, department: str, slug: str, params) -> tuple[RegisteredModel, ModelVersion, str]:
    alias = "" if params.get("version") else params.get("alias", "production")
    current = None
    if alias:  # the usual request: the alias, its version and its model in one query
        found = (
            ModelAlias.objects.select_related("version", "model__department")
            .filter(model__department__slug=department, model__slug=slug, name=alias)
            .annotate(recall_blocked=blocked_annotation())  # read by refuse_recalled
        )
        current = next(iter(found.order_by()[:1]), None)  # unique: no ORDER BY needed
    if current is not None:
        model = current.model
        current.version.model = model
        current.version.recall_blocked = current.recall_blocked
    else:
        model = RegisteredModel.objects.select_related("department").filter(department__slug=department, slug=slug).first()
    if model is None or not policy.can(user, "view", model):
        raise NotFound(_("No model %(model)s that you may use.") % {"model": f"{department}/{slug}"})
    if not policy.can(user, "use", model):
        raise Forbidden(_("Your role does not allow predictions with this model (members and above may)."))
    if model.archived_at is not None:
        message = _("%(model)s is archived and does not predict; a maintainer can restore it.") % {
            "model": f"{department}/{slug}"
        }
        raise Conflict(message, code="archived")
    if params.get("version"):
        try:
            number = int(params["version"])
        except ValueError:
            raise _invalid(_("version must be a whole number."), "version") from None
        version = ModelVersion.objects.filter(model=model, number=number, archived_at__isnull=True).first()
        if version is None:
            raise NotFound(_("%(model)s has no version %(number)s.") % {"model": f"{department}/{slug}", "number": number})
        return model, version, ""
    if current is None:
        raise NotFound(
            _("%(model)s has no '%(alias)s' alias yet: promote a version, or ask for ?version=N.")
            % {"model": f"{department}/{slug}", "alias": alias}
        )
    return model, current.version, alias


def _rows(body) -> list:
    """The list of rows from any of the accepted body shapes."""
    if not isinstance(body, dict):
        raise _invalid(
            _("The body must be a JSON object with inputs, dataframe_split, dataframe_records or instances."), "inputs"
        )
    keys = [k for k in ("inputs", "dataframe_split", "dataframe_records", "instances") if k in body]
    if len(keys) != 1:
        raise _invalid(_("Give exactly one of inputs, dataframe_split, dataframe_records or instances."), "inputs")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) or not isinstance(value.get("data"), list):
            raise _invalid(_("dataframe_split needs columns (a list) and data (a list of rows)."), "dataframe_split")
        columns = value["columns"]
        rows = []
        for index, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise _invalid(
                    _("Row %(index)s has %(count)s values for %(columns)s columns.")
                    % {"index": index, "count": len(row) if isinstance(row, list) else 0, "columns": len(columns)},
                    f"dataframe_split.data.{index}",
                )
            rows.append(dict(zip(columns, row, strict=True)))
        return rows
    if isinstance(value, dict) and key == "inputs":  # {"inputs": {"col": [values…]}}
        lengths = {len(v) for v in value.values() if isinstance(v, list)}
        if len(lengths) != 1 or not all(isinstance(v, list) for v in value.values()):
            raise _invalid(_("inputs as an object needs one list of equal length per column."), "inputs")
        n = lengths.pop()
        return [{k: v[i] for k, v in value.items()} for i in range(n)]
    if not isinstance(value, list):
        raise _invalid(_("%(key)s must be a list of rows.") % {"key": key}, key)
    return value


def _check_limit(rows: list) -> None:
    limit = settings.LEPTON_PREDICT_MAX_ROWS
    if not rows:
        raise _invalid(_("Give at least one row."), "inputs")
    if len(rows) > limit:
        raise _invalid(
            _("%(rows)s rows are more than the %(limit)s one request may hold; split them.")
            % {"rows": len(rows), "limit": limit},
            "inputs",
        )


def _number(value, field: str, nullable: bool):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if nullable:
            return None
        raise _invalid(_("%(field)s is missing; the model takes no empty value here.") % {"field": field}, field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _invalid(
                    _("%(field)s must be a number, not %(value)r.") % {"field": field, "value": value}, field
                ) from None
        else:
            raise _invalid(_("%(field)s must be a number, not %(type)s.") % {"field": field, "type": type(value).__name__}, field)
    if isinstance(value, float) and math.isinf(value):
        raise _invalid(_("%(field)s is infinite.") % {"field": field}, field)
    return value


def _table(rows: list, schema: list[dict]) -> tuple[object, list[str]]:
    """A DataFrame in the schema's column order, every value checked; and the ignored column names."""
    import pandas as pd

    names = [c["name"] for c in schema]
    extra: set[str] = set()
    records = []
    for index, row in enumerate(rows):
        if isinstance(row, list):
            if len(row) != len(names):
                raise _invalid(
                    _("Row %(index)s has %(count)s values; the model takes %(expected)s: %(names)s.")
                    % {"index": index, "count": len(row), "expected": len(names), "names": ", ".join(names)},
                    f"inputs.{index}",
                )
            row = dict(zip(names, row, strict=True))
        if not isinstance(row, dict):
            raise _invalid(
                _("Row %(index)s must be an object keyed by column or a list of values.") % {"index": index}, f"inputs.{index}"
            )
        missing = [n for n in names if n not in row]
        if missing:
            message = _("Row %(index)s lacks %(columns)s.") % {"index": index, "columns": ", ".join(missing)}
            raise _invalid(message, f"inputs.{index}.{missing[0]}")
        extra.update(k for k in row if k not in names)
        record = {}
        for column in schema:
            name, kind, nullable = column["name"], column.get("type", "string"), column.get("nullable", True)
            value = row[name]
            field = f"inputs.{index}.{name}"
            if kind in ("number", "integer"):
                record[name] = _number(value, field, nullable)
            elif kind == "boolean":
                if value is None and nullable:
                    record[name] = None
                elif isinstance(value, bool):
                    record[name] = value
                else:
                    raise _invalid(_("%(field)s must be true or false.") % {"field": field}, field)
            else:
                if value is None and not nullable:
                    raise _invalid(_("%(field)s is missing.") % {"field": field}, field)
                record[name] = None if value is None else str(value)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=names)
    for column in schema:
        if column.get("type") == "datetime":
            frame[column["name"]] = pd.to_datetime(frame[column["name"]], errors="coerce")
    return frame, sorted(extra)


def _matrix_frame(body, schema: list[dict]):
    """The DataFrame of a body that is a plain matrix of finite numbers for an all-numeric schema; else None.

    The usual machine-to-machine request (MLflow's dataframe_split with the schema's columns, or
    `instances`/`inputs` as lists of values) is checked column-wise by numpy instead of value by
    value. None hands the body to `_rows` and `_table`, whose per-value checks name the field and
    row of a bad value; a matrix accepted here is one they accept too, read to the same numbers.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(body, dict) or len(body) != 1:
        return None
    (key, value), names = next(iter(body.items())), [c["name"] for c in schema]
    if key == "dataframe_split":
        data = value.get("data") if isinstance(value, dict) and value.get("columns") == names else None
    else:
        data = value if key in ("inputs", "instances") else None
    if not isinstance(data, list) or not 0 < len(data) <= settings.LEPTON_PREDICT_MAX_ROWS:
        return None
    if not names or any(c.get("type") not in ("number", "integer") for c in schema):
        return None
    width = len(names)
    if not all(type(row) is list and len(row) == width for row in data):
        return None
    if not set(map(type, chain.from_iterable(data))) <= {int, float}:  # bool, str, None: the per-value checks
        return None
    matrix = np.array(data, dtype=float)
    if not np.isfinite(matrix).all():
        return None
    return pd.DataFrame(matrix, columns=_column_index(tuple(names)), copy=False)


@functools.lru_cache(maxsize=256)
def _column_index(names: tuple[str, ...]):
    """The schema's column names as a pandas Index, built once per schema (building it costs
    more than the rest of a one-row matrix request; an Index is immutable, so it is shared)."""
    import pandas as pd

    return pd.Index(names, dtype=object)


def table_from_body(body, schema: list[dict]) -> tuple[object, list[str]]:
    """The checked DataFrame of a tabular request body, and the ignored column names."""
    frame = _matrix_frame(body, schema)
    if frame is not None:
        return frame, []
    rows = _rows(body)
    _check_limit(rows)
    return _table(rows, schema)


def _images(request, rows: list | None) -> list[bytes]:
    if request.FILES:
        return [f.read() for f in request.FILES.getlist("image")]
    images = []
    for index, row in enumerate(rows or []):
        data = row.get("image") if isinstance(row, dict) else row
        if not isinstance(data, str):
            raise _invalid(_('Give each image as base64 text under "image".'), f"inputs.{index}.image")
        try:
            images.append(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise _invalid(_("This is not valid base64."), f"inputs.{index}.image") from None
    return images


class _LogBuffer:
    """Prediction logs, written in bulk (one INSERT per batch), never one write per request.

    A batch is written by the request that fills it (BATCH entries), or by a background thread
    once its oldest entry waited LEPTON_PREDICTION_LOG_FLUSH_SECONDS, so a quiet model's logs
    reach the dashboards within seconds; what is left at exit is written then. `background`
    off (the tests' transactions: another thread's connection cannot see their rows) leaves
    the timed flush to explicit flush() calls.
    """

    BATCH = 200

    def __init__(self):
        self.lock = threading.Lock()
        self.items: list[PredictionLog] = []
        self.oldest = 0.0
        self.background = True
        self._thread: threading.Thread | None = None

    def add(self, entry: PredictionLog) -> None:
        with self.lock:
            if not self.items:
                self.oldest = time.monotonic()
            self.items.append(entry)
            batch, self.items = (self.items, []) if len(self.items) >= self.BATCH else ([], self.items)
            if self.background and self._thread is None:
                self._start()
        if batch:
            self._write(batch)

    def flush(self) -> None:
        with self.lock:
            batch, self.items = self.items, []
        if batch:
            self._write(batch)

    def _start(self) -> None:
        import atexit

        self._thread = threading.Thread(target=self._loop, name="lepton-prediction-logs", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def _loop(self) -> None:
        from django.db import close_old_connections

        while True:
            every = max(0.05, float(settings.LEPTON_PREDICTION_LOG_FLUSH_SECONDS))
            time.sleep(every / 2)
            if not self.background:
                continue
            with self.lock:
                due = bool(self.items) and time.monotonic() - self.oldest >= every
                batch, self.items = (self.items, []) if due else ([], self.items)
            if batch:
                self._write(batch)
                close_old_connections()

    @staticmethod
    def _write(batch: list[PredictionLog]) -> None:
        # Losing a batch (a model deleted meanwhile, the database away) must never fail a prediction.
        try:
            with transaction.atomic():
                PredictionLog.objects.bulk_create(batch)
        except DatabaseError as exc:
            logger.warning("dropped %d prediction log entries: %s", len(batch), exc)


prediction_logs = _LogBuffer()

# Per web process, as django-prometheus's request metrics: Prometheus sums the processes' series.
MODEL_LABELS = ["department", "model"]
PREDICTIONS = Counter("lepton_model_predictions", "Prediction requests a model answered.", MODEL_LABELS)
PREDICTION_ERRORS = Counter(
    "lepton_model_prediction_errors", "Prediction requests of a model refused, by HTTP status.", [*MODEL_LABELS, "status"]
)
PREDICTION_LATENCY = Histogram(
    "lepton_model_prediction_latency_seconds",
    "Server time of a model's prediction requests.",
    MODEL_LABELS,
    # monitoring.models.LATENCY_BOUNDS_MS in seconds (models_repo does not import monitoring)
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def _labels(registered) -> tuple[str, str]:
    return registered.department.slug, registered.slug


def log_refused(registered, version, exc: ServiceError | APIException, *, started: float, source: str) -> None:
    """Log a request of a resolved model that was refused (bad input, a body that does not parse, a model that cannot load)."""
    if isinstance(exc, ServiceError):
        status, code = exc.status, exc.code
    else:
        status, code = exc.status_code, exc.default_code
    PREDICTION_ERRORS.labels(*_labels(registered), str(status)).inc()
    prediction_logs.add(
        PredictionLog(
            model=registered, version=version, rows=0, latency_ms=(time.perf_counter() - started) * 1000,
            status_code=status, error=str(code)[:40], source=source,
        )
    )  # fmt: skip


def predict_inputs(registered, version, inputs, *, started: float, source: str, variant: str = "") -> dict:
    """Run checked inputs through the version's model; log the request (every one, off the request path).

    The result says which runtime served (`onnx` for a version converted at registration, or
    its quantised `variant`; `native` otherwise: models_repo.serving.predictor), and carries
    the `prediction_id` under which ground truth may be posted back (monitoring's feedback API).
    The first rows of a LEPTON_PREDICTION_LOG_SAMPLE share of the requests are kept for drift.
    """
    task = version.task or version.output.get("task", "")
    try:
        runtime, result = serving.predict_frame(version, inputs, variant)
    except (ValueError, TrainingError) as exc:
        # The engine's phrase (said) in the request's language; another library's error as it is.
        words = exc.message if isinstance(exc, TrainingError) else said(exc)
        raise _invalid(translated(words), "inputs") from None
    entry = PredictionLog(model=registered, version=version, rows=len(result["predictions"]), source=source)
    result["prediction_id"] = str(entry.prediction_id)
    result["runtime"] = runtime
    if variant:
        result["variant"] = variant
    entry.latency_ms = (time.perf_counter() - started) * 1000
    labels = _labels(registered)
    PREDICTIONS.labels(*labels).inc()
    PREDICTION_LATENCY.labels(*labels).observe(entry.latency_ms / 1000)
    entry.outputs = result["predictions"][: settings.LEPTON_PREDICTION_LOG_MAX_OUTPUTS]
    if task != "image_classification" and random.random() < settings.LEPTON_PREDICTION_LOG_SAMPLE:
        entry.inputs = _jsonable(inputs.head(5).to_dict("records") if hasattr(inputs, "head") else inputs[:5])
    prediction_logs.add(entry)
    return result


def predict_table_rows(registered, version, rows: list, *, source: str) -> tuple[dict, list[str]]:
    """Predictions for rows of a tabular version (the API's checks), with the ignored column names."""
    started = time.perf_counter()
    _check_limit(rows)
    frame, ignored = _table(rows, version.input_schema)
    return predict_inputs(registered, version, frame, started=started, source=source), ignored


class PredictView(APIView):
    required_scope = "predict"
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        summary="Predict with a model's production version (or ?alias=, ?version=); MLflow bodies accepted",
        parameters=[
            OpenApiParameter("department", str, OpenApiParameter.PATH),
            OpenApiParameter("model", str, OpenApiParameter.PATH),
            OpenApiParameter("alias", str, description="Default production"),
            OpenApiParameter("version", int, description="A version number instead of an alias"),
            OpenApiParameter("variant", str, description="A quantised ONNX variant the version offers: float16 or int8"),
        ],
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request, department: str, model: str):
        started = time.perf_counter()
        registered, version, alias = _resolve(request.user, department, model, request.query_params)
        try:
            return self._serve(request, registered, version, alias, started)
        except (ServiceError, APIException) as exc:  # the model's dashboards count refused requests too
            log_refused(registered, version, exc, started=started, source="api")
            raise

    @staticmethod
    def _serve(request, registered, version, alias: str, started: float) -> Response:
        serving.refuse_not_served(version)  # before reading the body: a scheduling policy takes no rows
        refuse_recalled(version)  # trained on recalled data, predictions stopped until acknowledged
        body = request.data if not request.FILES else {}
        task = version.task or version.output.get("task", "")
        ignored: list[str] = []
        tabular = False
        if task == "image_classification":
            images = _images(request, None if request.FILES else _rows(body))
            _check_limit(images)
            inputs = images
        elif task in SEQUENCE_TASKS and version.flavor == "keras":
            inputs = _rows(body)
            _check_limit(inputs)
        else:
            inputs, ignored = table_from_body(body, version.input_schema)
            tabular = True
        variant = request.query_params.get("variant", "")
        result = predict_inputs(registered, version, inputs, started=started, source="api", variant=variant)
        payload = {"model": f"{registered.department.slug}/{registered.slug}", "version": version.number, **result}
        if alias:
            payload["alias"] = alias
        if ignored:
            payload["ignored_columns"] = ignored
        if tabular:  # a JSON table: the fast path answers this caller's next ones (models_repo.api.fastpath)
            fastpath.remember(request, registered, version, alias, variant)
        return Response(payload)


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, default=str))
