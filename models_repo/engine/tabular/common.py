"""Small helpers of the scikit-learn trainer: JSON-safe values, labels, messages, model inputs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingGridSearchCV importable)

from ..errors import TrainingError, gettext_noop, phrase
from .constants import CURVE_POINTS

# --- small helpers ------------------------------------------------------------------------


def _model_input(model, frame: pd.DataFrame) -> pd.DataFrame:
    needed = list(getattr(model, "feature_names_in_", frame.columns))
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        if len(missing) > 1:
            message = gettext_noop("The input lacks column %(name)s and %(more)s more.")
        else:
            message = gettext_noop("The input lacks column %(name)s.")
        raise TrainingError(
            TrainingError.BAD_INPUT,
            phrase(message, name=repr(missing[0]), more=len(missing) - 1),
            {name: [gettext_noop("This column is required (it may be empty).")] for name in missing},
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
