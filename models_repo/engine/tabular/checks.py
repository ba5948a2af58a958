"""Reading a run's data and refusing what it cannot learn from: target, features, split, CV, warnings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (makes HalvingGridSearchCV importable)
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from ..errors import TrainingError, gettext_noop, phrase
from ..spec import TrainingSpec
from .common import _names, _py
from .constants import (
    CHECK_SAMPLE_ROWS,
    FEW_ROWS,
    FEW_ROWS_PER_CLASS,
    IMBALANCE_RATIO,
    INNER_CV_FOLDS,
    MAX_CATEGORIES,
    MIN_HOLDOUT_ROWS,
    MIN_TRAIN_ROWS,
)

# --- reading and checks -------------------------------------------------------------------


def _read(parquet_path: str, spec: TrainingSpec) -> pd.DataFrame:
    wanted = list(dict.fromkeys([*spec.features, spec.target, *(c for c in (spec.time_column, spec.group_column) if c)]))
    present = set(pq.ParquetFile(parquet_path).schema_arrow.names)
    missing = [c for c in wanted if c not in present]
    if missing:
        code = TrainingError.TARGET_MISSING if spec.target in missing else TrainingError.INVALID_SPEC
        if len(missing) > 1:
            message = phrase(
                gettext_noop("The data has no column %(name)s (and %(more)s more)."), name=repr(missing[0]), more=len(missing) - 1
            )
        else:
            message = phrase(gettext_noop("The data has no column %(name)s."), name=repr(missing[0]))
        reason = gettext_noop("No column named %(name)s in the data.")
        raise TrainingError(
            code, message, {"target" if c == spec.target else "features": [phrase(reason, name=repr(c))] for c in missing}
        )
    return pq.read_table(parquet_path, columns=wanted).to_pandas(date_as_object=False)


def _target(frame: pd.DataFrame, spec: TrainingSpec) -> np.ndarray:
    column = frame[spec.target]
    if spec.task == "regression":
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if column.isna().any():
        return column.astype(object).to_numpy()
    return column.to_numpy()


def _usable_features(spec: TrainingSpec, frame: pd.DataFrame, notes: list[dict[str, str]]) -> list[str]:
    """The spec's features less the empty ones; NO_FEATURES when nothing informative is left."""
    empty = [f for f in spec.features if frame[f].isna().all()]
    features = [f for f in spec.features if f not in empty]
    if empty:
        message = phrase(gettext_noop("Left out columns with no values: %(columns)s."), columns=", ".join(empty))
        notes.append({"code": "empty_feature", "message": message})
    if spec.skipped:
        notes.append(
            {
                "code": "skipped_columns",
                "message": phrase(
                    gettext_noop("Columns of types that cannot be features were left out: %(columns)s."),
                    columns=", ".join(spec.skipped),
                ),
            }
        )
    informative = [f for f in features if frame[f].nunique(dropna=False) > 1]
    if not informative:
        if spec.features:
            message = gettext_noop("Nothing to learn from: every feature column is empty or holds one value.")
        else:
            message = gettext_noop("Nothing to learn from: there are no feature columns.")
        raise TrainingError(
            TrainingError.NO_FEATURES, message, {"features": [gettext_noop("Give at least one column with varying values.")]}
        )
    return features


def _check_target(spec: TrainingSpec, y: np.ndarray) -> pd.Series | None:
    """Refuse an empty or constant target; the class counts (largest first) for classification."""
    values = pd.Series(y)
    nulls = int(values.isna().sum())
    if nulls:
        raise TrainingError(
            TrainingError.TARGET_HAS_NULLS,
            phrase(
                gettext_noop(
                    "The target %(name)s is empty in %(nulls)s of %(rows)s rows; filter or fill those rows before training."
                ),
                name=repr(spec.target),
                nulls=nulls,
                rows=len(values),
            ),
            {"target": [phrase(gettext_noop("%(nulls)s rows have no value."), nulls=nulls)]},
        )
    if values.nunique() < 2:
        only = values.iloc[0] if len(values) else None
        raise TrainingError(
            TrainingError.TARGET_CONSTANT,
            phrase(
                gettext_noop("The target %(name)s has a single value (%(value)s); there is nothing to learn."),
                name=repr(spec.target),
                value=repr(_py(only)),
            ),
            {"target": [gettext_noop("All rows have the same value.")]},
        )
    if spec.task != "classification":
        return None
    return values.value_counts()


class _Split:
    def __init__(self, train: np.ndarray, test: np.ndarray, groups: np.ndarray | None, method: str):
        self.train, self.test, self.groups, self.method = train, test, groups, method


def _split(spec: TrainingSpec, frame: pd.DataFrame, y: np.ndarray, classes: pd.Series | None) -> _Split:
    """Holdout row positions (sorted) and training positions (in time order for a time split)."""
    n = len(frame)
    n_test = math.ceil(n * spec.holdout)
    folds_needed = spec.cv_folds or (INNER_CV_FOLDS if spec.has_search or len(spec.algorithms) > 1 else 0)
    min_train = max(MIN_TRAIN_ROWS, 2 * folds_needed)
    if n_test < MIN_HOLDOUT_ROWS or n - n_test < min_train:
        need = math.ceil(max(MIN_HOLDOUT_ROWS / spec.holdout, min_train / (1 - spec.holdout)))
        if folds_needed:
            message = gettext_noop(
                "%(rows)s rows are too few: a %(share)s holdout keeps %(test)s and leaves %(train)s to train "
                "with %(folds)s-fold cross-validation; give at least %(need)s rows."
            )
        else:
            message = gettext_noop(
                "%(rows)s rows are too few: a %(share)s holdout keeps %(test)s and leaves %(train)s to train; "
                "give at least %(need)s rows."
            )
        raise TrainingError(
            TrainingError.TOO_FEW_ROWS,
            phrase(message, rows=n, share=f"{spec.holdout:.0%}", test=n_test, train=n - n_test, folds=folds_needed, need=need),
            {"split.holdout": [phrase(gettext_noop("Needs at least %(need)s rows."), need=need)]},
        )
    stratify = spec.split_method == "stratified"
    if classes is not None:
        if stratify and int(classes.min()) < 2:
            lonely = [c for c, count in classes.items() if count < 2]
            raise TrainingError(
                TrainingError.CLASS_TOO_SMALL,
                phrase(
                    gettext_noop(
                        "Class %(classes)s has a single row; a stratified split needs at least 2 per class "
                        "(add rows, merge the class, or use a random split)."
                    ),
                    classes=_names(lonely),
                ),
                {"target": [phrase(gettext_noop("Too few rows for class %(classes)s."), classes=_names(lonely))]},
            )
        if spec.cv_folds and spec.split_method != "time" and int(classes.min()) < spec.cv_folds:
            small = [c for c, count in classes.items() if count < spec.cv_folds]
            raise TrainingError(
                TrainingError.CLASS_TOO_SMALL,
                phrase(
                    gettext_noop("Class %(classes)s has fewer rows than the %(folds)s CV folds; lower cv_folds or add rows."),
                    classes=_names(small),
                    folds=spec.cv_folds,
                ),
                {
                    "cv_folds": [
                        phrase(
                            gettext_noop("Class %(classes)s has only %(rows)s rows."),
                            classes=_names(small),
                            rows=int(classes[small[0]]),
                        )
                    ]
                },
            )
        if stratify and n_test < len(classes):
            raise TrainingError(
                TrainingError.TOO_FEW_ROWS,
                phrase(
                    gettext_noop(
                        "The holdout keeps %(test)s rows, fewer than the %(classes)s classes; raise the holdout or add rows."
                    ),
                    test=n_test,
                    classes=len(classes),
                ),
                {"split.holdout": [phrase(gettext_noop("Needs at least %(classes)s rows held out."), classes=len(classes))]},
            )
    positions = np.arange(n)
    groups = None
    if spec.group_column:
        groups = frame[spec.group_column].astype(object).where(frame[spec.group_column].notna(), "").astype(str).to_numpy()
    if spec.split_method == "time":
        when = frame[spec.time_column]
        nulls = int(when.isna().sum())
        if nulls:
            raise TrainingError(
                TrainingError.TIME_HAS_NULLS,
                phrase(
                    gettext_noop("The time column %(name)s is empty in %(nulls)s rows; a time split needs every row dated."),
                    name=repr(spec.time_column),
                    nulls=nulls,
                ),
                {"time_column": [phrase(gettext_noop("%(nulls)s rows have no time."), nulls=nulls)]},
            )
        order = np.argsort(when.to_numpy(), kind="stable")
        return _Split(order[: n - n_test], np.sort(order[n - n_test :]), groups, "time")
    if groups is not None:
        n_groups = len(set(groups))
        splits = max(2, round(1 / spec.holdout))
        if n_groups < max(splits if stratify else 2, folds_needed or 2):
            raise TrainingError(
                TrainingError.TOO_FEW_ROWS,
                phrase(
                    gettext_noop("The group column %(name)s has %(groups)s groups; splitting by group needs at least %(need)s."),
                    name=repr(spec.group_column),
                    groups=n_groups,
                    need=max(splits if stratify else 2, folds_needed or 2),
                ),
                {"group_column": [phrase(gettext_noop("Only %(groups)s groups."), groups=n_groups)]},
            )
        if stratify:
            splitter = StratifiedGroupKFold(n_splits=splits, shuffle=True, random_state=spec.seed)
            train, test = next(splitter.split(positions, y, groups))
        else:
            splitter = GroupShuffleSplit(n_splits=1, test_size=spec.holdout, random_state=spec.seed)
            train, test = next(splitter.split(positions, y, groups))
        return _Split(np.sort(train), np.sort(test), groups, "group_stratified" if stratify else "group")
    train, test = train_test_split(
        positions, test_size=n_test, random_state=spec.seed, shuffle=True, stratify=y if stratify else None
    )
    return _Split(np.sort(train), np.sort(test), None, spec.split_method)


def _cv(spec: TrainingSpec, folds: int):
    if spec.split_method == "time":
        return TimeSeriesSplit(n_splits=folds)
    if spec.group_column:
        if spec.task == "classification":
            return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
        return GroupKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    if spec.task == "classification":
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=spec.seed)
    return KFold(n_splits=folds, shuffle=True, random_state=spec.seed)


def _data_warnings(spec: TrainingSpec, frame: pd.DataFrame, features: list[str], y: np.ndarray) -> list[dict[str, str]]:
    """Problems worth a look that do not stop training: few rows, imbalance, leakage, id-like columns."""
    notes: list[dict[str, str]] = []
    n = len(frame)
    if n < FEW_ROWS:
        notes.append(
            {"code": "few_rows", "message": phrase(gettext_noop("Only %(rows)s rows: the metrics will be noisy."), rows=n)}
        )
    target = pd.Series(y)
    if spec.task == "classification":
        counts = target.value_counts()
        largest = int(counts.iloc[0])
        small = [c for c, count in counts.items() if count < IMBALANCE_RATIO * largest]
        if small:
            notes.append(
                {
                    "code": "class_imbalance",
                    "message": phrase(
                        gettext_noop(
                            "Class %(classes)s has under %(share)s of the rows of the largest class (%(largest)s, "
                            "%(rows)s rows); prefer f1_macro or balanced_accuracy, or class_weight='balanced'."
                        ),
                        classes=_names(small),
                        share=f"{IMBALANCE_RATIO:.0%}",
                        largest=repr(_py(counts.index[0])),
                        rows=largest,
                    ),
                }
            )
        few = [c for c, count in counts.items() if count < FEW_ROWS_PER_CLASS]
        if few:
            message = phrase(
                gettext_noop("Class %(classes)s has fewer than %(rows)s rows."), classes=_names(few), rows=FEW_ROWS_PER_CLASS
            )
            notes.append({"code": "few_rows", "message": message})
        if spec.target_kind in ("integer", "number") and counts.size > 50 and counts.size > 0.5 * n:
            notes.append(
                {
                    "code": "continuous_target",
                    "message": phrase(
                        gettext_noop(
                            "The target has %(distinct)s distinct numbers; regression may fit it better than classification."
                        ),
                        distinct=counts.size,
                    ),
                }
            )
    sample = np.random.default_rng(spec.seed).choice(n, size=CHECK_SAMPLE_ROWS, replace=False) if n > CHECK_SAMPLE_ROWS else None
    rows = frame.iloc[sample] if sample is not None else frame
    t = target.iloc[sample].reset_index(drop=True) if sample is not None else target
    for name in features:
        reason = _leak_reason(spec, rows[name].reset_index(drop=True), t)
        if reason:
            notes.append(
                {
                    "code": "leakage",
                    "message": phrase(
                        gettext_noop("Column %(name)s %(reason)s; it may leak the answer (is it known at prediction time?)."),
                        name=repr(name),
                        reason=reason,
                    ),
                }
            )
        elif spec.feature_kinds[name] == "string":
            distinct = rows[name].nunique()
            if distinct > MAX_CATEGORIES and distinct > 0.9 * rows[name].notna().sum():
                notes.append(
                    {
                        "code": "id_like",
                        "message": phrase(
                            gettext_noop(
                                "Column %(name)s differs on almost every row (an id?); one-hot keeps only its %(most)s most "
                                "frequent values. Leave it out, or list it in text_features."
                            ),
                            name=repr(name),
                            most=MAX_CATEGORIES,
                        ),
                    }
                )
    return notes


def _leak_reason(spec: TrainingSpec, feature: pd.Series, target: pd.Series) -> str | None:
    """Why this column may leak the target (a marked clause: "equals the target"), or None."""
    both = feature.notna().to_numpy()
    if both.sum() < 10:
        return None
    f, t = feature[both], target[both]
    if (f.astype(str).to_numpy() == t.astype(str).to_numpy()).mean() >= 0.99:
        return gettext_noop("equals the target")
    kind = spec.feature_kinds[feature.name] if feature.name in spec.feature_kinds else ""
    if spec.task == "regression" and kind in ("integer", "number", "boolean"):
        a = pd.to_numeric(f, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        b = t.to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 10 and np.std(a[ok]) > 0 and np.std(b[ok]) > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = float(np.corrcoef(a[ok], b[ok])[0, 1])
            if abs(corr) >= 0.999:
                return phrase(gettext_noop("has a correlation of %(corr)s with the target"), corr=f"{corr:.4f}")
    keys = f.astype(str).to_numpy()
    distinct = len(set(keys))
    # Repeated values (≤ half the rows distinct) that each always go with one target value: the
    # target is a function of this column. Unique ids map trivially and are left out by the bound.
    if 2 <= distinct <= len(keys) / 2:
        per_value = pd.DataFrame({"f": keys, "t": t.astype(str).to_numpy()}).groupby("f")["t"].nunique()
        if int(per_value.max()) == 1 and pd.Series(t).nunique() > 1:
            return phrase(
                gettext_noop("determines the target (%(distinct)s values, each always with the same target)"), distinct=distinct
            )
    return None
