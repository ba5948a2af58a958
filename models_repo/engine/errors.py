"""The one exception the trainer raises for a spec or data it refuses.

Services turn it into the platform's error shape (`{"error": code, "detail": message,
"fields": {field: [reason]}}`): `code` is stable, `message` is for the person who asked.
"""

from __future__ import annotations

from phrases import gettext_noop, ngettext, phrase  # noqa: F401  (the engine's modules import the markers from here)


class TrainingError(Exception):
    """Bad spec or data: nothing was trained or written."""

    INVALID_SPEC = "invalid_spec"
    TARGET_MISSING = "target_missing"
    TARGET_CONSTANT = "target_constant"
    TARGET_HAS_NULLS = "target_has_nulls"
    TARGET_NOT_NUMERIC = "target_not_numeric"
    TOO_FEW_ROWS = "too_few_rows"
    CLASS_TOO_SMALL = "class_too_small"
    BAD_WINDOW = "bad_window"
    NO_FEATURES = "no_features"
    CANCELLED = "cancelled"
    # Added with tabular.py: a time split or window over a time column with empty cells; every
    # candidate failed to fit; a prediction frame that lacks the model's input columns.
    TIME_HAS_NULLS = "time_has_nulls"
    FIT_FAILED = "fit_failed"
    BAD_INPUT = "bad_input"

    def __init__(self, code: str, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}

    def __str__(self) -> str:
        return self.message
