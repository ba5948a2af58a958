"""TensorFlow/Keras training: MLP on tables, LSTM/GRU/1D-CNN/MLP on sensor windows, 2D-CNN on images.

    options = validate_keras_options({"window": 48, "epochs": 20}, "sequence_classification", "keras_lstm")
    result = train(DeepSpec(..., options=options), "version.parquet", "/tmp/run-7")
    model = load_model(result.artifact_path)
    predict(model, windows, {**result.output, "input_schema": result.input_schema})

TensorFlow and Keras are imported only inside the functions that need them: importing TF costs
seconds and hundreds of MB, and the web processes import this module (for validate_keras_options)
without ever training (tests/models_repo/engine/test_deep.py checks it in a subprocess).

Decisions (the tests pin them):
- Everything serving needs is inside the saved model: a Normalization layer adapted on the
  training split standardises features and sensor channels, a Rescaling layer turns the
  standardised regression output back into target units, images enter as uint8 pixels and a
  Rescaling layer maps them to [0, 1]. `predict` therefore only reshapes and decodes.
- Three parts: training, validation (early stopping, the lr schedule, "val_loss") and the
  holdout (the metrics, never seen during fitting). Tables and images split at random
  (stratified for classifiers); sequence and forecasting tasks split by time: in each group
  the windows whose label row is latest form the holdout, the latest of the rest validate.
- A window is `window` consecutive rows of one group ordered by `time_column` (file order when
  there is none); windows never cross groups, and one starts every `stride` rows of its group
  (1: at every row; a larger stride thins out long, densely sampled series). Its label is the
  target at its last row (sequence_classification) or `horizon` rows after it (forecasting, the
  target is then also an input channel). Rows with a missing or infinite value in a used column are left out with
  a warning before windows are cut, so a window may span the gap they leave.
- Images are decoded with Pillow, 16-bit and float images stretched min..max to 8 bits,
  converted to grayscale when every manifest row is grayscale and to RGB otherwise, and resized
  to image_size × image_size (the aspect ratio is not kept). A file that does not decode is
  left out with a warning (ingest already refused broken files, so this is rare).
- should_stop() is polled after each epoch and, at most every STOP_POLL_SECONDS, after a batch.
  Stopping after at least one finished epoch keeps the model (warning "cancelled"); stopping
  before raises TrainingError(CANCELLED) and writes nothing.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import TrainingError
from .result import TrainResult

TASKS = ("classification", "regression", "forecasting", "sequence_classification", "image_classification")
SEQUENCE_TASKS = ("sequence_classification", "forecasting")
CLASSIFIERS = ("classification", "sequence_classification", "image_classification")
ALGORITHMS = ("keras_mlp", "keras_lstm", "keras_gru", "keras_cnn1d", "keras_cnn2d")
# Which algorithm can learn which task; anything else is refused naming both.
ALGORITHMS_FOR_TASK = {
    "classification": ("keras_mlp",),
    "regression": ("keras_mlp",),
    "sequence_classification": ("keras_lstm", "keras_gru", "keras_cnn1d", "keras_mlp"),
    "forecasting": ("keras_lstm", "keras_gru", "keras_cnn1d", "keras_mlp"),
    "image_classification": ("keras_cnn2d",),
}
LR_SCHEDULES = ("none", "reduce_on_plateau", "cosine")
DEVICES = ("cpu", "gpu", "gpu_or_cpu")  # gpu_or_cpu: a GPU worker when one is online, else CPU (the job says)
DEFAULTS: dict[str, Any] = {
    "layers": 2,
    "units": 64,
    "dropout": 0.1,
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "lr_schedule": "none",
    "patience": 5,
    "device": "cpu",
    "stride": 1,
    "horizon": 1,
    "filters": 32,
    "kernel_size": 3,
    "image_size": 64,
    "augment": False,
}
COMMON_OPTIONS = ("layers", "units", "dropout", "epochs", "batch_size", "learning_rate", "lr_schedule", "patience", "device")
OPTION_NAMES = (*COMMON_OPTIONS, "window", "stride", "horizon", "filters", "kernel_size", "image_size", "augment")
MAX_FILTERS = 512
VALIDATION_FRACTION = 0.15  # of the training part, for early stopping and the lr schedule
MIN_TRAIN = 8  # samples (rows, windows, images) left for training after the holdout
MIN_HOLDOUT = 2
IMBALANCE_SHARE = 0.1  # a class below this share of the training labels gets a warning
STOP_POLL_SECONDS = 2.0  # should_stop may query the database; not after every batch
IMPORTANCE_REPEATS = 3
IMPORTANCE_MAX_FEATURES = 100
IMPORTANCE_MAX_SAMPLES = 2000
CURVE_POINTS = 200
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
PROGRESS_PREPARED = 10  # progress() percent once the data is ready; epochs fill up to PROGRESS_TRAINED
PROGRESS_TRAINED = 90


@dataclass
class DeepSpec:
    """What to train, with the general spec fields already parsed (models_repo/engine/spec.py).

    target       the target column; for image_classification the manifest's label column;
    features     numeric feature columns (the sensor channels for sequence tasks; ignored for images);
    time_column  orders the rows of each group for sequence tasks (file order when None);
    group_column windows never cross groups (e.g. machine id);
    holdout      fraction held out for the metrics (0.05..0.5);
    options      the result of validate_keras_options (validated again by train).
    """

    task: str
    algorithm: str
    target: str
    features: list[str]
    time_column: str | None
    group_column: str | None
    holdout: float
    seed: int
    options: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Options


def validate_keras_options(options: dict, task: str, algorithm: str) -> dict:
    """The options with defaults filled in, holding only the keys that apply to task and algorithm.

    Keys: window (rows per window, 2..2000, required for sequence_classification and forecasting),
    stride (rows between window starts in a group, 1..2000, default 1), horizon (forecasting: rows
    ahead, 1..500), layers (dense, recurrent or convolution blocks, 1..6), units (dense/recurrent
    width, 1..1024), dropout (0..0.9), epochs (1..1000), batch_size (1..8192), learning_rate
    (0 < lr ≤ 1), lr_schedule (none | reduce_on_plateau | cosine), patience (early stopping on
    val_loss, 0 = off), filters (first convolution block, doubling per block up to 512) and
    kernel_size for CNNs, image_size (16..256) and augment (random flip/rotation/zoom while
    training) for keras_cnn2d, device (cpu | gpu | gpu_or_cpu).

    Raises TrainingError(INVALID_SPEC) with fields {"keras.<key>": [reason]} for every bad key,
    an unknown key or one that does not apply, and {"algorithm": [...]} for an algorithm that
    cannot learn the task. Validating a returned dict again returns an equal dict.
    """
    if task not in TASKS:
        raise TrainingError(
            TrainingError.INVALID_SPEC, f"Unknown task '{task}'.", {"task": [f"Choose one of: {', '.join(TASKS)}."]}
        )
    if algorithm not in ALGORITHMS:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"Unknown Keras algorithm '{algorithm}'.",
            {"algorithm": [f"Choose one of: {', '.join(ALGORITHMS)}."]},
        )
    allowed = ALGORITHMS_FOR_TASK[task]
    if algorithm not in allowed:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"{algorithm} cannot learn a {task} task; use {' or '.join(allowed)}.",
            {"algorithm": [f"{algorithm} does not fit {task}; use {' or '.join(allowed)}."]},
        )
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise TrainingError(TrainingError.INVALID_SPEC, "Keras options must be an object.", {"keras": ["Must be an object."]})

    applicable = list(COMMON_OPTIONS)
    if task in SEQUENCE_TASKS:
        applicable += ["window", "stride"]
    if task == "forecasting":
        applicable.append("horizon")
    if algorithm in ("keras_cnn1d", "keras_cnn2d"):
        applicable += ["filters", "kernel_size"]
    if algorithm == "keras_cnn2d":
        applicable += ["image_size", "augment"]

    errors: dict[str, list[str]] = {}
    for key in options:
        if key not in OPTION_NAMES:
            errors[f"keras.{key}"] = [f"Unknown option; the Keras options are: {', '.join(OPTION_NAMES)}."]
        elif key not in applicable:
            errors[f"keras.{key}"] = [f"Does not apply to {algorithm} on {task}."]

    values = {key: options.get(key, DEFAULTS.get(key)) for key in applicable}
    checks = {
        "layers": lambda v: _whole(v, 1, 6),
        "units": lambda v: _whole(v, 1, 1024),
        "dropout": lambda v: _number(v, 0.0, 0.9),
        "epochs": lambda v: _whole(v, 1, 1000),
        "batch_size": lambda v: _whole(v, 1, 8192),
        "learning_rate": lambda v: _number(v, 0.0, 1.0, low_open=True),
        "lr_schedule": lambda v: _choice(v, LR_SCHEDULES),
        "patience": lambda v: _whole(v, 0, 1000),
        "device": lambda v: _choice(v, DEVICES),
        "window": lambda v: _whole(v, 2, 2000),
        "stride": lambda v: _whole(v, 1, 2000),
        "horizon": lambda v: _whole(v, 1, 500),
        "filters": lambda v: _whole(v, 1, MAX_FILTERS),
        "kernel_size": lambda v: _whole(v, 1, 31),
        "image_size": lambda v: _whole(v, 16, 256),
        "augment": _boolean,
    }
    cleaned: dict[str, Any] = {}
    for key in applicable:
        if key == "window" and values[key] is None:
            errors["keras.window"] = [f"Required for {task}: the number of consecutive rows in each window (2..2000)."]
            continue
        value, reason = checks[key](values[key])
        if reason:
            errors[f"keras.{key}"] = [reason]
        else:
            cleaned[key] = value
    if "kernel_size" in cleaned:
        span = cleaned.get("window") if algorithm == "keras_cnn1d" else cleaned.get("image_size")
        if span is not None and cleaned["kernel_size"] > span:
            what = "window" if algorithm == "keras_cnn1d" else "image_size"
            errors["keras.kernel_size"] = [f"Must not be larger than {what} ({span})."]
    if errors:
        first = next(iter(errors))
        raise TrainingError(TrainingError.INVALID_SPEC, f"Invalid Keras option {first}: {errors[first][0]}", errors)
    return cleaned


def _whole(value: Any, low: int, high: int) -> tuple[Any, str | None]:
    # JSON gives 64.0 as often as 64; both are accepted, "64" and True are not.
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not value.is_integer()):
        return None, f"Must be a whole number from {low} to {high}."
    if not low <= value <= high:
        return None, f"Must be from {low} to {high}; got {value:g}."
    return int(value), None


def _number(value: Any, low: float, high: float, *, low_open: bool = False) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, f"Must be a number from {low:g} to {high:g}."
    if value > high or value < low or (low_open and value <= low):
        bound = f"greater than {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
        return None, f"Must be {bound}; got {value:g}."
    return float(value), None


def _choice(value: Any, choices: tuple[str, ...]) -> tuple[Any, str | None]:
    if value not in choices:
        return None, f"Must be one of: {', '.join(choices)}; got {value!r}."
    return value, None


def _boolean(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, bool):
        return None, f"Must be true or false; got {value!r}."
    return value, None


# ---------------------------------------------------------------------------------------------
# Data: every task ends as a _Data of numpy arrays split three ways.


@dataclass
class _Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    input_schema: list[dict[str, Any]]
    output: dict[str, Any]
    holdout: dict[str, Any]
    classes: list[Any] | None = None  # classifiers: y holds indices into this list
    channels: list[str] = field(default_factory=list)  # what permutation importance names (tables, windows)
    y_mean: float = 0.0  # regression: the training target's mean and spread (Rescaling)
    y_std: float = 1.0


def _read_columns(parquet_path: str, spec: DeepSpec, wanted: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.read_schema(parquet_path).names
    if spec.target not in names:
        raise TrainingError(
            TrainingError.TARGET_MISSING,
            f"The target column '{spec.target}' is not in the data.",
            {"target": [f"No column '{spec.target}'."]},
        )
    missing = [c for c in wanted if c not in names]
    if missing:
        fields: dict[str, list[str]] = {}
        for column in missing:
            key = "time_column" if column == spec.time_column else "group_column" if column == spec.group_column else "features"
            fields.setdefault(key, []).append(f"No column '{column}'.")
        raise TrainingError(TrainingError.INVALID_SPEC, f"Columns not in the data: {', '.join(missing)}.", fields)
    frame = pd.read_parquet(parquet_path, columns=list(dict.fromkeys([*wanted, spec.target])))
    # A file written by pandas may bring its own index back; the holdout indices are row positions.
    return frame.reset_index(drop=True)


def _check_features(spec: DeepSpec, frame: pd.DataFrame, *, target_allowed: bool) -> None:
    if not spec.features:
        raise TrainingError(TrainingError.NO_FEATURES, "Choose at least one numeric feature column.", {"features": ["Empty."]})
    if spec.target in spec.features and not target_allowed:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"The target '{spec.target}' cannot also be a feature: the model would read the answer.",
            {"features": [f"Remove '{spec.target}'."]},
        )
    text = [c for c in spec.features if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if text:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            f"Keras models take numeric features only; not numeric: {', '.join(text)}.",
            {"features": [f"'{c}' is not numeric." for c in text]},
        )


def _drop_missing(frame: pd.DataFrame, columns: list[str], warnings: list[dict[str, str]]) -> pd.DataFrame:
    numeric = [c for c in columns if pd.api.types.is_float_dtype(frame[c])]
    bad = frame[columns].isna().any(axis=1)
    if numeric:
        bad |= ~np.isfinite(frame[numeric].to_numpy(dtype="float64")).all(axis=1)
    dropped = int(bad.sum())
    if dropped:
        warnings.append(
            {
                "code": "rows_dropped",
                "message": f"{dropped} of {len(frame)} rows have a missing or infinite value in {', '.join(columns)} "
                "and were left out.",
            }
        )
    return frame.loc[~bad]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _encode_classes(labels: pd.Series | np.ndarray, what: str) -> tuple[np.ndarray, list[Any]]:
    """Label indices and the sorted classes; refuses one class, or a class with a single sample."""
    values = pd.Series(labels)
    counts = values.value_counts()
    if len(counts) < 2:
        only = _plain(counts.index[0]) if len(counts) else None
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            f"Every {what} has the same label ({only!r}); a classifier needs at least two classes.",
            {"target": ["Only one class."]},
        )
    single = [_plain(c) for c, n in counts.items() if n < 2]
    if single:
        raise TrainingError(
            TrainingError.CLASS_TOO_SMALL,
            f"These classes have a single {what}, too few to train and evaluate: {', '.join(map(repr, single[:10]))}. "
            "Add examples or merge the classes.",
            {"target": [f"Class {c!r} has one {what}." for c in single[:10]]},
        )
    classes = sorted(_plain(c) for c in counts.index)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[_plain(v)] for v in values], dtype="int64"), classes


def _check_counts(n_train: int, n_test: int, what: str) -> None:
    if n_train < MIN_TRAIN or n_test < MIN_HOLDOUT:
        raise TrainingError(
            TrainingError.TOO_FEW_ROWS,
            f"Too few {what}s: {n_train} for training and {n_test} for the holdout; at least {MIN_TRAIN} and "
            f"{MIN_HOLDOUT} are needed. Add data or lower the holdout.",
            {"holdout": [f"{n_train + n_test} {what}s are too few."]},
        )


def _random_split(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and test positions, stratified by labels when every class can be split."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(n)
    n_test = int(round(n * fraction))
    if n_test < 1 or n - n_test < 1:
        return positions, positions[:0], "random"
    if labels is not None:
        try:
            train, test = train_test_split(positions, test_size=n_test, random_state=seed, stratify=labels)
            return np.sort(train), np.sort(test), "stratified"
        except ValueError:  # a class too small for both parts, or more classes than test rows
            pass
    train, test = train_test_split(positions, test_size=n_test, random_state=seed)
    return np.sort(train), np.sort(test), "random"


def _time_split(groups: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train and test positions: the last `fraction` of each group's (time-ordered) positions is test."""
    train, test = [], []
    for group in pd.unique(groups):
        members = np.flatnonzero(groups == group)
        n_test = int(math.floor(fraction * len(members) + 0.5))
        train.append(members[: len(members) - n_test])
        test.append(members[len(members) - n_test :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _validation(
    n_train: int, seed: int, labels: np.ndarray | None, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fit and validation positions within the training part; no validation when it is too small."""
    if n_train < MIN_TRAIN + 2:
        return np.arange(n_train), None
    if groups is not None:
        fit, val = _time_split(groups, VALIDATION_FRACTION)
    else:
        fit, val, _ = _random_split(n_train, VALIDATION_FRACTION, seed + 1, labels)
    if len(val) == 0 or len(fit) < MIN_TRAIN:
        return np.arange(n_train), None
    return fit, val


def _assemble(x, y, train, test, *, seed, labels, groups=None, **rest) -> _Data:
    fit, val = _validation(
        len(train), seed, labels[train] if labels is not None else None, None if groups is None else groups[train]
    )
    x_train, y_train = x[train], y[train]
    return _Data(
        x_train=x_train[fit],
        y_train=y_train[fit],
        x_val=None if val is None else x_train[val],
        y_val=None if val is None else y_train[val],
        x_test=x[test],
        y_test=y[test],
        **rest,
    )


def _regression_target(values: pd.Series, spec: DeepSpec) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise TrainingError(
            TrainingError.TARGET_NOT_NUMERIC,
            f"The target '{spec.target}' is not numeric, so {spec.task} cannot predict it.",
            {"target": ["Not numeric."]},
        )
    y = values.to_numpy(dtype="float32")
    if len(y) and float(np.nanstd(y)) == 0.0:
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            f"The target '{spec.target}' has the same value in every row.",
            {"target": ["Constant."]},
        )
    return y


def _class_warnings(y_train: np.ndarray, classes: list[Any], warnings: list[dict[str, str]]) -> None:
    counts = np.bincount(y_train, minlength=len(classes))
    absent = [classes[i] for i in np.flatnonzero(counts == 0)]
    if absent:
        warnings.append(
            {
                "code": "class_missing_in_training",
                "message": f"No training example of {', '.join(map(repr, absent))}: those appear only in the holdout.",
            }
        )
    share = counts / max(counts.sum(), 1)
    rare = [f"{classes[i]!r} ({share[i]:.1%})" for i in np.flatnonzero((share > 0) & (share < IMBALANCE_SHARE))]
    if rare:
        warnings.append({"code": "class_imbalance", "message": f"Rare classes in the training data: {', '.join(rare)}."})


def _tabular_data(spec: DeepSpec, parquet_path: str, warnings: list[dict[str, str]]) -> _Data:
    frame = _read_columns(parquet_path, spec, list(spec.features))
    _check_features(spec, frame, target_allowed=False)
    frame = _drop_missing(frame, [*spec.features, spec.target], warnings)
    positions = frame.index.to_numpy()  # row positions in the Parquet file (see _read_columns)
    x = frame[spec.features].to_numpy(dtype="float32")
    if spec.task == "classification":
        y, classes = _encode_classes(frame[spec.target], "row")
        labels = y
    else:
        y, classes, labels = _regression_target(frame[spec.target], spec), None, None
    train, test, how = _random_split(len(x), spec.holdout, spec.seed, labels)
    _check_counts(len(train), len(test), "row")
    output: dict[str, Any] = {"task": spec.task}
    if classes is not None:
        output["classes"] = classes
        _class_warnings(y[train], classes, warnings)
    return _assemble(
        x,
        y,
        train,
        test,
        seed=spec.seed,
        labels=labels,
        input_schema=[{"name": c, "type": "number", "nullable": False} for c in spec.features],
        output=output,
        holdout={"rows": len(test), "indices": [int(p) for p in positions[test]], "split": how},
        classes=classes,
        channels=list(spec.features),
        **_target_stats(y[train], classes),
    )


def _target_stats(y_train: np.ndarray, classes: list | None) -> dict[str, float]:
    if classes is not None:
        return {}
    std = float(np.std(y_train))
    return {"y_mean": float(np.mean(y_train)), "y_std": std if std > 0 else 1.0}


def _sequence_data(spec: DeepSpec, parquet_path: str, options: dict, warnings: list[dict[str, str]]) -> _Data:
    forecasting = spec.task == "forecasting"
    channels = list(spec.features)
    if forecasting and spec.target not in channels:
        channels.append(spec.target)  # past values of the target are the best predictor of its future
    order = [c for c in (spec.group_column, spec.time_column) if c]
    frame = _read_columns(parquet_path, spec, [*spec.features, *order])
    _check_features(spec, frame, target_allowed=forecasting)
    if forecasting:
        _regression_target(frame[spec.target].dropna(), spec)
    frame = _drop_missing(frame, list(dict.fromkeys([*channels, spec.target, *order])), warnings)
    if order:
        frame = frame.sort_values(order, kind="mergesort")
    window, stride = options["window"], options["stride"]
    ahead = options["horizon"] if forecasting else 0
    needed = window + ahead

    group_keys = frame[spec.group_column].to_numpy() if spec.group_column else np.zeros(len(frame), dtype="int8")
    starts_of = np.flatnonzero(np.r_[True, group_keys[1:] != group_keys[:-1]]) if len(frame) else np.array([], dtype="int64")
    bounds = list(zip(starts_of, np.r_[starts_of[1:], len(frame)], strict=True))
    sizes = [int(end - begin) for begin, end in bounds]
    if not any(size >= needed for size in sizes):
        _bad_window(spec, window, ahead, sizes)
    short = sum(size < needed for size in sizes)
    if short:
        warnings.append(
            {
                "code": "short_groups",
                "message": f"{short} of {len(sizes)} groups have fewer than {needed} rows and give no window.",
            }
        )

    values = frame[channels].to_numpy(dtype="float32")
    target = frame[spec.target].to_numpy()
    xs, label_rows, window_groups = [], [], []
    for g, (begin, end) in enumerate(bounds):
        if end - begin < needed:
            continue
        views = np.lib.stride_tricks.sliding_window_view(values[begin:end], window, axis=0)  # (n, C, window)
        starts = np.arange(0, end - begin - needed + 1, stride)
        xs.append(np.transpose(views[starts], (0, 2, 1)))
        label_rows.append(begin + starts + window - 1 + ahead)
        window_groups.append(np.full(len(starts), g))
    x = np.ascontiguousarray(np.concatenate(xs))
    rows = np.concatenate(label_rows)
    groups = np.concatenate(window_groups)
    if forecasting:
        y, classes, labels = target[rows].astype("float32"), None, None
    else:
        y, classes = _encode_classes(target[rows], "window")
        labels = y
    train, test = _time_split(groups, spec.holdout)
    _check_counts(len(train), len(test), "window")
    output: dict[str, Any] = {"task": spec.task, "window": window, "channels": channels, "target": spec.target}
    if forecasting:
        output["horizon"] = ahead
    if classes is not None:
        output["classes"] = classes
        _class_warnings(y[train], classes, warnings)
    return _assemble(
        x,
        y,
        train,
        test,
        seed=spec.seed,
        labels=labels,
        groups=groups,
        input_schema=[{"name": c, "type": "number", "nullable": False} for c in channels],
        output=output,
        # Windows are cut from sorted rows, so no list of Parquet rows re-scores them.
        holdout={"rows": len(test), "indices": None, "split": "time", "windows": len(test)},
        classes=classes,
        channels=channels,
        **_target_stats(y[train], classes),
    )


def _bad_window(spec: DeepSpec, window: int, ahead: int, sizes: list[int]) -> None:
    needed = window + ahead
    what = f"window {window}" + (f" + horizon {ahead}" if ahead else "")
    if not sizes:
        shown = "there are no rows"
    elif len(sizes) == 1:
        shown = f"the data has {sizes[0]} rows"
    else:
        listed = ", ".join(map(str, sorted(sizes, reverse=True)[:10])) + (", …" if len(sizes) > 10 else "")
        shown = f"the {len(sizes)} groups of '{spec.group_column}' have {listed} rows"
    raise TrainingError(
        TrainingError.BAD_WINDOW,
        f"The {what} needs at least {needed} consecutive rows in one group, but {shown}. Choose a smaller window.",
        {"keras.window": [f"Larger than every group: {needed} rows needed, at most {max(sizes, default=0)} available."]},
    )


def _image_data(
    spec: DeepSpec,
    parquet_path: str,
    options: dict,
    image_loader: Callable[[str], bytes] | None,
    should_stop: Callable[[], bool],
    progress: Callable[[int, str], None],
    warnings: list[dict[str, str]],
) -> _Data:
    import pyarrow.parquet as pq

    if image_loader is None:
        raise ValueError("image_classification needs image_loader(sha256) -> bytes")
    names = pq.read_schema(parquet_path).names
    # datalake/engine/images.py calls the sha256 of the original bytes "checksum".
    digest_column = "sha256" if "sha256" in names else "checksum" if "checksum" in names else None
    if digest_column is None:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            "This is not an image manifest: it has no sha256 (or checksum) column.",
            {"task": ["image_classification needs an image dataset."]},
        )
    wanted = [digest_column, *(c for c in ("path", "mode") if c in names)]
    frame = _read_columns(parquet_path, spec, wanted)
    frame = _drop_missing(frame, [spec.target, digest_column], warnings)
    modes = set(frame["mode"].astype(str)) if "mode" in frame else {"RGB"}
    color = "grayscale" if modes <= GRAYSCALE_MODES else "rgb"
    _encode_classes(frame[spec.target], "image")  # refuse one class / single images before decoding all
    size = options["image_size"]

    pixels, kept, bad = [], [], []
    for i, (position, digest) in enumerate(zip(frame.index, frame[digest_column], strict=True)):
        if i % 50 == 0:
            if should_stop():
                raise TrainingError(TrainingError.CANCELLED, "Training was cancelled before the first epoch.")
            progress(int(PROGRESS_PREPARED * i / max(len(frame), 1)), f"Decoding images ({i} of {len(frame)})")
        try:
            pixels.append(decode_image(image_loader(digest), size, color))
            kept.append(position)
        except (OSError, ValueError) as exc:  # Pillow raises OSError subclasses for damaged files
            name = frame.at[position, "path"] if "path" in frame else digest
            bad.append(f"{name} ({exc})")
    if bad:
        warnings.append(
            {
                "code": "images_skipped",
                "message": f"{len(bad)} images could not be decoded and were left out: {'; '.join(bad[:5])}",
            }
        )
    if not pixels:
        raise TrainingError(TrainingError.TOO_FEW_ROWS, "No image could be decoded.", {"holdout": ["No images."]})
    x = np.stack(pixels)
    positions = np.array(kept)
    y, classes = _encode_classes(frame.loc[kept, spec.target], "image")
    train, test, how = _random_split(len(x), spec.holdout, spec.seed, y)
    _check_counts(len(train), len(test), "image")
    _class_warnings(y[train], classes, warnings)
    return _assemble(
        x,
        y,
        train,
        test,
        seed=spec.seed,
        labels=y,
        input_schema=[{"name": "image", "type": "image", "nullable": False}],
        output={"task": spec.task, "classes": classes, "image_size": size, "color_mode": color},
        holdout={"rows": len(test), "indices": [int(p) for p in positions[test]], "split": how},
        classes=classes,
    )


def decode_image(data: bytes, size: int, color: str) -> np.ndarray:
    """uint8 pixels (size, size, 1 or 3) of a PNG/JPEG/BMP file, as the model was trained on them."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        image = opened
        if image.mode in ("I", "F") or image.mode.startswith("I;"):
            # 16-bit and float images: stretch min..max to 8 bits, as the ingest thumbnails do.
            values = np.asarray(image, dtype="float64")
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
            image = Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype("uint8"), mode="L")
        image = image.convert("L" if color == "grayscale" else "RGB").resize((size, size), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype="uint8")
    return array[:, :, None] if array.ndim == 2 else array


# ---------------------------------------------------------------------------------------------
# Model


def _build_model(keras, spec: DeepSpec, options: dict, data: _Data):
    layers = keras.layers
    blocks, units, dropout = options["layers"], options["units"], options["dropout"]
    algorithm = spec.algorithm
    if algorithm == "keras_cnn2d":
        inputs = keras.Input(shape=data.x_train.shape[1:], dtype="uint8", name="image")
        x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
        if options["augment"]:  # preprocessing layers that only act while training
            x = layers.RandomFlip("horizontal_and_vertical", seed=spec.seed)(x)
            x = layers.RandomRotation(0.1, seed=spec.seed)(x)
            x = layers.RandomZoom(0.1, seed=spec.seed)(x)
        for i in range(blocks):
            x = layers.Conv2D(
                min(options["filters"] * 2**i, MAX_FILTERS), options["kernel_size"], padding="same", activation="relu"
            )(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        # Max, not average: a defect is small and anywhere; its strongest response should count.
        x = layers.GlobalMaxPooling2D()(x)
    else:
        inputs = keras.Input(shape=data.x_train.shape[1:], name="window" if data.x_train.ndim == 3 else "features")
        normalise = layers.Normalization(axis=-1, name="standardise")
        normalise.adapt(data.x_train)
        x = normalise(inputs)
        if algorithm == "keras_mlp":
            if data.x_train.ndim == 3:
                x = layers.Flatten()(x)
            for _ in range(blocks):
                x = layers.Dense(units, activation="relu")(x)
                if dropout:
                    x = layers.Dropout(dropout)(x)
        elif algorithm in ("keras_lstm", "keras_gru"):
            recurrent = layers.LSTM if algorithm == "keras_lstm" else layers.GRU
            for i in range(blocks):
                # Dropout between layers, not recurrent_dropout, which would rule out the cuDNN kernel.
                x = recurrent(units, return_sequences=i < blocks - 1)(x)
                if dropout:
                    x = layers.Dropout(dropout)(x)
        else:  # keras_cnn1d
            for i in range(blocks):
                x = layers.Conv1D(
                    min(options["filters"] * 2**i, MAX_FILTERS), options["kernel_size"], padding="same", activation="relu"
                )(x)
                x = layers.MaxPooling1D(2, padding="same")(x)
            x = layers.GlobalAveragePooling1D()(x)
    if algorithm in ("keras_cnn1d", "keras_cnn2d"):
        x = layers.Dense(units, activation="relu")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    if data.classes is not None:
        outputs = layers.Dense(len(data.classes), activation="softmax", name="probabilities")(x)
    else:
        # The network learns the standardised target; Rescaling returns target units, so the loss,
        # the metrics and the saved model all speak in them (Adam does not mind the scale).
        z = layers.Dense(1, name="standardised")(x)
        outputs = layers.Rescaling(scale=data.y_std, offset=data.y_mean, name="prediction")(z)
    return keras.Model(inputs, outputs, name=f"lepton_{algorithm}")


def _reporter(keras, *, epochs: int, on_epoch, progress, should_stop):
    """A callback that reports each epoch, records the history and stops when asked."""

    class Reporter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.cancelled = False
            self.cancelled_in_epoch = False
            self.last_poll = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.last_poll >= STOP_POLL_SECONDS:
                self.last_poll = time.monotonic()
                if should_stop():
                    self.cancelled = self.cancelled_in_epoch = True
                    self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled_in_epoch:  # a partial epoch: not reported as done
                return
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row["learning_rate"] = float(keras.ops.convert_to_tensor(self.model.optimizer.learning_rate))
            self.history.append(row)
            on_epoch(epoch + 1, {k: v for k, v in row.items() if k != "epoch"})
            span = PROGRESS_TRAINED - PROGRESS_PREPARED
            loss = f", val_loss {row['val_loss']:.4g}" if "val_loss" in row else ""
            progress(
                PROGRESS_PREPARED + int(span * (epoch + 1) / epochs),
                f"Epoch {epoch + 1} of {epochs}: loss {row['loss']:.4g}{loss}",
            )
            self.last_poll = time.monotonic()
            if should_stop():
                self.cancelled = True
                self.model.stop_training = True

    return Reporter()


def _pick_device(tf, requested: str, warnings: list[dict[str, str]]) -> str:
    if requested not in ("gpu", "gpu_or_cpu"):
        return "cpu"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        warnings.append({"code": "cpu_fallback", "message": "No GPU was visible to this worker; trained on CPU."})
        return "cpu"
    for gpu in gpus:
        try:  # take GPU memory as needed: several workers may share a card
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised in this process; the earlier setting stands
            pass
    return "gpu"


# ---------------------------------------------------------------------------------------------
# Training


def train(
    spec: DeepSpec,
    parquet_path: str,
    out_dir: str,
    *,
    progress: Callable[[int, str], None] = lambda pct, msg: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_epoch: Callable[[int, dict[str, float]], None] = lambda epoch, logs: None,
    image_loader: Callable[[str], bytes] | None = None,
) -> TrainResult:
    """Fit spec.algorithm on the Parquet file, evaluate it on the holdout, save out_dir/model.keras.

    progress(pct, message) gets 0..100; on_epoch(epoch, logs) gets the 1-based epoch and plain
    floats (loss, val_loss, metrics, learning_rate); should_stop() is polled (see the module
    docstring); image_loader(sha256) returns an image's bytes (image_classification only).
    Raises TrainingError for a spec or data it refuses; nothing is written then.
    """
    started = time.monotonic()
    options = validate_keras_options(spec.options, spec.task, spec.algorithm)
    warnings: list[dict[str, str]] = []
    progress(0, "Reading the data")
    if spec.task == "image_classification":
        data = _image_data(spec, parquet_path, options, image_loader, should_stop, progress, warnings)
    elif spec.task in SEQUENCE_TASKS:
        data = _sequence_data(spec, parquet_path, options, warnings)
    else:
        data = _tabular_data(spec, parquet_path, warnings)
    if should_stop():
        raise TrainingError(TrainingError.CANCELLED, "Training was cancelled before the first epoch.")
    progress(PROGRESS_PREPARED, f"Training on {len(data.x_train)} samples")

    import keras
    import tensorflow as tf

    device = _pick_device(tf, options["device"], warnings)
    keras.utils.set_random_seed(spec.seed)
    epochs, batch_size = options["epochs"], options["batch_size"]
    monitor = "val_loss" if data.x_val is not None else "loss"
    with tf.device("/GPU:0" if device == "gpu" else "/CPU:0"):
        model = _build_model(keras, spec, options, data)
        learning_rate = options["learning_rate"]
        if options["lr_schedule"] == "cosine":
            steps = epochs * math.ceil(len(data.x_train) / batch_size)
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.01)
        classifier = data.classes is not None
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy" if classifier else "mse",
            metrics=["accuracy"] if classifier else ["mae"],
        )
        reporter = _reporter(keras, epochs=epochs, on_epoch=on_epoch, progress=progress, should_stop=should_stop)
        callbacks = [reporter]
        if options["patience"]:
            callbacks.append(
                keras.callbacks.EarlyStopping(monitor=monitor, patience=options["patience"], restore_best_weights=True)
            )
        if options["lr_schedule"] == "reduce_on_plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor,
                    factor=0.5,
                    patience=max(1, options["patience"] // 2 or 2),
                    min_lr=options["learning_rate"] / 1000,
                )
            )
        model.fit(
            data.x_train,
            data.y_train,
            validation_data=None if data.x_val is None else (data.x_val, data.y_val),
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        if not reporter.history:
            raise TrainingError(TrainingError.CANCELLED, "Training was cancelled before the first epoch finished.")
        progress(PROGRESS_TRAINED + 2, "Evaluating on the holdout")
        predicted = _predict_arrays(model, data.x_test, batch_size)
        metrics, curves = _evaluate(data, predicted)
        importance = _importance(model, data, predicted, batch_size, spec.seed) if data.channels else []

    epochs_run = len(reporter.history)
    extra: dict[str, Any] = {"device_used": device, "epochs_run": epochs_run, "parameters": int(model.count_params())}
    if options["patience"]:  # EarlyStopping restored this epoch's weights
        scores = [row.get(monitor, math.inf) for row in reporter.history]
        extra["best_epoch"] = int(np.argmin(scores)) + 1
    if reporter.cancelled:
        warnings.append(
            {
                "code": "cancelled",
                "message": f"Training was stopped after {epochs_run} of {epochs} epochs; the model from those epochs is kept.",
            }
        )
    curves["epochs"] = reporter.history
    progress(PROGRESS_TRAINED + 7, "Saving the model")
    os.makedirs(out_dir, exist_ok=True)
    artifact = os.path.join(out_dir, "model.keras")
    model.save(artifact)
    progress(100, "Done")
    return TrainResult(
        artifact_path=artifact,
        flavor="keras",
        task=spec.task,
        algorithm=spec.algorithm,
        params={**options, **extra},
        metrics=metrics,
        curves=curves,
        importance=importance,
        input_schema=data.input_schema,
        output=data.output,
        warnings=warnings,
        holdout={**data.holdout, "metric": "f1_macro" if data.classes is not None else "rmse"},
        seconds=round(time.monotonic() - started, 3),
        packages=_packages(spec.task),
    )


def _packages(task: str) -> dict[str, str]:
    import keras
    import tensorflow as tf

    packages = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    if task == "image_classification":
        import PIL

        packages["pillow"] = PIL.__version__
    return packages


def _predict_arrays(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = model.predict(x, batch_size=max(batch_size, 256), verbose=0)
    return np.asarray(out, dtype="float64")


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


# ---------------------------------------------------------------------------------------------
# Serving


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
            raise ValueError(f"an input is not a readable PNG, JPEG or BMP image: {exc}") from exc
    elif task in SEQUENCE_TASKS:
        x = np.asarray(inputs, dtype="float32")
        shape = (meta["window"], len(meta["channels"]))
        if x.ndim != 3 or x.shape[1:] != shape:
            raise ValueError(
                f"expected windows of {shape[0]} rows × {shape[1]} channels ({', '.join(meta['channels'])}), got shape {x.shape}"
            )
    else:
        names = [column["name"] for column in meta["input_schema"]]
        missing = [n for n in names if n not in inputs.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        x = inputs[names].to_numpy(dtype="float32")
    if x.dtype != np.uint8 and not np.isfinite(x).all():
        raise ValueError("inputs contain missing or infinite values; the model was trained without them")
    out = _predict_arrays(model, x, 256)
    if classes is None:
        return {"predictions": out.reshape(-1).tolist()}
    return {
        "predictions": [classes[i] for i in out.argmax(axis=1)],
        "probabilities": [{c: float(p) for c, p in zip(classes, row, strict=True)} for row in out],
    }
