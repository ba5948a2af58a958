"""Recipes: ordered data-preparation steps, declared as plain dicts, run as one duckdb query.

    steps = [
        {"op": "cast", "columns": {"温度": "float"}},
        {"op": "fill_missing", "columns": {"温度": "mean"}},
        {"op": "normalise", "columns": ["温度"], "method": "zscore"},
    ]
    validate_recipe(steps, {"温度": "VARCHAR", "机器": "VARCHAR"})        # cleaned steps, or RecipeError
    result = apply_recipe(steps, {"input": ("v3.parquet", {"col_1": "温度", "col_2": "机器"})}, "out.parquet")
    result.parameters[2]  # {"method": "zscore", "columns": {"温度": {"mean": …, "std": …}}}

Steps (every field is checked; an unknown field is an error):
- select      {columns: [name, …]}
- rename      {columns: {old: new}}
- cast        {columns: {name: int|float|string|bool|date|timestamp}} — TRY_CAST; the number of
              non-null values that became null is reported per column (parameters "failed").
- filter      {filters: [{column, op, value}], combine: all|any} — the filters of preview.py,
              validated and bound by its own code.
- drop_duplicates {subset: [name, …] (default all)} — keeps the first occurrence.
- fill_missing {columns: {name: mean|median|mode|forward_fill|{"method": "constant", "value": v}},
              order_by: name (forward_fill), partition_by: [name, …] (forward_fill, optional)}
              The fill value keeps the column's type (the mean of an integer column is rounded)
              and is reported (parameters "values"). Mode ties go to the smallest value.
- drop_missing {subset: [name, …] (default all)}
- clip_outliers {columns: [name, …], method: iqr (k, default 1.5) | percentile (low, high;
              default 0.01, 0.99)} — bounds reported; integer columns clip to ceil/floor bounds.
- normalise   {columns: [name, …], method: minmax|zscore, parameters: {name: {...}} (optional,
              to reuse stored ones)} — output DOUBLE; zscore uses the population standard
              deviation (as scikit-learn's StandardScaler); a constant column becomes 0.
              The parameters used are reported: {"min", "max"} or {"mean", "std"} per column.
- resample    {time: name, interval: "15 minute", by: [name, …], aggregations: {name: agg | [agg, …]}}
              aggs mean, min, max, sum, count, first, last. One aggregation keeps the column's name,
              a list names them `<name>_<agg>`. Rows without a time are dropped; rows come out
              ordered by the keys and the bucket start, which replaces the time column.
- window      {order_by: name, partition_by: [name, …], size: N, aggregations: {name: agg | [agg, …]}}
              aggs mean, min, max, sum, std, count over the N rows up to and including each row
              (fewer at the start of a partition); new columns `<name>_<agg>_<N>`.
- join        {input: key of `inputs`, on: [name, …] | {left: right}, how: inner|left, suffix: text
              (default "_<input>") for the other side's names already taken}
- sql         {sql: "SELECT … FROM input"} — one read statement over the previous step, seen as
              the view `input`.

Promises (tests/datalake/test_recipes.py pins them):
- Names reach SQL only through `quote`, after they were checked against the current columns
  (tracked step by step: after a rename the old name is gone). Values are bound parameters;
  the few literals (window size, percentile, k) are numbers checked here first.
- Each step is a CTE of one query; the column set and types after each step are what duckdb
  binds (DESCRIBE), so a join or SQL step is checked the same way. Statistics a step needs
  (means, quantiles, min/max) are computed from the previous step's rows by a query first
  and bound into the step; they come back in `RecipeResult.parameters` (aligned with steps).
- Row order is the input's file order, carried as a hidden position column through every
  step (joins: left order, then right; resample: keys then time; SQL step: its own order).
- The SQL step runs in this process, on a connection locked before any step is read: the
  inputs' views are created, `allowed_paths` names exactly the input files and the output's
  temporary file, external access is off, extension autoloading and Python replacement scans
  are off, and the configuration is locked — the same rules as sql.py's worker. Its text must
  pass sql.check_read_only alone, and the whole assembled query must pass it again.
  `timeout_s` interrupts the connection. The in-process choice avoids a second interpreter
  per preview; sql.py's worker remains the way to run an analyst's free queries.
- The output is written with COPY … (FORMAT parquet, COMPRESSION zstd) to a temporary name
  beside the destination and renamed into place: on any error nothing is left there.
  Like the ingest engine's files, its columns are safe identifiers (sniff.safe_identifiers)
  with the original names in the file metadata `lepton.columns`; `RecipeResult.names` is
  {identifier: original}, what source_sql and the version's schema take.
- Bad steps raise RecipeError(step_index, field, message): step_index is the 0-based index in
  the list (None for the inputs or the recipe as a whole), field the step's key at fault.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import duckdb

from .errors import Phrase, gettext_noop, phrase
from .preview import PreviewError, _condition, _listing
from .profile import _jsonable, _kind, _literal, connect, quote, source_sql
from .sniff import safe_identifiers
from .sql import QueryError, check_read_only

POS = "__lepton_pos__"  # the hidden row-order column every step carries
RESERVED = "__lepton"
MAX_STEPS = 200
MAX_NAME_CHARS = 255
MAX_WINDOW = 100_000
CAST_TYPES = {
    "int": "BIGINT",
    "float": "DOUBLE",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
FILL_METHODS = ("mean", "median", "mode", "constant", "forward_fill")
RESAMPLE_AGGS = ("mean", "min", "max", "sum", "count", "first", "last")
WINDOW_AGGS = {"mean": "avg", "min": "min", "max": "max", "sum": "sum", "std": "stddev_samp", "count": "count"}
NUMERIC_AGGS = ("mean", "sum", "std")
INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
INTERVAL = re.compile(r"^\s*(\d{1,6})\s*(second|minute|hour|day|week|month|year)s?\s*$", re.IGNORECASE)
CHUNK = 1024 * 1024


class RecipeError(Exception):
    """A step that cannot run: `step_index` (0-based, None for the recipe as a whole), `field`, `message`."""

    def __init__(self, step_index: int | None, field: str, message: Phrase | str):
        super().__init__(message)
        self.step_index = step_index
        self.field = field
        self.message = message

    @property
    def explained(self) -> Phrase:
        """Where and what, e.g. "step 2, columns: Unknown column 'x'. …" (what the services store for a person)."""
        if self.step_index is None:
            return phrase(gettext_noop("recipe, %(field)s: %(message)s"), field=self.field, message=self.message)
        return phrase(
            gettext_noop("step %(number)s, %(field)s: %(message)s"),
            number=self.step_index + 1,
            field=self.field,
            message=self.message,
        )

    def __str__(self) -> str:
        return str(self.explained)

    def as_dict(self) -> dict:
        return {"step": self.step_index, "field": self.field, "message": self.message}


@dataclass
class RecipeResult:
    rows: int
    columns: list[dict]  # [{"name": original, "identifier": stored, "type": duckdb type}]
    parameters: list[dict]  # one per step: what it computed ({} when nothing)
    sha256: str
    bytes: int
    names: dict[str, str]  # {identifier: original name}, as source_sql takes it
    steps: list[dict] = field(default_factory=list)  # the cleaned steps that ran

    def as_dict(self) -> dict:
        return asdict(self)


# --- Public API ---------------------------------------------------------------------------


def validate_recipe(
    steps: list[dict],
    columns: Mapping[str, str],
    *,
    inputs: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict]:
    """The cleaned steps (defaults filled in) for an input with `columns` {name: duckdb type}.

    `inputs` gives the columns of the other datasets join steps name; without them a join
    step is an error. Raises RecipeError for the first bad step.
    """
    con = _sandbox([], None)
    try:
        sources = {}
        for number, (key, cols) in enumerate([("input", columns), *(inputs or {}).items()]):
            view = f"{RESERVED}_in{number}"
            definitions = [f"{quote(POS)} BIGINT"]
            for name, duck_type in _as_mapping(None, "columns", cols).items():
                _check_new_name(None, "columns", name)
                try:
                    canonical = str(duckdb.sqltype(str(duck_type)))
                except (duckdb.Error, TypeError, ValueError):
                    raise RecipeError(
                        None,
                        "columns",
                        phrase(
                            gettext_noop("Column %(column)s of %(input)s has an unknown type %(type)s."),
                            column=repr(name),
                            input=repr(key),
                            type=repr(duck_type),
                        ),
                    ) from None
                definitions.append(f"{quote(name)} {canonical}")
            con.execute(f"CREATE TABLE {quote(view)} ({', '.join(definitions)})")
            sources[key] = view
        return _Compiler(con, sources).compile(steps).steps
    finally:
        con.close()


def apply_recipe(
    steps: list[dict],
    inputs: Mapping[str, tuple],
    output_path: str | os.PathLike,
    *,
    sample_rows: int | None = None,
    timeout_s: float | None = None,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> RecipeResult:
    """Run the recipe over `inputs` {key: (parquet_path, names or None)} ("input" is the main
    one) and write the result to `output_path`; with `sample_rows` only the main input's
    first rows are read (the preview before a run)."""
    if "input" not in inputs:
        raise RecipeError(None, "inputs", gettext_noop("The recipe needs its main dataset under the key 'input'."))
    if sample_rows is not None and (isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1):
        raise RecipeError(
            None,
            "sample_rows",
            phrase(gettext_noop("sample_rows must be a whole number at least 1, not %(value)s."), value=repr(sample_rows)),
        )
    output_path = os.path.abspath(os.fspath(output_path))
    directory = os.path.dirname(output_path)
    if not os.path.isdir(directory):
        raise RecipeError(None, "output", phrase(gettext_noop("The output folder %(folder)s does not exist."), folder=directory))
    # duckdb resolves links before it checks allowed_paths, so the temporary name is the real one.
    part = os.path.join(os.path.realpath(directory), f".{os.path.basename(output_path)}.{uuid.uuid4().hex}.part")
    sources_in = {}
    for key, value in inputs.items():
        path, names = (value, None) if isinstance(value, str | os.PathLike) else value
        path = os.path.realpath(os.fspath(path))  # duckdb checks allowed_paths after resolving links
        if not os.path.isfile(path):
            raise RecipeError(
                None, "inputs", phrase(gettext_noop("The data of input %(input)s is not available."), input=repr(key))
            )
        sources_in[key] = (path, dict(names or {}))
    spill = tempfile.mkdtemp(prefix="lepton-recipe-")
    try:
        con = _sandbox([p for p, _ in sources_in.values()] + [part], spill, memory_limit=memory_limit, threads=threads)
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise
    fired = threading.Event()
    timer = None
    if timeout_s:
        timer = threading.Timer(timeout_s, lambda: (fired.set(), con.interrupt()))
        timer.daemon = True
        timer.start()
    try:
        sources = {}
        for number, (key, (path, names)) in enumerate(sources_in.items()):
            view = f"{RESERVED}_in{number}"
            limit = sample_rows if key == "input" else None
            try:
                con.execute(f"CREATE VIEW {quote(view)} AS {_numbered(con, path, names, limit)}")
            except duckdb.Error as error:
                raise RecipeError(
                    None,
                    "inputs",
                    phrase(
                        gettext_noop("Input %(input)s could not be opened: %(error)s"), input=repr(key), error=_first_line(error)
                    ),
                ) from None
            sources[key] = view
        compiled = _Compiler(con, sources).compile(steps)
        identifiers = safe_identifiers(list(compiled.columns))
        names = dict(zip(identifiers, compiled.columns, strict=True))
        selected = ", ".join(f"{quote(n)} AS {quote(i)}" for i, n in names.items())
        query, params = compiled.with_(f"SELECT {selected} FROM {compiled.prev} ORDER BY {quote(POS)}")
        try:
            check_read_only(query)  # the assembled query, SQL steps included, is one read statement
        except QueryError as error:
            raise RecipeError(
                None, "sql", phrase(gettext_noop("The recipe's query was refused: %(reason)s"), reason=error.message)
            ) from None
        metadata = json.dumps([{"name": n, "identifier": i} for i, n in names.items()], ensure_ascii=False)
        try:
            rows = con.execute(
                f"COPY ({query}) TO {_literal(part)} (FORMAT parquet, COMPRESSION zstd, "
                f"KV_METADATA {{'lepton.columns': {_literal(metadata)}}})",
                params,
            ).fetchone()[0]
        except duckdb.Error as error:
            raise RecipeError(None, "recipe", _message(error)) from None
        digest, size = _sha256(part)
        os.replace(part, output_path)
        return RecipeResult(
            rows=int(rows),
            columns=[{"name": n, "identifier": i, "type": compiled.columns[n]} for i, n in names.items()],
            parameters=compiled.parameters,
            sha256=digest,
            bytes=size,
            names=names,
            steps=compiled.steps,
        )
    except RecipeError as error:
        if fired.is_set():
            raise RecipeError(
                None,
                "timeout",
                phrase(gettext_noop("The recipe stopped: time limit of %(seconds)s s exceeded."), seconds=f"{timeout_s:g}"),
            ) from error
        raise
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
        if os.path.exists(part):
            os.remove(part)
        shutil.rmtree(spill, ignore_errors=True)


# --- The sandbox ----------------------------------------------------------------------------


def _sandbox(paths: list[str], spill: str | None, *, memory_limit: str = "1GB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    """A locked in-memory duckdb: only `paths` can be read or written, no extension, no settings."""
    con = connect(memory_limit=memory_limit, threads=threads)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET allow_community_extensions = false")
    con.execute("SET python_enable_replacements = false")
    if spill:
        con.execute(f"SET temp_directory = {_literal(spill)}")
    con.execute("SET allowed_paths = [" + ", ".join(_literal(p) for p in paths) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _numbered(con: duckdb.DuckDBPyConnection, path: str, names: dict[str, str], limit: int | None) -> str:
    """SELECT over the Parquet file with original names and the file order as POS."""
    stored = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(path)})").fetchall()]
    shown = [names.get(s, s) for s in stored] if names else stored
    for name in shown:
        if name.startswith(RESERVED):
            raise RecipeError(None, "inputs", _reserved(name))
    if "file_row_number" in stored:  # a real column hides the reader's row number
        source = f"(SELECT row_number() OVER () - 1 AS {quote(POS)}, * FROM {source_sql(path, names or None)})"
    elif names:
        source = source_sql(path, {"file_row_number": POS} | names)
    else:
        source = f"(SELECT file_row_number AS {quote(POS)}, * FROM read_parquet({_literal(path)}))"
    where = f" WHERE {quote(POS)} < {int(limit)}" if limit is not None else ""
    return f"SELECT * FROM {source}{where}"


# --- Compiling steps ------------------------------------------------------------------------


class _Compiler:
    """Turns steps into CTEs over `sources` {input key: view}, tracking the columns after each."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sources: dict[str, str]):
        self.con = con
        self.sources = sources
        self.ctes: list[tuple[str, str, list]] = []
        self.prev = quote(sources["input"])
        self.columns = self.describe(None, "inputs", f"SELECT * FROM {self.prev}", [])
        self.steps: list[dict] = []
        self.parameters: list[dict] = []

    def compile(self, steps) -> _Compiler:
        if not isinstance(steps, list | tuple):
            raise RecipeError(None, "steps", gettext_noop("A recipe is a list of steps."))
        if len(steps) > MAX_STEPS:
            raise RecipeError(
                None,
                "steps",
                phrase(gettext_noop("A recipe has at most %(limit)s steps, not %(count)s."), limit=MAX_STEPS, count=len(steps)),
            )
        for index, step in enumerate(steps):
            if not isinstance(step, Mapping):
                raise RecipeError(index, "op", gettext_noop("A step is an object with an op."))
            op = step.get("op")
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if handler is None:
                raise RecipeError(
                    index, "op", phrase(gettext_noop("Unknown op %(op)s. Ops: %(ops)s."), op=repr(op), ops=", ".join(OPS))
                )
            cleaned, sql, params, computed = handler(index, step)
            self.push(index, OP_FIELD.get(op, "op"), sql, params)
            self.steps.append({"op": op, **cleaned})
            self.parameters.append(_jsonable(computed))
        return self

    # helpers

    def with_(self, tail: str, params=()) -> tuple[str, list]:
        if not self.ctes:
            return tail, list(params)
        ctes = ", ".join(f"{quote(name)} AS ({sql})" for name, sql, _ in self.ctes)
        return f"WITH {ctes} {tail}", [p for _, _, ps in self.ctes for p in ps] + list(params)

    def describe(self, index, field_name, tail: str, params) -> dict[str, str]:
        query, values = self.with_(tail, params)
        try:
            described = self.con.execute(f"DESCRIBE {query}", values).fetchall()
        except duckdb.Error as error:
            raise RecipeError(index, field_name, _message(error)) from None
        columns = {row[0]: row[1] for row in described if row[0] != POS}
        lowered = [c.lower() for c in columns]
        if len(columns) + 1 != len(described) or len(set(lowered)) != len(lowered):
            raise RecipeError(index, field_name, gettext_noop("The step gives two columns the same name (names ignore case)."))
        for name in columns:
            _check_new_name(index, field_name, name)
        return columns

    def push(self, index: int, field_name: str, sql: str, params: list) -> None:
        name = f"{RESERVED}_s{index}"
        self.ctes.append((name, sql, list(params)))
        try:
            self.columns = self.describe(index, field_name, f"SELECT * FROM {quote(name)}", [])
        except RecipeError:
            self.ctes.pop()
            raise
        self.prev = quote(name)

    def stats(self, index: int, field_name: str, tail: str, params=()) -> tuple:
        query, values = self.with_(tail, params)
        try:
            return self.con.execute(query, values).fetchone()
        except duckdb.Error as error:
            raise RecipeError(index, field_name, _message(error)) from None

    def select(self, exprs: list[str], rest: str = "") -> str:
        return f"SELECT {', '.join([quote(POS), *exprs])} FROM {self.prev}{rest}"

    def column(self, index, field_name, name, *, numeric=False, temporal=False) -> str:
        if not isinstance(name, str) or name not in self.columns:
            raise RecipeError(
                index,
                field_name,
                phrase(
                    gettext_noop("Unknown column %(column)s. Columns: %(columns)s."),
                    column=repr(name),
                    columns=_listing(self.columns),
                ),
            )
        kind = _kind(self.columns[name])
        if numeric and kind != "numeric":
            raise RecipeError(
                index,
                field_name,
                phrase(gettext_noop("Column %(column)s is %(type)s, not a number."), column=repr(name), type=self.columns[name]),
            )
        if temporal and not self.columns[name].upper().startswith(("DATE", "TIMESTAMP")):
            raise RecipeError(
                index,
                field_name,
                phrase(
                    gettext_noop("Column %(column)s is %(type)s, not a date or timestamp."),
                    column=repr(name),
                    type=self.columns[name],
                ),
            )
        return name

    def names(self, index, field_name, value, *, numeric=False, allow_empty=False) -> list[str]:
        if not isinstance(value, list | tuple) or (not value and not allow_empty):
            if allow_empty:
                message = phrase(gettext_noop("%(field)s must be a list of column names."), field=field_name)
            else:
                message = phrase(gettext_noop("%(field)s must be a non-empty list of column names."), field=field_name)
            raise RecipeError(index, field_name, message)
        if len(set(value)) != len(value):
            raise RecipeError(index, field_name, gettext_noop("A column is named twice."))
        return [self.column(index, field_name, v, numeric=numeric) for v in value]

    # ops

    def _op_select(self, index, step):
        _fields(index, step, {"columns"})
        cols = self.names(index, "columns", step["columns"])
        return {"columns": cols}, self.select([quote(c) for c in cols]), [], {}

    def _op_rename(self, index, step):
        _fields(index, step, {"columns"})
        mapping = _as_mapping(index, "columns", step["columns"], non_empty=True)
        for old, new in mapping.items():
            self.column(index, "columns", old)
            _check_new_name(index, "columns", new)
        result = [mapping.get(c, c) for c in self.columns]
        lowered = [c.lower() for c in result]
        if len(set(lowered)) != len(lowered):
            taken = sorted({c for c in result if lowered.count(c.lower()) > 1})
            raise RecipeError(
                index,
                "columns",
                phrase(
                    gettext_noop("The renamed columns would share a name: %(columns)s (names ignore case)."),
                    columns=_listing(taken),
                ),
            )
        return (
            {"columns": dict(mapping)},
            self.select([f"{quote(c)} AS {quote(mapping.get(c, c))}" for c in self.columns]),
            [],
            {},
        )

    def _op_cast(self, index, step):
        _fields(index, step, {"columns"})
        mapping = _as_mapping(index, "columns", step["columns"], non_empty=True)
        for name, target in mapping.items():
            self.column(index, "columns", name)
            if target not in CAST_TYPES:
                raise RecipeError(
                    index,
                    "columns",
                    phrase(
                        gettext_noop("Cannot cast %(column)s to %(target)s; types: %(types)s."),
                        column=repr(name),
                        target=repr(target),
                        types=", ".join(CAST_TYPES),
                    ),
                )
        casts = {n: f"TRY_CAST({quote(n)} AS {CAST_TYPES[t]})" for n, t in mapping.items()}
        failed = self.stats(
            index,
            "columns",
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {quote(n)} IS NOT NULL AND {e} IS NULL)" for n, e in casts.items())
            + f" FROM {self.prev}",
        )
        exprs = [f"{casts[c]} AS {quote(c)}" if c in casts else quote(c) for c in self.columns]
        return {"columns": dict(mapping)}, self.select(exprs), [], {"failed": dict(zip(casts, map(int, failed), strict=True))}

    def _op_filter(self, index, step):
        _fields(index, step, {"filters"}, {"combine"})
        filters, combine = step["filters"], step.get("combine", "all")
        if not isinstance(filters, list | tuple) or not filters:
            raise RecipeError(index, "filters", gettext_noop("filters must be a non-empty list of {column, op, value} objects."))
        if combine not in ("all", "any"):
            raise RecipeError(
                index, "combine", phrase(gettext_noop("combine is 'all' or 'any', not %(value)s."), value=repr(combine))
            )
        conditions, params = [], []
        for number, spec in enumerate(filters, start=1):
            try:
                condition, values = _condition(self.con, number, spec, self.columns)
            except PreviewError as error:
                raise RecipeError(index, "filters", error.message) from None
            conditions.append(f"({condition})")
            params += values
        where = f" {'AND' if combine == 'all' else 'OR'} ".join(conditions)
        cleaned = {"filters": [dict(f) for f in filters], "combine": combine}
        return cleaned, f"SELECT * FROM {self.prev} WHERE {where}", params, {}

    def _op_drop_duplicates(self, index, step):
        _fields(index, step, set(), {"subset"})
        subset = self.names(index, "subset", step["subset"]) if step.get("subset") is not None else list(self.columns)
        partition = ", ".join(quote(c) for c in subset)
        sql = f"SELECT * FROM {self.prev} QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {quote(POS)}) = 1"
        return {"subset": subset if step.get("subset") is not None else None}, sql, [], {}

    def _op_drop_missing(self, index, step):
        _fields(index, step, set(), {"subset"})
        subset = self.names(index, "subset", step["subset"]) if step.get("subset") is not None else list(self.columns)
        where = " AND ".join(f"{quote(c)} IS NOT NULL" for c in subset)
        return {"subset": subset if step.get("subset") is not None else None}, f"SELECT * FROM {self.prev} WHERE {where}", [], {}

    def _op_fill_missing(self, index, step):
        _fields(index, step, {"columns"}, {"order_by", "partition_by"})
        mapping = _as_mapping(index, "columns", step["columns"], non_empty=True)
        methods: dict[str, dict] = {}
        for name, spec in mapping.items():
            self.column(index, "columns", name)
            if isinstance(spec, Mapping):
                extra = set(spec) - {"method", "value"}
                if extra:
                    raise RecipeError(
                        index,
                        "columns",
                        phrase(
                            gettext_noop("Unknown field %(field)s for %(column)s; give method and value."),
                            field=repr(sorted(extra)[0]),
                            column=repr(name),
                        ),
                    )
                method = spec.get("method")
            else:
                method, spec = spec, {}
            if method not in FILL_METHODS:
                raise RecipeError(
                    index,
                    "columns",
                    phrase(
                        gettext_noop("Unknown method %(method)s for %(column)s; methods: %(methods)s."),
                        method=repr(method),
                        column=repr(name),
                        methods=", ".join(FILL_METHODS),
                    ),
                )
            if method in ("mean", "median"):
                self.column(index, "columns", name, numeric=True)
            if method == "constant":
                if "value" not in spec or not isinstance(spec["value"], str | int | float | bool):
                    raise RecipeError(
                        index,
                        "columns",
                        phrase(
                            gettext_noop("The constant for %(column)s needs a text, number or boolean value."), column=repr(name)
                        ),
                    )
                self._check_value(index, "columns", name, spec["value"])
                methods[name] = {"method": method, "value": spec["value"]}
            else:
                methods[name] = {"method": method}
        ffill = [n for n, m in methods.items() if m["method"] == "forward_fill"]
        order_by, partition = step.get("order_by"), step.get("partition_by") or []
        if ffill and order_by is None:
            raise RecipeError(
                index,
                "order_by",
                phrase(
                    gettext_noop("forward_fill of %(column)s needs order_by: the column that orders the rows."),
                    column=repr(ffill[0]),
                ),
            )
        if not ffill and (order_by is not None or partition):
            raise RecipeError(
                index,
                "order_by" if order_by is not None else "partition_by",
                gettext_noop("order_by and partition_by are for forward_fill only."),
            )
        if order_by is not None:
            self.column(index, "order_by", order_by)
        partition = self.names(index, "partition_by", partition, allow_empty=True)

        values: dict[str, object] = {}
        aggregates = {
            n: f"CAST({'avg' if m['method'] == 'mean' else 'median'}({quote(n)}) AS {self.columns[n]})"
            for n, m in methods.items()
            if m["method"] in ("mean", "median")
        }
        if aggregates:
            row = self.stats(index, "columns", f"SELECT {', '.join(aggregates.values())} FROM {self.prev}")
            values.update(zip(aggregates, row, strict=True))
        for name, m in methods.items():
            if m["method"] == "mode":
                q = quote(name)
                row = self.stats(
                    index,
                    "columns",
                    f"SELECT {q} FROM {self.prev} WHERE {q} IS NOT NULL GROUP BY {q} ORDER BY count(*) DESC, {q} LIMIT 1",
                )
                values[name] = row[0] if row else None
            elif m["method"] == "constant":
                values[name] = m["value"]

        exprs, params = [], []
        over = ""
        if ffill:
            keys = f"PARTITION BY {', '.join(quote(c) for c in partition)} " if partition else ""
            order = f"ORDER BY {quote(order_by)} NULLS LAST, {quote(POS)}"
            over = f" OVER ({keys}{order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        for c in self.columns:
            if c in ffill:
                exprs.append(f"coalesce({quote(c)}, last_value({quote(c)} IGNORE NULLS){over}) AS {quote(c)}")
            elif c in values:
                exprs.append(f"coalesce({quote(c)}, CAST(? AS {self.columns[c]})) AS {quote(c)}")
                params.append(values[c])
            else:
                exprs.append(quote(c))
        cleaned = {"columns": {n: (m if m["method"] == "constant" else m["method"]) for n, m in methods.items()}}
        if ffill:
            cleaned |= {"order_by": order_by, "partition_by": partition}
        return cleaned, self.select(exprs), params, {"values": values}

    def _check_value(self, index, field_name, name, value) -> None:
        duck_type = self.columns[name]
        if _kind(duck_type) == "numeric" and isinstance(value, str | bool):
            raise RecipeError(
                index,
                field_name,
                phrase(gettext_noop("The value %(value)s for %(column)s is not a number."), value=repr(value), column=repr(name)),
            )
        try:
            self.con.execute(f"SELECT CAST(? AS {duck_type})", [value]).fetchone()
        except duckdb.Error as error:
            raise RecipeError(
                index,
                field_name,
                phrase(
                    gettext_noop("The value %(value)s does not fit %(column)s (%(type)s): %(error)s"),
                    value=repr(value),
                    column=repr(name),
                    type=duck_type,
                    error=_first_line(error),
                ),
            ) from None

    def _op_clip_outliers(self, index, step):
        _fields(index, step, {"columns"}, {"method", "k", "low", "high"})
        cols = self.names(index, "columns", step["columns"], numeric=True)
        method = step.get("method", "iqr")
        if method == "iqr":
            _fields(index, step, {"columns"}, {"method", "k"})
            k = _number(index, "k", step.get("k", 1.5), low=0, low_open=True)
            cleaned = {"columns": cols, "method": method, "k": k}
            quantiles = (0.25, 0.75)
        elif method == "percentile":
            _fields(index, step, {"columns"}, {"method", "low", "high"})
            low = _number(index, "low", step.get("low", 0.01), low=0, high=1)
            high = _number(index, "high", step.get("high", 0.99), low=0, high=1)
            if not low < high:
                raise RecipeError(
                    index, "high", phrase(gettext_noop("high (%(high)s) must be above low (%(low)s)."), high=high, low=low)
                )
            cleaned = {"columns": cols, "method": method, "low": low, "high": high}
            quantiles = (low, high)
        else:
            raise RecipeError(
                index,
                "method",
                phrase(
                    gettext_noop("Unknown method %(method)s; methods: %(methods)s."),
                    method=repr(method),
                    methods="iqr, percentile",
                ),
            )
        exprs = [f"quantile_cont({quote(c)}::DOUBLE, {q!r})" for c in cols for q in quantiles]
        row = iter(self.stats(index, "columns", f"SELECT {', '.join(exprs)} FROM {self.prev}"))
        bounds, params = {}, []
        for c in cols:
            first, second = next(row), next(row)
            if first is None:
                lower = upper = None
            elif method == "iqr":
                spread = second - first
                lower, upper = first - cleaned["k"] * spread, second + cleaned["k"] * spread
            else:
                lower, upper = first, second
            if lower is not None and self.columns[c].upper() in INTEGER_TYPES:
                lower, upper = math.ceil(lower), math.floor(upper)
            bounds[c] = {"lower": lower, "upper": upper}
        sql_exprs = []
        for c in self.columns:
            if c in bounds:
                q, t = quote(c), self.columns[c]
                sql_exprs.append(
                    f"CASE WHEN {q} < CAST(? AS {t}) THEN CAST(? AS {t}) "
                    f"WHEN {q} > CAST(? AS {t}) THEN CAST(? AS {t}) ELSE {q} END AS {q}"
                )
                lower, upper = bounds[c]["lower"], bounds[c]["upper"]
                params += [lower, lower, upper, upper]
            else:
                sql_exprs.append(quote(c))
        return cleaned, self.select(sql_exprs), params, {"bounds": bounds}

    def _op_normalise(self, index, step):
        _fields(index, step, {"columns"}, {"method", "parameters"})
        cols = self.names(index, "columns", step["columns"], numeric=True)
        method = step.get("method", "minmax")
        if method not in ("minmax", "zscore"):
            raise RecipeError(
                index,
                "method",
                phrase(
                    gettext_noop("Unknown method %(method)s; methods: %(methods)s."),
                    method=repr(method),
                    methods="minmax, zscore",
                ),
            )
        keys = ("min", "max") if method == "minmax" else ("mean", "std")
        given = _as_mapping(index, "parameters", step.get("parameters") or {})
        fixed = {}
        for name, values in given.items():
            if name not in cols:
                raise RecipeError(
                    index,
                    "parameters",
                    phrase(gettext_noop("Parameters given for %(column)s, which is not among the columns."), column=repr(name)),
                )
            if not isinstance(values, Mapping) or set(values) != set(keys):
                raise RecipeError(
                    index,
                    "parameters",
                    phrase(
                        gettext_noop("The parameters of %(column)s are %(first)s and %(second)s."),
                        column=repr(name),
                        first=keys[0],
                        second=keys[1],
                    ),
                )
            fixed[name] = {k: _number(index, "parameters", values[k]) for k in keys}
        computed = [c for c in cols if c not in fixed]
        found = dict(fixed)
        if computed:
            if method == "minmax":
                exprs = [f"min({quote(c)})::DOUBLE, max({quote(c)})::DOUBLE" for c in computed]
            else:
                exprs = [f"avg({quote(c)}::DOUBLE), stddev_pop({quote(c)}::DOUBLE)" for c in computed]
            row = iter(self.stats(index, "columns", f"SELECT {', '.join(exprs)} FROM {self.prev}"))
            for c in computed:
                found[c] = {keys[0]: next(row), keys[1]: next(row)}
        exprs, params = [], []
        for c in self.columns:
            if c not in found:
                exprs.append(quote(c))
                continue
            a, b = found[c][keys[0]], found[c][keys[1]]
            offset, scale = a, (None if a is None or b is None else (b - a if method == "minmax" else b))
            exprs.append(f"(CAST({quote(c)} AS DOUBLE) - CAST(? AS DOUBLE)) / CAST(? AS DOUBLE) AS {quote(c)}")
            params += [offset, scale if scale != 0 else 1.0]
        cleaned = {"columns": cols, "method": method}
        if fixed:
            cleaned["parameters"] = fixed
        return cleaned, self.select(exprs), params, {"method": method, "columns": {c: found[c] for c in cols}}

    def _aggregations(self, index, value, allowed) -> list[tuple[str, str, bool]]:
        """[(column, agg, suffixed)] from {column: agg | [agg, …]}."""
        mapping = _as_mapping(index, "aggregations", value, non_empty=True)
        out = []
        for name, aggs in mapping.items():
            self.column(index, "aggregations", name)
            listed = isinstance(aggs, list | tuple)
            for agg in aggs if listed else [aggs]:
                if agg not in allowed:
                    raise RecipeError(
                        index,
                        "aggregations",
                        phrase(
                            gettext_noop("Unknown aggregation %(aggregation)s for %(column)s; use %(allowed)s."),
                            aggregation=repr(agg),
                            column=repr(name),
                            allowed=", ".join(allowed),
                        ),
                    )
                if agg in NUMERIC_AGGS:
                    self.column(index, "aggregations", name, numeric=True)
                out.append((name, agg, listed))
            if listed and not aggs:
                raise RecipeError(
                    index, "aggregations", phrase(gettext_noop("No aggregation given for %(column)s."), column=repr(name))
                )
        return out

    def _op_resample(self, index, step):
        _fields(index, step, {"time", "interval", "aggregations"}, {"by"})
        time = self.column(index, "time", step["time"], temporal=True)
        interval = step["interval"]
        match = INTERVAL.match(interval) if isinstance(interval, str) else None
        if not match or int(match.group(1)) < 1:
            raise RecipeError(
                index,
                "interval",
                phrase(gettext_noop("interval is like '15 minutes', '1 hour' or '1 day', not %(value)s."), value=repr(interval)),
            )
        interval = f"{int(match.group(1))} {match.group(2).lower()}"
        by = self.names(index, "by", step.get("by") or [], allow_empty=True)
        if time in by:
            raise RecipeError(
                index, "by", phrase(gettext_noop("%(column)s is the time column; group by other columns."), column=repr(time))
            )
        aggs = self._aggregations(index, step["aggregations"], RESAMPLE_AGGS)
        order = f"{quote(time)}, {quote(POS)}"
        exprs, names = [], []
        for name, agg, suffixed in aggs:
            q = quote(name)
            expr = {
                "mean": f"avg({q})",
                "count": f"count({q})",
                "first": f"first({q} ORDER BY {order})",
                "last": f"last({q} ORDER BY {order})",
            }.get(agg, f"{agg}({q})")
            new = f"{name}_{agg}" if suffixed else name
            exprs.append(f"{expr} AS {quote(new)}")
            names.append(new)
        self._check_unique(index, "aggregations", [*by, time, *names])
        keys = [quote(c) for c in by]
        grouped = (
            f"SELECT {', '.join([*keys, f'time_bucket(CAST(? AS INTERVAL), {quote(time)}) AS {quote(time)}', *exprs])} "
            f"FROM {self.prev} WHERE {quote(time)} IS NOT NULL GROUP BY {', '.join(str(i + 1) for i in range(len(by) + 1))}"
        )
        ordering = ", ".join(f"{k} NULLS LAST" for k in [*keys, quote(time)])
        sql = f"SELECT row_number() OVER (ORDER BY {ordering}) AS {quote(POS)}, * FROM ({grouped})"
        cleaned = {"time": time, "interval": interval, "by": by, "aggregations": _jsonable(dict(step["aggregations"]))}
        return cleaned, sql, [interval], {}

    def _op_window(self, index, step):
        _fields(index, step, {"order_by", "size", "aggregations"}, {"partition_by"})
        order_by = self.column(index, "order_by", step["order_by"])
        size = step["size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_WINDOW:
            raise RecipeError(
                index,
                "size",
                phrase(
                    gettext_noop("size is a whole number of rows from 1 to %(limit)s, not %(value)s."),
                    limit=MAX_WINDOW,
                    value=repr(size),
                ),
            )
        partition = self.names(index, "partition_by", step.get("partition_by") or [], allow_empty=True)
        aggs = self._aggregations(index, step["aggregations"], tuple(WINDOW_AGGS))
        keys = f"PARTITION BY {', '.join(quote(c) for c in partition)} " if partition else ""
        over = (
            f"OVER ({keys}ORDER BY {quote(order_by)} NULLS LAST, {quote(POS)} ROWS BETWEEN {size - 1} PRECEDING AND CURRENT ROW)"
        )
        exprs, names = [quote(c) for c in self.columns], []
        for name, agg, _suffixed in aggs:
            new = f"{name}_{agg}_{size}"
            exprs.append(f"{WINDOW_AGGS[agg]}({quote(name)}) {over} AS {quote(new)}")
            names.append(new)
        self._check_unique(index, "aggregations", [*self.columns, *names])
        cleaned = {
            "order_by": order_by,
            "partition_by": partition,
            "size": size,
            "aggregations": _jsonable(dict(step["aggregations"])),
        }
        return cleaned, self.select(exprs), [], {"columns": names}

    def _op_join(self, index, step):
        _fields(index, step, {"input", "on"}, {"how", "suffix"})
        key = step["input"]
        if not isinstance(key, str) or key == "input" or key not in self.sources:
            others = ", ".join(repr(k) for k in self.sources if k != "input") or gettext_noop("none")
            raise RecipeError(
                index,
                "input",
                phrase(
                    gettext_noop("Unknown input %(input)s to join; inputs given: %(inputs)s."), input=repr(key), inputs=others
                ),
            )
        how = step.get("how", "inner")
        if how not in ("inner", "left"):
            raise RecipeError(index, "how", phrase(gettext_noop("how is 'inner' or 'left', not %(value)s."), value=repr(how)))
        suffix = step.get("suffix", f"_{key}")
        if not isinstance(suffix, str) or not suffix:
            raise RecipeError(index, "suffix", gettext_noop("suffix is a non-empty text."))
        view = quote(self.sources[key])
        right = self.describe(index, "input", f"SELECT * FROM {view}", [])
        on = step["on"]
        pairs = list(on.items()) if isinstance(on, Mapping) else [(c, c) for c in on] if isinstance(on, list | tuple) else []
        if not pairs:
            raise RecipeError(index, "on", gettext_noop("on is a non-empty list of column names, or {left: right} names."))
        for left_name, right_name in pairs:
            self.column(index, "on", left_name)
            if right_name not in right:
                raise RecipeError(
                    index,
                    "on",
                    phrase(
                        gettext_noop("Unknown column %(column)s in %(input)s. Columns: %(columns)s."),
                        column=repr(right_name),
                        input=repr(key),
                        columns=_listing(right),
                    ),
                )
        right_keys = {r for _, r in pairs}
        taken = {c.lower() for c in self.columns}
        exprs = [f"l.{quote(c)}" for c in self.columns]
        for c in right:
            if c in right_keys:
                continue
            new = c if c.lower() not in taken else f"{c}{suffix}"
            if new.lower() in taken:
                raise RecipeError(
                    index,
                    "suffix",
                    phrase(
                        gettext_noop("Column %(column)s of %(input)s is taken even with the suffix %(suffix)s."),
                        column=repr(c),
                        input=repr(key),
                        suffix=repr(suffix),
                    ),
                )
            taken.add(new.lower())
            exprs.append(f"r.{quote(c)} AS {quote(new)}")
        condition = " AND ".join(f"l.{quote(a)} = r.{quote(b)}" for a, b in pairs)
        sql = (
            f"SELECT row_number() OVER (ORDER BY l.{quote(POS)}, r.{quote(POS)}) AS {quote(POS)}, {', '.join(exprs)} "
            f"FROM {self.prev} AS l {how.upper()} JOIN {view} AS r ON {condition}"
        )
        cleaned = {
            "input": key,
            "on": dict(pairs) if isinstance(on, Mapping) else [a for a, _ in pairs],
            "how": how,
            "suffix": suffix,
        }
        return cleaned, sql, [], {}

    def _op_sql(self, index, step):
        _fields(index, step, {"sql"})
        text = step["sql"]
        try:
            check_read_only(text)
        except QueryError as error:
            message = error.message
            if error.code == QueryError.NOT_READ_ONLY:
                message = gettext_noop(
                    "A SQL step is one read statement over `input` (SELECT, WITH … SELECT or VALUES); nothing else runs here."
                )
            raise RecipeError(index, "sql", message) from None
        text = _without_trailing_semicolons(text)
        visible = ", ".join(quote(c) for c in self.columns)
        # The text sits on its own lines, so a trailing line comment cannot swallow the brackets.
        sql = (
            f"SELECT row_number() OVER () AS {quote(POS)}, * FROM ("
            f"WITH input AS (SELECT {visible} FROM {self.prev} ORDER BY {quote(POS)}) SELECT * FROM (\n{text}\n))"
        )
        return {"sql": step["sql"]}, sql, [], {}

    def _check_unique(self, index, field_name, names: list[str]) -> None:
        lowered = [n.lower() for n in names]
        for name in names:
            _check_new_name(index, field_name, name)
            if lowered.count(name.lower()) > 1:
                raise RecipeError(
                    index,
                    field_name,
                    phrase(gettext_noop("Two output columns would be named %(column)s (names ignore case)."), column=repr(name)),
                )


OPS = tuple(name[4:] for name in vars(_Compiler) if name.startswith("_op_"))
# The field a step's binding error is reported on.
OP_FIELD = {
    "select": "columns",
    "rename": "columns",
    "cast": "columns",
    "filter": "filters",
    "drop_duplicates": "subset",
    "drop_missing": "subset",
    "fill_missing": "columns",
    "clip_outliers": "columns",
    "normalise": "columns",
    "resample": "aggregations",
    "window": "aggregations",
    "join": "on",
    "sql": "sql",
}


# --- Small checks ---------------------------------------------------------------------------


def _fields(index: int, step: Mapping, required: set[str], optional: set[str] = frozenset()) -> None:
    for name in required:
        if name not in step:
            raise RecipeError(
                index, name, phrase(gettext_noop("The %(op)s step needs %(field)s."), op=step.get("op"), field=name)
            )
    for name in step:
        if name != "op" and name not in required and name not in optional:
            known = ", ".join(sorted(required | set(optional)))
            raise RecipeError(
                index,
                str(name),
                phrase(
                    gettext_noop("Unknown field %(field)s for %(op)s; fields: %(fields)s."),
                    field=repr(name),
                    op=step.get("op"),
                    fields=known,
                ),
            )


def _as_mapping(index, field_name: str, value, *, non_empty: bool = False) -> dict:
    if not isinstance(value, Mapping) or (non_empty and not value):
        raise RecipeError(index, field_name, phrase(gettext_noop("%(field)s must be a non-empty object."), field=field_name))
    for key in value:
        if not isinstance(key, str):
            raise RecipeError(index, field_name, phrase(gettext_noop("Column names are text, not %(value)s."), value=repr(key)))
    return dict(value)


def _check_new_name(index, field_name: str, name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise RecipeError(
            index, field_name, phrase(gettext_noop("A column name is a non-empty text, not %(value)s."), value=repr(name))
        )
    if len(name) > MAX_NAME_CHARS:
        raise RecipeError(
            index,
            field_name,
            phrase(
                gettext_noop("Column name %(column)s… is longer than %(limit)s characters."),
                column=repr(name[:40]),
                limit=MAX_NAME_CHARS,
            ),
        )
    if name.startswith(RESERVED):
        raise RecipeError(index, field_name, _reserved(name))


def _reserved(name: str) -> Phrase:
    return phrase(
        gettext_noop("Column name %(column)s is reserved (names starting with %(prefix)s)."), column=repr(name), prefix=RESERVED
    )


def _number(index, field_name: str, value, *, low=None, high=None, low_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecipeError(
            index,
            field_name,
            phrase(gettext_noop("%(field)s must be a number, not %(value)s."), field=field_name, value=repr(value)),
        )
    if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
        if high is not None:
            bounds = phrase(gettext_noop("at least %(low)s and at most %(high)s"), low=low, high=high)
        elif low_open:
            bounds = phrase(gettext_noop("above %(low)s"), low=low)
        else:
            bounds = phrase(gettext_noop("at least %(low)s"), low=low)
        raise RecipeError(
            index,
            field_name,
            phrase(
                gettext_noop("%(field)s must be %(bounds)s, not %(value)s."), field=field_name, bounds=bounds, value=repr(value)
            ),
        )
    return float(value)


def _without_trailing_semicolons(text: str) -> str:
    """The statement without the `;` (and any comment after it) that ends it, by duckdb's tokenizer.

    The tokenizer's positions are UTF-8 byte offsets, so the cut is made on the bytes.
    """
    while True:
        tokens = [t[0] for t in duckdb.tokenize(text) if t[1] != duckdb.token_type.comment]
        encoded = text.encode("utf-8")
        if not tokens or not encoded[tokens[-1] :].startswith(b";"):
            return text.rstrip()
        text = encoded[: tokens[-1]].decode("utf-8")


def _message(error: duckdb.Error) -> Phrase:
    if isinstance(error, duckdb.PermissionException):
        return phrase(
            gettext_noop("Only the recipe's inputs can be read; files, URLs and extensions cannot. (%(error)s)"),
            error=_first_line(error),
        )
    text = str(error).strip()
    return phrase(gettext_noop("duckdb refused it: %(error)s"), error=text if len(text) <= 1000 else text[:999] + "…")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _sha256(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


__all__ = ["RecipeError", "RecipeResult", "apply_recipe", "validate_recipe", "OPS"]
