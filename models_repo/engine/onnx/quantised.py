"""The quantised variants (float16 weights, dynamic int8) and whether each is offered."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from .. import tabular
from ..errors import gettext_noop, phrase
from .common import LOWER_IS_BETTER, VARIANT_TOLERANCE, VARIANTS
from .conversion import convert
from .metrics import _metric_or_none
from .predictor import OnnxPredictor


def float16_variant(pipeline) -> bytes:
    """The pipeline converted with its estimator's weights in float16."""
    return convert(pipeline, precision="float16")


def int8_variant(model: bytes) -> bytes:
    """Dynamic int8 quantisation of the MatMul/Gemm weights (onnxruntime.quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="lepton-onnx-") as folder:
        source, target = os.path.join(folder, "model.onnx"), os.path.join(folder, "model.int8.onnx")
        with open(source, "wb") as f:
            f.write(model)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        finally:
            root.setLevel(level)
        with open(target, "rb") as f:
            return f.read()


VARIANT_BUILDERS: dict[str, Callable[[Any, bytes], bytes]] = {
    "float16": lambda pipeline, model: float16_variant(pipeline),
    "int8": lambda pipeline, model: int8_variant(model),
}


NOT_SHRINKING = {
    "int8": gettext_noop("int8 quantises MatMul/Gemm weights only: tree ensembles, linear and SVM operators keep theirs"),
    "float16": gettext_noop(
        "ai.onnx.ml operators (tree ensembles, linear and SVM models) and the float64 preprocessing keep their precision"
    ),
}


def _within(metric: str, reference: float, value: float) -> bool:
    allowed = VARIANT_TOLERANCE * max(1.0, abs(reference))
    worse = value - reference if metric in LOWER_IS_BETTER else reference - value
    return worse <= allowed + 1e-12


def variants(pipeline, model: bytes, X: pd.DataFrame, y, metric: str, reference: float | None) -> dict[str, dict[str, Any]]:
    """Each quantised variant: {"offered", "reason", "bytes", "metric"} and, when offered, "model" (bytes)."""
    out: dict[str, dict[str, Any]] = {}
    for name in VARIANTS:
        entry: dict[str, Any] = {"offered": False, "bytes": None, "metric": None}
        try:
            data = VARIANT_BUILDERS[name](pipeline, model)
            entry["bytes"] = len(data)
            predictor = OnnxPredictor(data)
            predictor.answer(X.head(1))
        except Exception as exc:  # noqa: BLE001 - a variant that cannot be built or run is simply not offered
            entry["reason"] = phrase(
                gettext_noop("not offered: it could not be built or run (%(error)s)"), error=tabular._short(exc, 200)
            )
            out[name] = entry
            continue
        value = entry["metric"] = _metric_or_none(predictor, X, y, metric)
        if len(data) >= len(model):
            entry["reason"] = phrase(
                gettext_noop("not offered: not smaller (%(bytes)s bytes vs %(native)s); %(why)s"),
                bytes=len(data),
                native=len(model),
                why=NOT_SHRINKING[name],
            )
        elif reference is None or value is None:
            entry["reason"] = phrase(gettext_noop("not offered: the holdout %(metric)s could not be computed"), metric=metric)
        elif not _within(metric, reference, value):
            entry["reason"] = phrase(
                gettext_noop(
                    "not offered: holdout %(metric)s %(value)s vs %(native)s native "
                    "(tolerance %(tolerance)s × max(1, |%(metric)s|))"
                ),
                metric=metric,
                value=f"{value:.4g}",
                native=f"{reference:.4g}",
                tolerance=f"{VARIANT_TOLERANCE:g}",
            )
        else:
            reason = phrase(
                gettext_noop("holdout %(metric)s %(value)s vs %(native)s native"),
                metric=metric,
                value=f"{value:.4g}",
                native=f"{reference:.4g}",
            )
            entry.update(offered=True, reason=reason, model=data)
        out[name] = entry
    return out
