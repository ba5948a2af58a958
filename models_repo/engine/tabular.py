"""scikit-learn training for classification and regression on one Parquet file.

`train` fits one Pipeline per candidate — a ColumnTransformer (numbers imputed and scaled,
categories one-hot, dates split into parts, text as TF-IDF character n-grams) followed by
the estimator — so serving needs the pickled pipeline and nothing else. Steps:

1. read the spec's columns (pyarrow → pandas) and refuse data it cannot learn from;
2. split off the holdout (random, stratified, by time, or by group);
3. search each algorithm with cross-validation on the training part (grid, random or
   halving) and keep the best by CV score; a single algorithm without a search space or
   cv_folds is simply fitted;
4. evaluate the chosen pipeline on the holdout: metrics, ROC/PR/residual curves; write it
   with joblib.

`analyse` adds the learning curve and permutation importance afterwards (a follow-up job):
they cost several fits, and the model is usable without them.

Scores follow scikit-learn's sign convention (higher is better: "neg_root_mean_squared_error"
is minus the RMSE); holdout metrics are plain (rmse is positive). The transformer functions
below are module-level because the pickled pipeline refers to them by name: renaming or
moving them breaks every stored model.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingGridSearchCV importable)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    get_scorer,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_curve,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    GroupShuffleSplit,
    HalvingGridSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    learning_curve,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from .errors import TrainingError
from .result import TrainResult
from .spec import DENSE_ONLY, TrainingSpec, estimator_class, estimator_params

ARTIFACT_NAME = "model.joblib"
INNER_CV_FOLDS = 3  # the search's CV when the spec asks for no cv_folds
MIN_TRAIN_ROWS = 5
MIN_HOLDOUT_ROWS = 2
MAX_CATEGORIES = 50  # one-hot columns per categorical feature (the rest share "infrequent")
TEXT_FEATURES_SPARSE = 5000  # TF-IDF terms per text column when the estimator takes sparse input
TEXT_FEATURES_DENSE = 300  # … when it needs a dense matrix (rows × terms floats in memory)
TEXT_NGRAMS = (1, 3)
LEARNING_CURVE_MAX_ROWS = 50_000
LEARNING_CURVE_SIZES = (0.2, 0.4, 0.6, 0.8, 1.0)
IMPORTANCE_MAX_ROWS = 5000
IMPORTANCE_REPEATS = 5
CURVE_POINTS = 200
RESIDUAL_POINTS = 500
CHECK_SAMPLE_ROWS = 20_000  # leakage checks look at a sample
IMBALANCE_RATIO = 0.1
FEW_ROWS = 50
FEW_ROWS_PER_CLASS = 10
DATE_PARTS = ("year", "month", "day", "weekday", "hour")

Progress = Callable[[int, str], None]


# --- transformers (module-level: the pickled pipeline names them) -------------------------


def to_float(X) -> np.ndarray:
    """Numbers and booleans as a float matrix; anything unreadable becomes NaN (then imputed)."""
    frame = pd.DataFrame(X)
    out = np.empty(frame.shape, dtype=float)
    for j, name in enumerate(frame.columns):
        column = frame[name]
        if column.dtype == object:
            column = column.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
        out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return out


def to_category(X) -> np.ndarray:
    """Categories as an object matrix of strings, NaN where missing (SimpleImputer fills it)."""
    frame = pd.DataFrame(X)
    out = np.empty(frame.shape, dtype=object)
    for j, name in enumerate(frame.columns):
        column = frame[name]
        missing = column.isna().to_numpy()
        values = column.astype(object).to_numpy()
        out[:, j] = [np.nan if m else str(v) for v, m in zip(values, missing, strict=True)]
    return out


def to_text(X) -> list[str]:
    """One text column as a list of documents, "" where missing (TfidfVectorizer needs strings)."""
    column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X, dtype=object).ravel())
    return ["" if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else str(v) for v in column]


def date_parts(X) -> np.ndarray:
    """Each date/timestamp column as year, month, day, weekday, hour (UTC); NaN where missing."""
    frame = pd.DataFrame(X)
    blocks = []
    for name in frame.columns:
        when = pd.to_datetime(frame[name], errors="coerce", utc=True)
        blocks.append(
            np.column_stack(
                [
                    when.dt.year.to_numpy(dtype=float, na_value=np.nan),
                    when.dt.month.to_numpy(dtype=float, na_value=np.nan),
                    when.dt.day.to_numpy(dtype=float, na_value=np.nan),
                    when.dt.day_of_week.to_numpy(dtype=float, na_value=np.nan),
                    when.dt.hour.to_numpy(dtype=float, na_value=np.nan),
                ]
            )
        )
    return np.hstack(blocks) if blocks else np.empty((len(frame), 0))


def date_part_names(transformer, input_features) -> np.ndarray:
    return np.array([f"{name}.{part}" for name in input_features for part in DATE_PARTS], dtype=object)


# --- pipeline -----------------------------------------------------------------------------


def build_pipeline(spec: TrainingSpec, algorithm: str, params: dict[str, Any], features: list[str]) -> Pipeline:
    """Preprocessing for `features` (by their kinds in the spec) and the estimator, unfitted."""
    kinds = spec.feature_kinds
    dense = algorithm in DENSE_ONLY
    numeric = [f for f in features if kinds[f] in ("integer", "number", "boolean")]
    categorical = [f for f in features if kinds[f] == "string"]
    dates = [f for f in features if kinds[f] == "datetime"]
    texts = [f for f in features if kinds[f] == "text"]
    transformers: list[tuple[str, Any, Any]] = []
    if numeric:
        steps = [
            ("float", FunctionTransformer(to_float, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
        transformers.append(("numeric", Pipeline(steps), numeric))
    if categorical:
        steps = [
            ("str", FunctionTransformer(to_category, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", max_categories=MAX_CATEGORIES, sparse_output=not dense)),
        ]
        transformers.append(("categorical", Pipeline(steps), categorical))
    if dates:
        steps = [
            ("parts", FunctionTransformer(date_parts, feature_names_out=date_part_names)),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
        transformers.append(("datetime", Pipeline(steps), dates))
    for i, name in enumerate(texts):
        # char_wb n-grams read Chinese without a word segmenter; sublinear tf damps repeats.
        vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=TEXT_NGRAMS,
            max_features=TEXT_FEATURES_DENSE if dense else TEXT_FEATURES_SPARSE,
            sublinear_tf=True,
        )
        transformers.append((f"text{i}", Pipeline([("str", FunctionTransformer(to_text)), ("tfidf", vectorizer)]), [name]))
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0 if dense else 0.3)
    model = estimator_class(algorithm, spec.task)(**estimator_params(algorithm, spec.task, params, spec.seed))
    return Pipeline([("preprocess", preprocess), ("model", model)])


# --- public API ---------------------------------------------------------------------------


def train(
    spec: TrainingSpec,
    parquet_path: str,
    out_dir: str,
    *,
    progress: Progress = lambda pct, msg: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainResult:
    """Fit, select and evaluate the spec's algorithms on the Parquet at `parquet_path`.

    Writes out_dir/model.joblib. Raises TrainingError for data it refuses (before fitting),
    FIT_FAILED when every candidate failed, CANCELLED when should_stop() said so before any
    candidate finished; a stop after that returns the best finished one with a warning.
    """
    if spec.flavor != "sklearn" or spec.task not in ("classification", "regression"):
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"The scikit-learn trainer does classification and regression, not {spec.task} with {spec.flavor}.",
            {"task": ["Use a Keras algorithm for this task."]},
        )
    started = time.monotonic()
    progress(3, "Reading the data")
    frame = _read(parquet_path, spec)
    notes: list[dict[str, str]] = []
    features = _usable_features(spec, frame, notes)
    y = _target(frame, spec)
    classes = _check_target(spec, y)
    if classes is not None and spec.scoring == "roc_auc" and len(classes) > 2:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"roc_auc scores two classes and the target has {len(classes)}; use roc_auc_ovr.",
            {"scoring": ["Use roc_auc_ovr for more than two classes."]},
        )
    split = _split(spec, frame, y, classes)
    notes.extend(_data_warnings(spec, frame, features, y))
    X = frame[features]

    train_rows, test_rows = split.train, split.test
    X_train, y_train = X.iloc[train_rows], y[train_rows]
    groups_train = split.groups[train_rows] if split.groups is not None else None
    selecting = spec.has_search or len(spec.algorithms) > 1 or spec.cv_folds > 0
    folds = spec.cv_folds or INNER_CV_FOLDS
    cv = _cv(spec, folds) if selecting else None

    finished: list[_Finished] = []
    candidates: list[dict[str, Any]] = []
    failures: list[str] = []
    stopped = False
    share = 80 / len(spec.algorithms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for position, algorithm in enumerate(spec.algorithms):
            if should_stop():
                stopped = True
                break
            base = 5 + position * share
            label = f"{algorithm.name} ({position + 1}/{len(spec.algorithms)})"
            progress(int(base), f"Fitting {label}")
            try:
                if not selecting:
                    pipe = build_pipeline(spec, algorithm.name, algorithm.params, features)
                    pipe.fit(X_train, y_train)
                    done = _Finished(algorithm.name, dict(algorithm.params), None, pipe, [])
                    finished.append(done)
                    candidates.append({"algorithm": algorithm.name, "params": _jsonable(algorithm.params), "score": None})
                    continue
                watch = _Watch(
                    spec, algorithm, folds, lambda pct, msg, b=base: progress(int(b + pct * share), msg), should_stop, label
                )
                search = _searcher(spec, build_pipeline(spec, algorithm.name, algorithm.params, features), algorithm, cv, watch)
                search.fit(X_train, y_train, groups=groups_train)
                found = _search_candidates(algorithm, search)
                candidates.extend(found)
                best = search.best_index_
                fold_scores = [float(search.cv_results_[f"split{j}_test_score"][best]) for j in range(folds)]
                chosen = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
                score = float(search.best_score_)
                if not math.isfinite(score):
                    raise ValueError(f"every candidate of {algorithm.name} failed to fit or score")
                finished.append(
                    _Finished(algorithm.name, {**algorithm.params, **chosen}, score, search.best_estimator_, fold_scores)
                )
            except _Stopped:
                stopped = True
                partial = watch.best_complete()
                if partial is not None and not finished:
                    # Keep what finished: the best candidate whose folds all ran, refitted once.
                    chosen, score, fold_scores = partial
                    params = {**algorithm.params, **chosen}
                    pipe = build_pipeline(spec, algorithm.name, params, features).fit(X_train, y_train)
                    finished.append(_Finished(algorithm.name, params, score, pipe, fold_scores))
                    candidates.extend(watch.complete_candidates())
                break
            except (ValueError, TypeError, ArithmeticError, MemoryError, np.linalg.LinAlgError) as exc:
                failures.append(f"{algorithm.name}: {_short(exc)}")
        notes.extend(_caught_warnings(caught))

    if not finished:
        if stopped:
            raise TrainingError(TrainingError.CANCELLED, "Training was stopped before any candidate finished.")
        raise TrainingError(TrainingError.FIT_FAILED, "No algorithm could be fitted: " + "; ".join(failures))
    for failure in failures:
        notes.append({"code": "algorithm_failed", "message": f"Left out after an error: {failure}"})
    if stopped:
        notes.append(
            {
                "code": "cancelled",
                "message": f"Stopped on request; kept the best of the {len(finished)} algorithm(s) that finished.",
            }
        )
    best = max(finished, key=lambda f: -math.inf if f.score is None else f.score) if selecting else finished[0]
    model = best.pipeline

    progress(86, "Evaluating on the holdout")
    X_test, y_test = X.iloc[test_rows], y[test_rows]
    metrics, curves = _evaluate(spec, model, X_test, y_test)
    progress(98, "Writing the model")
    os.makedirs(out_dir, exist_ok=True)
    artifact = os.path.join(out_dir, ARTIFACT_NAME)
    joblib.dump(model, artifact, compress=3)

    cv_report: dict[str, Any] = {}
    if best.score is not None:
        cv_report = {
            "scoring": spec.scoring,
            "folds": best.fold_scores,
            "mean": best.score,
            "std": float(np.std(best.fold_scores)) if best.fold_scores else None,
            "n_folds": folds,
            "splitter": type(cv).__name__,
        }
    candidates.sort(key=lambda c: -math.inf if c.get("score") is None else c["score"], reverse=True)
    return TrainResult(
        artifact_path=artifact,
        flavor="sklearn",
        task=spec.task,
        algorithm=best.algorithm,
        params=_jsonable(model.named_steps["model"].get_params(deep=False)),
        metrics=metrics,
        cv=_jsonable(cv_report),
        candidates=_jsonable(candidates),
        curves=_jsonable(curves),
        importance=[],
        input_schema=[
            {"name": f, "type": _schema_type(spec.feature_kinds[f]), "nullable": bool(frame[f].isna().any())} for f in features
        ],
        output={"classes": _jsonable(list(model.classes_))} if spec.task == "classification" else {},
        warnings=notes,
        holdout={
            "rows": int(len(test_rows)),
            "metric": spec.scoring,
            "indices": [int(i) for i in test_rows],
            "method": split.method,
        },
        seconds=round(time.monotonic() - started, 3),
        packages=package_versions(),
    )


def load_model(path: str):
    """The fitted pipeline written by `train`."""
    return joblib.load(path)


def predict(model, frame: pd.DataFrame) -> dict[str, list]:
    """Predictions for `frame` (one row per case, the model's input columns; extra ones ignored).

    Returns {"predictions": [...]} and, for classifiers with probabilities,
    "probabilities": [{class: p}] keyed as JSON keys the class (str(1) → "1", True → "true").
    """
    X = _model_input(model, frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unknown categories are encoded as zeros by design
        out: dict[str, list] = {"predictions": [_py(v) for v in model.predict(X)]}
        if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
            keys = [_class_key(c) for c in model.classes_]
            proba = model.predict_proba(X)
            out["probabilities"] = [{k: float(p) for k, p in zip(keys, row, strict=True)} for row in proba]
    return out


def score(model, parquet_path: str, holdout_indices: list[int], spec: TrainingSpec) -> dict[str, float]:
    """The holdout metrics of `model` on the rows `holdout_indices` of the Parquet (as train reports them)."""
    columns = list(dict.fromkeys([*model.feature_names_in_, spec.target]))
    table = pq.read_table(parquet_path, columns=columns).take(pa.array(holdout_indices, type=pa.int64()))
    frame = table.to_pandas(date_as_object=False)
    y = _target(frame, spec)
    metrics, _ = _evaluate(spec, model, _model_input(model, frame), y)
    return metrics


def analyse(
    spec: TrainingSpec,
    parquet_path: str,
    model,
    holdout_indices: list[int],
    *,
    progress: Progress = lambda pct, msg: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """The learning curve and permutation importance of a trained run, computed after it.

    These refit the pipeline several times (the curve) and score it once per feature and repeat
    (importance), several times the cost of the fit itself; a run's model is registered and
    usable without them. The split is recomputed from the spec and its seed and must give the
    holdout the run recorded. Returns {"learning": curve or None, "importance": [...],
    "stopped": bool}; should_stop() is polled between the two.
    """
    frame = _read(parquet_path, spec)
    features = _usable_features(spec, frame, [])
    y = _target(frame, spec)
    split = _split(spec, frame, y, _check_target(spec, y))
    if [int(i) for i in split.test] != [int(i) for i in holdout_indices]:
        raise TrainingError(
            TrainingError.INVALID_SPEC, "The data no longer gives the run's holdout; the analysis would not describe it."
        )
    X = frame[features]
    train_rows, test_rows = split.train, split.test
    groups = split.groups[train_rows] if split.groups is not None else None
    out: dict[str, Any] = {"learning": None, "importance": [], "stopped": False}
    if len(train_rows) <= LEARNING_CURVE_MAX_ROWS:
        progress(10, "Learning curve")
        folds = min(spec.cv_folds or INNER_CV_FOLDS, INNER_CV_FOLDS)
        out["learning"] = _learning_curve(spec, model, X.iloc[train_rows], y[train_rows], groups, folds)
    if should_stop():
        out["stopped"] = True
        return out
    progress(70, "Permutation importance")
    out["importance"] = _importance(spec, model, X.iloc[test_rows], y[test_rows])
    return out


def package_versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


# --- reading and checks -------------------------------------------------------------------


def _read(parquet_path: str, spec: TrainingSpec) -> pd.DataFrame:
    wanted = list(dict.fromkeys([*spec.features, spec.target, *(c for c in (spec.time_column, spec.group_column) if c)]))
    present = set(pq.ParquetFile(parquet_path).schema_arrow.names)
    missing = [c for c in wanted if c not in present]
    if missing:
        code = TrainingError.TARGET_MISSING if spec.target in missing else TrainingError.INVALID_SPEC
        raise TrainingError(
            code,
            f"The data has no column {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "") + ".",
            {"target" if c == spec.target else "features": [f"No column named {c!r} in the data."] for c in missing},
        )
    return pq.read_table(parquet_path, columns=wanted).to_pandas(date_as_object=False)


def _target(frame: pd.DataFrame, spec: TrainingSpec) -> np.ndarray:
    column = frame[spec.target]
    if spec.task == "regression":
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if column.isna().any():
        return column.astype(object).to_numpy()
    return column.to_numpy()


def _usable_features(spec: TrainingSpec, frame: pd.DataFrame, notes: list[dict[str, str]]) -> list[str]:
    """The spec's features less the empty ones; NO_FEATURES when nothing informative is left."""
    empty = [f for f in spec.features if frame[f].isna().all()]
    features = [f for f in spec.features if f not in empty]
    if empty:
        notes.append({"code": "empty_feature", "message": f"Left out columns with no values: {', '.join(empty)}."})
    if spec.skipped:
        notes.append(
            {
                "code": "skipped_columns",
                "message": f"Columns of types that cannot be features were left out: {', '.join(spec.skipped)}.",
            }
        )
    informative = [f for f in features if frame[f].nunique(dropna=False) > 1]
    if not informative:
        detail = "every feature column is empty or holds one value" if spec.features else "there are no feature columns"
        raise TrainingError(
            TrainingError.NO_FEATURES,
            f"Nothing to learn from: {detail}.",
            {"features": ["Give at least one column with varying values."]},
        )
    return features


def _check_target(spec: TrainingSpec, y: np.ndarray) -> pd.Series | None:
    """Refuse an empty or constant target; the class counts (largest first) for classification."""
    values = pd.Series(y)
    nulls = int(values.isna().sum())
    if nulls:
        raise TrainingError(
            TrainingError.TARGET_HAS_NULLS,
            f"The target {spec.target!r} is empty in {nulls} of {len(values)} rows; filter or fill those rows before training.",
            {"target": [f"{nulls} rows have no value."]},
        )
    if values.nunique() < 2:
        only = values.iloc[0] if len(values) else None
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            f"The target {spec.target!r} has a single value ({_py(only)!r}); there is nothing to learn.",
            {"target": ["All rows have the same value."]},
        )
    if spec.task != "classification":
        return None
    return values.value_counts()


class _Split:
    def __init__(self, train: np.ndarray, test: np.ndarray, groups: np.ndarray | None, method: str):
        self.train, self.test, self.groups, self.method = train, test, groups, method


def _split(spec: TrainingSpec, frame: pd.DataFrame, y: np.ndarray, classes: pd.Series | None) -> _Split:
    """Holdout row positions (sorted) and training positions (in time order for a time split)."""
    n = len(frame)
    n_test = math.ceil(n * spec.holdout)
    folds_needed = spec.cv_folds or (INNER_CV_FOLDS if spec.has_search or len(spec.algorithms) > 1 else 0)
    min_train = max(MIN_TRAIN_ROWS, 2 * folds_needed)
    if n_test < MIN_HOLDOUT_ROWS or n - n_test < min_train:
        need = math.ceil(max(MIN_HOLDOUT_ROWS / spec.holdout, min_train / (1 - spec.holdout)))
        raise TrainingError(
            TrainingError.TOO_FEW_ROWS,
            f"{n} rows are too few: a {spec.holdout:.0%} holdout keeps {n_test} and leaves {n - n_test} to train"
            + (f" with {folds_needed}-fold cross-validation" if folds_needed else "")
            + f"; give at least {need} rows.",
            {"split.holdout": [f"Needs at least {need} rows."]},
        )
    stratify = spec.split_method == "stratified"
    if classes is not None:
        if stratify and int(classes.min()) < 2:
            lonely = [c for c, count in classes.items() if count < 2]
            raise TrainingError(
                TrainingError.CLASS_TOO_SMALL,
                f"Class {_names(lonely)} has a single row; a stratified split needs at least 2 per class "
                "(add rows, merge the class, or use a random split).",
                {"target": [f"Too few rows for class {_names(lonely)}."]},
            )
        if spec.cv_folds and spec.split_method != "time" and int(classes.min()) < spec.cv_folds:
            small = [c for c, count in classes.items() if count < spec.cv_folds]
            raise TrainingError(
                TrainingError.CLASS_TOO_SMALL,
                f"Class {_names(small)} has fewer rows than the {spec.cv_folds} CV folds; lower cv_folds or add rows.",
                {"cv_folds": [f"Class {_names(small)} has only {int(classes[small[0]])} rows."]},
            )
        if stratify and n_test < len(classes):
            raise TrainingError(
                TrainingError.TOO_FEW_ROWS,
                f"The holdout keeps {n_test} rows, fewer than the {len(classes)} classes; raise the holdout or add rows.",
                {"split.holdout": [f"Needs at least {len(classes)} rows held out."]},
            )
    positions = np.arange(n)
    groups = None
    if spec.group_column:
        groups = frame[spec.group_column].astype(object).where(frame[spec.group_column].notna(), "").astype(str).to_numpy()
    if spec.split_method == "time":
        when = frame[spec.time_column]
        nulls = int(when.isna().sum())
        if nulls:
            raise TrainingError(
                TrainingError.TIME_HAS_NULLS,
                f"The time column {spec.time_column!r} is empty in {nulls} rows; a time split needs every row dated.",
                {"time_column": [f"{nulls} rows have no time."]},
            )
        order = np.argsort(when.to_numpy(), kind="stable")
        return _Split(order[: n - n_test], np.sort(order[n - n_test :]), groups, "time")
    if groups is not None:
        n_groups = len(set(groups))
        splits = max(2, round(1 / spec.holdout))
        if n_groups < max(splits if stratify else 2, folds_needed or 2):
            raise TrainingError(
                TrainingError.TOO_FEW_ROWS,
                f"The group column {spec.group_column!r} has {n_groups} groups; splitting by group needs at least "
                f"{max(splits if stratify else 2, folds_needed or 2)}.",
                {"group_column": [f"Only {n_groups} groups."]},
            )
        if stratify:
            splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=spec.seed)
            train, test = next(splitter.split(positions, y, groups))
        else:
            splitter = GroupShuffleSplit(n_splits=1, test_size=spec.holdout, random_state=spec.seed)
            train, test = next(splitter.split(positions, y, groups))
        return _Split(np.sort(train), np.sort(test), groups, "group_stratified" if stratify else "group")
    train, test = train_test_split(
        positions, test_size=n_test, random_state=spec.seed, shuffle=True, stratify=y if stratify else None
    )
    return _Split(np.sort(train), np.sort(test), None, spec.split_method)


def _cv(spec: TrainingSpec, folds: int):
    if spec.split_method == "time":
        return TimeSeriesSplit(n_splits=folds)
    if spec.group_column:
        if spec.task == "classification":
            return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
        return GroupKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    if spec.task == "classification":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    return KFold(n_splits=folds, shuffle=True, random_state=spec.seed)


def _data_warnings(spec: TrainingSpec, frame: pd.DataFrame, features: list[str], y: np.ndarray) -> list[dict[str, str]]:
    """Problems worth a look that do not stop training: few rows, imbalance, leakage, id-like columns."""
    notes: list[dict[str, str]] = []
    n = len(frame)
    if n < FEW_ROWS:
        notes.append({"code": "few_rows", "message": f"Only {n} rows: the metrics will be noisy."})
    target = pd.Series(y)
    if spec.task == "classification":
        counts = target.value_counts()
        largest = int(counts.iloc[0])
        small = [c for c, count in counts.items() if count < IMBALANCE_RATIO * largest]
        if small:
            notes.append(
                {
                    "code": "class_imbalance",
                    "message": f"Class {_names(small)} has under {IMBALANCE_RATIO:.0%} of the rows of the largest class "
                    f"({_py(counts.index[0])!r}, {largest} rows); prefer f1_macro or balanced_accuracy, "
                    "or class_weight='balanced'.",
                }
            )
        few = [c for c, count in counts.items() if count < FEW_ROWS_PER_CLASS]
        if few:
            notes.append({"code": "few_rows", "message": f"Class {_names(few)} has fewer than {FEW_ROWS_PER_CLASS} rows."})
        if spec.target_kind in ("integer", "number") and counts.size > 50 and counts.size > 0.5 * n:
            notes.append(
                {
                    "code": "continuous_target",
                    "message": f"The target has {counts.size} distinct numbers; "
                    "regression may fit it better than classification.",
                }
            )
    sample = np.random.default_rng(spec.seed).choice(n, size=CHECK_SAMPLE_ROWS, replace=False) if n > CHECK_SAMPLE_ROWS else None
    rows = frame.iloc[sample] if sample is not None else frame
    t = target.iloc[sample].reset_index(drop=True) if sample is not None else target
    for name in features:
        reason = _leak_reason(spec, rows[name].reset_index(drop=True), t)
        if reason:
            notes.append(
                {
                    "code": "leakage",
                    "message": f"Column {name!r} {reason}; it may leak the answer (is it known at prediction time?).",
                }
            )
        elif spec.feature_kinds[name] == "string":
            distinct = rows[name].nunique()
            if distinct > MAX_CATEGORIES and distinct > 0.9 * rows[name].notna().sum():
                notes.append(
                    {
                        "code": "id_like",
                        "message": f"Column {name!r} differs on almost every row (an id?); one-hot keeps only its "
                        f"{MAX_CATEGORIES} most frequent values. Leave it out, or list it in text_features.",
                    }
                )
    return notes


def _leak_reason(spec: TrainingSpec, feature: pd.Series, target: pd.Series) -> str | None:
    both = feature.notna().to_numpy()
    if both.sum() < 10:
        return None
    f, t = feature[both], target[both]
    if (f.astype(str).to_numpy() == t.astype(str).to_numpy()).mean() >= 0.99:
        return "equals the target"
    kind = spec.feature_kinds[feature.name] if feature.name in spec.feature_kinds else ""
    if spec.task == "regression" and kind in ("integer", "number", "boolean"):
        a = pd.to_numeric(f, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        b = t.to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 10 and np.std(a[ok]) > 0 and np.std(b[ok]) > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = float(np.corrcoef(a[ok], b[ok])[0, 1])
            if abs(corr) >= 0.999:
                return f"has a correlation of {corr:.4f} with the target"
    keys = f.astype(str).to_numpy()
    distinct = len(set(keys))
    # Repeated values (≤ half the rows distinct) that each always go with one target value: the
    # target is a function of this column. Unique ids map trivially and are left out by the bound.
    if 2 <= distinct <= len(keys) / 2:
        per_value = pd.DataFrame({"f": keys, "t": t.astype(str).to_numpy()}).groupby("f")["t"].nunique()
        if int(per_value.max()) == 1 and pd.Series(t).nunique() > 1:
            return f"determines the target ({distinct} values, each always with the same target)"
    return None


# --- search -------------------------------------------------------------------------------


class _Stopped(BaseException):
    """Raised from inside a search when should_stop() says so.

    A BaseException on purpose: scikit-learn turns an Exception raised while fitting or
    scoring into a failed candidate (error_score), which would not stop anything.
    """


class _Finished:
    def __init__(self, algorithm: str, params: dict, score: float | None, pipeline: Pipeline, fold_scores: list[float]):
        self.algorithm, self.params, self.score, self.pipeline, self.fold_scores = algorithm, params, score, pipeline, fold_scores


class _Watch:
    """The search's scorer: scores a fold, reports progress, remembers complete candidates, stops."""

    def __init__(self, spec: TrainingSpec, algorithm, folds: int, progress: Progress, should_stop, label: str):
        self.scorer = get_scorer(spec.scoring)
        self.algorithm = algorithm
        self.folds = folds
        self.progress = progress
        self.should_stop = should_stop
        self.label = label
        self.space = list(ParameterGrid({k: v for k, v in algorithm.search.items()}))
        if spec.search_method == "random" and algorithm.search:
            expected = min(spec.search_budget, len(self.space))
        elif spec.search_method == "halving" and len(self.space) > 1:
            expected, left = 0, len(self.space)
            while left > 1:
                expected += left
                left = math.ceil(left / 3)
            expected += 1
        else:
            expected = len(self.space)
        self.total = max(1, expected * folds)
        self.done = 0
        self.scores: dict[str, list[float]] = {}
        self.params: dict[str, dict] = {}

    def __call__(self, estimator, X, y, **kwargs) -> float:
        value = self.scorer(estimator, X, y, **kwargs)
        chosen = {k: estimator.named_steps["model"].get_params(deep=False)[k] for k in self.algorithm.search}
        key = json.dumps(_jsonable(chosen), sort_keys=True)
        bucket = self.scores.setdefault(key, [])
        if len(bucket) >= self.folds:  # a halving round re-scores a survivor on more rows
            bucket.clear()
        bucket.append(float(value))
        self.params[key] = chosen
        self.done += 1
        fraction = min(self.done / self.total, 1.0)
        self.progress(fraction, f"{self.label}: fold {len(bucket)}/{self.folds}, {self.done}/{self.total} fits")
        if self.should_stop():
            raise _Stopped()
        return value

    def best_complete(self) -> tuple[dict, float, list[float]] | None:
        complete = [(k, s) for k, s in self.scores.items() if len(s) == self.folds and all(math.isfinite(v) for v in s)]
        if not complete:
            return None
        key, scores = max(complete, key=lambda item: float(np.mean(item[1])))
        return self.params[key], float(np.mean(scores)), scores

    def complete_candidates(self) -> list[dict[str, Any]]:
        out = []
        for key, scores in self.scores.items():
            if len(scores) == self.folds:
                params = {**self.algorithm.params, **self.params[key]}
                out.append({"algorithm": self.algorithm.name, "params": _jsonable(params), "score": _finite(np.mean(scores))})
        return out


def _searcher(spec: TrainingSpec, pipe: Pipeline, algorithm, cv, watch: _Watch):
    grid = {f"model__{k}": v for k, v in algorithm.search.items()}
    common = {"scoring": watch, "cv": cv, "refit": True, "n_jobs": 1, "error_score": np.nan}
    size = len(ParameterGrid(grid))
    if spec.search_method == "random" and grid:
        return RandomizedSearchCV(pipe, grid, n_iter=min(spec.search_budget, size), random_state=spec.seed, **common)
    if spec.search_method == "halving" and size > 1:
        return HalvingGridSearchCV(pipe, grid, factor=3, random_state=spec.seed, **common)
    return GridSearchCV(pipe, grid, **common)


def _search_candidates(algorithm, search) -> list[dict[str, Any]]:
    """One entry per distinct candidate (a halving search's last round for each)."""
    results = search.cv_results_
    by_key: dict[str, dict[str, Any]] = {}
    rounds = results.get("iter", np.zeros(len(results["params"])))
    for i, params in enumerate(results["params"]):
        chosen = {k.removeprefix("model__"): v for k, v in params.items()}
        key = json.dumps(_jsonable(chosen), sort_keys=True)
        entry = {
            "algorithm": algorithm.name,
            "params": _jsonable({**algorithm.params, **chosen}),
            "score": _finite(results["mean_test_score"][i]),
            "std": _finite(results["std_test_score"][i]),
        }
        if "iter" in results:
            entry["round"] = int(rounds[i])
            entry["rows"] = int(results["n_resources"][i])
        by_key[key] = entry
    return list(by_key.values())


def _caught_warnings(caught) -> list[dict[str, str]]:
    notes = []
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(
            {
                "code": "not_converged",
                "message": "An iterative estimator stopped before converging; raise max_iter or scale the features.",
            }
        )
    failed = [w for w in caught if "fits failed" in str(w.message) or "scores are non-finite" in str(w.message)]
    if failed:
        notes.append(
            {
                "code": "candidates_failed",
                "message": "Some candidates failed to fit and were skipped: " + _short(failed[0].message),
            }
        )
    return notes


# --- evaluation ---------------------------------------------------------------------------


def _evaluate(spec: TrainingSpec, model, X: pd.DataFrame, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """Holdout metrics (finite floats only) and plot data; the same for `train` and `score`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.task == "classification":
            metrics, curves = _classification_metrics(model, X, y)
        else:
            metrics, curves = _regression_metrics(spec, model, X, y)
        if spec.scoring not in metrics:
            try:
                metrics[spec.scoring] = float(get_scorer(spec.scoring)(model, X, y))
            except (ValueError, TypeError, AttributeError):
                pass
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}, curves


def _classification_metrics(model, X, y) -> tuple[dict[str, float], dict[str, Any]]:
    labels = model.classes_
    predicted = model.predict(X)
    metrics = {
        "accuracy": accuracy_score(y, predicted),
        "balanced_accuracy": balanced_accuracy_score(y, predicted),
        "precision_macro": precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": recall_score(y, predicted, average="macro", zero_division=0),
        "f1_macro": f1_score(y, predicted, average="macro", zero_division=0),
    }
    curves: dict[str, Any] = {
        "confusion_matrix": {
            "labels": _jsonable(list(labels)),
            "matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
        }
    }
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    if proba is not None:
        try:
            metrics["log_loss"] = log_loss(y, proba, labels=labels)
        except ValueError:
            pass
    present = set(pd.Series(y).unique())
    if len(labels) == 2:
        if proba is not None:
            positive = proba[:, 1]
        elif hasattr(model, "decision_function"):
            positive = model.decision_function(X)
        else:
            positive = None
        if positive is not None and len(present) == 2:
            truth = np.asarray(y) == labels[1]
            metrics["roc_auc"] = roc_auc_score(truth, positive)
            fpr, tpr, thresholds = roc_curve(truth, positive)
            keep = _downsample(len(fpr))
            curves["roc"] = {
                "positive": _py(labels[1]),
                "fpr": fpr[keep].tolist(),
                "tpr": tpr[keep].tolist(),
                "thresholds": [_finite(v) for v in thresholds[keep]],
            }
            precision, recall, thresholds = precision_recall_curve(truth, positive)
            thresholds = np.append(thresholds, np.nan)  # precision/recall have one point more
            keep = _downsample(len(precision))
            curves["pr"] = {
                "positive": _py(labels[1]),
                "precision": precision[keep].tolist(),
                "recall": recall[keep].tolist(),
                "thresholds": [_finite(v) for v in thresholds[keep]],
            }
    elif proba is not None and present == set(labels):
        try:
            metrics["roc_auc"] = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
        except ValueError:
            pass
    return {k: float(v) for k, v in metrics.items()}, curves


def _regression_metrics(spec: TrainingSpec, model, X, y) -> tuple[dict[str, float], dict[str, Any]]:
    predicted = np.asarray(model.predict(X), dtype=float)
    metrics = {
        "rmse": math.sqrt(mean_squared_error(y, predicted)),
        "mae": mean_absolute_error(y, predicted),
    }
    nonzero = y != 0
    if nonzero.any():  # MAPE over the rows it is defined on
        metrics["mape"] = float(np.mean(np.abs((y[nonzero] - predicted[nonzero]) / y[nonzero])))
    if len(y) >= 2:
        metrics["r2"] = r2_score(y, predicted)
    rows = np.arange(len(y))
    if len(rows) > RESIDUAL_POINTS:
        rows = np.sort(np.random.default_rng(spec.seed).choice(rows, size=RESIDUAL_POINTS, replace=False))
    curves = {
        "residuals": {
            "predicted": predicted[rows].tolist(),
            "actual": np.asarray(y, dtype=float)[rows].tolist(),
            "residual": (np.asarray(y, dtype=float)[rows] - predicted[rows]).tolist(),
        }
    }
    return {k: float(v) for k, v in metrics.items()}, curves


def _learning_curve(spec: TrainingSpec, model, X, y, groups, folds: int) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sizes, train_scores, test_scores = learning_curve(
                clone(model),
                X,
                y,
                groups=groups,
                cv=_cv(spec, folds),
                train_sizes=np.array(LEARNING_CURVE_SIZES),
                scoring=spec.scoring,
                n_jobs=1,
                error_score=np.nan,
            )
    except (ValueError, TypeError, ArithmeticError, np.linalg.LinAlgError):
        return None
    return {
        "scoring": spec.scoring,
        "train_sizes": [int(s) for s in sizes],
        "train_scores": [_finite(np.nanmean(r)) if np.isfinite(r).any() else None for r in train_scores],
        "test_scores": [_finite(np.nanmean(r)) if np.isfinite(r).any() else None for r in test_scores],
        "train_std": [_finite(np.nanstd(r)) if np.isfinite(r).any() else None for r in train_scores],
        "test_std": [_finite(np.nanstd(r)) if np.isfinite(r).any() else None for r in test_scores],
    }


def _importance(spec: TrainingSpec, model, X, y) -> list[dict[str, Any]]:
    """Permutation importance of each input column on (a sample of) the holdout, largest first."""
    if len(X) > IMPORTANCE_MAX_ROWS:
        rows = np.sort(np.random.default_rng(spec.seed).choice(len(X), size=IMPORTANCE_MAX_ROWS, replace=False))
        X, y = X.iloc[rows], y[rows]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = permutation_importance(
                model, X, y, scoring=spec.scoring, n_repeats=IMPORTANCE_REPEATS, random_state=spec.seed, n_jobs=1
            )
    except (ValueError, TypeError, ArithmeticError):
        return []
    out = [
        {"feature": name, "mean": _finite(mean) or 0.0, "std": _finite(std) or 0.0}
        for name, mean, std in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    return sorted(out, key=lambda item: item["mean"], reverse=True)


# --- small helpers ------------------------------------------------------------------------


def _model_input(model, frame: pd.DataFrame) -> pd.DataFrame:
    needed = list(getattr(model, "feature_names_in_", frame.columns))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise TrainingError(
            TrainingError.BAD_INPUT,
            f"The input lacks column {missing[0]!r}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "") + ".",
            {name: ["This column is required (it may be empty)."] for name in missing},
        )
    return frame[needed]


def _downsample(n: int) -> np.ndarray:
    """At most CURVE_POINTS evenly spaced positions, first and last included."""
    if n <= CURVE_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, CURVE_POINTS).round().astype(int))


def _schema_type(kind: str) -> str:
    return {"text": "string", "string": "string"}.get(kind, kind)


def _py(value: Any) -> Any:
    """A JSON-able Python value for a numpy/pandas scalar."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (str, bool, int, float)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _class_key(label: Any) -> str:
    value = _py(label)
    return value if isinstance(value, str) else json.dumps(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (type, Callable)) and not isinstance(value, (str, bool, int, float)):
        return getattr(value, "__name__", str(value))
    return _py(value)


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _names(labels: list) -> str:
    shown = ", ".join(repr(_py(c)) for c in labels[:5])
    return shown + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")


def _short(exc: Any, limit: int = 300) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
