"""Holdout metrics from served predictions, whatever produced them (native, ONNX, Keras, an upload).

    value = metric_from_predictions("f1_macro", y_true, result)   # result: {"predictions", "probabilities"?}

The promotion gate compares two versions on the same rows; when they were not evaluated on the
same holdout, one of them is re-scored through this module from the predictions its runtime
gives, so a Keras candidate, an uploaded ONNX file and a forest are measured alike. Labels are
compared by their JSON key (the serving answer's keys), so True and "True" do not differ.
Returns None for a metric that cannot be computed from what was predicted (log_loss without
probabilities, roc_auc for a class missing from the rows).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

CLASSIFICATION = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss"}
REGRESSION = {"rmse", "mae", "mape", "r2"}


def _key(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str) else json.dumps(value)


def metric_from_predictions(metric: str, y_true, result: dict) -> float | None:
    from sklearn import metrics as m

    predictions = result.get("predictions") or []
    if len(predictions) != len(y_true) or not len(y_true):
        return None
    if metric in REGRESSION:
        try:
            truth = np.asarray(y_true, dtype=float)
            guess = np.asarray(predictions, dtype=float)
        except (TypeError, ValueError):
            return None
        value = {
            "rmse": lambda: math.sqrt(m.mean_squared_error(truth, guess)),
            "mae": lambda: m.mean_absolute_error(truth, guess),
            "mape": lambda: m.mean_absolute_percentage_error(truth, guess),
            "r2": lambda: m.r2_score(truth, guess),
        }[metric]()
        return float(value) if math.isfinite(value) else None
    if metric not in CLASSIFICATION:
        return None
    truth = [_key(v) for v in y_true]
    guess = [_key(v) for v in predictions]
    if metric in ("roc_auc", "log_loss"):
        probabilities = result.get("probabilities")
        if not probabilities:
            return None
        labels = list(probabilities[0])
        matrix = np.array([[row.get(label, 0.0) for label in labels] for row in probabilities], dtype=float)
        if set(truth) - set(labels):
            return None
        try:
            if metric == "log_loss":
                return float(m.log_loss(truth, matrix, labels=labels))
            if len(labels) == 2:
                return float(m.roc_auc_score([t == labels[1] for t in truth], matrix[:, 1]))
            return float(m.roc_auc_score(truth, matrix, multi_class="ovr", average="macro", labels=labels))
        except ValueError:
            return None
    value = {
        "accuracy": lambda: m.accuracy_score(truth, guess),
        "balanced_accuracy": lambda: m.balanced_accuracy_score(truth, guess),
        "precision_macro": lambda: m.precision_score(truth, guess, average="macro", zero_division=0),
        "recall_macro": lambda: m.recall_score(truth, guess, average="macro", zero_division=0),
        "f1_macro": lambda: m.f1_score(truth, guess, average="macro", zero_division=0),
    }[metric]()
    return float(value)
