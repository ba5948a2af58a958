"""Holdout evaluation of a fitted pipeline: metrics, confusion matrix, ROC/PR, residuals, learning curve, importance."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingGridSearchCV importable)
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
    learning_curve,
)

from ..spec import TrainingSpec
from .checks import _cv
from .common import _downsample, _finite, _jsonable, _py
from .constants import IMPORTANCE_MAX_ROWS, IMPORTANCE_REPEATS, LEARNING_CURVE_SIZES, RESIDUAL_POINTS

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
