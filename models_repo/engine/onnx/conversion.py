"""`convert`: the whole pipeline as one ONNX graph, its branches (branches.py) joined to the estimator (skl2onnx)."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from .. import tabular
from ..errors import gettext_noop, phrase
from .branches import _branch, _Graph
from .common import FEATURES, FEATURES_CAST, MAIN_OPSET, MAX_DENSE_CELLS, METADATA_KEY, ML_OPSET, ConversionError


def convert(pipeline, *, precision: str = "float32") -> bytes:
    """The fitted pipeline as ONNX bytes; ConversionError naming the part that cannot be converted.

    precision="float16" stores the estimator's weights in float16 (the quantised variant);
    the preprocessing stays float64 either way.
    """
    from onnx import TensorProto, helper
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ConversionError(gettext_noop("Only the platform's two-step pipelines (preprocessing, estimator) are converted."))
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        reason = gettext_noop("The preprocessing is a %(type)s, not a ColumnTransformer.")
        raise ConversionError(phrase(reason, type=type(preprocess).__name__))
    if preprocess.remainder != "drop" and any(name == "remainder" for name, *_ in preprocess.transformers_):
        raise ConversionError(gettext_noop("The ColumnTransformer passes columns through (remainder), which is not converted."))
    g = _Graph()
    inputs_meta: list[dict[str, Any]] = []
    blocks: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if not isinstance(transformer, Pipeline):
            reason = gettext_noop("Branch %(name)s is a %(type)s, not a Pipeline.")
            raise ConversionError(phrase(reason, name=repr(name), type=type(transformer).__name__))
        columns = list(columns) if not isinstance(columns, str) else [columns]
        if not all(isinstance(c, str) for c in columns):
            reason = gettext_noop("Branch %(name)s selects columns by position; only names are converted.")
            raise ConversionError(phrase(reason, name=repr(name)))
        block, meta = _branch(g, name, transformer, columns)
        inputs_meta.append(meta)
        blocks.append(block)
    if not blocks:
        raise ConversionError(gettext_noop("The pipeline uses no input column."))
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
        raise ConversionError(
            phrase(gettext_noop("The ONNX graph does not validate: %(error)s"), error=tabular._short(exc))
        ) from None
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise ConversionError(
            phrase(gettext_noop("The ONNX model cannot be written: %(error)s"), error=tabular._short(exc))
        ) from None


def _width(pipeline, preprocess) -> int:
    try:
        return len(preprocess.get_feature_names_out())
    except Exception:  # noqa: BLE001 - a transformer without names: ask the estimator
        width = getattr(pipeline.steps[1][1], "n_features_in_", None)
        if width is None:
            raise ConversionError(gettext_noop("The number of features after preprocessing is unknown.")) from None
        return int(width)


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
        reason = gettext_noop(
            "k-NN keeps %(rows)s training rows × %(features)s features; dense in an ONNX graph that is more than %(most)s values."
        )
        raise ConversionError(phrase(reason, rows=fit_x.shape[0], features=fit_x.shape[1], most=MAX_DENSE_CELLS))
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
                reason = gettext_noop("%(estimator)s's classes cannot be renumbered.")
                raise ConversionError(phrase(reason, estimator=type(estimator).__name__)) from None
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
        reason = gettext_noop("skl2onnx cannot convert %(estimator)s: %(error)s")
        raise ConversionError(phrase(reason, estimator=type(estimator).__name__, error=tabular._short(exc))) from None
    if meta["task"] == "classification" and len(model.graph.output) < 2 and meta["probabilities"]:
        reason = gettext_noop("The converted %(estimator)s gives no probabilities.")
        raise ConversionError(phrase(reason, estimator=type(estimator).__name__))
    return model, meta


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
