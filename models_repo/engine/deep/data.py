"""Training data: the _Data every task ends as, reading and checking columns, labels, the three-way split, tables.

Windows (windows.py) and images (images.py) are cut and decoded from the same helpers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TrainingError, gettext_noop, phrase
from .constants import IMBALANCE_SHARE, MIN_HOLDOUT, MIN_TRAIN, VALIDATION_FRACTION
from .options import DeepSpec


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
            phrase(gettext_noop("The target column '%(name)s' is not in the data."), name=spec.target),
            {"target": [phrase(gettext_noop("No column '%(name)s'."), name=spec.target)]},
        )
    missing = [c for c in wanted if c not in names]
    if missing:
        fields: dict[str, list[str]] = {}
        for column in missing:
            key = "time_column" if column == spec.time_column else "group_column" if column == spec.group_column else "features"
            fields.setdefault(key, []).append(phrase(gettext_noop("No column '%(name)s'."), name=column))
        message = phrase(gettext_noop("Columns not in the data: %(columns)s."), columns=", ".join(missing))
        raise TrainingError(TrainingError.INVALID_SPEC, message, fields)
    frame = pd.read_parquet(parquet_path, columns=list(dict.fromkeys([*wanted, spec.target])))
    # A file written by pandas may bring its own index back; the holdout indices are row positions.
    return frame.reset_index(drop=True)


def _check_features(spec: DeepSpec, frame: pd.DataFrame, *, target_allowed: bool) -> None:
    if not spec.features:
        raise TrainingError(
            TrainingError.NO_FEATURES,
            gettext_noop("Choose at least one numeric feature column."),
            {"features": [gettext_noop("Empty.")]},
        )
    if spec.target in spec.features and not target_allowed:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(
                gettext_noop("The target '%(name)s' cannot also be a feature: the model would read the answer."), name=spec.target
            ),
            {"features": [phrase(gettext_noop("Remove '%(name)s'."), name=spec.target)]},
        )
    text = [c for c in spec.features if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if text:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(gettext_noop("Keras models take numeric features only; not numeric: %(columns)s."), columns=", ".join(text)),
            {"features": [phrase(gettext_noop("'%(name)s' is not numeric."), name=c) for c in text]},
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
                "message": phrase(
                    gettext_noop(
                        "%(dropped)s of %(rows)s rows have a missing or infinite value in %(columns)s and were left out."
                    ),
                    dropped=dropped,
                    rows=len(frame),
                    columns=", ".join(columns),
                ),
            }
        )
    return frame.loc[~bad]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# What a classifier learns from, as the refusals below name it: one marked sentence per kind of
# sample (a noun spliced into a sentence would not translate).
ONE_CLASS = {
    "row": gettext_noop("Every row has the same label (%(label)s); a classifier needs at least two classes."),
    "window": gettext_noop("Every window has the same label (%(label)s); a classifier needs at least two classes."),
    "image": gettext_noop("Every image has the same label (%(label)s); a classifier needs at least two classes."),
}
SINGLE_SAMPLE = {
    "row": gettext_noop(
        "These classes have a single row, too few to train and evaluate: %(classes)s. Add examples or merge the classes."
    ),
    "window": gettext_noop(
        "These classes have a single window, too few to train and evaluate: %(classes)s. Add examples or merge the classes."
    ),
    "image": gettext_noop(
        "These classes have a single image, too few to train and evaluate: %(classes)s. Add examples or merge the classes."
    ),
}
CLASS_HAS_ONE = {
    "row": gettext_noop("Class %(label)s has one row."),
    "window": gettext_noop("Class %(label)s has one window."),
    "image": gettext_noop("Class %(label)s has one image."),
}
TOO_FEW = {
    "row": gettext_noop(
        "Too few rows: %(train)s for training and %(test)s for the holdout; at least %(min_train)s and "
        "%(min_test)s are needed. Add data or lower the holdout."
    ),
    "window": gettext_noop(
        "Too few windows: %(train)s for training and %(test)s for the holdout; at least %(min_train)s and "
        "%(min_test)s are needed. Add data or lower the holdout."
    ),
    "image": gettext_noop(
        "Too few images: %(train)s for training and %(test)s for the holdout; at least %(min_train)s and "
        "%(min_test)s are needed. Add data or lower the holdout."
    ),
}
TOO_FEW_FIELD = {
    "row": gettext_noop("%(total)s rows are too few."),
    "window": gettext_noop("%(total)s windows are too few."),
    "image": gettext_noop("%(total)s images are too few."),
}


def _encode_classes(labels: pd.Series | np.ndarray, what: str) -> tuple[np.ndarray, list[Any]]:
    """Label indices and the sorted classes; refuses one class, or a class with a single sample.

    `what` is "row", "window" or "image"."""
    values = pd.Series(labels)
    counts = values.value_counts()
    if len(counts) < 2:
        only = _plain(counts.index[0]) if len(counts) else None
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            phrase(ONE_CLASS[what], label=repr(only)),
            {"target": [gettext_noop("Only one class.")]},
        )
    single = [_plain(c) for c, n in counts.items() if n < 2]
    if single:
        raise TrainingError(
            TrainingError.CLASS_TOO_SMALL,
            phrase(SINGLE_SAMPLE[what], classes=", ".join(map(repr, single[:10]))),
            {"target": [phrase(CLASS_HAS_ONE[what], label=repr(c)) for c in single[:10]]},
        )
    classes = sorted(_plain(c) for c in counts.index)
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[_plain(v)] for v in values], dtype="int64"), classes


def _check_counts(n_train: int, n_test: int, what: str) -> None:
    if n_train < MIN_TRAIN or n_test < MIN_HOLDOUT:
        raise TrainingError(
            TrainingError.TOO_FEW_ROWS,
            phrase(TOO_FEW[what], train=n_train, test=n_test, min_train=MIN_TRAIN, min_test=MIN_HOLDOUT),
            {"holdout": [phrase(TOO_FEW_FIELD[what], total=n_train + n_test)]},
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
            phrase(
                gettext_noop("The target '%(name)s' is not numeric, so %(task)s cannot predict it."),
                name=spec.target,
                task=spec.task,
            ),
            {"target": [gettext_noop("Not numeric.")]},
        )
    y = values.to_numpy(dtype="float32")
    if len(y) and float(np.nanstd(y)) == 0.0:
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            phrase(gettext_noop("The target '%(name)s' has the same value in every row."), name=spec.target),
            {"target": [gettext_noop("Constant.")]},
        )
    return y


def _class_warnings(y_train: np.ndarray, classes: list[Any], warnings: list[dict[str, str]]) -> None:
    counts = np.bincount(y_train, minlength=len(classes))
    absent = [classes[i] for i in np.flatnonzero(counts == 0)]
    if absent:
        warnings.append(
            {
                "code": "class_missing_in_training",
                "message": phrase(
                    gettext_noop("No training example of %(classes)s: those appear only in the holdout."),
                    classes=", ".join(map(repr, absent)),
                ),
            }
        )
    share = counts / max(counts.sum(), 1)
    rare = [f"{classes[i]!r} ({share[i]:.1%})" for i in np.flatnonzero((share > 0) & (share < IMBALANCE_SHARE))]
    if rare:
        message = phrase(gettext_noop("Rare classes in the training data: %(classes)s."), classes=", ".join(rare))
        warnings.append({"code": "class_imbalance", "message": message})


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
