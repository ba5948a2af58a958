"""Type inference on text columns, and the streaming conversion that applies it.

A column's type is inferred on a sample (the first rows); each later batch is converted
with that type. A value that does not fit never crashes and is never silently nulled:
`convert` reports the failure, ingest widens the column (int → float, date → timestamp,
anything else → string), keeps checking the rest of the file, and writes the Parquet again
from the start with the widened types (see datalake/engine/ingest.py, `_run`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .errors import Phrase, gettext_noop, phrase

STRING, BOOL, INT, FLOAT, DATE, TIMESTAMP, TIMESTAMP_TZ = (
    "string",
    "bool",
    "int",
    "float",
    "date",
    "timestamp",
    "timestamp_tz",
)

TRUE_WORDS = ["true", "yes", "y", "t", "是", "1"]
FALSE_WORDS = ["false", "no", "n", "f", "否", "0"]
INT_RE = r"^[+-]?\d{1,18}$"
LEADING_ZERO_RE = r"^[+-]?0\d"
FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class DateFormat:
    name: str
    regex: str
    kind: str  # DATE, TIMESTAMP or TIMESTAMP_TZ
    strptime: str | None  # None: Arrow's ISO 8601 cast (fractions, T, zone offsets)


DATE_FORMATS = [
    DateFormat("YYYY-MM-DD", r"^\d{4}-\d{1,2}-\d{1,2}$", DATE, "%Y-%m-%d"),
    DateFormat("YYYY/MM/DD", r"^\d{4}/\d{1,2}/\d{1,2}$", DATE, "%Y/%m/%d"),
    DateFormat("YYYY.MM.DD", r"^\d{4}\.\d{1,2}\.\d{1,2}$", DATE, "%Y.%m.%d"),
    DateFormat("YYYY年M月D日", r"^\d{4}年\d{1,2}月\d{1,2}日$", DATE, "%Y年%m月%d日"),
    DateFormat("ISO", r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$", TIMESTAMP, None),
    DateFormat("YYYY-M-D H:MM:SS", r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2}$", TIMESTAMP, "%Y-%m-%d %H:%M:%S"),
    DateFormat("YYYY-M-D H:MM", r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}$", TIMESTAMP, "%Y-%m-%d %H:%M"),
    DateFormat("YYYY/M/D H:MM:SS", r"^\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}:\d{2}$", TIMESTAMP, "%Y/%m/%d %H:%M:%S"),
    DateFormat("YYYY/M/D H:MM", r"^\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}$", TIMESTAMP, "%Y/%m/%d %H:%M"),
    DateFormat("YYYY年M月D日 H:MM:SS", r"^\d{4}年\d{1,2}月\d{1,2}日 ?\d{1,2}:\d{2}:\d{2}$", TIMESTAMP, None),
    DateFormat("YYYY年M月D日 H:MM", r"^\d{4}年\d{1,2}月\d{1,2}日 ?\d{1,2}:\d{2}$", TIMESTAMP, None),
    DateFormat(
        "ISO with zone",
        r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$",
        TIMESTAMP_TZ,
        None,
    ),
]
FORMATS_BY_NAME = {f.name: f for f in DATE_FORMATS}
# A column where at least this share of values are dates is "meant" to be dates: when the
# rest does not parse, it is kept as text with a warning naming the column.
DATE_LIKE_SHARE = 0.5


@dataclass(frozen=True)
class ColumnType:
    kind: str
    formats: tuple[str, ...] = ()

    def arrow(self) -> pa.DataType:
        return {
            STRING: pa.string(),
            BOOL: pa.bool_(),
            INT: pa.int64(),
            FLOAT: pa.float64(),
            DATE: pa.date32(),
            TIMESTAMP: pa.timestamp("us"),
            TIMESTAMP_TZ: pa.timestamp("us", tz="UTC"),
        }[self.kind]


STRING_TYPE = ColumnType(STRING)


@dataclass
class Inferred:
    type: ColumnType
    warning: Phrase | None = None


@dataclass
class Converted:
    array: pa.Array
    failures: int = 0
    example: str | None = None  # the first value that did not fit


def _clean(arr: pa.Array) -> pa.Array:
    """Trim whitespace; blank → null."""
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _all(mask: pa.Array) -> bool:
    return pc.all(mask, skip_nulls=True).as_py() is not False


def _count(mask: pa.Array) -> int:
    return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)


def infer(arr: pa.Array, column: str) -> Inferred:
    values = _clean(arr.cast(pa.string()))
    present = len(values) - values.null_count
    if present == 0:
        return Inferred(STRING_TYPE)
    # Missing values say nothing about the type (is_in counts a null as "not in the set").
    lower = pc.utf8_lower(pc.drop_null(values))
    is_true = pc.is_in(lower, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(lower, value_set=pa.array(FALSE_WORDS))
    if _all(pc.or_(is_true, is_false)):
        # 1/0 alone is an integer (labels, counts); boolean only beside true/false words.
        digits = pc.is_in(lower, value_set=pa.array(["1", "0"]))
        if not _all(digits):
            return Inferred(ColumnType(BOOL))
    if _all(pc.match_substring_regex(values, INT_RE)):
        if not pc.any(pc.match_substring_regex(values, LEADING_ZERO_RE)).as_py():
            return Inferred(ColumnType(INT))
        return Inferred(STRING_TYPE)  # codes such as 007 keep their zeros
    if _all(pc.match_substring_regex(values, FLOAT_RE)):
        return Inferred(ColumnType(FLOAT))
    return _infer_dates(values, present, column)


def _infer_dates(values: pa.Array, present: int, column: str) -> Inferred:
    used: list[DateFormat] = []
    covered = None
    for fmt in DATE_FORMATS:
        mask = pc.fill_null(pc.match_substring_regex(values, fmt.regex), False)
        if pc.any(mask).as_py():
            used.append(fmt)
            covered = mask if covered is None else pc.or_(covered, mask)
    if not used:
        return Inferred(STRING_TYPE)
    n_covered = _count(covered)
    if n_covered < present:
        if n_covered >= DATE_LIKE_SHARE * present:
            bad = pc.filter(values, pc.and_(pc.invert(covered), pc.is_valid(values)))
            return Inferred(
                STRING_TYPE,
                phrase(
                    gettext_noop(
                        "Column '%(column)s' looks like dates but %(bad)s of %(sampled)s sampled values "
                        "match no known date format (e.g. '%(example)s'); it is kept as text."
                    ),
                    column=column,
                    bad=present - n_covered,
                    sampled=present,
                    example=bad[0].as_py(),
                ),
            )
        return Inferred(STRING_TYPE)
    kinds = {f.kind for f in used}
    if TIMESTAMP_TZ in kinds and len(kinds) > 1:
        return Inferred(
            STRING_TYPE,
            phrase(
                gettext_noop("Column '%(column)s' mixes timestamps with and without a time zone; it is kept as text."),
                column=column,
            ),
        )
    kind = TIMESTAMP_TZ if TIMESTAMP_TZ in kinds else TIMESTAMP if TIMESTAMP in kinds else DATE
    ctype = ColumnType(kind, tuple(f.name for f in used))
    converted = convert(values, ctype)
    if converted.failures:
        return Inferred(
            STRING_TYPE,
            phrase(
                gettext_noop(
                    "Column '%(column)s' looks like dates but some values are not valid dates "
                    "(e.g. '%(example)s'); it is kept as text."
                ),
                column=column,
                example=converted.example,
            ),
        )
    return Inferred(ctype)


def join(a: ColumnType, b: ColumnType) -> ColumnType:
    """The narrowest type that holds values of both."""
    if a == b:
        return a
    if a.kind == b.kind:
        return ColumnType(a.kind, tuple(dict.fromkeys(a.formats + b.formats)))
    kinds = {a.kind, b.kind}
    if kinds == {INT, FLOAT}:
        return ColumnType(FLOAT)
    if kinds == {DATE, TIMESTAMP}:
        return ColumnType(TIMESTAMP, tuple(dict.fromkeys(a.formats + b.formats)))
    return STRING_TYPE


def _failures(source: pa.Array, result: pa.Array) -> Converted:
    failed = pc.and_(pc.is_valid(source), pc.is_null(result))
    n = _count(failed)
    example = pc.filter(source, failed)[0].as_py() if n else None
    return Converted(result, n, example)


def _parse_format(values: pa.Array, fmt: DateFormat, target: pa.DataType) -> pa.Array:
    if fmt.strptime is not None:
        parsed = pc.strptime(values, format=fmt.strptime, unit="us", error_is_null=True)
        return parsed if target.tz is None else pc.assume_timezone(parsed, "UTC")
    if fmt.name.startswith("YYYY年"):
        # "2024年1月2日 8:00" → "2024-1-2 8:00", then the numeric patterns.
        spaced = pc.replace_substring_regex(values, r"^(\d{4})年(\d{1,2})月(\d{1,2})日 ?", r"\1-\2-\3 ")
        sub = "%Y-%m-%d %H:%M:%S" if fmt.name.endswith("SS") else "%Y-%m-%d %H:%M"
        return pc.strptime(spaced, format=sub, unit="us", error_is_null=True)
    try:
        return pc.cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # One bad value spoils Arrow's cast; parse one by one to null only the bad ones.
        out = []
        for v in values.to_pylist():
            try:
                out.append(pc.cast(pa.array([v], pa.string()), target)[0].as_py() if v is not None else None)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out.append(None)
        return pa.array(out, target)


def _convert_dates(values: pa.Array, ctype: ColumnType) -> pa.Array:
    target = pa.timestamp("us", tz="UTC") if ctype.kind == TIMESTAMP_TZ else pa.timestamp("us")
    formats = [FORMATS_BY_NAME[n] for n in ctype.formats]
    if len(formats) == 1:
        result = _parse_format(values, formats[0], target)
    else:
        result = pa.nulls(len(values), target)
        for fmt in formats:
            mask = pc.fill_null(pc.match_substring_regex(values, fmt.regex), False)
            if not pc.any(mask).as_py():
                continue
            part = _parse_format(pc.if_else(mask, values, pa.scalar(None, pa.string())), fmt, target)
            result = pc.coalesce(result, part)
    if ctype.kind == DATE:
        result = result.cast(pa.date32())
    return result


def convert(arr: pa.Array, ctype: ColumnType) -> Converted:
    """Convert a text column to `ctype`; values that do not fit are counted, never dropped silently."""
    if ctype.kind == STRING:
        return Converted(arr if arr.type == pa.string() else arr.cast(pa.string()))
    target = ctype.arrow()
    # Fast path: Arrow's cast accepts the whole batch as it is.
    if ctype.kind in (INT, FLOAT):
        try:
            return Converted(pc.cast(arr, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    values = _clean(arr)
    if ctype.kind in (INT, FLOAT):
        regex = INT_RE if ctype.kind == INT else FLOAT_RE
        ok = pc.fill_null(pc.match_substring_regex(values, regex), False)
        usable = pc.if_else(ok, pc.replace_substring_regex(values, r"^\+", ""), pa.scalar(None, pa.string()))
        return _failures(values, pc.cast(usable, target))
    if ctype.kind == BOOL:
        lower = pc.utf8_lower(values)
        is_true = pc.is_in(lower, value_set=pa.array(TRUE_WORDS))
        is_false = pc.is_in(lower, value_set=pa.array(FALSE_WORDS))
        result = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        return _failures(values, result)
    return _failures(values, _convert_dates(values, ctype))
