"""The ColumnTransformer's branches as ONNX nodes: each column reader, imputer, scaler, one-hot and TF-IDF.

`_Graph` collects the nodes and initialisers; `_branch` writes one branch and says which tensor
the predictor's feed gives it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import tabular
from ..errors import gettext_noop, phrase
from .common import ConversionError

NOT_NAN = gettext_noop("%(label)s treats %(value)s as missing; only NaN is converted.")


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


def _branch(g: _Graph, name: str, pipe, columns: list[str]) -> tuple[str, dict[str, Any]]:
    """One ColumnTransformer branch: its graph input and nodes; returns the output (double) and its metadata."""
    from onnx import TensorProto, helper
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    steps = [step for _n, step in pipe.steps if step not in (None, "passthrough")]
    first = steps[0] if steps else None
    if not isinstance(first, FunctionTransformer) or first.func is None:
        raise ConversionError(
            phrase(gettext_noop("Branch %(name)s does not start with one of the platform's column readers."), name=repr(name))
        )
    if _is(first.func, "to_float"):
        kind, dtype = "numeric", TensorProto.DOUBLE
    elif _is(first.func, "to_category"):
        kind, dtype = "categorical", TensorProto.STRING
    elif _is(first.func, "date_parts"):
        kind, dtype = "datetime", TensorProto.DOUBLE
    elif _is(first.func, "to_text"):
        kind, dtype = "text", TensorProto.STRING
    else:
        reader = repr(getattr(first.func, "__name__", first.func))
        raise ConversionError(
            phrase(gettext_noop("Branch %(name)s reads its columns with %(reader)s."), name=repr(name), reader=reader)
        )
    input_name = f"in_{name}"
    width = 1 if kind == "text" else len(columns)
    g.inputs.append(helper.make_tensor_value_info(input_name, dtype, [None, width]))
    meta: dict[str, Any] = {"name": input_name, "kind": kind, "columns": columns}
    current = input_name
    if kind == "datetime":
        current = _date_parts(g, current)
    for step in steps[1:]:
        label = phrase(gettext_noop("%(step)s in branch %(name)s"), step=type(step).__name__, name=repr(name))
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
            raise ConversionError(phrase(gettext_noop("%(label)s has no ONNX equivalent here."), label=label))
    if kind == "categorical" and not any(isinstance(s, OneHotEncoder) for s in steps):
        raise ConversionError(
            phrase(gettext_noop("Branch %(name)s passes categories on as text; only one-hot is converted."), name=repr(name))
        )
    if kind == "text" and "lowercase" not in meta:
        raise ConversionError(phrase(gettext_noop("Branch %(name)s passes text on without TF-IDF."), name=repr(name)))
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
        raise ConversionError(
            phrase(gettext_noop("%(label)s adds missing-value indicators, which are not converted."), label=label)
        )
    stats = np.asarray(imputer.statistics_)
    if kind == "categorical":
        if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
            raise ConversionError(phrase(NOT_NAN, label=label, value=repr(imputer.missing_values)))
        keep = [i for i, v in enumerate(stats) if isinstance(v, str)]
        values = [str(stats[i]) for i in keep]
        if "" in values:
            reason = gettext_noop("%(label)s fills with the empty string, which the converted model reads as missing.")
            raise ConversionError(phrase(reason, label=label))
        current = _keep_columns(g, current, keep, len(stats))
        empty = g.op("Equal", [current, g.const([""], object)], "empty")
        return g.op("Where", [empty, g.const(np.array([values], dtype=object), object), current], "imputed")
    if not (isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)):
        raise ConversionError(phrase(NOT_NAN, label=label, value=repr(imputer.missing_values)))
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
        raise ConversionError(gettext_noop("A branch's imputer dropped every column."))
    return g.op("Gather", [current, g.const(keep, np.int64)], "kept", axis=1)


def _one_hot(g: _Graph, current: str, encoder, label: str) -> str:
    if encoder.drop is not None:
        reason = gettext_noop("%(label)s drops a category (drop=%(drop)s), which is not converted.")
        raise ConversionError(phrase(reason, label=label, drop=repr(encoder.drop)))
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        reason = gettext_noop("%(label)s refuses unknown categories; only handle_unknown='ignore' is converted.")
        raise ConversionError(phrase(reason, label=label))
    infrequent = getattr(encoder, "infrequent_categories_", None) if getattr(encoder, "_infrequent_enabled", False) else None
    blocks = []
    for j, categories in enumerate(encoder.categories_):
        if not all(isinstance(c, str) for c in categories):
            raise ConversionError(phrase(gettext_noop("%(label)s has categories that are not text."), label=label))
        rare = [] if infrequent is None or infrequent[j] is None else [str(c) for c in infrequent[j]]
        if "" in categories:
            reason = gettext_noop("%(label)s has an empty category, which the converted model reads as missing.")
            raise ConversionError(phrase(reason, label=label))
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
        raise ConversionError(phrase(gettext_noop("%(label)s has no categories."), label=label))
    return g.op("Concat", blocks, "categories", axis=1) if len(blocks) > 1 else blocks[0]


def _tfidf(g: _Graph, current: str, vectorizer, label: str) -> str:
    """Character n-gram TF-IDF of the padded text the feed prepares (see `_char_wb_text`)."""
    if vectorizer.analyzer != "char_wb":
        reason = gettext_noop("%(label)s uses analyzer=%(analyzer)s; only char_wb is converted.")
        raise ConversionError(phrase(reason, label=label, analyzer=repr(vectorizer.analyzer)))
    for attribute in ("preprocessor", "tokenizer", "strip_accents"):
        if getattr(vectorizer, attribute) is not None:
            reason = gettext_noop("%(label)s sets %(attribute)s, which is not converted.")
            raise ConversionError(phrase(reason, label=label, attribute=attribute))
    if vectorizer.norm not in ("l2", "l1", None):
        raise ConversionError(phrase(gettext_noop("%(label)s uses norm=%(norm)s."), label=label, norm=repr(vectorizer.norm)))
    vocabulary = vectorizer.vocabulary_
    if any("  " in term for term in vocabulary):
        reason = gettext_noop("%(label)s has n-grams with two spaces, which char_wb does not make.")
        raise ConversionError(phrase(reason, label=label))
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
        raise ConversionError(phrase(gettext_noop("%(label)s has gaps in its vocabulary."), label=label))
    return tf
