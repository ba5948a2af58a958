"""Holdout evaluation of a fitted network: metrics, confusion matrix, ROC/PR, residuals, permutation importance."""

from __future__ import annotations

from typing import Any

import numpy as np

from .constants import CURVE_POINTS, IMPORTANCE_MAX_FEATURES, IMPORTANCE_MAX_SAMPLES, IMPORTANCE_REPEATS
from .data import _Data
from .serving import _predict_arrays


def _evaluate(data: _Data, predicted: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    if data.classes is not None:
        return _classification_metrics(data.y_test, predicted, data.classes)
    return _regression_metrics(data.y_test.astype("float64"), predicted.reshape(-1))


def _classification_metrics(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> tuple[dict[str, float], dict[str, Any]]:
    from sklearn import metrics as skm

    labels = list(range(len(classes)))
    proba = np.clip(proba, 1e-7, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    result = {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision_macro": float(skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "f1_macro": float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "log_loss": float(skm.log_loss(y, proba, labels=labels)),
    }
    curves: dict[str, Any] = {
        "confusion_matrix": {"labels": classes, "matrix": skm.confusion_matrix(y, pred, labels=labels).tolist()}
    }
    present = set(np.unique(y).tolist())
    if len(classes) == 2 and len(present) == 2:
        result["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
        fpr, tpr, _ = skm.roc_curve(y, proba[:, 1])
        precision, recall, _ = skm.precision_recall_curve(y, proba[:, 1])
        keep = _thin(len(fpr))
        curves["roc"] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(), "auc": result["roc_auc"], "positive": classes[1]}
        keep = _thin(len(recall))
        curves["pr"] = {"precision": precision[keep].tolist(), "recall": recall[keep].tolist(), "positive": classes[1]}
    elif len(classes) > 2 and len(present) == len(classes):
        result["roc_auc"] = float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    return result, curves


def _thin(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))


def _regression_metrics(y: np.ndarray, pred: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    error = pred - y
    result = {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}
    nonzero = y != 0
    if nonzero.any():  # a fraction, as scikit-learn's; rows with a zero target have no percentage
        result["mape"] = float(np.mean(np.abs(error[nonzero] / y[nonzero])))
    total = float(np.sum((y - y.mean()) ** 2))
    if len(y) >= 2 and total > 0:
        result["r2"] = float(1 - np.sum(error**2) / total)
    keep = _thin(len(y))
    return result, {"residuals": {"actual": y[keep].tolist(), "predicted": pred[keep].tolist()}}


def _importance(model, data: _Data, predicted: np.ndarray, batch_size: int, seed: int) -> list[dict[str, Any]]:
    """Permutation importance on the holdout: how much the score drops when one feature (or
    sensor channel, across windows) is shuffled. Score: accuracy, or -rmse for regression."""
    if len(data.channels) > IMPORTANCE_MAX_FEATURES or len(data.x_test) < 2:
        return []
    rng = np.random.default_rng(seed)
    x, y, base_pred = data.x_test, data.y_test, predicted
    if len(x) > IMPORTANCE_MAX_SAMPLES:
        pick = rng.choice(len(x), IMPORTANCE_MAX_SAMPLES, replace=False)
        x, y, base_pred = x[pick], y[pick], predicted[pick]

    def score(p: np.ndarray) -> float:
        if data.classes is not None:
            return float(np.mean(p.argmax(axis=1) == y))
        return -float(np.sqrt(np.mean((p.reshape(-1) - y) ** 2)))

    base = score(base_pred)
    rows = []
    for c, name in enumerate(data.channels):
        drops = []
        for _ in range(IMPORTANCE_REPEATS):
            shuffled = x.copy()
            shuffled[..., c] = x[rng.permutation(len(x))][..., c]
            drops.append(base - score(_predict_arrays(model, shuffled, batch_size)))
        rows.append({"feature": name, "mean": float(np.mean(drops)), "std": float(np.std(drops))})
    return sorted(rows, key=lambda r: r["mean"], reverse=True)
