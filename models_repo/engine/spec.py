"""Parse and validate a training spec against a dataset version's columns.

A spec is the plain dict a person sends to start a run (the API stores it as given, so a
re-run parses the same dict again):

    {"task": "classification", "target": "质量", "features": ["温度", "line", "备注"],
     "text_features": ["备注"], "time_column": "ts", "group_column": "machine",
     "split": {"method": "stratified", "holdout": 0.2}, "cv_folds": 5,
     "algorithms": [{"name": "random_forest", "params": {"n_estimators": 200},
                     "search": {"max_depth": [null, 10]}}],
     "search": {"method": "grid", "budget": 20}, "seed": 42, "scoring": "f1_macro",
     "keras": {...}}

`parse_spec` returns a `TrainingSpec` or raises `TrainingError` with every problem it found,
keyed by dotted paths ("algorithms.0.params.n_estimators"). scikit-learn estimators are
imported lazily (only to check parameter names and values), so the web process pays for the
import once, on the first spec it validates.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import TrainingError, gettext_noop, ngettext, phrase

TASKS = ("classification", "regression", "forecasting", "sequence_classification", "image_classification")
TABULAR_TASKS = ("classification", "regression")

# name → {task: "module:Class"}; a name missing a task has no estimator for it.
SKLEARN_ALGORITHMS: dict[str, dict[str, str]] = {
    "logistic_regression": {"classification": "sklearn.linear_model:LogisticRegression"},
    "linear_regression": {"regression": "sklearn.linear_model:LinearRegression"},
    "ridge": {"classification": "sklearn.linear_model:RidgeClassifier", "regression": "sklearn.linear_model:Ridge"},
    "svm": {"classification": "sklearn.svm:SVC", "regression": "sklearn.svm:SVR"},
    "random_forest": {
        "classification": "sklearn.ensemble:RandomForestClassifier",
        "regression": "sklearn.ensemble:RandomForestRegressor",
    },
    "gradient_boosting": {
        "classification": "sklearn.ensemble:GradientBoostingClassifier",
        "regression": "sklearn.ensemble:GradientBoostingRegressor",
    },
    "hist_gradient_boosting": {
        "classification": "sklearn.ensemble:HistGradientBoostingClassifier",
        "regression": "sklearn.ensemble:HistGradientBoostingRegressor",
    },
    "gaussian_nb": {"classification": "sklearn.naive_bayes:GaussianNB"},
    "knn": {"classification": "sklearn.neighbors:KNeighborsClassifier", "regression": "sklearn.neighbors:KNeighborsRegressor"},
    "mlp": {"classification": "sklearn.neural_network:MLPClassifier", "regression": "sklearn.neural_network:MLPRegressor"},
}

# Defaults that differ from scikit-learn's, by algorithm; the spec's params override them.
# svm: probabilities for roc_auc, log_loss and the serving API; the iteration caps keep
# linear models and MLPs from warning on standardised data.
SKLEARN_DEFAULTS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"max_iter": 1000},
    "svm": {"probability": True},
    "mlp": {"hidden_layer_sizes": (64,), "max_iter": 300},
}

# Estimators that need a dense matrix: the preprocessing densifies for them and bounds the
# TF-IDF width (tabular.py reads this).
DENSE_ONLY = frozenset({"hist_gradient_boosting", "gaussian_nb"})

# Keras algorithms are trained by engine/deep; here they are only named, with the tasks they serve.
KERAS_ALGORITHMS: dict[str, tuple[str, ...]] = {
    "keras_mlp": ("classification", "regression"),
    "keras_lstm": ("forecasting", "sequence_classification"),
    "keras_gru": ("forecasting", "sequence_classification"),
    "keras_cnn1d": ("forecasting", "sequence_classification"),
    "keras_cnn2d": ("image_classification",),
}

SPLIT_METHODS = ("random", "stratified", "time")
SEARCH_METHODS = ("grid", "random", "halving")
HOLDOUT_RANGE = (0.05, 0.5)
CV_RANGE = (2, 10)
DEFAULT_BUDGET = 20
MAX_BUDGET = 500
# Halving spends little on each of many candidates, so its grid may be larger than the budget.
MAX_HALVING_CANDIDATES = 2000

SCORINGS: dict[str, tuple[str, ...]] = {
    "classification": (
        "f1_macro",
        "f1_weighted",
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "roc_auc",
        "roc_auc_ovr",
        "neg_log_loss",
    ),
    "regression": (
        "neg_root_mean_squared_error",
        "neg_mean_absolute_error",
        "neg_mean_squared_error",
        "neg_mean_absolute_percentage_error",
        "r2",
    ),
}
DEFAULT_SCORING = {"classification": "f1_macro", "regression": "neg_root_mean_squared_error"}

KNOWN_KEYS = (
    "task",
    "target",
    "features",
    "text_features",
    "time_column",
    "group_column",
    "split",
    "cv_folds",
    "algorithms",
    "search",
    "seed",
    "scoring",
    "keras",
)

_INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "INT",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
_NUMBER_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC", "HALF_FLOAT", "HALFFLOAT")


def column_kind(type_name: str) -> str:
    """ "integer", "number", "boolean", "string", "datetime" or "other" for a column type.

    Accepts duckdb type names ("BIGINT", "TIMESTAMP WITH TIME ZONE", "DECIMAL(10,2)") and the
    Arrow names the ingest report records ("int64", "large_string", "timestamp[us, tz=UTC]").
    """
    upper = str(type_name).strip().upper()
    if "[]" in upper or upper.startswith(("STRUCT", "MAP", "LIST", "UNION", "ARRAY", "LARGE_LIST", "FIXED_SIZE_LIST")):
        return "other"
    if upper in ("BOOLEAN", "BOOL"):
        return "boolean"
    if upper.startswith(("DATE", "TIMESTAMP")) or upper == "DATETIME":
        return "datetime"
    if upper in _INTEGER_TYPES or re.fullmatch(r"U?INT(8|16|32|64)", upper):
        return "integer"
    if upper.startswith(_NUMBER_TYPES):
        return "number"
    if upper in ("VARCHAR", "TEXT", "STRING", "LARGE_STRING", "UTF8", "LARGE_UTF8", "STRING_VIEW", "CHAR", "BPCHAR"):
        return "string"
    if upper.startswith(("VARCHAR", "CHAR", "ENUM")):
        return "string"
    return "other"


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm to try: fixed `params` and a `search` space {param: [values]} (may be empty)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    search: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSpec:
    """A validated spec (frozen; do not mutate its dicts either).

    feature_kinds maps each feature to "integer", "number", "boolean", "string", "text" or
    "datetime" ("text" = a VARCHAR listed in text_features, TF-IDF encoded; "string" = one-hot).
    skipped lists the columns left out of the default features because their type cannot be
    a feature (lists, structs, blobs).
    """

    task: str
    target: str
    target_kind: str
    features: tuple[str, ...]
    feature_kinds: dict[str, str]
    text_features: tuple[str, ...]
    flavor: str
    algorithms: tuple[AlgorithmSpec, ...]
    split_method: str
    holdout: float = 0.2
    cv_folds: int = 0
    search_method: str = "grid"
    search_budget: int = DEFAULT_BUDGET
    seed: int = 42
    scoring: str = ""
    time_column: str | None = None
    group_column: str | None = None
    keras: dict[str, Any] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()

    @property
    def has_search(self) -> bool:
        return any(a.search for a in self.algorithms)


def estimator_class(name: str, task: str):
    """The scikit-learn class for algorithm `name` on `task` (imported on demand)."""
    module, _, cls = SKLEARN_ALGORITHMS[name][task].partition(":")
    return getattr(importlib.import_module(module), cls)


def estimator_params(name: str, task: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Constructor arguments: our defaults, the spec's params, and `random_state=seed` where it applies."""
    keys = estimator_class(name, task)().get_params(deep=False)
    merged = dict(SKLEARN_DEFAULTS.get(name, {}))
    merged = {k: v for k, v in merged.items() if k in keys}
    if "random_state" in keys:
        merged["random_state"] = seed
    merged.update(params)
    return merged


def _param_value(value: Any) -> Any:
    """JSON has no tuples: a list given for a parameter (hidden_layer_sizes) becomes one."""
    if isinstance(value, list):
        return tuple(_param_value(v) for v in value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# A column given twice a role: the reasons, one marked sentence each (a word spliced into a
# sentence would not translate).
TARGET_IS_ALSO = {
    "time_column": gettext_noop("The target cannot also be the time column."),
    "group_column": gettext_noop("The target cannot also be the group column."),
}
FEATURE_IS_ALSO = {
    "target": gettext_noop("Column %(name)s is the target; it cannot also be a feature."),
    "time_column": gettext_noop("Column %(name)s is the time column; it cannot also be a feature."),
    "group_column": gettext_noop("Column %(name)s is the group column; it cannot also be a feature."),
}


def _no_column(name: Any):
    return phrase(gettext_noop("No column named %(name)s in this dataset version."), name=repr(name))


class _Errors:
    """Collects every problem so one answer names them all; the first specific code wins."""

    def __init__(self):
        self.fields: dict[str, list[str]] = {}
        self.code: str | None = None
        self.code_key: str | None = None

    def add(self, key: str, reason: str, code: str | None = None) -> None:
        """`reason` is marked for translation (gettext_noop or phrase), or scikit-learn's own words."""
        self.fields.setdefault(key, []).append(reason)
        if code and self.code is None:
            self.code, self.code_key = code, key

    def raise_if_any(self) -> None:
        if not self.fields:
            return
        code = self.code or TrainingError.INVALID_SPEC
        first_key = self.code_key or next(iter(self.fields))
        first = self.fields[first_key]
        more = len(self.fields) - 1
        message = phrase(gettext_noop("The training spec is not valid: %(field)s: %(reason)s"), field=first_key, reason=first[0])
        if more:
            others = ngettext("(and %(n)s more problem)", "(and %(n)s more problems)", more)
            message = phrase(gettext_noop("%(message)s %(others)s"), message=message, others=others)
        raise TrainingError(code, message, self.fields)


def parse_spec(raw: dict, columns: dict[str, str]) -> TrainingSpec:
    """Validate `raw` against `columns` ({name: type}) and return the TrainingSpec.

    Raises TrainingError (INVALID_SPEC, TARGET_MISSING or TARGET_NOT_NUMERIC) naming every
    bad field. Keras options are only checked to be an object here: deep/options.py validates them.
    """
    if not isinstance(raw, dict):
        raise TrainingError(
            TrainingError.INVALID_SPEC,
            gettext_noop("The training spec must be an object."),
            {"spec": [gettext_noop("Give an object.")]},
        )
    err = _Errors()
    unknown = sorted(str(k) for k in raw if k not in KNOWN_KEYS)
    for key in unknown:
        err.add(
            key,
            phrase(gettext_noop("Unknown key %(key)s; the spec knows: %(known)s."), key=repr(key), known=", ".join(KNOWN_KEYS)),
        )

    task = raw.get("task")
    if task not in TASKS:
        err.add("task", phrase(gettext_noop("Choose one of: %(choices)s."), choices=", ".join(TASKS)))
        task = None

    kinds = {name: column_kind(t) for name, t in columns.items()}

    target = raw.get("target")
    target_kind = ""
    if task == "image_classification" and target is None:
        target = ""  # image datasets carry their labels in the manifest; deep/images.py reads them
    elif not isinstance(target, str) or not target:
        err.add("target", gettext_noop("Give the name of the column to predict."))
        target = ""
    elif target not in columns:
        err.add("target", _no_column(target), TrainingError.TARGET_MISSING)
    else:
        target_kind = kinds[target]
        if task in ("regression", "forecasting") and target_kind not in ("integer", "number"):
            err.add(
                "target",
                phrase(
                    gettext_noop(
                        "Column %(name)s is %(type)s, not a number: %(task)s predicts numbers (use classification for labels)."
                    ),
                    name=repr(target),
                    type=columns[target],
                    task=task,
                ),
                TrainingError.TARGET_NOT_NUMERIC,
            )
        elif task in ("classification", "sequence_classification") and target_kind not in (
            "integer",
            "number",
            "boolean",
            "string",
        ):
            err.add(
                "target",
                phrase(
                    gettext_noop("Column %(name)s is %(type)s; a class label must be text, a number or a boolean."),
                    name=repr(target),
                    type=columns[target],
                ),
            )

    def optional_column(key: str, allowed_kinds: tuple[str, ...] | None = None) -> str | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            err.add(key, gettext_noop("Give a column name."))
            return None
        if value not in columns:
            err.add(key, _no_column(value))
            return None
        if value == target:
            err.add(key, TARGET_IS_ALSO[key])
            return None
        if allowed_kinds and kinds[value] not in allowed_kinds:
            err.add(
                key,
                phrase(
                    gettext_noop("Column %(name)s is %(type)s; it must be a date, a timestamp or a number."),
                    name=repr(value),
                    type=columns[value],
                ),
            )
            return None
        return value

    time_column = optional_column("time_column", ("datetime", "integer", "number"))
    group_column = optional_column("group_column")
    if group_column is not None and group_column == time_column:
        err.add("group_column", gettext_noop("The group column cannot also be the time column."))

    text_features = _names(raw, "text_features", columns, err)
    for i, name in enumerate(text_features):
        if name in columns and kinds[name] != "string":
            reason = gettext_noop("Column %(name)s is %(type)s; only text columns can be TF-IDF features.")
            err.add(f"text_features.{i}", phrase(reason, name=repr(name), type=columns[name]))

    reserved = {target, time_column, group_column}
    skipped: list[str] = []
    if raw.get("features") is None:
        features = []
        for name in columns:
            if name in reserved:
                continue
            if kinds[name] == "other":
                skipped.append(name)
            else:
                features.append(name)
    else:
        features = _names(raw, "features", columns, err)
        for i, name in enumerate(features):
            if name not in columns:
                continue
            if name in reserved:
                role = "target" if name == target else "time_column" if name == time_column else "group_column"
                err.add(f"features.{i}", phrase(FEATURE_IS_ALSO[role], name=repr(name)))
            elif kinds[name] == "other":
                reason = gettext_noop("Column %(name)s is %(type)s; that type cannot be a feature.")
                err.add(f"features.{i}", phrase(reason, name=repr(name), type=columns[name]))
        for i, name in enumerate(text_features):
            if name not in features:
                err.add(f"text_features.{i}", phrase(gettext_noop("Column %(name)s is not among the features."), name=repr(name)))
    features = [f for f in features if f in columns and f not in reserved and kinds[f] != "other"]
    if task in TABULAR_TASKS and not features and not any(k.split(".")[0] == "features" for k in err.fields):
        err.add("features", gettext_noop("No column is left to learn from."), TrainingError.NO_FEATURES)
    text_set = set(text_features)
    feature_kinds = {name: ("text" if name in text_set else kinds[name]) for name in features}

    algorithms, flavor, positions = _algorithms(raw.get("algorithms"), task, err)

    split_method, holdout = _split(raw.get("split"), task, time_column, err)
    if task in ("forecasting", "sequence_classification") and time_column is None and "time_column" not in err.fields:
        err.add("time_column", phrase(gettext_noop("%(task)s needs a time_column to order the rows into windows."), task=task))

    cv_folds = raw.get("cv_folds", 0)
    if cv_folds is None:
        cv_folds = 0
    if not _is_int(cv_folds) or not (cv_folds == 0 or CV_RANGE[0] <= cv_folds <= CV_RANGE[1]):
        reason = gettext_noop("Give 0 (holdout only) or a whole number from %(low)s to %(high)s.")
        err.add("cv_folds", phrase(reason, low=CV_RANGE[0], high=CV_RANGE[1]))
        cv_folds = 0

    search_method, budget = _search(raw.get("search"), algorithms, positions, err)

    seed = raw.get("seed", 42)
    if seed is None:
        seed = 42
    if not _is_int(seed) or not 0 <= seed < 2**32:
        err.add("seed", phrase(gettext_noop("Give a whole number from %(low)s to %(high)s."), low=0, high=2**32 - 1))
        seed = 42

    scoring = raw.get("scoring")
    if task in SCORINGS:
        if scoring is None:
            scoring = DEFAULT_SCORING[task]
        elif scoring not in SCORINGS[task]:
            reason = gettext_noop("Unknown metric %(metric)s for %(task)s; choose one of: %(choices)s.")
            err.add("scoring", phrase(reason, metric=repr(scoring), task=task, choices=", ".join(SCORINGS[task])))
    elif scoring is not None and not isinstance(scoring, str):
        err.add("scoring", gettext_noop("Give a metric name."))
    scoring = scoring if isinstance(scoring, str) else ""

    keras = raw.get("keras", {})
    if keras is None:
        keras = {}
    if not isinstance(keras, dict):
        err.add("keras", gettext_noop("Keras options must be an object."))
        keras = {}

    err.raise_if_any()
    return TrainingSpec(
        task=task,
        target=target,
        target_kind=target_kind,
        features=tuple(features),
        feature_kinds=feature_kinds,
        text_features=tuple(text_features),
        flavor=flavor,
        algorithms=tuple(algorithms),
        split_method=split_method,
        holdout=holdout,
        cv_folds=cv_folds,
        search_method=search_method,
        search_budget=budget,
        seed=seed,
        scoring=scoring,
        time_column=time_column,
        group_column=group_column,
        keras=dict(keras),
        skipped=tuple(skipped),
    )


def _names(raw: dict, key: str, columns: dict[str, str], err: _Errors) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        err.add(key, gettext_noop("Give a list of column names."))
        return []
    seen: set[str] = set()
    names: list[str] = []
    for i, name in enumerate(value):
        if name not in columns:
            err.add(f"{key}.{i}", _no_column(name))
        elif name in seen:
            err.add(f"{key}.{i}", phrase(gettext_noop("Column %(name)s is listed twice."), name=repr(name)))
        else:
            seen.add(name)
        names.append(name)
    return [n for i, n in enumerate(names) if n in columns and n not in names[:i]]


def _algorithms(value: Any, task: str | None, err: _Errors) -> tuple[list[AlgorithmSpec], str, list[int]]:
    """The parsed algorithms, their flavor, and each one's position in the spec's list (for field keys)."""
    known = sorted(SKLEARN_ALGORITHMS) + sorted(KERAS_ALGORITHMS)
    if not isinstance(value, list) or not value:
        reason = gettext_noop('Give a list of one or more algorithms, e.g. [{"name": "random_forest"}]; known: %(known)s.')
        err.add("algorithms", phrase(reason, known=", ".join(known)))
        return [], "sklearn", []
    parsed: list[AlgorithmSpec] = []
    positions: list[int] = []
    flavors: set[str] = set()
    seen: set[str] = set()
    for i, item in enumerate(value):
        key = f"algorithms.{i}"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            err.add(key, gettext_noop('Give an object such as {"name": "random_forest", "params": {}, "search": {}}.'))
            continue
        for extra in sorted(str(k) for k in item if k not in ("name", "params", "search")):
            reason = gettext_noop("Unknown key %(key)s; an algorithm has name, params and search.")
            err.add(f"{key}.{extra}", phrase(reason, key=repr(extra)))
        name = item.get("name")
        if name not in SKLEARN_ALGORITHMS and name not in KERAS_ALGORITHMS:
            reason = gettext_noop("Unknown algorithm %(name)s; known: %(known)s.")
            err.add(f"{key}.name", phrase(reason, name=repr(name), known=", ".join(known)))
            continue
        if name in seen:
            reason = gettext_noop("Algorithm %(name)s is listed twice; give one entry with a search space instead.")
            err.add(f"{key}.name", phrase(reason, name=repr(name)))
            continue
        seen.add(name)
        params = item.get("params") or {}
        search = item.get("search") or {}
        if not isinstance(params, dict):
            err.add(f"{key}.params", gettext_noop("Give an object of parameter values."))
            params = {}
        if not isinstance(search, dict):
            err.add(f"{key}.search", gettext_noop("Give an object {parameter: [values to try]}."))
            search = {}
        if name in KERAS_ALGORITHMS:
            flavors.add("keras")
            if task is not None and task not in KERAS_ALGORITHMS[name]:
                reason = gettext_noop("%(name)s does not do %(task)s; it does: %(tasks)s.")
                err.add(f"{key}.name", phrase(reason, name=name, task=task, tasks=", ".join(KERAS_ALGORITHMS[name])))
            parsed.append(AlgorithmSpec(name, dict(params), {k: list(v) for k, v in search.items() if isinstance(v, list)}))
            positions.append(i)
            continue
        flavors.add("sklearn")
        if task is None:
            continue
        if task not in TABULAR_TASKS:
            keras_names = [n for n, tasks in KERAS_ALGORITHMS.items() if task in tasks]
            reason = gettext_noop("%(task)s is trained with Keras; choose one of: %(choices)s.")
            err.add(f"{key}.name", phrase(reason, task=task, choices=", ".join(keras_names)))
            continue
        if task not in SKLEARN_ALGORITHMS[name]:
            fits = [n for n, tasks in SKLEARN_ALGORITHMS.items() if task in tasks]
            reason = gettext_noop("%(name)s does not do %(task)s; for %(task)s choose one of: %(choices)s.")
            err.add(f"{key}.name", phrase(reason, name=name, task=task, choices=", ".join(fits)))
            continue
        parsed.append(_sklearn_algorithm(name, task, params, search, key, err))
        positions.append(i)
    if len(flavors) > 1:
        err.add("algorithms", gettext_noop("Do not mix scikit-learn and Keras algorithms in one run; start one run for each."))
    return parsed, (flavors.pop() if len(flavors) == 1 else "sklearn"), positions


def _sklearn_algorithm(name: str, task: str, params: dict, search: dict, key: str, err: _Errors) -> AlgorithmSpec:
    cls = estimator_class(name, task)
    known = cls().get_params(deep=False)
    fixed = {k: _param_value(v) for k, v in params.items()}
    space: dict[str, list[Any]] = {}
    for p, values in search.items():
        if not isinstance(values, list) or not values:
            err.add(f"{key}.search.{p}", gettext_noop("Give a non-empty list of values to try."))
            continue
        space[p] = [_param_value(v) for v in values]
    for where, names in (("params", fixed), ("search", space)):
        for p in names:
            if p not in known:
                reason = gettext_noop("%(estimator)s has no parameter %(param)s; it has: %(known)s.")
                err.add(
                    f"{key}.{where}.{p}", phrase(reason, estimator=cls.__name__, param=repr(p), known=", ".join(sorted(known)))
                )
            elif p == "random_state":
                err.add(f"{key}.{where}.{p}", gettext_noop("Set the spec's seed instead; it is used everywhere."))
            elif where == "search" and p in fixed:
                err.add(f"{key}.search.{p}", gettext_noop("This parameter is also fixed in params; give it in one place."))
    base = estimator_params(name, task, {k: v for k, v in fixed.items() if k in known and k != "random_state"}, 0)
    for p, v in fixed.items():
        if p in known and p != "random_state":
            reason = _check_value(cls, base, p, v)
            if reason:
                err.add(f"{key}.params.{p}", reason)
    for p, values in space.items():
        if p in known and p != "random_state" and p not in fixed:
            for j, v in enumerate(values):
                reason = _check_value(cls, base, p, v)
                if reason:
                    err.add(f"{key}.search.{p}.{j}", reason)
    return AlgorithmSpec(name, fixed, space)


def _check_value(cls, base: dict, param: str, value: Any) -> str | None:
    """scikit-learn's own parameter check, on the defaults with this one value; None when fine.

    scikit-learn words its refusal in English only; ours are marked for translation."""
    if isinstance(value, float) and not math.isfinite(value):
        return gettext_noop("Give a finite number.")
    if param == "hidden_layer_sizes":
        sizes = value if isinstance(value, tuple) else (value,)
        if not sizes or not all(_is_int(v) and v > 0 for v in sizes):
            return gettext_noop("Give the layer widths as positive whole numbers, e.g. [64, 32].")
    try:
        estimator = cls(**{**base, param: value})
        validate = getattr(estimator, "_validate_params", None)
        if validate is not None:
            validate()
    except Exception as exc:  # scikit-learn raises InvalidParameterError (a ValueError) or TypeError
        return str(exc)
    return None


def _split(value: Any, task: str | None, time_column: str | None, err: _Errors) -> tuple[str, float]:
    default = "stratified" if task in ("classification", "sequence_classification", "image_classification") else "random"
    if task in ("forecasting",):
        default = "time"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        err.add("split", gettext_noop('Give an object such as {"method": "random", "holdout": 0.2}.'))
        return default, 0.2
    for extra in sorted(str(k) for k in value if k not in ("method", "holdout")):
        err.add(f"split.{extra}", phrase(gettext_noop("Unknown key %(key)s; a split has method and holdout."), key=repr(extra)))
    method = value.get("method") or default
    if method not in SPLIT_METHODS:
        err.add("split.method", phrase(gettext_noop("Choose one of: %(choices)s."), choices=", ".join(SPLIT_METHODS)))
        method = default
    elif method == "stratified" and task in ("regression", "forecasting"):
        reason = gettext_noop("A stratified split needs classes; %(task)s predicts numbers (use random or time).")
        err.add("split.method", phrase(reason, task=task))
    elif method == "time" and time_column is None:
        err.add("split.method", gettext_noop("A time split needs a time_column."))
    holdout = value.get("holdout", 0.2)
    if holdout is None:
        holdout = 0.2
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not HOLDOUT_RANGE[0] <= holdout <= HOLDOUT_RANGE[1]:
        reason = gettext_noop("Give the held-out fraction, from %(low)s to %(high)s.")
        err.add("split.holdout", phrase(reason, low=HOLDOUT_RANGE[0], high=HOLDOUT_RANGE[1]))
        holdout = 0.2
    return method, float(holdout)


def _search(value: Any, algorithms: list[AlgorithmSpec], positions: list[int], err: _Errors) -> tuple[str, int]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        err.add("search", gettext_noop('Give an object such as {"method": "grid", "budget": 20}.'))
        return "grid", DEFAULT_BUDGET
    for extra in sorted(str(k) for k in value if k not in ("method", "budget")):
        err.add(f"search.{extra}", phrase(gettext_noop("Unknown key %(key)s; a search has method and budget."), key=repr(extra)))
    method = value.get("method") or "grid"
    if method not in SEARCH_METHODS:
        err.add("search.method", phrase(gettext_noop("Choose one of: %(choices)s."), choices=", ".join(SEARCH_METHODS)))
        method = "grid"
    budget = value.get("budget", DEFAULT_BUDGET)
    if budget is None:
        budget = DEFAULT_BUDGET
    if not _is_int(budget) or not 1 <= budget <= MAX_BUDGET:
        reason = gettext_noop("Give the number of candidates to try per algorithm, from 1 to %(high)s.")
        err.add("search.budget", phrase(reason, high=MAX_BUDGET))
        budget = DEFAULT_BUDGET
    for i, algorithm in zip(positions, algorithms, strict=True):
        if algorithm.name not in SKLEARN_ALGORITHMS or not algorithm.search:
            continue
        size = math.prod(len(v) for v in algorithm.search.values())
        if method == "grid" and size > budget:
            reason = gettext_noop(
                "The grid has %(size)s candidates, over the budget of %(budget)s: raise search.budget, "
                "shrink the grid, or use the random or halving method."
            )
            err.add(f"algorithms.{i}.search", phrase(reason, size=size, budget=budget))
        elif method == "halving" and size > MAX_HALVING_CANDIDATES:
            reason = gettext_noop("The grid has %(size)s candidates; halving takes at most %(most)s.")
            err.add(f"algorithms.{i}.search", phrase(reason, size=size, most=MAX_HALVING_CANDIDATES))
    return method, budget
