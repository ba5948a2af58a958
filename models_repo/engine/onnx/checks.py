"""The check: native vs ONNX on the holdout rows (`compare`), reading them, and `prepare`, which runs it all."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .. import tabular
from ..errors import TrainingError, gettext_noop, phrase
from .common import CHECK_MAX_ROWS, PROBA_TOLERANCE, REGRESSION_RTOL, VARIANT_TOLERANCE, ConversionError
from .conversion import convert
from .metrics import _metric_or_none, metric_name
from .predictor import OnnxPredictor
from .quantised import variants


def compare(pipeline, predictor: OnnxPredictor, X: pd.DataFrame) -> dict[str, Any]:
    """Native vs ONNX on the rows of X: {"equal": bool, "reason", "max_abs_diff", "rows"}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native = tabular.predict(pipeline, X)
    converted = predictor.answer(X)
    rows = len(X)
    if predictor.task == "classification":
        differ = sum(a != b for a, b in zip(native["predictions"], converted["predictions"], strict=True))
        diff = 0.0
        if "probabilities" in native:
            keys = list(native["probabilities"][0]) if rows else []
            a = np.array([[r[k] for k in keys] for r in native["probabilities"]], dtype=float)
            b = np.array([[r[k] for k in keys] for r in converted.get("probabilities", [])], dtype=float)
            diff = float(np.max(np.abs(a - b))) if a.size else 0.0
        if differ:
            reason = phrase(
                gettext_noop("%(differ)s of %(rows)s holdout labels differ from the native model's."), differ=differ, rows=rows
            )
            return {"equal": False, "reason": reason, "max_abs_diff": diff, "rows": rows}
        if diff > PROBA_TOLERANCE:
            reason = phrase(
                gettext_noop("Probabilities differ by up to %(diff)s (tolerance %(tolerance)s)."),
                diff=f"{diff:.2g}",
                tolerance=f"{PROBA_TOLERANCE:g}",
            )
            return {"equal": False, "reason": reason, "max_abs_diff": diff, "rows": rows}
        return {"equal": True, "reason": "", "max_abs_diff": diff, "rows": rows}
    a = np.asarray(native["predictions"], dtype=float)
    b = np.asarray(converted["predictions"], dtype=float)
    diff = float(np.max(np.abs(a - b))) if rows else 0.0
    allowed = np.maximum(1.0, np.abs(a)) * REGRESSION_RTOL
    if rows and not np.all(np.abs(a - b) <= allowed):
        worst = int(np.argmax(np.abs(a - b) / allowed))
        reason = phrase(
            gettext_noop("Predictions differ by up to %(diff)s (row %(row)s; tolerance %(tolerance)s × max(1, |value|))."),
            diff=f"{diff:.3g}",
            row=worst,
            tolerance=f"{REGRESSION_RTOL:g}",
        )
        return {"equal": False, "reason": reason, "max_abs_diff": diff, "rows": rows}
    return {"equal": True, "reason": "", "max_abs_diff": diff, "rows": rows}


def read_holdout(parquet_path: str, indices: list[int], pipeline, spec) -> tuple[pd.DataFrame, np.ndarray]:
    """The holdout rows a run was evaluated on: the pipeline's input columns and the target."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(dict.fromkeys([*pipeline.feature_names_in_, spec.target]))
    table = pq.read_table(parquet_path, columns=columns).take(pa.array(indices, type=pa.int64()))
    frame = table.to_pandas(date_as_object=False)
    return frame[list(pipeline.feature_names_in_)], tabular._target(frame, spec)


def prepare(pipeline, X: pd.DataFrame, y, *, metric: str, seed: int = 0) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Convert, check on the holdout rows (X, y) and build the variants.

    Returns (report, models): the report is JSON-able — {"status": "used"|"native", "reason",
    "max_abs_diff", "rows", "seconds", "bytes", "tolerance", "metric", "variants"}; models
    maps "onnx" and each offered variant to its bytes (empty when status is "native").
    """
    started = time.monotonic()
    metric = metric_name(metric)
    if len(X) > CHECK_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), size=CHECK_MAX_ROWS, replace=False))
        X, y = X.iloc[rows], np.asarray(y)[rows]
    report: dict[str, Any] = {
        "status": "native",
        "reason": "",
        "max_abs_diff": None,
        "rows": int(len(X)),
        "seconds": None,
        "bytes": None,
        "tolerance": {"probabilities": PROBA_TOLERANCE, "regression_rtol": REGRESSION_RTOL, "variants": VARIANT_TOLERANCE},
        "metric": {"name": metric, "native": None, "onnx": None},
        "variants": {},
    }
    models: dict[str, bytes] = {}

    def done():
        report["seconds"] = round(time.monotonic() - started, 3)
        return report, models

    if len(X) == 0:
        report["reason"] = gettext_noop("There are no holdout rows to check the conversion on.")
        return done()
    try:
        data = convert(pipeline)
        predictor = OnnxPredictor(data)
        check = compare(pipeline, predictor, X)
    except ConversionError as exc:
        report["reason"] = exc.reason
        return done()
    except (TrainingError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        report["reason"] = phrase(gettext_noop("The converted model failed on the holdout: %(error)s"), error=tabular._short(exc))
        return done()
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors; serving natively is always safe
        report["reason"] = phrase(
            gettext_noop("onnxruntime could not run the converted model: %(error)s"), error=tabular._short(exc)
        )
        return done()
    report.update(max_abs_diff=check["max_abs_diff"], bytes=len(data))
    if not check["equal"]:
        report["reason"] = check["reason"]
        return done()
    report["status"] = "used"
    report["reason"] = phrase(gettext_noop("Reproduces the native predictions on %(rows)s holdout rows."), rows=len(X))
    models["onnx"] = data
    reference = _metric_or_none(pipeline, X, y, metric)
    report["metric"].update(native=reference, onnx=_metric_or_none(predictor, X, y, metric))
    for name, entry in variants(pipeline, data, X, y, metric, reference).items():
        blob = entry.pop("model", None)
        if blob is not None:
            models[name] = blob
        report["variants"][name] = entry
    return done()
