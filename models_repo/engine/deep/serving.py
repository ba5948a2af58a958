"""Loading a saved model and predicting with it, shaped as it was trained (tables, windows, images)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import gettext_noop, phrase
from .constants import SEQUENCE_TASKS
from .images import decode_image


def _predict_arrays(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = model.predict(x, batch_size=max(batch_size, 256), verbose=0)
    return np.asarray(out, dtype="float64")


def load_model(path: str):
    """The Keras model saved by train; safe_mode refuses models that would run arbitrary code."""
    import keras

    return keras.saving.load_model(path, safe_mode=True, compile=False)


def predict(model, inputs: Any, meta: dict) -> dict:
    """Predictions for inputs, shaped as the model was trained.

    meta is `{**result.output, "input_schema": result.input_schema}` as train recorded them:
    task; classes (classifiers); window, channels, horizon, target (sequence tasks); image_size
    and color_mode (images); input_schema (the feature columns, in order, for tables).

    inputs: a pandas DataFrame with the feature columns (tables; other columns are ignored), a
    list of windows each `window` rows of the channel values in meta["channels"] order (sequence
    tasks), or a list of image file bytes (images). Returns {"predictions": [...]} and, for
    classifiers, "probabilities": [{class: p}] in the same order. Raises ValueError for inputs
    that do not match.
    """
    task, classes = meta["task"], meta.get("classes")
    if len(inputs) == 0:
        return {"predictions": []} if classes is None else {"predictions": [], "probabilities": []}
    if task == "image_classification":
        try:
            x = np.stack([decode_image(data, meta["image_size"], meta["color_mode"]) for data in inputs])
        except OSError as exc:  # Pillow's "cannot identify image file" and truncated files
            message = gettext_noop("an input is not a readable PNG, JPEG or BMP image: %(error)s")
            raise ValueError(phrase(message, error=str(exc))) from exc
    elif task in SEQUENCE_TASKS:
        x = np.asarray(inputs, dtype="float32")
        shape = (meta["window"], len(meta["channels"]))
        if x.ndim != 3 or x.shape[1:] != shape:
            message = gettext_noop("expected windows of %(rows)s rows × %(width)s channels (%(channels)s), got shape %(shape)s")
            raise ValueError(
                phrase(message, rows=shape[0], width=shape[1], channels=", ".join(meta["channels"]), shape=str(x.shape))
            )
    else:
        names = [column["name"] for column in meta["input_schema"]]
        missing = [n for n in names if n not in inputs.columns]
        if missing:
            raise ValueError(phrase(gettext_noop("missing feature columns: %(columns)s"), columns=", ".join(missing)))
        x = inputs[names].to_numpy(dtype="float32")
    if x.dtype != np.uint8 and not np.isfinite(x).all():
        raise ValueError(gettext_noop("inputs contain missing or infinite values; the model was trained without them"))
    out = _predict_arrays(model, x, 256)
    if classes is None:
        return {"predictions": out.reshape(-1).tolist()}
    return {
        "predictions": [classes[i] for i in out.argmax(axis=1)],
        "probabilities": [{c: float(p) for c, p in zip(classes, row, strict=True)} for row in out],
    }
