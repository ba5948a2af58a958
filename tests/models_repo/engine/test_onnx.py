"""The ONNX fast path without Django: conversion, equivalence with the native pipeline, variants."""

import datetime as dt

import numpy as np
import onnx as onnx_lib
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from models_repo.engine import onnx, tabular
from models_repo.engine.errors import TrainingError
from models_repo.engine.spec import SKLEARN_ALGORITHMS
from tests.models_repo.engine.test_tabular import FEATURES, SMALL, make_frame, make_spec

MATRIX = [(name, task) for name, tasks in SKLEARN_ALGORITHMS.items() for task in tasks]


def fitted(frame, task="classification", name="random_forest", features=FEATURES, rows=150, **params):
    spec = make_spec(
        frame,
        task=task,
        features=features,
        text_features=[f for f in ["备注"] if f in features],
        algorithms=[{"name": name, "params": {**SMALL.get(name, {}), **params}}],
    )
    pipe = tabular.build_pipeline(spec, name, dict(spec.algorithms[0].params), list(features))
    y = frame[spec.target].to_numpy()
    pipe.fit(frame[features].iloc[:rows], y[:rows])
    return pipe, frame[features].iloc[rows:], y[rows:]


def odd_rows(frame) -> pd.DataFrame:
    """Rows the training data never had: an unknown line, every value missing, empty and mixed-case text."""
    odd = frame[FEATURES].head(4).copy()
    odd["温度"] = odd["温度"].astype(object)
    odd.loc[odd.index[0], ["温度", "噪声", "line", "日期", "备注"]] = [None, None, None, None, None]
    odd.loc[odd.index[1], ["line", "备注"]] = ["丁", "  RUN\tSmooth　更换零件  \n"]
    odd.loc[odd.index[2], "备注"] = ""
    odd["温度"] = odd["温度"].astype(float)
    return odd


def assert_same(pipe, predictor, X):
    native, converted = tabular.predict(pipe, X), predictor.answer(X)
    if predictor.task == "classification":
        assert converted["predictions"] == native["predictions"]
        assert ("probabilities" in converted) == ("probabilities" in native)
        for a, b in zip(native.get("probabilities", []), converted.get("probabilities", []), strict=True):
            assert a.keys() == b.keys()
            assert max(abs(a[k] - b[k]) for k in a) <= onnx.PROBA_TOLERANCE
    else:
        a, b = np.array(native["predictions"]), np.array(converted["predictions"])
        assert np.all(np.abs(a - b) <= onnx.REGRESSION_RTOL * np.maximum(1, np.abs(a)))


@pytest.fixture(scope="module")
def frame():
    return make_frame(200)


def test_a_frame_of_only_the_numeric_columns_reads_as_the_per_column_path_does(frame):
    """The predict API's matrix (float columns in the graph's order) skips the per-column reading; same answers."""
    pipe, X, _y = fitted(frame, features=["温度", "噪声"])
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    floats = X.astype(float).reset_index(drop=True)
    reordered = floats[["噪声", "温度"]]  # another order: the per-column path
    assert predictor.feed(floats)["in_numeric"].tolist() == predictor.feed(reordered)["in_numeric"].tolist()
    assert predictor.answer(floats) == predictor.answer(reordered)
    assert_same(pipe, predictor, floats)


# --- every algorithm family, all preprocessing kinds together ---------------------------------------


@pytest.mark.parametrize(("name", "task"), MATRIX, ids=[f"{n}-{t}" for n, t in MATRIX])
def test_each_algorithm_family_is_converted_and_reproduces_the_native_predictions(frame, name, task):
    pipe, X, y = fitted(frame, task=task, name=name)
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro" if task == "classification" else "rmse")

    assert report["status"] == "used", report["reason"]
    assert report["rows"] == len(X) == 50 and report["seconds"] > 0 and report["bytes"] == len(models["onnx"])
    assert report["max_abs_diff"] <= (onnx.PROBA_TOLERANCE if task == "classification" else 1e-3)
    predictor = onnx.OnnxPredictor(models["onnx"])
    # The holdout, and rows with values the training never saw (missing everywhere, a new category…).
    assert_same(pipe, predictor, X)
    assert_same(pipe, predictor, odd_rows(frame))
    assert report["metric"]["name"] in ("f1_macro", "rmse")
    assert report["metric"]["onnx"] == pytest.approx(report["metric"]["native"], rel=1e-3)
    assert set(report["variants"]) == {"float16", "int8"}


# --- each preprocessing kind on its own ---------------------------------------------------------------


def test_numbers_with_missing_values_are_imputed_and_scaled_in_the_graph(frame):
    pipe, X, y = fitted(frame, task="regression", name="ridge", features=["温度", "噪声"])
    X = X.copy()
    X.iloc[:10, 0] = np.nan
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    assert [i["kind"] for i in predictor.inputs] == ["numeric"]
    assert_same(pipe, predictor, X)


def test_categories_many_of_them_infrequent_ones_and_unknown_ones(frame):
    rng = np.random.default_rng(1)
    many = frame.copy()
    # More categories than MAX_CATEGORIES: the rare ones share one "infrequent" column.
    many["line"] = [f"L{int(v)}" if v < 200 else "common" for v in rng.integers(0, 300, size=len(many))]
    many.loc[many.index[:5], "line"] = None
    pipe, X, y = fitted(many, name="logistic_regression", features=["line"])
    encoder = pipe.named_steps["preprocess"].named_transformers_["categorical"].named_steps["onehot"]
    assert encoder.infrequent_categories_[0] is not None  # the case is really exercised
    X = pd.concat([X, pd.DataFrame({"line": ["never-seen", None, "common"]})])
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    assert_same(pipe, predictor, X)


def test_text_becomes_character_ngram_tfidf_chinese_included(frame):
    pipe, X, y = fitted(frame, name="logistic_regression", features=["备注"])
    X = pd.concat(
        [X, pd.DataFrame({"备注": ["", None, "更换零件", "  TEMPÉRATURE élevée\t\t温度偏高  ", "x", "a b  c", "#<pad>##"]})]
    )
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    assert [i["kind"] for i in predictor.inputs] == ["text"]
    assert_same(pipe, predictor, X)
    # Only empty texts in one request: the graph still has a token column to read.
    assert_same(pipe, predictor, pd.DataFrame({"备注": ["", None]}))


def test_dates_become_year_month_day_weekday_hour_in_the_graph():
    rng = np.random.default_rng(4)
    n = 160
    start = pd.Timestamp("1950-01-01")
    when = [start + pd.Timedelta(seconds=int(s)) for s in rng.integers(0, 120 * 365 * 86400, size=n)]
    frame = pd.DataFrame({"日期": when, "质量": np.where(rng.random(n) > 0.5, "好", "坏"), "产量": rng.normal(size=n)})
    frame.loc[3, "日期"] = pd.NaT
    pipe, X, y = fitted(frame, task="regression", name="linear_regression", features=["日期"], rows=120)
    edges = ["1969-12-31 23:59:59", "1970-01-01 00:00:00", "2000-02-29 13:00", "2024-12-31 23:00", "1900-03-01", None]
    X = pd.concat([X, pd.DataFrame({"日期": pd.to_datetime(edges, format="mixed")})])
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    assert [i["kind"] for i in predictor.inputs] == ["datetime"]
    assert_same(pipe, predictor, X)
    # The parts themselves, against tabular.date_parts (then imputed and scaled in both).
    seconds = onnx._epoch_seconds(X)
    model = onnx_lib.load_from_string(onnx.convert(pipe))
    parts_name = next(n.output[0] for n in model.graph.node if n.output[0].startswith("lp_date_parts"))
    model.graph.output.append(onnx_lib.helper.make_tensor_value_info(parts_name, onnx_lib.TensorProto.DOUBLE, None))
    session = onnx.make_session(model.SerializeToString())
    parts = session.run([parts_name], {predictor.inputs[0]["name"]: seconds})[0]
    np.testing.assert_array_equal(parts, tabular.date_parts(X))


def test_boolean_and_integer_classes_come_back_as_the_native_values(frame):
    for target in ([True, False], [3, 7]):
        labelled = frame.copy()
        labelled["质量"] = np.where(frame["质量"] == "好", target[0], target[1])
        pipe, X, y = fitted(labelled, name="gradient_boosting")
        predictor = onnx.OnnxPredictor(onnx.convert(pipe))
        answer = predictor.answer(X)
        assert set(answer["predictions"]) <= set(target) and type(answer["predictions"][0]) is type(target[0])
        assert_same(pipe, predictor, X)


# --- what is not converted, and a check that fails ------------------------------------------------


def test_a_step_without_onnx_equivalent_falls_back_to_native_with_the_reason(frame):
    pipe = Pipeline(
        [
            ("preprocess", ColumnTransformer([("logs", Pipeline([("log", FunctionTransformer(np.log1p))]), ["噪声"])])),
            ("model", LogisticRegression()),
        ]
    )
    X, y = frame[["噪声"]].abs(), frame["质量"].to_numpy()
    pipe.fit(X, y)
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert report["status"] == "native" and models == {}
    assert "'logs'" in report["reason"] and "log1p" in report["reason"]
    with pytest.raises(onnx.ConversionError, match="log1p"):
        onnx.convert(pipe)


def test_an_estimator_skl2onnx_cannot_convert_is_named(frame):
    from sklearn.semi_supervised import SelfTrainingClassifier

    pipe, X, y = fitted(frame, name="logistic_regression")
    pipe.steps[1] = ("model", SelfTrainingClassifier(LogisticRegression()).fit(pipe[:-1].transform(X), y))
    report, _ = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert report["status"] == "native" and "SelfTrainingClassifier" in report["reason"]


def test_differences_beyond_the_tolerance_keep_the_native_model(frame, monkeypatch):
    pipe, X, y = fitted(frame, task="regression", name="mlp")
    monkeypatch.setattr(onnx.checks, "REGRESSION_RTOL", 1e-12)  # float32 cannot reproduce float64 this closely
    report, models = onnx.prepare(pipe, X, y, metric="rmse")
    assert report["status"] == "native" and models == {}
    assert report["reason"].startswith("Predictions differ by up to") and report["max_abs_diff"] > 0


def test_no_holdout_rows_means_no_conversion(frame):
    pipe, X, y = fitted(frame)
    report, models = onnx.prepare(pipe, X.iloc[:0], y[:0], metric="f1_macro")
    assert report["status"] == "native" and "no holdout rows" in report["reason"] and models == {}


def test_a_missing_column_is_refused_like_the_native_model(frame):
    pipe, X, _y = fitted(frame)
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    with pytest.raises(TrainingError, match="lacks column '日期'"):
        predictor.answer(X.drop(columns=["日期"]))


def test_onnx_without_the_platform_metadata_is_refused():
    graph = onnx_lib.helper.make_graph(
        [onnx_lib.helper.make_node("Identity", ["x"], ["y"])],
        "bare",
        [onnx_lib.helper.make_tensor_value_info("x", onnx_lib.TensorProto.FLOAT, [None, 1])],
        [onnx_lib.helper.make_tensor_value_info("y", onnx_lib.TensorProto.FLOAT, [None, 1])],
    )
    model = onnx_lib.helper.make_model(graph, opset_imports=[onnx_lib.helper.make_opsetid("", 19)])
    model.ir_version = 9
    with pytest.raises(onnx.ConversionError, match="no Lepton metadata"):
        onnx.OnnxPredictor(model.SerializeToString())


# --- variants -------------------------------------------------------------------------------------------


def test_an_int8_mlp_is_offered_when_smaller_and_within_the_tolerance(frame):
    pipe, X, y = fitted(frame, name="mlp", features=["温度", "噪声", "line"], hidden_layer_sizes=[256])
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro")
    int8 = report["variants"]["int8"]
    assert int8["offered"], int8["reason"]
    assert int8["bytes"] == len(models["int8"]) < report["bytes"]
    assert int8["metric"] >= report["metric"]["native"] - onnx.VARIANT_TOLERANCE
    quantised = onnx.OnnxPredictor(models["int8"])
    assert len(quantised.answer(X)["predictions"]) == len(X)
    float16 = report["variants"]["float16"]
    assert float16["offered"] == ("float16" in models)
    if float16["offered"]:
        assert float16["bytes"] < report["bytes"]


def test_tree_ensembles_do_not_shrink_and_say_so(frame):
    pipe, X, y = fitted(frame, name="random_forest", features=["温度", "噪声", "line"])
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert report["status"] == "used" and set(models) == {"onnx"}
    for name in onnx.VARIANTS:
        entry = report["variants"][name]
        assert not entry["offered"] and entry["reason"].startswith("not offered:")
    assert "not smaller" in report["variants"]["int8"]["reason"]


def test_a_variant_worse_than_the_tolerance_is_not_offered(frame, monkeypatch):
    pipe, X, y = fitted(frame, name="mlp", features=["温度", "噪声", "line"], hidden_layer_sizes=[256])
    monkeypatch.setattr(onnx.quantised, "VARIANT_TOLERANCE", -1.0)  # nothing can be within a negative tolerance
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert set(models) == {"onnx"}
    assert "holdout f1_macro" in report["variants"]["int8"]["reason"]


def test_holdout_metrics_match_the_platform_s_definitions(frame):
    pipe, X, y = fitted(frame, name="logistic_regression")
    predictor = onnx.OnnxPredictor(onnx.convert(pipe))
    from sklearn.metrics import f1_score, log_loss

    assert onnx.holdout_metric(pipe, X, y, "f1_macro") == pytest.approx(f1_score(y, pipe.predict(X), average="macro"))
    assert onnx.holdout_metric(predictor, X, y, "log_loss") == pytest.approx(
        log_loss(y, pipe.predict_proba(X), labels=pipe.classes_), rel=1e-4
    )
    assert onnx.metric_name("neg_root_mean_squared_error") == "rmse"


def test_sessions_run_with_one_intra_op_thread():
    options = onnx.session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_a_big_holdout_is_sampled(frame, monkeypatch):
    pipe, X, y = fitted(frame)
    monkeypatch.setattr(onnx.checks, "CHECK_MAX_ROWS", 20)
    report, _ = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert report["rows"] == 20 and report["status"] == "used"


def test_dates_in_the_frame_may_be_python_dates():
    frame = pd.DataFrame({"d": [dt.date(2024, 2, 29), None]})
    seconds = onnx._epoch_seconds(frame)
    assert seconds[0, 0] == pd.Timestamp("2024-02-29", tz="UTC").timestamp() and np.isnan(seconds[1, 0])


def test_a_knn_too_big_for_a_dense_graph_is_not_converted(frame, monkeypatch):
    pipe, X, y = fitted(frame, name="knn")
    monkeypatch.setattr(onnx.conversion, "MAX_DENSE_CELLS", 100)
    report, models = onnx.prepare(pipe, X, y, metric="f1_macro")
    assert report["status"] == "native" and "k-NN keeps 150 training rows" in report["reason"] and models == {}
