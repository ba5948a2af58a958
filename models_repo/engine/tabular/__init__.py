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
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingGridSearchCV importable)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    ParameterGrid,
    RandomizedSearchCV,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ..errors import TrainingError, gettext_noop, phrase, said
from ..result import TrainResult
from ..spec import DENSE_ONLY, TrainingSpec, estimator_class, estimator_params
from .checks import _check_target, _cv, _data_warnings, _read, _split, _target, _usable_features  # noqa: F401
from .common import (  # noqa: F401  (the rest of the engine and the tests use these by tabular.<name>)
    _class_key,
    _downsample,
    _finite,
    _jsonable,
    _model_input,
    _names,
    _py,
    _schema_type,
    _short,
)
from .constants import (
    ARTIFACT_NAME,
    DATE_PARTS,
    INNER_CV_FOLDS,
    LEARNING_CURVE_MAX_ROWS,
    MAX_CATEGORIES,
    TEXT_FEATURES_DENSE,
    TEXT_FEATURES_SPARSE,
    TEXT_NGRAMS,
)
from .evaluate import _evaluate, _importance, _learning_curve  # noqa: F401

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
            phrase(
                gettext_noop("The scikit-learn trainer does classification and regression, not %(task)s with %(flavor)s."),
                task=spec.task,
                flavor=spec.flavor,
            ),
            {"task": [gettext_noop("Use a Keras algorithm for this task.")]},
        )
    started = time.monotonic()
    progress(3, gettext_noop("Reading the data"))
    frame = _read(parquet_path, spec)
    notes: list[dict[str, str]] = []
    features = _usable_features(spec, frame, notes)
    y = _target(frame, spec)
    classes = _check_target(spec, y)
    if classes is not None and spec.scoring == "roc_auc" and len(classes) > 2:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(
                gettext_noop("roc_auc scores two classes and the target has %(classes)s; use roc_auc_ovr."), classes=len(classes)
            ),
            {"scoring": [gettext_noop("Use roc_auc_ovr for more than two classes.")]},
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
            progress(int(base), phrase(gettext_noop("Fitting %(label)s"), label=label))
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
                    raise ValueError(
                        phrase(gettext_noop("every candidate of %(algorithm)s failed to fit or score"), algorithm=algorithm.name)
                    )
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
                failures.append(phrase(gettext_noop("%(algorithm)s: %(error)s"), algorithm=algorithm.name, error=said(exc)))
        notes.extend(_caught_warnings(caught))

    if not finished:
        if stopped:
            raise TrainingError(TrainingError.CANCELLED, gettext_noop("Training was stopped before any candidate finished."))
        raise TrainingError(
            TrainingError.FIT_FAILED,
            phrase(gettext_noop("No algorithm could be fitted: %(failures)s"), failures=_joined(failures)),
        )
    for failure in failures:
        notes.append(
            {"code": "algorithm_failed", "message": phrase(gettext_noop("Left out after an error: %(failure)s"), failure=failure)}
        )
    if stopped:
        notes.append(
            {
                "code": "cancelled",
                "message": phrase(
                    gettext_noop("Stopped on request; kept the best of the %(finished)s algorithm(s) that finished."),
                    finished=len(finished),
                ),
            }
        )
    best = max(finished, key=lambda f: -math.inf if f.score is None else f.score) if selecting else finished[0]
    model = best.pipeline

    progress(86, gettext_noop("Evaluating on the holdout"))
    X_test, y_test = X.iloc[test_rows], y[test_rows]
    metrics, curves = _evaluate(spec, model, X_test, y_test)
    progress(98, gettext_noop("Writing the model"))
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
            TrainingError.INVALID_SPEC,
            gettext_noop("The data no longer gives the run's holdout; the analysis would not describe it."),
        )
    X = frame[features]
    train_rows, test_rows = split.train, split.test
    groups = split.groups[train_rows] if split.groups is not None else None
    out: dict[str, Any] = {"learning": None, "importance": [], "stopped": False}
    if len(train_rows) <= LEARNING_CURVE_MAX_ROWS:
        progress(10, gettext_noop("Learning curve"))
        folds = min(spec.cv_folds or INNER_CV_FOLDS, INNER_CV_FOLDS)
        out["learning"] = _learning_curve(spec, model, X.iloc[train_rows], y[train_rows], groups, folds)
    if should_stop():
        out["stopped"] = True
        return out
    progress(70, gettext_noop("Permutation importance"))
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
        message = gettext_noop("%(label)s: fold %(fold)s/%(folds)s, %(done)s/%(total)s fits")
        self.progress(
            fraction, phrase(message, label=self.label, fold=len(bucket), folds=self.folds, done=self.done, total=self.total)
        )
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


def _joined(parts: list) -> str:
    """Phrases joined with "; " (each translated: a Phrase of phrases, as "%(a)s; %(b)s")."""
    template = "; ".join(f"%(p{i})s" for i in range(len(parts)))
    return phrase(template, **{f"p{i}": part for i, part in enumerate(parts)})


def _caught_warnings(caught) -> list[dict[str, str]]:
    notes = []
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append(
            {
                "code": "not_converged",
                "message": gettext_noop(
                    "An iterative estimator stopped before converging; raise max_iter or scale the features."
                ),
            }
        )
    failed = [w for w in caught if "fits failed" in str(w.message) or "scores are non-finite" in str(w.message)]
    if failed:
        notes.append(
            {
                "code": "candidates_failed",
                "message": phrase(
                    gettext_noop("Some candidates failed to fit and were skipped: %(error)s"), error=_short(failed[0].message)
                ),
            }
        )
    return notes
