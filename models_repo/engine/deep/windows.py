"""Sensor windows for sequence_classification and forecasting: cut per group, labelled, split by time."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import TrainingError, gettext_noop, phrase
from .data import (
    _assemble,
    _check_counts,
    _check_features,
    _class_warnings,
    _Data,
    _drop_missing,
    _encode_classes,
    _read_columns,
    _regression_target,
    _target_stats,
    _time_split,
)
from .options import DeepSpec


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
                "message": phrase(
                    gettext_noop("%(short)s of %(groups)s groups have fewer than %(needed)s rows and give no window."),
                    short=short,
                    groups=len(sizes),
                    needed=needed,
                ),
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
    if ahead:
        what = phrase(gettext_noop("window %(window)s + horizon %(horizon)s"), window=window, horizon=ahead)
    else:
        what = phrase(gettext_noop("window %(window)s"), window=window)
    if not sizes:
        shown = gettext_noop("there are no rows")
    elif len(sizes) == 1:
        shown = phrase(gettext_noop("the data has %(rows)s rows"), rows=sizes[0])
    else:
        listed = ", ".join(map(str, sorted(sizes, reverse=True)[:10])) + (", …" if len(sizes) > 10 else "")
        shown = phrase(
            gettext_noop("the %(groups)s groups of '%(column)s' have %(listed)s rows"),
            groups=len(sizes),
            column=spec.group_column,
            listed=listed,
        )
    raise TrainingError(
        TrainingError.BAD_WINDOW,
        phrase(
            gettext_noop(
                "The %(what)s needs at least %(needed)s consecutive rows in one group, but %(shown)s. Choose a smaller window."
            ),
            what=what,
            needed=needed,
            shown=shown,
        ),
        {
            "keras.window": [
                phrase(
                    gettext_noop("Larger than every group: %(needed)s rows needed, at most %(most)s available."),
                    needed=needed,
                    most=max(sizes, default=0),
                )
            ]
        },
    )
