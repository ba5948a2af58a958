"""Running a converted model: onnxruntime sessions and OnnxPredictor, with the per-request feed."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .. import tabular
from ..errors import gettext_noop
from .common import LABEL_TIE, METADATA_KEY, ConversionError


def session_options(threads: int = 1):
    """Options for one request at a time: one intra-op thread, sequential, all graph optimisations.

    Requests run in parallel across web workers and threads already; more intra-op threads per
    session only add synchronisation for the small batches a predict request holds.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    return options


def make_session(model: bytes | str, *, threads: int = 1):
    """An onnxruntime InferenceSession (CPU) over ONNX bytes or a file path, set for low latency."""
    import onnxruntime as ort

    return ort.InferenceSession(model, sess_options=session_options(threads), providers=["CPUExecutionProvider"])


class OnnxPredictor:
    """A converted pipeline: predicts like `tabular.predict`, quacks like the sklearn pipeline.

    `feature_names_in_`, `classes_`, `predict` and `predict_proba` let the holdout metrics of
    `tabular` score it as they score the native pipeline.
    """

    def __init__(self, model: bytes | str, *, threads: int = 1):
        self.session = make_session(model, threads=threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ConversionError(
                gettext_noop("The ONNX model has no Lepton metadata (it was not made by models_repo.engine.onnx).")
            )
        self.meta = json.loads(meta[METADATA_KEY])
        self.inputs: list[dict[str, Any]] = self.meta["inputs"]
        self.feature_names_in_ = np.array(self.meta["columns"], dtype=object)
        self._columns = set(self.meta["columns"])
        self.task = self.meta["task"]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if self.task == "classification":
            self.classes = self.meta["classes"]  # JSON values, as tabular.predict returns them
            self.class_keys = self.meta["class_keys"]
            self.classes_ = np.array(self.classes, dtype=object)

    # Per request: columns → tensors (the only Python work), then one session.run.
    def feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """One tensor per branch, with column-at-a-time numpy work (a request holds few rows).

        Each value is what the pipeline's own reader (tabular.to_float, to_category, to_text)
        makes of it; columns of other dtypes go through those readers themselves.
        """
        out = {}
        for spec in self.inputs:
            columns, kind = spec["columns"], spec["kind"]
            if kind == "numeric":
                if frame.columns.tolist() == columns and all(dtype.kind == "f" for dtype in frame.dtypes):
                    # The predict API's matrix of numbers (models_repo.api.predict._matrix_frame): as it is.
                    out[spec["name"]] = frame.to_numpy(dtype=float)
                else:
                    out[spec["name"]] = np.column_stack([_floats(frame, c) for c in columns])
            elif kind == "categorical":
                out[spec["name"]] = np.column_stack([_strings(frame[c].to_numpy(dtype=object)) for c in columns])
            elif kind == "datetime":
                out[spec["name"]] = _epoch_seconds(frame[columns])
            else:  # text
                docs = _strings(frame[columns[0]].to_numpy(dtype=object))
                out[spec["name"]] = np.array([[_char_wb_text(d, spec["lowercase"])] for d in docs], dtype=object)
        return out

    def run(self, frame: pd.DataFrame) -> list[np.ndarray]:
        if not self._columns <= set(frame.columns):
            tabular._model_input(self, frame)  # raises naming the missing columns, as for the native model
        return self.session.run(self.output_names, self.feed(frame))

    def _labels(self, outputs: list[np.ndarray]) -> list:
        if self.meta.get("label") == "argmax":
            # The first class within LABEL_TIE of the largest: a tie in float64 (a forest's 10 of 20
            # votes) comes out of float32 sums as 0.49999994 against 0.50000006.
            proba = np.asarray(outputs[1], dtype=float)
            positions = np.argmax(proba >= proba.max(axis=1, keepdims=True) - LABEL_TIE, axis=1)
        else:
            positions = np.asarray(outputs[0]).ravel()
        return [self.classes[int(i)] for i in positions]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        outputs = self.run(frame)
        if self.task == "classification":
            return np.array(self._labels(outputs), dtype=object)
        return np.asarray(outputs[0], dtype=float).ravel()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.run(frame)[1], dtype=float)

    def answer(self, frame: pd.DataFrame) -> dict[str, list]:
        """What `tabular.predict` returns for the native pipeline: predictions, probabilities when it has them."""
        outputs = self.run(frame)
        if self.task != "classification":
            return {"predictions": [float(v) for v in np.asarray(outputs[0], dtype=float).ravel()]}
        out: dict[str, list] = {"predictions": self._labels(outputs)}
        if self.meta.get("probabilities"):
            keys = self.class_keys
            out["probabilities"] = [
                {k: float(p) for k, p in zip(keys, row, strict=True)} for row in np.asarray(outputs[1], dtype=float)
            ]
        return out


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    series = frame[column]
    if series.dtype.kind in "biuf":  # numbers and booleans: what to_float gives, without its conversions
        return series.to_numpy(dtype=float, na_value=np.nan)
    return tabular.to_float(frame[[column]])[:, 0]


def _strings(values: np.ndarray) -> np.ndarray:
    """str() of each value, "" where missing (to_category's and to_text's reading, the graph's missing)."""
    missing = pd.isna(values)
    return np.array(["" if m else str(v) for v, m in zip(values, missing, strict=True)], dtype=object)


def _epoch_seconds(part: pd.DataFrame) -> np.ndarray:
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    out = np.empty(part.shape, dtype=float)
    for j, name in enumerate(part.columns):
        when = pd.to_datetime(part[name], errors="coerce", utc=True)
        out[:, j] = ((when - epoch) / pd.Timedelta(1, "s")).to_numpy(dtype=float, na_value=np.nan)
    return out


def _char_wb_text(doc: str, lowercase: bool) -> str:
    """The document as TfidfVectorizer(analyzer="char_wb") reads it: each word padded by spaces.

    Words are joined by two spaces, so an n-gram across two words holds "  ", which char_wb
    never makes (its n-grams come from one padded word): the graph's n-grams of this string
    are exactly char_wb's.
    """
    words = (doc.lower() if lowercase else doc).split()
    return (" " + "  ".join(words) + " ") if words else ""
