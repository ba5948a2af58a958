"""The ONNX fast path for the scikit-learn pipelines `tabular.build_pipeline` makes (no Django).

`convert(pipeline)` rebuilds the pipeline as one ONNX graph: the ColumnTransformer's
branches are written here node by node (their custom FunctionTransformers included), the
final estimator is converted by skl2onnx, and the two are joined. `OnnxPredictor` runs it
with onnxruntime and answers like `tabular.predict`. `prepare` converts, checks the result
against the native pipeline on holdout rows and, when it is used, builds the quantised
variants and keeps those whose holdout metric stays within VARIANT_TOLERANCE.

What runs in Python per request (`OnnxPredictor.feed`): the input columns become one tensor
per branch — numbers through `tabular.to_float`, categories through `tabular.to_category`
(missing → ""), dates as UTC seconds since 1970 (NaN when missing), text through
`tabular.to_text`, lowercased and with its whitespace folded the way TfidfVectorizer's
char_wb analyser does it (onnxruntime's string ops depend on the machine's locales). The
rest (imputation, scaling, one-hot with infrequent categories, the date parts, character
n-gram TF-IDF, the estimator) is in the graph.

Anything else in a pipeline (another step, another analyser, an estimator skl2onnx cannot
convert) raises `ConversionError` with the reason; the caller then serves natively.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier

from . import tabular
from .errors import TrainingError

# The equivalence check (holdout rows, native vs ONNX): labels identical, probabilities and
# regression values within these. ONNX runs the estimator in float32, scikit-learn in float64.
PROBA_TOLERANCE = 1e-4
REGRESSION_RTOL = 1e-4  # relative to max(1, |native prediction|)
# Probabilities this close to a row's largest count as a tie, broken to the first class as numpy's
# argmax does (scikit-learn's predict); far below any real difference between a forest's vote shares.
LABEL_TIE = 1e-5
CHECK_MAX_ROWS = 20_000  # rows of the holdout the check and the variants look at (a sample beyond)
# A quantised variant is offered when its holdout metric is at most this much worse than the
# native model's (absolute for scores in [0, 1], relative to the value for errors such as
# rmse: 0.005 × max(1, |metric|)) and its file is smaller.
VARIANT_TOLERANCE = 0.005
VARIANTS = ("float16", "int8")
METADATA_KEY = "lepton"
MAX_DENSE_CELLS = 50_000_000  # k-NN's training rows held dense in the graph: 200 MB of float32 at most
MAIN_OPSET = 19
ML_OPSET = 3
FEATURES = "lp_features"
FEATURES_CAST = "lp_cast_features"  # float64 preprocessing → the estimator's float32 (float16_variant keeps it)
LOWER_IS_BETTER = {"rmse", "mae", "mse", "mape", "log_loss"}


class ConversionError(Exception):
    """The pipeline has a part with no ONNX equivalent here; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- onnxruntime ---------------------------------------------------------------------------


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
            raise ConversionError("The ONNX model has no Lepton metadata (it was not made by models_repo.engine.onnx).")
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


# --- conversion ----------------------------------------------------------------------------


class _Graph:
    """Nodes and initialisers of the preprocessing part, with unique names."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"lp_{hint}_{self.count}"

    def const(self, value, dtype=np.float64, hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=dtype) if dtype is not object else np.asarray(value, dtype=object)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", domain: str = "", **attrs) -> str:
        from onnx import helper

        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(op_type), domain=domain, **attrs))
        return out


def _is(func, name: str) -> bool:
    return getattr(func, "__module__", "") == tabular.__name__ and getattr(func, "__name__", "") == name


def convert(pipeline, *, precision: str = "float32") -> bytes:
    """The fitted pipeline as ONNX bytes; ConversionError naming the part that cannot be converted.

    precision="float16" stores the estimator's weights in float16 (the quantised variant);
    the preprocessing stays float64 either way.
    """
    from onnx import TensorProto, helper
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ConversionError("Only the platform's two-step pipelines (preprocessing, estimator) are converted.")
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise ConversionError(f"The preprocessing is a {type(preprocess).__name__}, not a ColumnTransformer.")
    if preprocess.remainder != "drop" and any(name == "remainder" for name, *_ in preprocess.transformers_):
        raise ConversionError("The ColumnTransformer passes columns through (remainder), which is not converted.")
    g = _Graph()
    inputs_meta: list[dict[str, Any]] = []
    blocks: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if not isinstance(transformer, Pipeline):
            raise ConversionError(f"Branch {name!r} is a {type(transformer).__name__}, not a Pipeline.")
        columns = list(columns) if not isinstance(columns, str) else [columns]
        if not all(isinstance(c, str) for c in columns):
            raise ConversionError(f"Branch {name!r} selects columns by position; only names are converted.")
        block, meta = _branch(g, name, transformer, columns)
        inputs_meta.append(meta)
        blocks.append(block)
    if not blocks:
        raise ConversionError("The pipeline uses no input column.")
    features = g.op("Concat", blocks, "concat", axis=1) if len(blocks) > 1 else blocks[0]
    g.nodes.append(helper.make_node("Cast", [features], [FEATURES], name=FEATURES_CAST, to=TensorProto.FLOAT))

    width = _width(pipeline, preprocess)
    est_model, meta = _estimator(estimator, width)
    if precision == "float16":
        est_model = _to_float16(est_model)
    graph = est_model.graph
    est_input = graph.input[0].name
    # The estimator's graph reads FEATURES instead of its own input.
    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == est_input:
                node.input[i] = FEATURES
    merged = helper.make_graph(
        [*g.nodes, *graph.node],
        "lepton_pipeline",
        g.inputs,
        list(graph.output),
        [*g.initializers, *graph.initializer],
    )
    opsets = {o.domain: o.version for o in est_model.opset_import}
    opsets[""] = max(opsets.get("", MAIN_OPSET), MAIN_OPSET)
    opsets["com.microsoft"] = 1
    model = helper.make_model(merged, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = est_model.ir_version
    meta.update(
        {
            "inputs": inputs_meta,
            "columns": [str(c) for c in pipeline.feature_names_in_],
            "features": width,
            "estimator": type(estimator).__name__,
        }
    )
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta, ensure_ascii=False)})
    try:
        import onnx

        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any checker complaint means: serve natively
        raise ConversionError(f"The ONNX graph does not validate: {tabular._short(exc)}") from None
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise ConversionError(f"The ONNX model cannot be written: {tabular._short(exc)}") from None


def _width(pipeline, preprocess) -> int:
    try:
        return len(preprocess.get_feature_names_out())
    except Exception:  # noqa: BLE001 - a transformer without names: ask the estimator
        width = getattr(pipeline.steps[1][1], "n_features_in_", None)
        if width is None:
            raise ConversionError("The number of features after preprocessing is unknown.") from None
        return int(width)


def _branch(g: _Graph, name: str, pipe, columns: list[str]) -> tuple[str, dict[str, Any]]:
    """One ColumnTransformer branch: its graph input and nodes; returns the output (double) and its metadata."""
    from onnx import TensorProto, helper
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    steps = [step for _n, step in pipe.steps if step not in (None, "passthrough")]
    first = steps[0] if steps else None
    if not isinstance(first, FunctionTransformer) or first.func is None:
        raise ConversionError(f"Branch {name!r} does not start with one of the platform's column readers.")
    if _is(first.func, "to_float"):
        kind, dtype = "numeric", TensorProto.DOUBLE
    elif _is(first.func, "to_category"):
        kind, dtype = "categorical", TensorProto.STRING
    elif _is(first.func, "date_parts"):
        kind, dtype = "datetime", TensorProto.DOUBLE
    elif _is(first.func, "to_text"):
        kind, dtype = "text", TensorProto.STRING
    else:
        raise ConversionError(f"Branch {name!r} reads its columns with {getattr(first.func, '__name__', first.func)!r}.")
    input_name = f"in_{name}"
    width = 1 if kind == "text" else len(columns)
    g.inputs.append(helper.make_tensor_value_info(input_name, dtype, [None, width]))
    meta: dict[str, Any] = {"name": input_name, "kind": kind, "columns": columns}
    current = input_name
    if kind == "datetime":
        current = _date_parts(g, current)
    for step in steps[1:]:
        label = f"{type(step).__name__} in branch {name!r}"
        if isinstance(step, SimpleImputer):
            current = _imputer(g, current, step, kind, label)
        elif isinstance(step, StandardScaler) and kind in ("numeric", "datetime"):
            if step.with_mean:
                current = g.op("Sub", [current, g.const(step.mean_.reshape(1, -1))], "centred")
            if step.with_std:
                current = g.op("Div", [current, g.const(step.scale_.reshape(1, -1))], "scaled")
        elif isinstance(step, OneHotEncoder) and kind == "categorical":
            current = _one_hot(g, current, step, label)
        elif isinstance(step, TfidfVectorizer) and kind == "text":
            current = _tfidf(g, current, step, label)
            meta["lowercase"] = bool(step.lowercase)
        else:
            raise ConversionError(f"{label} has no ONNX equivalent here.")
    if kind == "categorical" and not any(isinstance(s, OneHotEncoder) for s in steps):
        raise ConversionError(f"Branch {name!r} passes categories on as text; only one-hot is converted.")
    if kind == "text" and "lowercase" not in meta:
        raise ConversionError(f"Branch {name!r} passes text on without TF-IDF.")
    return current, meta


def _date_parts(g: _Graph, seconds: str) -> str:
    """UTC seconds → year, month, day, weekday (Monday 0), hour per column, as `tabular.date_parts`.

    The civil date from days since 1970 by H. Hinnant's days-to-civil algorithm, in float64
    (every intermediate is an integer far below 2**53, so Floor is exact).
    """

    def c(v):
        return g.const(v)

    def floor_div(a, b):
        return g.op("Floor", [g.op("Div", [a, c(b)])])

    def mul(a, b):
        return g.op("Mul", [a, c(b)])

    missing = g.op("IsNaN", [seconds], "missing")
    s = g.op("Where", [missing, c(0.0), seconds], "s")
    days = floor_div(s, 86400.0)
    hour = floor_div(g.op("Sub", [s, mul(days, 86400.0)]), 3600.0)
    shifted = g.op("Add", [days, c(3.0)])
    weekday = g.op("Sub", [shifted, mul(floor_div(shifted, 7.0), 7.0)], "weekday")
    z = g.op("Add", [days, c(719468.0)])
    era = floor_div(z, 146097.0)
    doe = g.op("Sub", [z, mul(era, 146097.0)])
    yoe_num = g.op(
        "Sub",
        [g.op("Add", [g.op("Sub", [doe, floor_div(doe, 1460.0)]), floor_div(doe, 36524.0)]), floor_div(doe, 146096.0)],
    )
    yoe = floor_div(yoe_num, 365.0)
    year = g.op("Add", [yoe, mul(era, 400.0)])
    doy = g.op("Sub", [doe, g.op("Sub", [g.op("Add", [mul(yoe, 365.0), floor_div(yoe, 4.0)]), floor_div(yoe, 100.0)])])
    mp = floor_div(g.op("Add", [mul(doy, 5.0), c(2.0)]), 153.0)
    day = g.op("Add", [g.op("Sub", [doy, floor_div(g.op("Add", [mul(mp, 153.0), c(2.0)]), 5.0)]), c(1.0)])
    month = g.op("Add", [mp, g.op("Where", [g.op("Less", [mp, c(10.0)]), c(3.0), c(-9.0)])], "month")
    year = g.op("Add", [year, g.op("Where", [g.op("Less", [month, c(2.5)]), c(1.0), c(0.0)])], "year")
    axis = g.const([2], np.int64)
    parts = []
    for part in (year, month, day, weekday, hour):
        part = g.op("Where", [missing, c(np.nan), part])
        parts.append(g.op("Unsqueeze", [part, axis]))
    stacked = g.op("Concat", parts, "parts", axis=2)  # [N, columns, 5] → column after column
    return g.op("Reshape", [stacked, g.const([0, -1], np.int64)], "date_parts")


def _imputer(g: _Graph, current: str, imputer, kind: str, label: str) -> str:
    if getattr(imputer, "add_indicator", False):
        raise ConversionError(f"{label} adds missing-value indicators, which are not converted.")
    stats = np.asarray(imputer.statistics_)
    if kind == "categorical":
        if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
            raise ConversionError(f"{label} treats {imputer.missing_values!r} as missing; only NaN is converted.")
        keep = [i for i, v in enumerate(stats) if isinstance(v, str)]
        values = [str(stats[i]) for i in keep]
        if "" in values:
            raise ConversionError(f"{label} fills with the empty string, which the converted model reads as missing.")
        current = _keep_columns(g, current, keep, len(stats))
        empty = g.op("Equal", [current, g.const([""], object)], "empty")
        return g.op("Where", [empty, g.const(np.array([values], dtype=object), object), current], "imputed")
    if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
        raise ConversionError(f"{label} treats {imputer.missing_values!r} as missing; only NaN is converted.")
    stats = stats.astype(float)
    keep = [i for i, v in enumerate(stats) if not math.isnan(v)] if not imputer.keep_empty_features else list(range(len(stats)))
    current = _keep_columns(g, current, keep, len(stats))
    fill = np.nan_to_num(stats[keep], nan=0.0).reshape(1, -1)
    missing = g.op("IsNaN", [current], "missing")
    return g.op("Where", [missing, g.const(fill), current], "imputed")


def _keep_columns(g: _Graph, current: str, keep: list[int], total: int) -> str:
    """SimpleImputer drops columns it saw no value in; the graph drops them too."""
    if len(keep) == total:
        return current
    if not keep:
        raise ConversionError("A branch's imputer dropped every column.")
    return g.op("Gather", [current, g.const(keep, np.int64)], "kept", axis=1)


def _one_hot(g: _Graph, current: str, encoder, label: str) -> str:
    if encoder.drop is not None:
        raise ConversionError(f"{label} drops a category (drop={encoder.drop!r}), which is not converted.")
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise ConversionError(f"{label} refuses unknown categories; only handle_unknown='ignore' is converted.")
    infrequent = getattr(encoder, "infrequent_categories_", None) if getattr(encoder, "_infrequent_enabled", False) else None
    blocks = []
    for j, categories in enumerate(encoder.categories_):
        if not all(isinstance(c, str) for c in categories):
            raise ConversionError(f"{label} has categories that are not text.")
        rare = [] if infrequent is None or infrequent[j] is None else [str(c) for c in infrequent[j]]
        if "" in categories:
            raise ConversionError(f"{label} has an empty category, which the converted model reads as missing.")
        column = g.op("Gather", [current, g.const([j], np.int64)], "column", axis=1)  # [N, 1]
        frequent = [str(c) for c in categories if str(c) not in set(rare)]
        if frequent:
            hits = g.op("Equal", [column, g.const(np.array([frequent], dtype=object), object)], "hits")
            blocks.append(g.op("Cast", [hits], "onehot", to=11))  # 11: DOUBLE
        if rare:
            hits = g.op("Cast", [g.op("Equal", [column, g.const(np.array([rare], dtype=object), object)])], to=11)
            any_rare = g.op("ReduceSum", [hits, g.const([1], np.int64)], "rare", keepdims=1)  # 0 or 1: distinct
            if encoder.handle_unknown == "infrequent_if_exist":
                known = g.op(
                    "Cast", [g.op("Equal", [column, g.const(np.array([list(categories)], dtype=object), object)])], to=11
                )
                unknown = g.op("Sub", [g.const([[1.0]]), g.op("ReduceSum", [known, g.const([1], np.int64)], keepdims=1)])
                any_rare = g.op("Max", [any_rare, unknown])
            blocks.append(any_rare)
    if not blocks:
        raise ConversionError(f"{label} has no categories.")
    return g.op("Concat", blocks, "categories", axis=1) if len(blocks) > 1 else blocks[0]


def _tfidf(g: _Graph, current: str, vectorizer, label: str) -> str:
    """Character n-gram TF-IDF of the padded text the feed prepares (see `_char_wb_text`)."""
    if vectorizer.analyzer != "char_wb":
        raise ConversionError(f"{label} uses analyzer={vectorizer.analyzer!r}; only char_wb is converted.")
    for attribute in ("preprocessor", "tokenizer", "strip_accents"):
        if getattr(vectorizer, attribute) is not None:
            raise ConversionError(f"{label} sets {attribute}, which is not converted.")
    if vectorizer.norm not in ("l2", "l1", None):
        raise ConversionError(f"{label} uses norm={vectorizer.norm!r}.")
    vocabulary = vectorizer.vocabulary_
    if any("  " in term for term in vocabulary):
        raise ConversionError(f"{label} has n-grams with two spaces, which char_wb does not make.")
    low, high = vectorizer.ngram_range
    width = len(vocabulary)
    pool: list[str] = []
    indexes: list[int] = []
    for n in range(1, high + 1):
        for term, index in sorted((t, i) for t, i in vocabulary.items() if len(t) == n):
            pool.extend(term)
            indexes.append(index)
    # Start of the n-grams of each length in the pool (in strings, not n-grams).
    counts, position = [], 0
    for n in range(1, high + 1):
        counts.append(position)
        position += n * sum(1 for t in vocabulary if len(t) == n)
    flat = g.op("Reshape", [current, g.const([-1, 1], np.int64)], "docs")
    tokens = g.op("Tokenizer", [flat], "chars", domain="com.microsoft", tokenexp=".", mark=0, mincharnum=1, pad_value="<pad>")
    tokens = g.op("Reshape", [tokens, g.const([0, -1], np.int64)], "chars2d")
    # An all-empty batch gives no token column; one pad token keeps the shape [N, ≥1].
    pad = g.op("Expand", [g.const([["<pad>"]], object), g.op("Shape", [flat])], "pad")
    tokens = g.op("Concat", [tokens, pad], "padded", axis=1)
    tf = g.op(
        "TfIdfVectorizer",
        [tokens],
        "tf",
        mode="TF",
        min_gram_length=low,
        max_gram_length=high,
        max_skip_count=0,
        pool_strings=pool,
        ngram_counts=counts,
        ngram_indexes=indexes,
    )
    tf = g.op("Cast", [tf], "tf64", to=11)
    if vectorizer.binary:
        tf = g.op("Cast", [g.op("Cast", [tf], to=9)], to=11)
    if vectorizer.sublinear_tf:
        positive = g.op("Greater", [tf, g.const(0.0)])
        safe = g.op("Where", [positive, tf, g.const(1.0)])
        tf = g.op("Where", [positive, g.op("Add", [g.op("Log", [safe]), g.const(1.0)]), g.const(0.0)], "sublinear")
    if vectorizer.use_idf:
        tf = g.op("Mul", [tf, g.const(vectorizer.idf_.reshape(1, -1))], "tfidf")
    if vectorizer.norm is not None:
        if vectorizer.norm == "l2":
            norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [tf, tf]), g.const([1], np.int64)], keepdims=1)])
        else:
            norm = g.op("ReduceSum", [g.op("Abs", [tf]), g.const([1], np.int64)], keepdims=1)
        norm = g.op("Where", [g.op("Equal", [norm, g.const(0.0)]), g.const(1.0), norm], "norm")
        tf = g.op("Div", [tf, norm], "normalised")
    if width != max(vocabulary.values()) + 1:
        raise ConversionError(f"{label} has gaps in its vocabulary.")
    return tf


def _patch_skl2onnx() -> None:
    """skl2onnx 1.20 passes False (a bool) for the missing-value flag of HistGradientBoosting's
    leaves; protobuf 7 refuses bools in integer fields. Cast it, once per process."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node
    if getattr(original, "lepton_patched", False):
        return

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    add_node.lepton_patched = True
    tree_ensemble.add_node = add_node


def _estimator(estimator, width: int):
    """The final estimator through skl2onnx (float32 input of `width` features) and its metadata."""
    from scipy import sparse
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _patch_skl2onnx()
    meta: dict[str, Any] = {}
    est = estimator
    options = None
    fit_x = getattr(estimator, "_fit_X", None)
    if fit_x is not None and fit_x.shape[0] * fit_x.shape[1] > MAX_DENSE_CELLS:
        raise ConversionError(
            f"k-NN keeps {fit_x.shape[0]} training rows × {fit_x.shape[1]} features; dense in an ONNX graph "
            f"that is more than {MAX_DENSE_CELLS} values."
        )
    if sparse.issparse(fit_x):
        # k-NN keeps its (sparse, with TF-IDF) training rows; the graph holds them dense.
        est = copy.deepcopy(estimator)
        est._fit_X = est._fit_X.toarray()
    if is_classifier(estimator) or hasattr(estimator, "classes_"):
        classes = list(estimator.classes_)
        meta.update(
            task="classification",
            classes=[tabular._py(c) for c in classes],
            class_keys=[tabular._class_key(c) for c in classes],
            probabilities=hasattr(estimator, "predict_proba"),
            # scikit-learn's predict is the first largest probability for these (numpy's argmax breaks
            # ties to the first class; a tree ensemble in onnxruntime may not): the label is taken
            # from the probabilities. SVC's label comes from its decision function, not from Platt's.
            label="argmax"
            if hasattr(estimator, "predict_proba") and type(estimator).__name__ not in ("SVC", "NuSVC")
            else "graph",
        )
        # Labels come out of the graph as class positions (0…n-1); the metadata maps them back,
        # so classes of any type (booleans, numbers, text) give the native JSON values.
        est = copy.deepcopy(est) if est is estimator else est
        positions = np.arange(len(classes))
        try:
            est.classes_ = positions
        except AttributeError:
            binarizer = getattr(est, "_label_binarizer", None)
            if binarizer is None:
                raise ConversionError(f"{type(estimator).__name__}'s classes cannot be renumbered.") from None
            binarizer.classes_ = positions
        options = {id(est): {"zipmap": False}}
    else:
        meta["task"] = "regression"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                est,
                initial_types=[("X", FloatTensorType([None, width]))],
                target_opset={"": MAIN_OPSET, "ai.onnx.ml": ML_OPSET},
                options=options,
            )
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many kinds; each means "not converted"
        raise ConversionError(f"skl2onnx cannot convert {type(estimator).__name__}: {tabular._short(exc)}") from None
    if meta["task"] == "classification" and len(model.graph.output) < 2 and meta["probabilities"]:
        raise ConversionError(f"The converted {type(estimator).__name__} gives no probabilities.")
    return model, meta


# --- the check and the variants ------------------------------------------------------------


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
            return {"equal": False, "reason": f"{differ} of {rows} holdout labels differ from the native model's.",
                    "max_abs_diff": diff, "rows": rows}  # fmt: skip
        if diff > PROBA_TOLERANCE:
            return {"equal": False, "reason": f"Probabilities differ by up to {diff:.2g} (tolerance {PROBA_TOLERANCE:g}).",
                    "max_abs_diff": diff, "rows": rows}  # fmt: skip
        return {"equal": True, "reason": "", "max_abs_diff": diff, "rows": rows}
    a = np.asarray(native["predictions"], dtype=float)
    b = np.asarray(converted["predictions"], dtype=float)
    diff = float(np.max(np.abs(a - b))) if rows else 0.0
    allowed = np.maximum(1.0, np.abs(a)) * REGRESSION_RTOL
    if rows and not np.all(np.abs(a - b) <= allowed):
        worst = int(np.argmax(np.abs(a - b) / allowed))
        return {"equal": False, "reason": f"Predictions differ by up to {diff:.3g} (row {worst}; tolerance "
                f"{REGRESSION_RTOL:g} × max(1, |value|)).", "max_abs_diff": diff, "rows": rows}  # fmt: skip
    return {"equal": True, "reason": "", "max_abs_diff": diff, "rows": rows}


def holdout_metric(model, X: pd.DataFrame, y: np.ndarray, metric: str) -> float | None:
    """`metric` (a recorded holdout metric name: accuracy, f1_macro, rmse, …) of a pipeline or predictor."""
    from sklearn import metrics as m

    y = np.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = model.predict(X)
        if metric in ("rmse", "mae", "mse", "mape", "r2"):
            predicted = np.asarray(predicted, dtype=float)
            truth = np.asarray(y, dtype=float)
            if metric == "rmse":
                return float(math.sqrt(m.mean_squared_error(truth, predicted)))
            if metric == "mse":
                return float(m.mean_squared_error(truth, predicted))
            if metric == "mae":
                return float(m.mean_absolute_error(truth, predicted))
            if metric == "r2":
                return float(m.r2_score(truth, predicted))
            nonzero = truth != 0
            return float(np.mean(np.abs((truth[nonzero] - predicted[nonzero]) / truth[nonzero]))) if nonzero.any() else None
        # Classes as positions (any label type: booleans, numbers, text); a class the model
        # never saw counts as wrong.
        labels = [tabular._py(c) for c in model.classes_]
        index = {json.dumps(c): i for i, c in enumerate(labels)}
        truth = np.array([index.get(json.dumps(tabular._py(v)), -1) for v in y])
        predicted = np.array([index.get(json.dumps(tabular._py(v)), -2) for v in predicted])
        positions = list(range(len(labels)))
        simple = {
            "accuracy": lambda: m.accuracy_score(truth, predicted),
            "balanced_accuracy": lambda: m.balanced_accuracy_score(truth, predicted),
            "f1_macro": lambda: m.f1_score(truth, predicted, average="macro", zero_division=0, labels=positions),
            "f1_weighted": lambda: m.f1_score(truth, predicted, average="weighted", zero_division=0, labels=positions),
            "precision_macro": lambda: m.precision_score(truth, predicted, average="macro", zero_division=0, labels=positions),
            "recall_macro": lambda: m.recall_score(truth, predicted, average="macro", zero_division=0, labels=positions),
        }
        if metric in simple:
            return float(simple[metric]())
        has_proba = getattr(model, "meta", {}).get("probabilities", hasattr(model, "predict_proba"))
        if metric in ("log_loss", "roc_auc", "roc_auc_ovr") and has_proba:
            proba = np.asarray(model.predict_proba(X), dtype=float)
            known = truth >= 0
            try:
                if metric == "log_loss":
                    return float(m.log_loss(truth[known], proba[known], labels=positions))
                if len(labels) == 2:
                    return float(m.roc_auc_score(truth[known] == 1, proba[known, 1]))
                return float(m.roc_auc_score(truth[known], proba[known], multi_class="ovr", labels=positions))
            except ValueError:
                return None
    return None


def _metric_or_none(model, X, y, metric: str) -> float | None:
    try:
        value = holdout_metric(model, X, y, metric)
    except (ValueError, TypeError, KeyError):
        return None
    return value if value is None or math.isfinite(value) else None


def metric_name(scoring: str) -> str:
    """The metric a scoring name refers to (neg_root_mean_squared_error → rmse, neg_log_loss → log_loss)."""
    aliases = {
        "neg_root_mean_squared_error": "rmse",
        "neg_mean_absolute_error": "mae",
        "neg_mean_squared_error": "mse",
        "neg_mean_absolute_percentage_error": "mape",
        "neg_log_loss": "log_loss",
    }
    return aliases.get(scoring, scoring)


def _to_float16(est_model):
    """The estimator's graph with float16 weights; its input and outputs stay float32.

    ai.onnx.ml operators (tree ensembles, linear and SVM models…) have no float16 form and
    are left as they are, with casts around them.
    """
    import onnx
    from onnxconverter_common import float16

    # skl2onnx starts some graphs (MLP) with a float32→float32 Cast of the input; the float16
    # converter drops that cast and then forgets the one it needs. Without it, it places its own.
    graph = est_model.graph
    source = graph.input[0].name
    for node in list(graph.node):
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "Cast" and list(node.input) == [source] and to == onnx.TensorProto.FLOAT:
            for other in graph.node:
                for i, value in enumerate(other.input):
                    if value == node.output[0]:
                        other.input[i] = source
            graph.node.remove(node)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = float16.convert_float_to_float16(onnx.shape_inference.infer_shapes(est_model), keep_io_types=True)
    converted.ir_version = est_model.ir_version
    return converted


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
    "int8": "int8 quantises MatMul/Gemm weights only: tree ensembles, linear and SVM operators keep theirs",
    "float16": "ai.onnx.ml operators (tree ensembles, linear and SVM models) and the float64 preprocessing keep their precision",
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
            entry["reason"] = f"not offered: it could not be built or run ({tabular._short(exc, 200)})"
            out[name] = entry
            continue
        value = entry["metric"] = _metric_or_none(predictor, X, y, metric)
        if len(data) >= len(model):
            entry["reason"] = f"not offered: not smaller ({len(data)} bytes vs {len(model)}); {NOT_SHRINKING[name]}"
        elif reference is None or value is None:
            entry["reason"] = f"not offered: the holdout {metric} could not be computed"
        elif not _within(metric, reference, value):
            entry["reason"] = (
                f"not offered: holdout {metric} {value:.4g} vs {reference:.4g} native "
                f"(tolerance {VARIANT_TOLERANCE:g} × max(1, |{metric}|))"
            )
        else:
            entry.update(offered=True, reason=f"holdout {metric} {value:.4g} vs {reference:.4g} native", model=data)
        out[name] = entry
    return out


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
        report["reason"] = "There are no holdout rows to check the conversion on."
        return done()
    try:
        data = convert(pipeline)
        predictor = OnnxPredictor(data)
        check = compare(pipeline, predictor, X)
    except ConversionError as exc:
        report["reason"] = exc.reason
        return done()
    except (TrainingError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        report["reason"] = f"The converted model failed on the holdout: {tabular._short(exc)}"
        return done()
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors; serving natively is always safe
        report["reason"] = f"onnxruntime could not run the converted model: {tabular._short(exc)}"
        return done()
    report.update(max_abs_diff=check["max_abs_diff"], bytes=len(data))
    if not check["equal"]:
        report["reason"] = check["reason"]
        return done()
    report["status"] = "used"
    report["reason"] = f"Reproduces the native predictions on {len(X)} holdout rows."
    models["onnx"] = data
    reference = _metric_or_none(pipeline, X, y, metric)
    report["metric"].update(native=reference, onnx=_metric_or_none(predictor, X, y, metric))
    for name, entry in variants(pipeline, data, X, y, metric, reference).items():
        blob = entry.pop("model", None)
        if blob is not None:
            models[name] = blob
        report["variants"][name] = entry
    return done()
