"""The scikit-learn trainer on small generated Parquet files: fit, search, evaluate, refuse, cancel."""

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models_repo.engine import tabular
from models_repo.engine.errors import TrainingError
from models_repo.engine.spec import SKLEARN_ALGORITHMS, parse_spec

COLUMNS = {
    "温度": "DOUBLE",
    "噪声": "DOUBLE",
    "line": "VARCHAR",
    "日期": "DATE",
    "备注": "VARCHAR",
    "质量": "VARCHAR",
    "产量": "DOUBLE",
}
FEATURES = ["温度", "噪声", "line", "日期", "备注"]
# Notes lean towards the class (95 %) without giving it away (no leakage warning).
GOOD_NOTES = ["运行平稳", "例行检查", "无异常记录"]
BAD_NOTES = ["更换零件", "温度偏高", "停机检修"]
OTHER_NOTES = ["夜班交接", "白班记录", "清洁完毕"]
# Small settings so each fit takes milliseconds.
SMALL = {
    "random_forest": {"n_estimators": 10},
    "gradient_boosting": {"n_estimators": 20},
    "hist_gradient_boosting": {"max_iter": 20},
    "mlp": {"hidden_layer_sizes": [16], "max_iter": 300},
}


def make_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """质量 (好/坏) and 产量 follow 温度 and line; the Chinese notes hint at 质量; 噪声 and 日期 are noise."""
    rng = np.random.default_rng(seed)
    temperature = rng.normal(size=n)
    line = rng.choice(["甲", "乙", "丙"], size=n)
    quality = np.where(temperature + 0.8 * (line == "甲") > 0.2, "好", "坏")
    hints = [(GOOD_NOTES if (q == "好") == (rng.random() < 0.95) else BAD_NOTES) for q in quality]
    frame = pd.DataFrame(
        {
            "温度": temperature,
            "噪声": rng.normal(size=n),
            "line": line,
            "日期": [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, size=n)],
            "备注": [f"{rng.choice(h)}，{rng.choice(OTHER_NOTES)}" for h in hints],
            "质量": quality,
            "产量": 3 * temperature + 2 * (line == "甲") + 0.1 * rng.normal(size=n),
        }
    )
    frame["温度"] = frame["温度"].astype(object)
    frame.loc[3, "温度"] = None  # missing values are imputed
    frame["温度"] = frame["温度"].astype(float)
    frame.loc[5, "line"] = None
    return frame


def write(tmp_path, frame: pd.DataFrame, name: str = "data.parquet") -> str:
    path = str(tmp_path / name)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def columns_of(frame: pd.DataFrame) -> dict[str, str]:
    types = {}
    for name, dtype in frame.dtypes.items():
        if name in COLUMNS:
            types[name] = COLUMNS[name]
        elif pd.api.types.is_bool_dtype(dtype):
            types[name] = "BOOLEAN"
        elif pd.api.types.is_integer_dtype(dtype):
            types[name] = "BIGINT"
        elif pd.api.types.is_float_dtype(dtype):
            types[name] = "DOUBLE"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            types[name] = "TIMESTAMP"
        else:
            types[name] = "VARCHAR"
    return types


def make_spec(frame: pd.DataFrame, **raw):
    base = {"task": "classification", "target": "质量", "features": FEATURES, "text_features": ["备注"]}
    base.update(raw)
    if base["task"] == "regression" and raw.get("target") is None:
        base["target"] = "产量"
    return parse_spec(base, columns_of(frame))


def rf(**params):
    return [{"name": "random_forest", "params": {"n_estimators": 10, **params}}]


@pytest.fixture
def frame():
    return make_frame()


@pytest.fixture
def path(tmp_path, frame):
    return write(tmp_path, frame)


@pytest.fixture
def no_learning_curve(monkeypatch):
    """Tests of analyse() that check importance only; the learning curve is tested once below."""
    monkeypatch.setattr(tabular, "LEARNING_CURVE_MAX_ROWS", 0)


def refusal(spec, path, **kwargs) -> TrainingError:
    with pytest.raises(TrainingError) as caught:
        tabular.train(spec, path, kwargs.pop("out_dir", "/nonexistent/never-written"), **kwargs)
    return caught.value


# --- every algorithm family fits and predicts ------------------------------------------------

MATRIX = [(name, task) for name, tasks in SKLEARN_ALGORITHMS.items() for task in tasks]


@pytest.mark.parametrize(("name", "task"), MATRIX, ids=[f"{n}-{t}" for n, t in MATRIX])
def test_each_algorithm_fits_and_predicts(tmp_path, frame, path, name, task):
    spec = make_spec(frame, task=task, algorithms=[{"name": name, "params": SMALL.get(name, {})}])
    result = tabular.train(spec, path, str(tmp_path / "out"))

    assert result.algorithm == name
    assert result.flavor == "sklearn"
    if task == "classification":
        # Gaussian naive Bayes is a weak baseline on one-hot and TF-IDF columns.
        assert result.metrics["accuracy"] > (0.7 if name == "gaussian_nb" else 0.8)
        assert result.output == {"classes": ["坏", "好"]}
    else:
        assert result.metrics["r2"] > 0.6
        assert result.metrics["rmse"] > 0
        assert result.output == {}
    model = tabular.load_model(result.artifact_path)
    answer = tabular.predict(model, frame.head(5))
    json.dumps(answer)
    assert len(answer["predictions"]) == 5
    if task == "classification":
        assert set(answer["predictions"]) <= {"好", "坏"}
        if hasattr(model, "predict_proba"):
            for row in answer["probabilities"]:
                assert set(row) == {"好", "坏"}
                assert math.isclose(sum(row.values()), 1.0)
        else:
            assert "probabilities" not in answer
    else:
        assert all(isinstance(p, float) for p in answer["predictions"])
        assert "probabilities" not in answer


# --- metrics, curves, importance, the result's record ---------------------------------------


def test_binary_classification_result(tmp_path, frame, path):
    progress = []
    spec = make_spec(frame, algorithms=rf())
    result = tabular.train(spec, path, str(tmp_path / "out"), progress=lambda pct, msg: progress.append((pct, msg)))

    for name in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss"):
        assert name in result.metrics
    assert result.metrics["accuracy"] > 0.8
    assert result.metrics["roc_auc"] > 0.9
    matrix = result.curves["confusion_matrix"]
    assert matrix["labels"] == ["坏", "好"]
    assert sum(map(sum, matrix["matrix"])) == result.holdout["rows"] == 24
    for curve, keys in (("roc", ("fpr", "tpr")), ("pr", ("precision", "recall"))):
        assert curve in result.curves
        assert result.curves[curve]["positive"] == "好"
        assert 2 <= len(result.curves[curve][keys[0]]) <= 200
        assert len(result.curves[curve][keys[0]]) == len(result.curves[curve][keys[1]])
    # The fit-heavy extras wait for analyse() (a follow-up job): the run is usable without them.
    assert "learning" not in result.curves and result.importance == []
    assert result.input_schema == [
        {"name": "温度", "type": "number", "nullable": True},
        {"name": "噪声", "type": "number", "nullable": False},
        {"name": "line", "type": "string", "nullable": True},
        {"name": "日期", "type": "datetime", "nullable": False},
        {"name": "备注", "type": "string", "nullable": False},
    ]
    assert result.holdout["metric"] == "f1_macro"
    assert result.holdout["indices"] == sorted(result.holdout["indices"])
    assert len(result.holdout["indices"]) == 24
    assert set(result.packages) >= {"scikit-learn", "numpy", "pandas", "pyarrow"}
    assert result.seconds > 0
    assert result.params["n_estimators"] == 10
    assert result.params["random_state"] == 42
    assert result.warnings == []
    assert (tmp_path / "out" / "model.joblib").exists()
    json.dumps(result.__dict__)
    percents = [p for p, _ in progress]
    assert percents == sorted(percents)
    assert 0 < percents[0] and percents[-1] <= 100


def test_analyse_adds_learning_curve_and_importance(tmp_path, frame, path):
    spec = make_spec(frame, algorithms=rf())
    result = tabular.train(spec, path, str(tmp_path / "out"))
    seen = []
    analysis = tabular.analyse(
        spec, path, tabular.load_model(result.artifact_path), result.holdout["indices"], progress=lambda p, m: seen.append(m)
    )
    learning = analysis["learning"]
    assert 2 <= len(learning["train_sizes"]) <= 5
    assert learning["train_sizes"] == sorted(learning["train_sizes"])
    assert learning["scoring"] == "f1_macro"
    assert all(0 <= s <= 1 for s in learning["test_scores"])
    ranked = [item["feature"] for item in analysis["importance"]]
    assert set(ranked[:2]) == {"温度", "备注"}  # the two informative columns lead; 噪声 and 日期 are noise
    means = [item["mean"] for item in analysis["importance"]]
    assert means == sorted(means, reverse=True)
    assert set(ranked) == set(FEATURES)
    assert seen == ["Learning curve", "Permutation importance"]
    json.dumps(analysis)


def test_analyse_refuses_another_holdout_and_stops_between_parts(tmp_path, frame, path):
    spec = make_spec(frame, algorithms=rf())
    result = tabular.train(spec, path, str(tmp_path / "out"))
    model = tabular.load_model(result.artifact_path)
    with pytest.raises(TrainingError, match="holdout"):
        tabular.analyse(spec, path, model, result.holdout["indices"][1:])
    stopped = tabular.analyse(spec, path, model, result.holdout["indices"], should_stop=lambda: True)
    assert stopped["stopped"] and stopped["learning"] is not None and stopped["importance"] == []


def test_multiclass_metrics(tmp_path, frame):
    frame["质量"] = pd.cut(frame["温度"].fillna(0), [-np.inf, -0.5, 0.5, np.inf], labels=["低", "中", "高"]).astype(str)
    path = write(tmp_path, frame)
    spec = make_spec(frame, features=["温度", "噪声", "line"], text_features=[], algorithms=rf(), scoring="roc_auc_ovr")
    result = tabular.train(spec, path, str(tmp_path / "out"))
    assert len(result.output["classes"]) == 3
    assert "roc_auc" in result.metrics
    assert "roc_auc_ovr" in result.metrics
    assert "roc" not in result.curves
    matrix = result.curves["confusion_matrix"]["matrix"]
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert result.metrics["accuracy"] > 0.7


def test_regression_metrics_and_residuals(tmp_path, frame, path, no_learning_curve):
    spec = make_spec(frame, task="regression", algorithms=[{"name": "linear_regression"}])
    result = tabular.train(spec, path, str(tmp_path / "out"))
    for name in ("rmse", "mae", "mape", "r2", "neg_root_mean_squared_error"):
        assert name in result.metrics
    assert result.metrics["r2"] > 0.95
    assert result.metrics["rmse"] == pytest.approx(-result.metrics["neg_root_mean_squared_error"])
    residuals = result.curves["residuals"]
    assert len(residuals["predicted"]) == len(residuals["residual"]) == result.holdout["rows"]
    assert result.holdout["metric"] == "neg_root_mean_squared_error"
    analysis = tabular.analyse(spec, path, tabular.load_model(result.artifact_path), result.holdout["indices"])
    assert analysis["importance"][0]["feature"] == "温度"


def test_same_seed_same_result_other_seed_other_holdout(tmp_path, frame, path, no_learning_curve):
    raw = {"algorithms": [{"name": "random_forest", "params": {"n_estimators": 10}, "search": {"max_depth": [2, None]}}]}
    first = tabular.train(make_spec(frame, **raw), path, str(tmp_path / "a"))
    second = tabular.train(make_spec(frame, **raw), path, str(tmp_path / "b"))
    assert first.metrics == second.metrics
    assert first.candidates == second.candidates
    importance = [
        tabular.analyse(make_spec(frame, **raw), path, tabular.load_model(r.artifact_path), r.holdout["indices"])["importance"]
        for r in (first, second)
    ]
    assert importance[0] == importance[1] != []
    assert first.holdout == second.holdout
    other = tabular.train(make_spec(frame, seed=7, **raw), path, str(tmp_path / "c"))
    assert other.holdout["indices"] != first.holdout["indices"]


# --- search and selection -------------------------------------------------------------------


def ridge_search(values):
    return [{"name": "ridge", "search": {"alpha": values}}]


def test_grid_search_keeps_the_best_candidate(tmp_path, frame, path):
    spec = make_spec(frame, task="regression", algorithms=ridge_search([1e6, 0.01]))
    result = tabular.train(spec, path, str(tmp_path / "out"))
    assert result.params["alpha"] == 0.01
    assert [c["params"]["alpha"] for c in result.candidates] == [0.01, 1e6]
    assert result.candidates[0]["score"] > result.candidates[1]["score"]
    assert result.cv["n_folds"] == 3  # the inner CV of a search without cv_folds
    assert result.cv["mean"] == result.candidates[0]["score"]
    assert len(result.cv["folds"]) == 3


def test_random_search_tries_budget_candidates(tmp_path, frame, path):
    search = {"method": "random", "budget": 2}
    spec = make_spec(frame, task="regression", algorithms=ridge_search([0.01, 0.1, 1e5, 1e6]), search=search)
    result = tabular.train(spec, path, str(tmp_path / "out"))
    assert len(result.candidates) == 2
    assert result.params["alpha"] == result.candidates[0]["params"]["alpha"]
    assert result.candidates[0]["score"] >= result.candidates[1]["score"]


def test_halving_search_picks_a_small_alpha(tmp_path, frame, path):
    alphas = [1e6, 1e5, 1e4, 0.01, 0.1, 1.0]
    spec = make_spec(frame, task="regression", algorithms=ridge_search(alphas), search={"method": "halving"})
    result = tabular.train(spec, path, str(tmp_path / "out"))
    assert result.params["alpha"] <= 1.0
    assert len(result.candidates) == 6
    assert max(c["round"] for c in result.candidates) >= 1


def test_best_algorithm_chosen_by_cv_score(tmp_path, frame, path):
    spec = make_spec(
        frame,
        task="regression",
        algorithms=[{"name": "ridge", "params": {"alpha": 1e6}}, {"name": "linear_regression"}],
    )
    result = tabular.train(spec, path, str(tmp_path / "out"))
    assert result.algorithm == "linear_regression"
    assert [c["algorithm"] for c in result.candidates] == ["linear_regression", "ridge"]


def test_cv_folds_without_search_reports_each_fold(tmp_path, frame, path):
    result = tabular.train(make_spec(frame, algorithms=rf(), cv_folds=4), path, str(tmp_path / "out"))
    assert result.cv["n_folds"] == 4
    assert len(result.cv["folds"]) == 4
    assert result.cv["mean"] == pytest.approx(np.mean(result.cv["folds"]))
    assert result.cv["splitter"] == "StratifiedKFold"


def test_single_algorithm_without_search_is_just_fitted(tmp_path, frame, path):
    result = tabular.train(make_spec(frame, algorithms=rf()), path, str(tmp_path / "out"))
    assert result.cv == {}
    assert result.candidates == [{"algorithm": "random_forest", "params": {"n_estimators": 10}, "score": None}]


# --- splits ---------------------------------------------------------------------------------


def test_time_split_holds_out_the_latest_rows(tmp_path, frame):
    rng = np.random.default_rng(1)
    frame["ts"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.permutation(len(frame)), unit="h")
    path = write(tmp_path, frame)
    spec = make_spec(frame, algorithms=rf(), time_column="ts", split={"method": "time", "holdout": 0.25}, cv_folds=3)
    result = tabular.train(spec, path, str(tmp_path / "out"))
    held = set(result.holdout["indices"])
    assert len(held) == 30
    latest = set(frame["ts"].sort_values().index[-30:])
    assert held == latest
    assert result.cv["splitter"] == "TimeSeriesSplit"


def test_time_split_refuses_rows_without_time(tmp_path, frame):
    frame["ts"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(frame)), unit="h")
    frame.loc[[1, 2], "ts"] = pd.NaT
    path = write(tmp_path, frame)
    error = refusal(make_spec(frame, algorithms=rf(), time_column="ts", split={"method": "time"}), path)
    assert error.code == TrainingError.TIME_HAS_NULLS
    assert "2 rows" in error.message


def test_group_split_keeps_each_group_on_one_side(tmp_path, frame):
    frame["machine"] = [f"M{i % 12}" for i in range(len(frame))]
    path = write(tmp_path, frame)
    spec = make_spec(frame, algorithms=rf(), group_column="machine", split={"method": "random"}, cv_folds=3)
    result = tabular.train(spec, path, str(tmp_path / "out"))
    held = result.holdout["indices"]
    held_groups = set(frame["machine"].iloc[held])
    train_groups = set(frame["machine"].drop(index=held))
    assert held_groups and not held_groups & train_groups
    assert result.cv["splitter"] == "StratifiedGroupKFold"


# --- refusals before fitting ----------------------------------------------------------------


def test_target_with_nulls_refused_with_count(tmp_path, frame):
    frame["质量"] = frame["质量"].astype(object)
    frame.loc[[0, 1, 2], "质量"] = None
    path = write(tmp_path, frame)
    error = refusal(make_spec(frame, algorithms=rf()), path)
    assert error.code == TrainingError.TARGET_HAS_NULLS
    assert "3 of 120 rows" in error.message
    assert "target" in error.fields


def test_constant_target_refused(tmp_path, frame):
    frame["质量"] = "好"
    error = refusal(make_spec(frame, algorithms=rf()), write(tmp_path, frame))
    assert error.code == TrainingError.TARGET_CONSTANT
    assert "target" in error.fields


def test_too_few_rows_refused(tmp_path):
    frame = make_frame(n=6)
    frame["质量"] = ["好", "坏"] * 3
    error = refusal(make_spec(frame, algorithms=rf(), split={"method": "random"}), write(tmp_path, frame))
    assert error.code == TrainingError.TOO_FEW_ROWS
    assert "6 rows" in error.message
    assert "split.holdout" in error.fields


def test_class_with_one_row_refused_under_stratification(tmp_path, frame):
    frame.loc[7, "质量"] = "未知"
    error = refusal(make_spec(frame, algorithms=rf()), write(tmp_path, frame))
    assert error.code == TrainingError.CLASS_TOO_SMALL
    assert "'未知'" in error.message
    assert "target" in error.fields


def test_class_smaller_than_cv_folds_refused(tmp_path, frame):
    frame.loc[[7, 8, 9], "质量"] = "未知"
    error = refusal(make_spec(frame, algorithms=rf(), cv_folds=5), write(tmp_path, frame))
    assert error.code == TrainingError.CLASS_TOO_SMALL
    assert "'未知'" in error.message
    assert "cv_folds" in error.fields


def test_no_usable_features_refused(tmp_path, frame):
    frame["噪声"] = np.nan
    frame["line"] = "甲"
    path = write(tmp_path, frame)
    error = refusal(make_spec(frame, features=["噪声", "line"], text_features=[], algorithms=rf()), path)
    assert error.code == TrainingError.NO_FEATURES
    assert "features" in error.fields


def test_empty_feature_left_out_with_a_warning(tmp_path, frame):
    frame["噪声"] = np.nan
    result = tabular.train(make_spec(frame, algorithms=rf()), write(tmp_path, frame), str(tmp_path / "out"))
    assert "噪声" not in [c["name"] for c in result.input_schema]
    assert any(w["code"] == "empty_feature" and "噪声" in w["message"] for w in result.warnings)


def test_binary_roc_auc_scoring_refused_for_many_classes(tmp_path, frame):
    frame["质量"] = np.array(["低", "中", "高"])[np.arange(len(frame)) % 3]
    error = refusal(make_spec(frame, algorithms=rf(), scoring="roc_auc"), write(tmp_path, frame))
    assert error.code == TrainingError.INVALID_SPEC
    assert "scoring" in error.fields


def test_keras_spec_refused_by_the_sklearn_trainer(frame, path):
    spec = make_spec(frame, algorithms=[{"name": "keras_mlp"}])
    assert refusal(spec, path).code == TrainingError.INVALID_SPEC


# --- warnings -------------------------------------------------------------------------------


def test_copy_of_the_target_warned_as_leakage(tmp_path, frame):
    frame["复制"] = frame["质量"]
    spec = make_spec(frame, features=[*FEATURES, "复制"], algorithms=rf())
    result = tabular.train(spec, write(tmp_path, frame), str(tmp_path / "out"))
    leaks = [w for w in result.warnings if w["code"] == "leakage"]
    assert len(leaks) == 1
    assert "'复制'" in leaks[0]["message"]


def test_linear_function_of_a_numeric_target_warned_as_leakage(tmp_path, frame):
    frame["两倍"] = 2 * frame["产量"] + 1
    spec = make_spec(frame, task="regression", features=[*FEATURES, "两倍"], algorithms=[{"name": "ridge"}])
    result = tabular.train(spec, write(tmp_path, frame), str(tmp_path / "out"))
    leaks = [w for w in result.warnings if w["code"] == "leakage"]
    assert [("'两倍'" in w["message"]) for w in leaks] == [True]


def test_class_imbalance_warned_naming_the_small_class(tmp_path):
    frame = make_frame(n=200)
    frame["质量"] = "正常"
    frame.loc[frame.index[:12], "质量"] = "异常"
    result = tabular.train(make_spec(frame, algorithms=rf()), write(tmp_path, frame), str(tmp_path / "out"))
    imbalance = [w for w in result.warnings if w["code"] == "class_imbalance"]
    assert len(imbalance) == 1
    assert "'异常'" in imbalance[0]["message"]


def test_few_rows_warned(tmp_path):
    frame = make_frame(n=30)
    result = tabular.train(make_spec(frame, algorithms=rf()), write(tmp_path, frame), str(tmp_path / "out"))
    assert "few_rows" in [w["code"] for w in result.warnings]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_before_anything_finished(frame, path):
    error = refusal(make_spec(frame, algorithms=rf()), path, should_stop=lambda: True)
    assert error.code == TrainingError.CANCELLED


def test_cancel_keeps_the_algorithm_that_finished(tmp_path, frame, path):
    seen = []
    spec = make_spec(frame, algorithms=[*rf(), {"name": "knn"}])
    result = tabular.train(
        spec,
        path,
        str(tmp_path / "out"),
        progress=lambda pct, msg: seen.append(msg),
        should_stop=lambda: any("(2/2)" in m for m in seen),
    )
    assert result.algorithm == "random_forest"
    assert [c["algorithm"] for c in result.candidates] == ["random_forest"]
    assert "cancelled" in [w["code"] for w in result.warnings]
    assert "accuracy" in result.metrics
    assert (tmp_path / "out" / "model.joblib").exists()


def test_cancel_mid_search_keeps_the_complete_candidates(tmp_path, frame, path):
    seen = []
    spec = make_spec(frame, task="regression", algorithms=ridge_search([1e6, 0.01, 1.0]))
    result = tabular.train(
        spec,
        path,
        str(tmp_path / "out"),
        progress=lambda pct, msg: seen.append(msg),
        should_stop=lambda: any("6/9 fits" in m for m in seen),
    )
    assert sorted(c["params"]["alpha"] for c in result.candidates) == [0.01, 1e6]
    assert result.params["alpha"] == 0.01
    assert "cancelled" in [w["code"] for w in result.warnings]
    assert result.metrics["r2"] > 0.9


# --- serving and the gate -------------------------------------------------------------------


def test_load_model_round_trip_and_messy_input(tmp_path, frame, path):
    result = tabular.train(make_spec(frame, algorithms=rf()), path, str(tmp_path / "out"))
    model = tabular.load_model(result.artifact_path)
    again = tabular.load_model(result.artifact_path)
    assert tabular.predict(model, frame) == tabular.predict(again, frame)
    messy = pd.DataFrame(
        {
            "温度": [2.0, None],
            "噪声": ["0.1", None],
            "line": ["新产线", None],
            "日期": ["2024-03-01", None],
            "备注": ["从未见过的文字", None],
            "extra": [1, 2],
        }
    )
    answer = tabular.predict(model, messy)
    assert json.loads(json.dumps(answer)) == answer
    assert answer["predictions"][0] == "好"  # a high temperature
    assert len(answer["probabilities"]) == 2


def test_predict_names_missing_columns(tmp_path, frame, path):
    result = tabular.train(make_spec(frame, algorithms=rf()), path, str(tmp_path / "out"))
    with pytest.raises(TrainingError) as caught:
        tabular.predict(tabular.load_model(result.artifact_path), frame.drop(columns=["温度", "line"]))
    assert caught.value.code == TrainingError.BAD_INPUT
    assert set(caught.value.fields) == {"温度", "line"}


def test_integer_and_boolean_classes_are_json_values(tmp_path, frame):
    frame["坏"] = frame["质量"] == "坏"
    path = write(tmp_path, frame)
    result = tabular.train(make_spec(frame, target="坏", algorithms=rf()), path, str(tmp_path / "out"))
    assert result.output == {"classes": [False, True]}
    answer = tabular.predict(tabular.load_model(result.artifact_path), frame.head(3))
    assert all(isinstance(p, bool) for p in answer["predictions"])
    assert set(answer["probabilities"][0]) == {"false", "true"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_score_equals_the_holdout_metrics_of_train(tmp_path, frame, path, task):
    spec = make_spec(frame, task=task, algorithms=rf())
    result = tabular.train(spec, path, str(tmp_path / "out"))
    model = tabular.load_model(result.artifact_path)
    assert tabular.score(model, path, result.holdout["indices"], spec) == result.metrics


def test_score_rescores_another_model_on_the_same_holdout(tmp_path, frame, path):
    spec = make_spec(frame, algorithms=rf())
    first = tabular.train(spec, path, str(tmp_path / "a"))
    other_spec = make_spec(frame, features=["噪声"], text_features=[], algorithms=[{"name": "gaussian_nb"}])
    other = tabular.load_model(tabular.train(other_spec, path, str(tmp_path / "b")).artifact_path)
    rescored = tabular.score(other, path, first.holdout["indices"], spec)
    assert set(rescored) == set(first.metrics)
    assert rescored["accuracy"] < first.metrics["accuracy"]  # noise only
