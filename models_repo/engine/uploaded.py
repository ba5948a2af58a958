"""Model files uploaded by people: recognise the format, inspect it, load it without running its code.

Accepted: ONNX graphs (checked with onnx.checker, served by onnxruntime), Keras `.keras` archives
(loaded with safe_mode, in a worker: TensorFlow is never imported by the web process) and skops
files (scikit-learn objects, loaded with `trusted=` an explicit allowlist). Pickles and joblib
files are refused: unpickling runs whatever code the file names.

    kind = detect(path, "model.onnx")              # "onnx" | "keras" | "skops", else UploadRefused
    info = inspect_onnx(path, schema, classes)     # the input schema, task and classes it serves
    model = load("onnx", path, schema, classes)    # a predictor with the scikit-learn interface

The loaded ONNX and skops models answer `predict(frame)` (and `predict_proba`, `classes_` for
classifiers), so models_repo.engine.tabular.predict serves them like trained pipelines. No
Django here: the services adapt rows and errors.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import zipfile
import zlib
from typing import Any

import numpy as np

from .errors import gettext_noop, phrase, said

ONNX, KERAS, SKOPS = "onnx", "keras", "skops"
SCHEMA_TYPES = ("number", "integer", "string", "boolean", "datetime")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".jbl", ".sav", ".pt", ".pth", ".bin", ".dill", ".cloudpickle")
# The refusals are marked for translation (phrases): the services put them in the reader's language.
PICKLE_REFUSED = gettext_noop(
    "Pickle files are not accepted because unpickling runs code; export to ONNX or skops (or save a Keras model as .keras)."
)
PICKLE_IN_ARCHIVE = gettext_noop(
    "Pickle files are not accepted because unpickling runs code; export to ONNX or skops (or save a Keras model as .keras)."
    " This archive holds a pickle."
)
NOT_A_MODEL = gettext_noop("This file is not an ONNX graph, a .keras archive or a skops file; those are the formats accepted.")
# Types outside skops' default trust that a scikit-learn pipeline commonly needs. Each is a
# plain data holder; the tree types index arrays without bounds checks (skops warns about it),
# so `load_skops` checks every node index of them before the model may serve.
SKOPS_ALLOWED = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn._loss.loss.HalfTweedieLossIdentity",
    "sklearn.gaussian_process.kernels.ConstantKernel",
    "sklearn.gaussian_process.kernels.Product",
    "sklearn.gaussian_process.kernels.Sum",
    "sklearn.gaussian_process.kernels.RBF",
    "sklearn.gaussian_process.kernels.WhiteKernel",
)
# ONNX element types a tabular column may have, and the numpy dtype each is fed as.
ONNX_DTYPES = {
    "tensor(float)": (np.float32, "number"),
    "tensor(double)": (np.float64, "number"),
    "tensor(int64)": (np.int64, "integer"),
    "tensor(int32)": (np.int32, "integer"),
    "tensor(bool)": (np.bool_, "boolean"),
    "tensor(string)": (np.object_, "string"),
}


class UploadRefused(ValueError):
    """The file is not accepted; `field` is the upload field it is about (file, input_schema, output).

    `message` is marked for translation (gettext_noop or phrase); the services translate it."""

    def __init__(self, message: str, field: str = "file", code: str = "invalid_model_file"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


# --- recognising the format --------------------------------------------------------------------------


def detect(path: str, filename: str = "") -> str:
    """The format of the file at `path` from its bytes (the name only sharpens the message)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    name = (filename or "").lower()
    if _is_pickle(head) or _is_compressed_pickle(path, head):
        raise UploadRefused(PICKLE_REFUSED, code="pickle_refused")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(path)
    if head[:1] in (b"\x08", b"\x12", b"\x3a"):  # protobuf ir_version, producer_name or graph: how ONNX files begin
        return ONNX
    if name.endswith(PICKLE_SUFFIXES) or _is_compressed(head):
        raise UploadRefused(PICKLE_REFUSED, code="pickle_refused")
    if name.endswith(".onnx"):
        raise UploadRefused(gettext_noop("This is not a valid ONNX model: it does not start like one (is it complete?)."))
    raise UploadRefused(NOT_A_MODEL, code="unknown_format")


def _is_pickle(head: bytes) -> bool:
    # Protocol 2 and later start with PROTO; joblib's uncompressed files are such pickles.
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    # Protocols 0 and 1: a run of valid opcodes ending in STOP (read, never executed).
    if head[:1] in (b"(", b"]", b"}", b"c", b"I", b"S", b"V", b"N", b"\x8a") and b"." in head:
        import pickletools

        try:
            ops = list(pickletools.genops(head))
        except Exception:  # noqa: BLE001 - not a pickle: any parse error says so
            return False
        return bool(ops) and ops[-1][0].name == "STOP"
    return False


def _is_compressed(head: bytes) -> bool:
    return (
        head[:2] in (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
        or head[:3] == b"BZh"
        or head[:6] == b"\xfd7zXZ\x00"
        or head[:3] == b"]\x00\x00"
    )


def _is_compressed_pickle(path: str, head: bytes) -> bool:
    """joblib's compressed files: zlib, gzip, bz2, xz or lzma around a pickle."""
    if not _is_compressed(head):
        return False
    try:
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                inner = f.read(64)
        elif head[:3] == b"BZh":
            with bz2.open(path, "rb") as f:
                inner = f.read(64)
        elif head[:1] in (b"\xfd", b"]"):
            with lzma.open(path, "rb") as f:
                inner = f.read(64)
        else:
            inner = zlib.decompressobj().decompress(head, 64)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError):
        return False
    return _is_pickle(inner)


def _zip_kind(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRefused(
            phrase(gettext_noop("This zip archive cannot be read (%(error)s); upload the file again."), error=str(exc))
        ) from None
    if any(n.endswith((".pkl", ".pickle")) for n in names):  # e.g. a PyTorch checkpoint
        raise UploadRefused(PICKLE_IN_ARCHIVE, code="pickle_refused")
    if "config.json" in names and "model.weights.h5" in names:
        return KERAS
    if "schema.json" in names:
        return SKOPS
    if "config.json" in names:
        raise UploadRefused(
            gettext_noop("This .keras archive lacks model.weights.h5; save the model with model.save('x.keras').")
        )
    raise UploadRefused(NOT_A_MODEL, code="unknown_format")


# --- input schemas -----------------------------------------------------------------------------------


def clean_schema(schema: Any) -> list[dict] | None:
    """A schema given by the uploader (a list of {name, type, nullable}), checked; None when absent."""
    if schema in (None, "", []):
        return None
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            message = phrase(
                gettext_noop("input_schema is not valid JSON: %(error)s (line %(line)s)."), error=exc.msg, line=exc.lineno
            )
            raise UploadRefused(message, "input_schema") from None
    if not isinstance(schema, list) or not schema:
        raise UploadRefused(
            gettext_noop('input_schema must be a list like [{"name": "temp", "type": "number"}].'), "input_schema"
        )
    cleaned, seen = [], set()
    for index, column in enumerate(schema):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str) or not column["name"].strip():
            raise UploadRefused(
                phrase(gettext_noop("input_schema item %(index)s needs a name (text)."), index=index), "input_schema"
            )
        name = column["name"].strip()
        if name in seen:
            message = phrase(gettext_noop("input_schema names %(name)s twice; names must be unique."), name=repr(name))
            raise UploadRefused(message, "input_schema")
        seen.add(name)
        kind = column.get("type", "number")
        if kind not in SCHEMA_TYPES:
            message = phrase(
                gettext_noop("input_schema column %(name)s has type %(type)s; use one of %(types)s."),
                name=repr(name),
                type=repr(kind),
                types=", ".join(SCHEMA_TYPES),
            )
            raise UploadRefused(message, "input_schema")
        nullable = column.get("nullable", False)
        if not isinstance(nullable, bool):
            message = phrase(gettext_noop("input_schema column %(name)s: nullable must be true or false."), name=repr(name))
            raise UploadRefused(message, "input_schema")
        cleaned.append({"name": name, "type": kind, "nullable": nullable})
    return cleaned


def clean_classes(output: Any) -> list | None:
    """The class labels of `output` ({"classes": [...]}), or None (a regressor, or read from the file)."""
    if output in (None, "", {}):
        return None
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except json.JSONDecodeError as exc:
            raise UploadRefused(phrase(gettext_noop("output is not valid JSON: %(error)s."), error=exc.msg), "output") from None
    if not isinstance(output, dict) or set(output) - {"classes"}:
        raise UploadRefused(gettext_noop('output must be an object like {"classes": ["no", "yes"]}.'), "output")
    classes = output.get("classes")
    if classes is None:
        return None
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str | int | bool) for c in classes):
        raise UploadRefused(gettext_noop("output.classes must list at least two labels (text or whole numbers)."), "output")
    if len({json.dumps(c) for c in classes}) != len(classes):
        raise UploadRefused(gettext_noop("output.classes names a label twice."), "output")
    return classes


def _numeric_schema(schema: list[dict]) -> None:
    """Refuses a schema with text or dates: a Keras model takes numbers only."""
    text = [c["name"] for c in schema if c["type"] in ("string", "datetime")]
    if text:
        kind = _type_of(schema, text[0])
        message = gettext_noop("A Keras model takes numbers only; input_schema makes %(name)s %(type)s.")
        raise UploadRefused(phrase(message, name=repr(text[0]), type=kind), "input_schema")


def _type_of(schema: list[dict], name: str) -> str:
    return next(c["type"] for c in schema if c["name"] == name)


def _probe_frame(schema: list[dict]):
    import pandas as pd

    values = {"number": 0.0, "integer": 0, "string": "", "boolean": False, "datetime": pd.Timestamp("2000-01-01")}
    return pd.DataFrame([{c["name"]: values[c["type"]] for c in schema}], columns=[c["name"] for c in schema])


# --- ONNX ----------------------------------------------------------------------------------------------


def _onnx_session(path: str):
    import onnx
    import onnxruntime as ort
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, OSError) as exc:
        message = phrase(gettext_noop("This is not a valid ONNX model: %(error)s."), error=str(exc))
        raise UploadRefused(message, code="corrupt_model") from None
    from onnx.external_data_helper import uses_external_data

    if any(uses_external_data(t) for t in proto.graph.initializer):
        raise UploadRefused(gettext_noop("This ONNX model keeps its weights in separate files; save it as one file."))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as exc:
        message = phrase(gettext_noop("This ONNX model fails onnx.checker: %(error)s"), error=str(exc).splitlines()[0])
        raise UploadRefused(message, code="corrupt_model") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one request, one core: web workers serve many at once
    try:
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        message = phrase(gettext_noop("onnxruntime cannot run this graph: %(error)s"), error=str(exc).splitlines()[0])
        raise UploadRefused(message, code="corrupt_model") from None
    return proto, session


def _graph_classes(proto) -> list | None:
    """Class labels stored in the graph (ai.onnx.ml classifiers and ZipMap carry them)."""
    for node in proto.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [s.decode() for s in attribute.strings]
            if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                return [int(i) for i in attribute.ints]
    return None


class _OnnxPlan:
    """How a table becomes the graph's inputs and its outputs become predictions."""

    def __init__(self, session, schema: list[dict] | None, classes: list | None, graph_classes: list | None):
        inputs = session.get_inputs()
        for item in inputs:
            if item.type not in ONNX_DTYPES:
                message = gettext_noop("The graph input %(name)s is %(type)s; tabular models take numbers, text or booleans.")
                raise UploadRefused(phrase(message, name=repr(item.name), type=item.type))
        names = [i.name for i in inputs]
        if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] != 1:
            self.layout = "matrix"  # one 2-D tensor, columns in schema order
            width = inputs[0].shape[1]
            if schema is None:
                if isinstance(width, int):
                    message = gettext_noop(
                        "The graph takes one tensor of %(width)s columns; give input_schema naming them in order."
                    )
                else:
                    message = gettext_noop("The graph takes one tensor of its columns; give input_schema naming them in order.")
                raise UploadRefused(phrase(message, width=width), "input_schema")
            if isinstance(width, int) and len(schema) != width:
                message = gettext_noop("The graph takes %(width)s columns; input_schema names %(named)s.")
                raise UploadRefused(phrase(message, width=width, named=len(schema)), "input_schema")
            self.schema = schema
        else:
            self.layout = "columns"  # one tensor per column, named as the schema's columns
            for item in inputs:
                if len(item.shape) not in (1, 2) or (len(item.shape) == 2 and item.shape[1] != 1):
                    message = gettext_noop(
                        "The graph input %(name)s has shape %(shape)s; give one 2-D tensor for the table "
                        "or one column tensor ([N] or [N, 1]) per column."
                    )
                    raise UploadRefused(phrase(message, name=repr(item.name), shape=str(item.shape)))
            if schema is None:
                schema = [
                    {"name": i.name, "type": ONNX_DTYPES[i.type][1], "nullable": i.type in ("tensor(float)", "tensor(double)")}
                    for i in inputs
                ]
            elif sorted(c["name"] for c in schema) != sorted(names):
                message = gettext_noop("The graph's inputs are %(inputs)s; input_schema names %(named)s.")
                named = ", ".join(c["name"] for c in schema)
                raise UploadRefused(phrase(message, inputs=", ".join(names), named=named), "input_schema")
            self.schema = schema
        self.inputs = inputs
        outputs = session.get_outputs()
        self.label = next((o.name for o in outputs if o.type in ("tensor(string)", "tensor(int64)")), None)
        self.scores = next(
            (o.name for o in outputs if o.type.startswith("seq(map(") or o.type in ("tensor(float)", "tensor(double)")), None
        )
        if self.scores is None:
            raise UploadRefused(gettext_noop("The graph has no numeric output to read predictions from."))
        self.classes = classes or graph_classes
        self.session = session

    def feeds(self, frame) -> dict[str, np.ndarray]:
        names = [c["name"] for c in self.schema]
        if self.layout == "matrix":
            item = self.inputs[0]
            dtype = ONNX_DTYPES[item.type][0]
            return {item.name: _column_array(frame[names].to_numpy(), dtype, names)}
        feeds = {}
        for item in self.inputs:
            values = _column_array(frame[item.name].to_numpy(), ONNX_DTYPES[item.type][0], [item.name])
            feeds[item.name] = values.reshape(-1, 1) if len(item.shape) == 2 else values.reshape(-1)
        return feeds

    def run(self, frame) -> dict[str, Any]:
        results = dict(zip([o.name for o in self.session.get_outputs()], self.session.run(None, self.feeds(frame)), strict=True))
        scores = results[self.scores]
        if isinstance(scores, list):  # ZipMap: one {label: probability} per row
            keys = list(scores[0].keys()) if scores else list(self.classes or [])
            classes = self.classes if self.classes and set(self.classes) == set(keys) else keys
            scores = np.array([[row[c] for c in classes] for row in scores], dtype=np.float64)
            return {"labels": results.get(self.label), "proba": scores, "classes": classes}
        scores = np.asarray(scores, dtype=np.float64)
        if self.label is None and (scores.ndim == 1 or scores.shape[1] == 1) and not self.classes:
            return {"values": scores.reshape(-1)}
        if self.classes is None:
            if self.label is not None:
                return {"labels": results[self.label], "proba": None, "classes": None}
            message = gettext_noop("the graph gives %(scores)s scores per row; give output.classes naming them in order")
            raise ValueError(phrase(message, scores=scores.shape[1]))
        if scores.ndim != 2 or scores.shape[1] != len(self.classes):
            message = gettext_noop("the graph gives scores of shape %(shape)s for %(classes)s classes")
            raise ValueError(phrase(message, shape=str(scores.shape), classes=len(self.classes)))
        return {"labels": results.get(self.label), "proba": scores, "classes": self.classes}


def _column_array(values: np.ndarray, dtype, names: list[str]) -> np.ndarray:
    if dtype is np.object_:
        return np.array(["" if v is None else str(v) for v in values.reshape(-1)], dtype=object).reshape(values.shape)
    import pandas as pd

    # Integers and booleans have no empty value: a NaN cast to them would be a silent wrong number.
    if np.dtype(dtype).kind in "iub" and pd.isna(values).any():
        raise ValueError(phrase(gettext_noop("%(columns)s has an empty value; the graph takes none"), columns=", ".join(names)))
    try:
        return values.astype(dtype)
    except (TypeError, ValueError) as exc:
        message = gettext_noop("a value of %(columns)s cannot be given to the graph as %(type)s: %(error)s")
        raise ValueError(phrase(message, columns=", ".join(names), type=np.dtype(dtype).name, error=str(exc))) from None


class OnnxRegressor:
    """An uploaded ONNX regressor with the scikit-learn `predict` interface (tabular.predict serves it)."""

    def __init__(self, plan: _OnnxPlan):
        self.plan = plan
        self.feature_names_in_ = np.array([c["name"] for c in plan.schema], dtype=object)

    def predict(self, frame) -> np.ndarray:
        out = self.plan.run(frame)
        if "values" not in out:
            raise ValueError(gettext_noop("the graph did not give one number per row"))
        return out["values"]


class OnnxClassifier(OnnxRegressor):
    """An uploaded ONNX classifier: `predict`, `predict_proba` and `classes_` as scikit-learn has them."""

    def __init__(self, plan: _OnnxPlan, classes: list):
        super().__init__(plan)
        self.classes_ = np.array(classes, dtype=object)

    def predict(self, frame) -> np.ndarray:
        out = self.plan.run(frame)
        if out.get("labels") is not None:
            return np.asarray(out["labels"]).reshape(-1)
        return np.array([out["classes"][i] for i in out["proba"].argmax(axis=1)], dtype=object)

    def predict_proba(self, frame) -> np.ndarray:
        out = self.plan.run(frame)
        if out.get("proba") is None:
            raise ValueError(gettext_noop("the graph gives no probabilities"))
        order = [list(out["classes"]).index(c) for c in self.classes_]
        return out["proba"][:, order]


def _onnx_model(session, proto, schema, classes):
    plan = _OnnxPlan(session, schema, classes, _graph_classes(proto))
    try:
        probe = plan.run(_probe_frame(plan.schema))
    except ValueError as exc:
        raise UploadRefused(
            phrase(gettext_noop("The graph cannot be used as uploaded: %(error)s."), error=said(exc)), "output"
        ) from None
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors (shape, type)
        message = phrase(gettext_noop("The graph fails on a row of the input schema: %(error)s"), error=str(exc).splitlines()[0])
        raise UploadRefused(message, "input_schema") from None
    if "values" in probe:
        return OnnxRegressor(plan)
    labels = probe.get("classes") or plan.classes
    if labels is None:
        raise UploadRefused(
            gettext_noop("The graph gives labels but does not store its classes; give output.classes naming them in order."),
            "output",
        )
    return OnnxClassifier(plan, [_plain(c) for c in labels])


def inspect_onnx(path: str, schema: list[dict] | None, classes: list | None) -> dict[str, Any]:
    """Validate an ONNX file and run it once on a row of its schema; what the version records."""
    proto, session = _onnx_session(path)
    model = _onnx_model(session, proto, schema, classes)
    return _summary(model, model.plan.schema)


# --- skops ---------------------------------------------------------------------------------------------


def _skops_trusted(path: str) -> list[str]:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds for a damaged file
        message = phrase(gettext_noop("This skops file cannot be read: %(error)s."), error=str(exc))
        raise UploadRefused(message, code="corrupt_model") from None
    refused = [t for t in untrusted if t not in SKOPS_ALLOWED]
    if refused:
        message = gettext_noop(
            "This skops file holds types that are not trusted: %(types)s. Only scikit-learn, numpy and "
            "scipy types on the platform's list load; export the model to ONNX instead."
        )
        raise UploadRefused(phrase(message, types=", ".join(refused)), code="untrusted_types")
    return untrusted


def load_skops(path: str):
    """A scikit-learn object from a skops file, loading nothing outside the allowlist, its trees checked."""
    import skops.io as sio

    trusted = _skops_trusted(path)
    try:
        model = sio.load(path, trusted=trusted)
    except Exception as exc:  # noqa: BLE001 - a damaged or inconsistent file
        message = phrase(gettext_noop("This skops file cannot be loaded: %(error)s."), error=str(exc))
        raise UploadRefused(message, code="corrupt_model") from None
    if not hasattr(model, "predict"):
        message = gettext_noop("The skops file holds a %(type)s, which cannot predict; upload a fitted model.")
        raise UploadRefused(phrase(message, type=type(model).__name__))
    _check_trees(model, set())
    return model


def _check_trees(obj: Any, seen: set[int], n_features: int | None = None) -> None:
    """Refuse tree nodes that point outside their arrays: scikit-learn follows them unchecked at predict."""
    if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
        return
    seen.add(id(obj))
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    n_features = getattr(obj, "n_features_in_", n_features)
    if isinstance(obj, Tree):
        limit = min(obj.n_features, n_features or obj.n_features)
        _check_nodes(obj.children_left, obj.children_right, obj.feature, limit, leaf=-1)
        return
    if isinstance(obj, TreePredictor):
        nodes = obj.nodes
        leaf = nodes["is_leaf"].astype(bool)
        left = np.where(leaf, -1, nodes["left"].astype(np.int64))
        right = np.where(leaf, -1, nodes["right"].astype(np.int64))
        _check_nodes(left, right, np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)), n_features or 0, leaf=-1)
        categorical = nodes["is_categorical"].astype(bool) & ~leaf
        if categorical.any() and (nodes["bitset_idx"][categorical] >= len(obj.raw_left_cat_bitsets)).any():
            raise UploadRefused(gettext_noop("A tree in this file points at categories it does not hold; it was not loaded."))
        return
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, list | tuple | set):
        children = list(obj)
    elif isinstance(obj, np.ndarray):
        children = list(obj.reshape(-1)) if obj.dtype == object else []
    else:
        children = list(getattr(obj, "__dict__", {}).values())
    for child in children:
        _check_trees(child, seen, n_features)


def _check_nodes(left, right, feature, n_features: int, *, leaf: int) -> None:
    left, right, feature = (np.asarray(a, dtype=np.int64) for a in (left, right, feature))
    count = len(left)
    index = np.arange(count)
    inner = left != leaf
    bad = (
        len(right) != count
        or len(feature) != count
        or ((right != leaf) != inner).any()
        # Children come after their parent in scikit-learn's trees: no loops, nothing outside the array.
        or (inner & ((left <= index) | (left >= count) | (right <= index) | (right >= count))).any()
        or (inner & ((feature < 0) | (feature >= max(n_features, 0)))).any()
    )
    if bad:
        raise UploadRefused(
            gettext_noop("A tree in this file has nodes that point outside it; it was not loaded."), code="corrupt_model"
        )


def inspect_skops(path: str, schema: list[dict] | None) -> dict[str, Any]:
    """Validate a skops file; the input schema from `feature_names_in_` (types from the given schema or guessed)."""
    model = load_skops(path)
    names = [str(n) for n in getattr(model, "feature_names_in_", [])]
    if names:
        if schema is not None and sorted(c["name"] for c in schema) != sorted(names):
            message = gettext_noop("The model was fitted on %(columns)s; input_schema names %(named)s.")
            named = ", ".join(c["name"] for c in schema)
            raise UploadRefused(phrase(message, columns=", ".join(names), named=named), "input_schema")
        schema = schema or [{"name": n, "type": _guess_type(model, n), "nullable": True} for n in names]
    elif schema is None:
        width = getattr(model, "n_features_in_", None)
        if width:
            message = gettext_noop(
                "The model was fitted without column names; give input_schema naming its %(width)s columns in order."
            )
        else:
            message = gettext_noop("The model was fitted without column names; give input_schema naming its columns in order.")
        raise UploadRefused(phrase(message, width=width), "input_schema")
    elif getattr(model, "n_features_in_", len(schema)) != len(schema):
        message = gettext_noop("The model takes %(width)s columns; input_schema names %(named)s.")
        raise UploadRefused(phrase(message, width=model.n_features_in_, named=len(schema)), "input_schema")
    return _summary(model, schema)


def _guess_type(model, column: str) -> str:
    """string when the column goes through an encoder or a text vectorizer, else number."""
    from sklearn.compose import ColumnTransformer

    steps = [model]
    while steps:
        step = steps.pop()
        if isinstance(step, ColumnTransformer):
            for _name, transformer, columns in getattr(step, "transformers_", []):
                picked = [columns] if isinstance(columns, str) else list(columns) if not callable(columns) else []
                if column in [str(c) for c in picked]:
                    text = type(transformer).__name__
                    if any(k in text for k in ("Encoder", "Vectorizer")) or _has_encoder(transformer):
                        return "string"
                    return "number"
        steps.extend(s for _n, s in getattr(step, "steps", []))
    return "number"


def _has_encoder(transformer) -> bool:
    return any(any(k in type(s).__name__ for k in ("Encoder", "Vectorizer")) for _n, s in getattr(transformer, "steps", []))


# --- Keras -----------------------------------------------------------------------------------------------


def inspect_keras_archive(path: str, schema: list[dict] | None, classes: list | None) -> dict[str, Any]:
    """What can be checked of a .keras archive without TensorFlow; the load itself runs in a worker."""
    if schema is None:
        raise UploadRefused(
            gettext_noop("A .keras model does not name its columns; give input_schema naming them in order."), "input_schema"
        )
    _numeric_schema(schema)
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > 50 * 1024 * 1024:
                raise UploadRefused(gettext_noop("config.json of this .keras archive is too large to be a model configuration."))
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        message = phrase(gettext_noop("This .keras archive is damaged: %(error)s."), error=str(exc))
        raise UploadRefused(message, code="corrupt_model") from None
    if not isinstance(config, dict) or "class_name" not in config:
        message = gettext_noop("config.json of this .keras archive is not a Keras model configuration.")
        raise UploadRefused(message, code="corrupt_model")
    return {
        "input_schema": schema,
        "task": "classification" if classes else "regression",
        "classes": classes,
    }


def validate_keras(path: str, schema: list[dict], classes: list | None) -> None:
    """Load a .keras file with safe_mode (no Lambda layers, no code in the file) and run it on one row.

    Imports TensorFlow: call it in a worker. Raises UploadRefused with the reason.
    """
    from models_repo.engine import deep

    try:
        model = deep.load_model(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError, TypeError… for refused files
        message = phrase(
            gettext_noop("Keras refused to load the model with safe_mode: %(error)s"), error=str(exc).splitlines()[0]
        )
        raise UploadRefused(message) from None
    meta = {"task": "classification" if classes else "regression", "classes": classes, "input_schema": schema}
    try:
        out = deep.predict(model, _probe_frame(schema).astype("float32"), meta)
    except Exception as exc:  # noqa: BLE001 - a shape that does not fit the schema or the classes
        if classes:
            message = gettext_noop(
                "The model does not take %(columns)s columns and give %(classes)s class scores per row: %(error)s"
            )
        else:
            message = gettext_noop("The model does not take %(columns)s columns and give one number per row: %(error)s")
        error = str(exc).splitlines()[0]
        raise UploadRefused(phrase(message, columns=len(schema), classes=len(classes or []), error=error)) from None
    if not classes and len(out["predictions"]) != 1:
        raise UploadRefused(gettext_noop("The model gives more than one number per row; give output.classes for a classifier."))


# --- serving ---------------------------------------------------------------------------------------------


def load(flavor: str, path: str, schema: list[dict], classes: list | None):
    """The predictor of an uploaded ONNX or skops artifact (already checksum-verified by storage)."""
    if flavor == "onnx":
        proto, session = _onnx_session(path)
        return _onnx_model(session, proto, schema, classes)
    return load_skops(path)


def _summary(model, schema: list[dict]) -> dict[str, Any]:
    classes = getattr(model, "classes_", None)
    return {
        "input_schema": schema,
        "task": "classification" if classes is not None else "regression",
        "classes": None if classes is None else [_plain(c) for c in classes],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value
