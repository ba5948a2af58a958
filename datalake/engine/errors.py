"""The one exception the ingest engine raises for bad input.

Services turn it into the platform's error shape (`{"error": code, "detail": message,
"fields": details}`), so `code` is stable and machine-readable and `message` is written
for the person who uploaded the file.
"""

from __future__ import annotations

from typing import Any

# The engine's modules import the markers from here (phrases: the words every engine shares).
# A message is a phrases.Phrase: English as a str, translated where a person reads it
# (lepton.i18n.translated in datalake.services and the views).
from phrases import Phrase, gettext_noop, phrase  # noqa: F401


class IngestError(Exception):
    """Bad input: nothing was written at the destination."""

    # Stable codes; datalake/services.py and the tests match on these.
    EMPTY_FILE = "empty_file"
    NO_ROWS = "no_rows"
    RAGGED_ROWS = "ragged_rows"
    UNDECODABLE = "undecodable"
    BINARY_FILE = "binary_file"
    UNKNOWN_ENCODING = "unknown_encoding"
    DUPLICATE_COLUMNS = "duplicate_columns"
    TOO_MANY_COLUMNS = "too_many_columns"
    CELL_TOO_LARGE = "cell_too_large"
    TOO_LARGE = "decompressed_too_large"
    ARCHIVE = "bad_archive"
    SHEET_REQUIRED = "sheet_required"
    SHEET_NOT_FOUND = "sheet_not_found"
    UNSUPPORTED_FORMAT = "unsupported_format"
    PARSE_ERROR = "parse_error"
    # Imports from a production database (datalake/engine/dbimport.py).
    BAD_URL = "bad_url"
    BAD_QUERY = "bad_query"
    NOT_READ_ONLY = "not_read_only"
    CONNECT_FAILED = "connect_failed"
    QUERY_FAILED = "query_failed"
    QUERY_TIMEOUT = "query_timeout"
    TOO_MANY_ROWS = "too_many_rows"
    NO_COLUMNS = "no_columns"
    # Image datasets: a zip of labelled images (datalake/engine/images.py).
    NO_IMAGES = "no_images"
    BAD_IMAGES = "bad_images"
    SINGLE_CLASS = "single_class"
    NO_LABELS = "no_labels"
    BAD_LABELS = "bad_labels"
    TOO_MANY_FILES = "too_many_files"

    def __init__(self, code: str, message: Phrase | str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def joined(items: list, separator: str = "; ") -> Phrase:
    """`items` (Phrases or plain values) joined by `separator`, each put in the reader's language
    where it is read: a template of placeholders only, which the catalogue does not need."""
    params = {f"item{i}": item for i, item in enumerate(items)}
    return Phrase(separator.join(f"%({key})s" for key in params), **params)


def ngettext(singular: str, plural: str, n: int, /, **params) -> Phrase:
    """phrases.ngettext that also takes the other parameters of the text, e.g.
    ngettext("%(count)s row of %(file)s", "%(count)s rows of %(file)s", n, count=f"{n:,}", file=name)."""
    return Phrase(singular, plural, n, **params)
