"""What to train: DeepSpec and validate_keras_options, which fills in and checks the Keras options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import TrainingError, gettext_noop, phrase
from .constants import (
    ALGORITHMS,
    ALGORITHMS_FOR_TASK,
    COMMON_OPTIONS,
    DEFAULTS,
    DEVICES,
    LR_SCHEDULES,
    MAX_FILTERS,
    OPTION_NAMES,
    SEQUENCE_TASKS,
    TASKS,
)


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
            TrainingError.INVALID_SPEC,
            phrase(gettext_noop("Unknown task '%(task)s'."), task=task),
            {"task": [phrase(gettext_noop("Choose one of: %(choices)s."), choices=", ".join(TASKS))]},
        )
    if algorithm not in ALGORITHMS:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(gettext_noop("Unknown Keras algorithm '%(algorithm)s'."), algorithm=algorithm),
            {"algorithm": [phrase(gettext_noop("Choose one of: %(choices)s."), choices=", ".join(ALGORITHMS))]},
        )
    allowed = ALGORITHMS_FOR_TASK[task]
    if algorithm not in allowed:
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            phrase(
                gettext_noop("%(algorithm)s cannot learn a %(task)s task; use %(allowed)s."),
                algorithm=algorithm,
                task=task,
                allowed=" or ".join(allowed),
            ),
            {
                "algorithm": [
                    phrase(
                        gettext_noop("%(algorithm)s does not fit %(task)s; use %(allowed)s."),
                        algorithm=algorithm,
                        task=task,
                        allowed=" or ".join(allowed),
                    )
                ]
            },
        )
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            gettext_noop("Keras options must be an object."),
            {"keras": [gettext_noop("Must be an object.")]},
        )

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
            reason = gettext_noop("Unknown option; the Keras options are: %(names)s.")
            errors[f"keras.{key}"] = [phrase(reason, names=", ".join(OPTION_NAMES))]
        elif key not in applicable:
            errors[f"keras.{key}"] = [
                phrase(gettext_noop("Does not apply to %(algorithm)s on %(task)s."), algorithm=algorithm, task=task)
            ]

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
            reason = gettext_noop("Required for %(task)s: the number of consecutive rows in each window (2..2000).")
            errors["keras.window"] = [phrase(reason, task=task)]
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
            errors["keras.kernel_size"] = [
                phrase(gettext_noop("Must not be larger than %(what)s (%(span)s)."), what=what, span=span)
            ]
    if errors:
        first = next(iter(errors))
        message = phrase(gettext_noop("Invalid Keras option %(option)s: %(reason)s"), option=first, reason=errors[first][0])
        raise TrainingError(TrainingError.INVALID_SPEC, message, errors)
    return cleaned


def _whole(value: Any, low: int, high: int) -> tuple[Any, str | None]:
    # JSON gives 64.0 as often as 64; both are accepted, "64" and True are not.
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not value.is_integer()):
        return None, phrase(gettext_noop("Must be a whole number from %(low)s to %(high)s."), low=low, high=high)
    if not low <= value <= high:
        return None, phrase(
            gettext_noop("Must be from %(low)s to %(high)s; got %(value)s."), low=low, high=high, value=f"{value:g}"
        )
    return int(value), None


def _number(value: Any, low: float, high: float, *, low_open: bool = False) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, phrase(gettext_noop("Must be a number from %(low)s to %(high)s."), low=f"{low:g}", high=f"{high:g}")
    if value > high or value < low or (low_open and value <= low):
        if low_open:
            reason = gettext_noop("Must be greater than %(low)s and at most %(high)s; got %(value)s.")
        else:
            reason = gettext_noop("Must be from %(low)s to %(high)s; got %(value)s.")
        return None, phrase(reason, low=f"{low:g}", high=f"{high:g}", value=f"{value:g}")
    return float(value), None


def _choice(value: Any, choices: tuple[str, ...]) -> tuple[Any, str | None]:
    if value not in choices:
        return None, phrase(
            gettext_noop("Must be one of: %(choices)s; got %(value)s."), choices=", ".join(choices), value=repr(value)
        )
    return value, None


def _boolean(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, bool):
        return None, phrase(gettext_noop("Must be true or false; got %(value)s."), value=repr(value))
    return value, None
