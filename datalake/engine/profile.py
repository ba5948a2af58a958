"""Profile a Parquet file with duckdb: per-column statistics in two scans, whatever the width.

Scan 1 computes, in one SELECT over all columns: count, nulls, approximate distinct,
min/max, and for numeric columns mean, standard deviation and quantiles.
Scan 2 computes, again in one SELECT: a fixed-bin histogram of every numeric column (bins
from scan 1's min/max) and the top values of every other column.
The result is plain data (dataclasses → dicts) for the catalog, the API and Plotly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

import duckdb

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 20
TOP_VALUES = 10
NUMERIC_PREFIXES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "REAL",
)
TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME")


@dataclass
class ColumnProfile:
    name: str
    type: str
    kind: str  # numeric | temporal | boolean | text | other
    count: int
    nulls: int
    distinct: int
    min: object = None
    max: object = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict = field(default_factory=dict)  # {"p50": value, …}
    histogram: dict | None = None  # {"edges": [...], "counts": [...]}
    top_values: list = field(default_factory=list)  # [{"value": v, "count": n}, …]

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.count if self.count else 0.0


@dataclass
class Profile:
    rows: int
    columns: list[ColumnProfile]

    def as_dict(self) -> dict:
        return {"rows": self.rows, "columns": [_jsonable(asdict(c)) | {"null_fraction": c.null_fraction} for c in self.columns]}


def quote(name: str) -> str:
    """A duckdb identifier for any column name (Chinese, spaces, quotes included)."""
    return '"' + name.replace('"', '""') + '"'


def _kind(duck_type: str) -> str:
    upper = duck_type.upper()
    if upper == "BOOLEAN":
        return "boolean"
    if upper.startswith(NUMERIC_PREFIXES):
        return "numeric"
    if upper.startswith(TEMPORAL_PREFIXES):
        return "temporal"
    if upper in ("VARCHAR", "TEXT", "STRING") or upper.startswith("VARCHAR"):
        return "text"
    return "other"


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def connect(memory_limit: str = "1GB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    return con


def source_sql(path: str, names: dict[str, str] | None = None) -> str:
    """The FROM clause over a Parquet file, with its columns renamed {stored: shown} when given.

    The ingest engine stores safe SQL identifiers (`col_1`) and keeps the original names
    (`温度`); profiles and check results speak the original names.
    """
    parquet = f"read_parquet({_literal(path)})"
    if not names:
        return parquet
    columns = ", ".join(f"{quote(stored)} AS {quote(shown)}" for stored, shown in names.items())
    return f"(SELECT {columns} FROM {parquet})"


def profile_parquet(path: str, *, names: dict[str, str] | None = None, con: duckdb.DuckDBPyConnection | None = None) -> Profile:
    """Statistics of every column of the Parquet file at `path` (named as in `names`, when given)."""
    own = con is None
    con = con or connect()
    try:
        source = source_sql(path, names)
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = [(row[0], row[1]) for row in described]
        rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        if not columns:
            return Profile(rows=rows, columns=[])

        # Scan 1: one SELECT with every column's aggregates.
        exprs: list[str] = []
        layout: list[tuple[str, str, list[str]]] = []
        for name, duck_type in columns:
            q = quote(name)
            kind = _kind(duck_type)
            names = ["count", "nulls", "distinct"]
            exprs += [f"count({q})", f"count(*) - count({q})", f"approx_count_distinct({q})"]
            if kind in ("numeric", "temporal", "text", "boolean"):
                names += ["min", "max"]
                exprs += [f"min({q})", f"max({q})"]
            if kind == "numeric":
                names += ["mean", "std"]
                exprs += [f"avg({q}::DOUBLE)", f"stddev_samp({q}::DOUBLE)"]
                for p in QUANTILES:
                    names.append(f"p{int(p * 100):02d}")
                    exprs.append(f"approx_quantile({q}::DOUBLE, {p})")
            layout.append((name, duck_type, names))
        values = iter(con.execute(f"SELECT {', '.join(exprs)} FROM {source}").fetchone())
        profiles: list[ColumnProfile] = []
        for name, duck_type, names in layout:
            stats = {n: next(values) for n in names}
            kind = _kind(duck_type)
            profiles.append(
                ColumnProfile(
                    name=name,
                    type=duck_type,
                    kind=kind,
                    count=rows,
                    nulls=int(stats["nulls"]),
                    distinct=int(stats["distinct"] or 0),
                    min=stats.get("min"),
                    max=stats.get("max"),
                    mean=_finite(stats.get("mean")),
                    std=_finite(stats.get("std")),
                    quantiles={n: _finite(stats[n]) for n in names if n.startswith("p")},
                )
            )

        # Scan 2: histograms of numeric columns and top values of the others, in one SELECT.
        exprs, targets = [], []
        for column in profiles:
            q = quote(column.name)
            if column.kind == "numeric" and column.min is not None and column.max is not None:
                low, high = float(column.min), float(column.max)
                width = (high - low) / HISTOGRAM_BINS if high > low else 1.0
                exprs.append(
                    # duckdb's greatest() ignores NULL, so nulls are filtered out explicitly.
                    f"histogram(least(greatest(floor(({q}::DOUBLE - {low!r}) / {width!r}), 0), {HISTOGRAM_BINS - 1})::INTEGER)"
                    f" FILTER (WHERE {q} IS NOT NULL)"
                )
                targets.append((column, "histogram", (low, width)))
            elif column.kind in ("text", "boolean", "temporal") and column.count - column.nulls > 0:
                exprs.append(
                    f"histogram({q}::VARCHAR) FILTER (WHERE {q} IS NOT NULL)"
                    if column.distinct <= 200
                    else f"approx_top_k({q}::VARCHAR, {TOP_VALUES})"
                )
                targets.append((column, "top" if column.distinct <= 200 else "top_k", None))
        if exprs:
            results = con.execute(f"SELECT {', '.join(exprs)} FROM {source}").fetchone()
            for (column, what, extra), value in zip(targets, results, strict=True):
                if what == "histogram":
                    low, width = extra
                    counts = [0] * HISTOGRAM_BINS
                    for bin_index, n in (value or {}).items():
                        counts[int(bin_index)] += int(n)
                    if float(column.max) > low:
                        column.histogram = {"edges": [low + width * i for i in range(HISTOGRAM_BINS + 1)], "counts": counts}
                    else:  # a constant column: one bin
                        column.histogram = {"edges": [low, low], "counts": [sum(counts)]}
                elif what == "top":
                    ranked = sorted((value or {}).items(), key=lambda item: (-item[1], str(item[0])))[:TOP_VALUES]
                    column.top_values = [{"value": v, "count": int(n)} for v, n in ranked]
                else:
                    column.top_values = [{"value": v, "count": None} for v in (value or [])]
        return Profile(rows=rows, columns=profiles)
    finally:
        if own:
            con.close()


def _finite(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"
