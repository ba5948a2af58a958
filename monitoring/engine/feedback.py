"""Ground truth against logged predictions: checking what was posted and scoring it.

No Django here: monitoring.services.feedback_record passes the logged outputs and the posted
values. A classifier is scored by the rows it got right; a regressor (or a forecaster) by the
sums of absolute and squared errors, so that MAE and RMSE of any period come from sums
(monitoring.selectors.model_dashboard).

A problem is raised as FeedbackProblem(field, code, params): the service words it (the
messages are translated there) and names the field, `actual` or `actual.<row>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CLASSIFICATION = "classification"
REGRESSION = "regression"
# The model tasks (models_repo.engine.spec.TASKS) scored as classes; every other task is scored as numbers.
CLASS_TASKS = ("classification", "sequence_classification", "image_classification")

# Problem codes (monitoring.services words them).
WRONG_LENGTH = "wrong_length"
WRONG_TYPE = "wrong_type"
NOT_FINITE = "not_finite"


class FeedbackProblem(Exception):
    def __init__(self, field: str, code: str, **params):
        super().__init__(code)
        self.field, self.code, self.params = field, code, params


@dataclass(frozen=True)
class Score:
    rows: int  # rows scored (the rows whose prediction was logged)
    correct: int | None = None
    abs_error_sum: float | None = None
    squared_error_sum: float | None = None


def kind_of_task(task: str) -> str:
    return CLASSIFICATION if task in CLASS_TASKS else REGRESSION


def value_kind(value) -> str:
    """boolean, number, text, list or other: what a JSON value is, as a person would name it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else "other"


def as_rows(actual, rows: int) -> list:
    """The posted `actual` as one value per predicted row: a list (one item per row), or a single value for one row."""
    values = actual if isinstance(actual, list) else [actual]
    if len(values) != rows:
        raise FeedbackProblem("actual", WRONG_LENGTH, given=len(values), rows=rows)
    return values


def score(task: str, predicted: list, actual: list) -> Score:
    """Compare `actual` (one value per predicted row) with the logged `predicted` rows.

    `predicted` may be shorter than `actual` (the log keeps the first outputs only): the rows
    past it are checked for type but not scored. Classes compare equal when their values are
    equal and of the same kind (1 and 1.0 are; a boolean posted for text classes is refused).
    """
    kind = kind_of_task(task)
    known = [value_kind(p) for p in predicted if p is not None]
    labels = known[0] if known else None
    correct, abs_sum, sq_sum, scored = 0, 0.0, 0.0, 0
    for index, value in enumerate(actual):
        field = f"actual.{index}"
        logged = index < len(predicted)
        guess = predicted[index] if logged else None
        if kind == CLASSIFICATION:
            given = value_kind(value)
            if given not in ("boolean", "number", "text") or (labels and given != labels):
                raise FeedbackProblem(field, WRONG_TYPE, expected=labels or "label", given=given)
            if logged:
                scored += 1
                correct += int(value == guess)
            continue
        pairs = _numbers(field, value, guess if logged else (predicted[0] if predicted else None))
        if logged and all(p is not None for _a, p in pairs):
            scored += 1
            for a, p in pairs:
                abs_sum += abs(a - p)
                sq_sum += (a - p) ** 2
    if kind == CLASSIFICATION:
        return Score(rows=scored, correct=correct)
    return Score(rows=scored, abs_error_sum=abs_sum, squared_error_sum=sq_sum)


def _numbers(field: str, value, guess) -> list[tuple[float, float | None]]:
    """(actual, predicted) pairs of one row: a number, or a list of numbers as long as a list prediction."""
    if isinstance(guess, list):
        if not isinstance(value, list):
            raise FeedbackProblem(field, WRONG_TYPE, expected="list", given=value_kind(value))
        if len(value) != len(guess):
            raise FeedbackProblem(field, WRONG_LENGTH, given=len(value), rows=len(guess))
        return [_number(f"{field}.{k}", v, g) for k, (v, g) in enumerate(zip(value, guess, strict=True))]
    return [_number(field, value, guess)]


def _number(field: str, value, guess) -> tuple[float, float | None]:
    if value_kind(value) != "number":
        raise FeedbackProblem(field, WRONG_TYPE, expected="number", given=value_kind(value))
    if not math.isfinite(value):
        raise FeedbackProblem(field, NOT_FINITE)
    return float(value), float(guess) if value_kind(guess) == "number" else None
