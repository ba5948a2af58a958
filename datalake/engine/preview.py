"""One page of a Parquet file's rows, sorted and filtered on the server by duckdb.

    page = preview("v3.parquet", names={"col_1": "温度"}, page=2, sort="温度", descending=True,
                   filters=[{"column": "温度", "op": "gt", "value": 80}])

Promises (tests/datalake/test_preview.py pins them):
- Columns are spoken of by their original names (`names`, as the ingest engine keeps them);
  a name is checked against the file's columns and only then reaches SQL, through `quote`.
- Filter values never reach the SQL text: each is a bound parameter (`?`).
- Without `sort` the rows come in file order and the query has no ORDER BY, so a page costs
  a scan of the rows before it, not a sort of 10 M rows. With `sort`, nulls come last both
  ways and ties keep file order (`file_row_number`), so pages neither repeat nor skip rows.
- `total` counts the rows matching the filters, with the same WHERE as the page.
- Bad input raises PreviewError(field, message); the message names the column or value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import duckdb

from .errors import Phrase, gettext_noop, phrase
from .profile import _jsonable, _kind, _literal, connect, quote, source_sql

MAX_PAGE_SIZE = 500
MAX_IN_VALUES = 1000
COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
TEXT_OPS = ("contains", "starts_with")
NULL_OPS = {"is_null": "IS NULL", "not_null": "IS NOT NULL"}
OPS = (*COMPARISONS, *TEXT_OPS, *NULL_OPS, "in")
# The page query reads the Parquet reader's row number under this name, to break sort ties.
ROW_KEY = "__lepton_row__"
# Types a bound value can be CAST to by name: plain names, optionally with (p) or (p, s).
# Nested types (lists, structs, maps) do not match and only take null and text filters.
SIMPLE_TYPE = re.compile(r"^[A-Z][A-Z0-9_ ]*(\(\d+(, ?\d+)?\))?$")


class PreviewError(Exception):
    """Bad preview input; `field` is the request parameter at fault (page, page_size, sort, filters)."""

    def __init__(self, field: str, message: Phrase | str):
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class PreviewPage:
    columns: list[str]  # original names, in file order
    types: list[str]  # duckdb type of each column, for the UI's alignment and filter choices
    rows: list[list]  # JSON-ready values
    total: int  # rows matching the filters
    page: int
    page_size: int
    pages: int  # at least 1, so "page 1 of 1" reads right for an empty result

    def as_dict(self) -> dict:
        return asdict(self)


def preview(
    path: str,
    *,
    names: dict[str, str] | None = None,
    page: int = 1,
    page_size: int = 50,
    sort: str | None = None,
    descending: bool = False,
    filters: Iterable[Mapping] = (),
    con: duckdb.DuckDBPyConnection | None = None,
) -> PreviewPage:
    """Rows `(page - 1) * page_size` onwards of the Parquet file at `path`, after filters and sort.

    Filter ops: eq, ne, lt, le, gt, ge (value compared in the column's type), contains and
    starts_with (case-insensitive, on the value's text), is_null, not_null (no value), in
    (a list of values). A page past the last one has no rows.
    """
    _check_int("page", page, 1, None)
    _check_int("page_size", page_size, 1, MAX_PAGE_SIZE)
    own = con is None
    con = con or connect()
    try:
        source = source_sql(path, names)
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        types = {row[0]: row[1] for row in described}
        columns = list(types)
        if sort is not None and sort not in types:
            raise PreviewError(
                "sort",
                phrase(
                    gettext_noop("Unknown column %(column)s to sort by. Columns: %(columns)s."),
                    column=repr(sort),
                    columns=_listing(columns),
                ),
            )

        conditions, params = [], []
        for index, spec in enumerate(_as_list(filters), start=1):
            condition, values = _condition(con, index, spec, types)
            conditions.append(condition)
            params += values
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""

        selected = ", ".join(quote(c) for c in columns)
        order = ""
        if sort is not None:
            direction = "DESC" if descending else "ASC"
            order = f" ORDER BY {quote(sort)} {direction} NULLS LAST"
            stored = names if names else types
            if "file_row_number" not in stored:  # a real column of that name hides the reader's
                order += f", {quote(ROW_KEY)} ASC"
        try:
            total = con.execute(f"SELECT count(*) FROM {source}{where}", params).fetchone()[0]
            rows = con.execute(
                f"SELECT {selected} FROM {_numbered_source(path, names) if order else source}{where}{order} LIMIT ? OFFSET ?",
                [*params, page_size, (page - 1) * page_size],
            ).fetchall()
        except duckdb.ConversionException as error:
            # _condition checks each value first; this is the backstop for what it cannot foresee.
            raise PreviewError(
                "filters", phrase(gettext_noop("A filter value cannot be compared with its column: %(error)s"), error=str(error))
            ) from error
        return PreviewPage(
            columns=columns,
            types=[types[c] for c in columns],
            rows=[[_jsonable(v) for v in row] for row in rows],
            total=int(total),
            page=page,
            page_size=page_size,
            pages=max(1, math.ceil(total / page_size)),
        )
    finally:
        if own:
            con.close()


def _numbered_source(path: str, names: dict[str, str] | None) -> str:
    """`source_sql` with the Parquet reader's `file_row_number` as ROW_KEY, the tie-breaker of sorted pages."""
    if names:
        return source_sql(path, {"file_row_number": ROW_KEY} | names)
    return f"(SELECT file_row_number AS {quote(ROW_KEY)}, * FROM {source_sql(path)})"


def _condition(con: duckdb.DuckDBPyConnection, index: int, spec, types: dict[str, str]) -> tuple[str, list]:
    """The SQL condition for filter number `index` (its values as parameters), or PreviewError."""
    if not isinstance(spec, Mapping):
        raise PreviewError(
            "filters", phrase(gettext_noop("Filter %(number)s must be an object with column, op and value."), number=index)
        )
    column, op = spec.get("column"), spec.get("op")
    if column not in types:
        raise PreviewError(
            "filters",
            phrase(
                gettext_noop("Filter %(number)s: unknown column %(column)s. Columns: %(columns)s."),
                number=index,
                column=repr(column),
                columns=_listing(list(types)),
            ),
        )
    where = phrase(gettext_noop("Filter %(number)s on %(column)s"), number=index, column=repr(column))
    if op not in OPS:
        raise PreviewError(
            "filters",
            phrase(gettext_noop("%(filter)s: unknown op %(op)s. Ops: %(ops)s."), filter=where, op=repr(op), ops=", ".join(OPS)),
        )
    q, duck_type = quote(column), types[column]
    if op in NULL_OPS:
        return f"{q} {NULL_OPS[op]}", []
    if "value" not in spec:
        raise PreviewError("filters", phrase(gettext_noop("%(filter)s: op %(op)s needs a value."), filter=where, op=repr(op)))
    value = spec["value"]

    if op in TEXT_OPS:
        if not _is_scalar(value):
            raise PreviewError(
                "filters",
                phrase(
                    gettext_noop("%(filter)s: %(op)s needs a text value, not %(value)s."), filter=where, op=op, value=repr(value)
                ),
            )
        return f"{op}(lower(CAST({q} AS VARCHAR)), lower(?))", [str(value)]

    if op == "in":
        if not isinstance(value, list | tuple):
            raise PreviewError(
                "filters",
                phrase(gettext_noop("%(filter)s: in needs a list of values, not %(value)s."), filter=where, value=repr(value)),
            )
        if len(value) > MAX_IN_VALUES:
            raise PreviewError(
                "filters",
                phrase(
                    gettext_noop("%(filter)s: in takes at most %(limit)s values, not %(count)s."),
                    filter=where,
                    limit=MAX_IN_VALUES,
                    count=len(value),
                ),
            )
        if not value:
            return "FALSE", []
        values = [_comparable(con, where, column, duck_type, v) for v in value]
        return f"{q} IN ({', '.join(_placeholder(duck_type) for _ in values)})", values

    return f"{q} {COMPARISONS[op]} {_placeholder(duck_type)}", [_comparable(con, where, column, duck_type, value)]


def _placeholder(duck_type: str) -> str:
    # Numbers compare as given (rpm < 1.5 must not round 1.5 to 2); other values take the
    # column's type, so '2024-01-02' is a date and '10' is not compared as text with 9.
    return "?" if _kind(duck_type) == "numeric" else f"CAST(? AS {duck_type})"


def _comparable(con: duckdb.DuckDBPyConnection, where: Phrase, column: str, duck_type: str, value):
    """`value` ready to bind against `column`; PreviewError if it cannot be compared with its type."""
    bad = phrase(
        gettext_noop("%(filter)s: value %(value)s cannot be compared with the column's type %(type)s."),
        filter=where,
        value=repr(value),
        type=duck_type,
    )
    if not _is_scalar(value):
        raise PreviewError(
            "filters",
            phrase(
                gettext_noop(
                    "%(filter)s: value %(value)s cannot be compared with the column's type %(type)s; "
                    "give a text, number or boolean (use is_null for missing values)."
                ),
                filter=where,
                value=repr(value),
                type=duck_type,
            ),
        )
    if not SIMPLE_TYPE.match(duck_type):
        raise PreviewError(
            "filters",
            phrase(
                gettext_noop("%(filter)s: a %(type)s column takes only is_null, not_null, contains and starts_with."),
                filter=where,
                type=duck_type,
            ),
        )
    if _kind(duck_type) == "numeric":
        if isinstance(value, bool):
            raise PreviewError("filters", bad)
        if isinstance(value, str):
            value = value.strip()
            for parse in (int, float):
                try:
                    return parse(value)
                except ValueError:
                    pass
            raise PreviewError("filters", bad)
        return value
    try:
        con.execute(f"SELECT CAST(? AS {duck_type})", [value]).fetchone()
    except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
        raise PreviewError(
            "filters",
            phrase(
                gettext_noop("%(filter)s: value %(value)s cannot be compared with the column's type %(type)s (%(error)s)."),
                filter=where,
                value=repr(value),
                type=duck_type,
                error=_first_line(error),
            ),
        ) from error
    return value


def _check_int(field: str, value, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        if high is not None:
            message = phrase(
                gettext_noop("%(field)s must be a whole number between %(low)s and %(high)s, not %(value)s."),
                field=field,
                low=low,
                high=high,
                value=repr(value),
            )
        else:
            message = phrase(
                gettext_noop("%(field)s must be a whole number at least %(low)s, not %(value)s."),
                field=field,
                low=low,
                value=repr(value),
            )
        raise PreviewError(field, message)


def _as_list(filters) -> list:
    if isinstance(filters, Mapping | str | bytes) or not isinstance(filters, Iterable):
        raise PreviewError("filters", gettext_noop("filters must be a list of {column, op, value} objects."))
    return list(filters)


def _is_scalar(value) -> bool:
    return isinstance(value, str | int | float)  # bool is an int


def _listing(columns, limit: int = 20):
    columns = list(columns)
    shown = ", ".join(repr(c) for c in columns[:limit])
    if len(columns) <= limit:
        return shown
    return phrase(gettext_noop("%(columns)s and %(more)s more"), columns=shown, more=len(columns) - limit)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0]


def image_grid(manifest_path: str, *, per_class: int = 8, label: str | None = None) -> dict[str, list[dict]]:
    """The first `per_class` images of each class of an image manifest (datalake.engine.images), by path.

    {label: [{"path", "width", "height", "mode", "checksum", "thumbnail"}, …]}, labels sorted;
    `label` keeps one class only (its value is a bound parameter).
    """
    _check_int("per_class", per_class, 1, 200)
    con = connect()
    try:
        where, params = ("WHERE label = ?", [label]) if label is not None else ("", [])
        rows = con.execute(
            "SELECT label, path, width, height, mode, checksum, thumbnail FROM ("
            "  SELECT *, row_number() OVER (PARTITION BY label ORDER BY path) AS rank"
            f"  FROM read_parquet({_literal(manifest_path)}) {where}"
            ") WHERE rank <= ? ORDER BY label, path",
            [*params, per_class],
        ).fetchall()
    finally:
        con.close()
    grid: dict[str, list[dict]] = {}
    for label_value, path, width, height, mode, checksum, thumbnail in rows:
        grid.setdefault(label_value, []).append(
            {"path": path, "width": width, "height": height, "mode": mode, "checksum": checksum, "thumbnail": thumbnail}
        )
    return grid


def image_in_manifest(manifest_path: str, sha256: str) -> bool:
    """Whether `sha256` is an image or a thumbnail the manifest names."""
    con = connect()
    try:
        found = con.execute(
            f"SELECT count(*) FROM read_parquet({_literal(manifest_path)}) WHERE checksum = ? OR thumbnail = ?",
            [sha256, sha256],
        ).fetchone()[0]
    finally:
        con.close()
    return found > 0
