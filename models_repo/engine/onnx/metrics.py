"""Holdout metrics computed alike for a native pipeline and an OnnxPredictor, and metric names."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd

from .. import tabular


def holdout_metric(model, X: pd.DataFrame, y: np.ndarray, metric: str) -> float | None:
    """`metric` (a recorded holdout metric name: accuracy, f1_macro, rmse, …) of a pipeline or predictor."""
    from sklearn import metrics as m

    y = np.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = model.predict(X)
        if metric in ("rmse", "mae", "mse", "mape", "r2"):
            predicted = np.asarray(predicted, dtype=float)
            truth = np.asarray(y, dtype=float)
            if metric == "rmse":
                return float(math.sqrt(m.mean_squared_error(truth, predicted)))
            if metric == "mse":
                return float(m.mean_squared_error(truth, predicted))
            if metric == "mae":
                return float(m.mean_absolute_error(truth, predicted))
            if metric == "r2":
                return float(m.r2_score(truth, predicted))
            nonzero = truth != 0
            return float(np.mean(np.abs((truth[nonzero] - predicted[nonzero]) / truth[nonzero]))) if nonzero.any() else None
        # Classes as positions (any label type: booleans, numbers, text); a class the model
        # never saw counts as wrong.
        labels = [tabular._py(c) for c in model.classes_]
        index = {json.dumps(c): i for i, c in enumerate(labels)}
        truth = np.array([index.get(json.dumps(tabular._py(v)), -1) for v in y])
        predicted = np.array([index.get(json.dumps(tabular._py(v)), -2) for v in predicted])
        positions = list(range(len(labels)))
        simple = {
            "accuracy": lambda: m.accuracy_score(truth, predicted),
            "balanced_accuracy": lambda: m.balanced_accuracy_score(truth, predicted),
            "f1_macro": lambda: m.f1_score(truth, predicted, average="macro", zero_division=0, labels=positions),
            "f1_weighted": lambda: m.f1_score(truth, predicted, average="weighted", zero_division=0, labels=positions),
            "precision_macro": lambda: m.precision_score(truth, predicted, average="macro", zero_division=0, labels=positions),
            "recall_macro": lambda: m.recall_score(truth, predicted, average="macro", zero_division=0, labels=positions),
        }
        if metric in simple:
            return float(simple[metric]())
        has_proba = getattr(model, "meta", {}).get("probabilities", hasattr(model, "predict_proba"))
        if metric in ("log_loss", "roc_auc", "roc_auc_ovr") and has_proba:
            proba = np.asarray(model.predict_proba(X), dtype=float)
            known = truth >= 0
            try:
                if metric == "log_loss":
                    return float(m.log_loss(truth[known], proba[known], labels=positions))
                if len(labels) == 2:
                    return float(m.roc_auc_score(truth[known] == 1, proba[known, 1]))
                return float(m.roc_auc_score(truth[known], proba[known], multi_class="ovr", labels=positions))
            except ValueError:
                return None
    return None


def _metric_or_none(model, X, y, metric: str) -> float | None:
    try:
        value = holdout_metric(model, X, y, metric)
    except (ValueError, TypeError, KeyError):
        return None
    return value if value is None or math.isfinite(value) else None


def metric_name(scoring: str) -> str:
    """The metric a scoring name refers to (neg_root_mean_squared_error → rmse, neg_log_loss → log_loss)."""
    aliases = {
        "neg_root_mean_squared_error": "rmse",
        "neg_mean_absolute_error": "mae",
        "neg_mean_squared_error": "mse",
        "neg_mean_absolute_percentage_error": "mape",
        "neg_log_loss": "log_loss",
    }
    return aliases.get(scoring, scoring)
