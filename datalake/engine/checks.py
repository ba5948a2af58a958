"""Quality checks declared per dataset, run with duckdb over a version's Parquet file.

A check is a plain dict, validated by `validate_check` against the version's columns:

    {"type": "not_null", "column": "temperature"}
    {"type": "unique", "columns": ["machine_id", "timestamp"]}
    {"type": "range", "column": "temperature", "min": -40, "max": 200}
    {"type": "allowed_values", "column": "status", "values": ["ok", "warn", "fail"]}
    {"type": "regex", "column": "batch", "pattern": "^B[0-9]{6}$"}
    {"type": "row_count", "min": 1000, "max": 10000000}
    {"type": "schema", "columns": {"temperature": "numeric", "status": "text"}}   # a contract
    {"type": "freshness", "column": "timestamp", "max_age_hours": 24}

Every check may carry `"blocking": true`: a failing blocking check stops publication. Each
result says what failed, how many rows, and shows up to five offending values.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from datalake.engine.profile import _jsonable, _kind, _literal, connect, quote, source_sql

CHECK_TYPES = ("not_null", "unique", "range", "allowed_values", "regex", "row_count", "schema", "freshness")
KINDS = ("numeric", "temporal", "boolean", "text", "other")
SAMPLE = 5


@dataclass
class CheckResult:
    check: dict
    passed: bool
    blocking: bool
    message: str
    failing_rows: int = 0
    sample: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return _jsonable(asdict(self))


class CheckSpecError(ValueError):
    """A check that cannot run on these columns; `.fields` names what is wrong."""

    def __init__(self, message: str, fields: dict):
        super().__init__(message)
        self.fields = fields


def validate_check(spec: dict, columns: dict[str, str] | None) -> dict:
    """The cleaned check, or CheckSpecError. `columns` maps column name → duckdb type; None (no
    version yet) checks the shape only, and the check is validated again on every ingest."""
    if not isinstance(spec, dict):
        raise CheckSpecError("A check must be an object.", {"check": ["Must be an object."]})
    kind = spec.get("type")
    if kind not in CHECK_TYPES:
        raise CheckSpecError(f"Unknown check type {kind!r}.", {"type": [f"Choose one of: {', '.join(CHECK_TYPES)}."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict = {"type": kind, "blocking": bool(spec.get("blocking", False))}

    def need_column(key="column"):
        name = spec.get(key)
        if columns is None:
            if not isinstance(name, str) or not name:
                errors[key] = ["Give a column name."]
        elif name not in columns:
            errors[key] = [f"No column named {name!r}."]
        return name

    if kind in ("not_null", "range", "allowed_values", "regex", "freshness"):
        cleaned["column"] = need_column()
    if kind == "unique":
        names = spec.get("columns")
        if not isinstance(names, list) or not names:
            errors["columns"] = ["Give one or more column names."]
        else:
            missing = [n for n in names if columns is not None and n not in columns]
            if missing:
                errors["columns"] = [f"No column named {', '.join(map(repr, missing))}."]
            cleaned["columns"] = names
    if kind == "range":
        low, high = spec.get("min"), spec.get("max")
        if low is None and high is None:
            errors["min"] = ["Give min, max or both."]
        for key, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                errors[key] = ["Must be a number, a date or a timestamp."]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            errors["max"] = ["Must not be below min."]
        cleaned.update(min=low, max=high)
    if kind == "allowed_values":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            errors["values"] = ["Give the list of allowed values."]
        cleaned["values"] = values
    if kind == "regex":
        pattern = spec.get("pattern")
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            errors["pattern"] = [f"Not a valid regular expression: {exc}."]
        cleaned["pattern"] = pattern
    if kind == "row_count":
        low, high = spec.get("min"), spec.get("max")
        for key, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                errors[key] = ["Must be a whole number, 0 or more."]
        if low is None and high is None:
            errors["min"] = ["Give min, max or both."]
        cleaned.update(min=low, max=high)
    if kind == "schema":
        contract = spec.get("columns")
        if not isinstance(contract, dict) or not contract:
            errors["columns"] = ['Give the expected columns and their kinds, e.g. {"temperature": "numeric"}.']
        else:
            bad = [k for k, v in contract.items() if v not in KINDS]
            if bad:
                errors["columns"] = [f"Unknown kind for {', '.join(map(repr, bad))}; use {', '.join(KINDS)}."]
            cleaned["columns"] = contract
    if kind == "freshness":
        hours = spec.get("max_age_hours")
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
            errors["max_age_hours"] = ["Must be a positive number of hours."]
        elif columns is not None and cleaned.get("column") in columns and _kind(columns[cleaned["column"]]) != "temporal":
            errors["column"] = ["Freshness needs a date or timestamp column."]
        cleaned["max_age_hours"] = hours
    if errors:
        first = next(iter(errors.items()))
        raise CheckSpecError(f"{kind} check: {first[0]}: {first[1][0]}", errors)
    return cleaned


def _failing(con, source: str, condition: str, shown: str) -> tuple[int, list]:
    n = con.execute(f"SELECT count(*) FROM {source} WHERE {condition}").fetchone()[0]
    sample = (
        [row[0] for row in con.execute(f"SELECT {shown} FROM {source} WHERE {condition} LIMIT {SAMPLE}").fetchall()] if n else []
    )
    return int(n), sample


def run_checks(
    path: str,
    checks: list[dict],
    *,
    now: datetime | None = None,
    names: dict[str, str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> list[CheckResult]:
    """Run checks on the Parquet file at `path`, its columns named as in `names` when given."""
    own = con is None
    con = con or connect()
    now = now or datetime.now(UTC)
    source = source_sql(path, names)
    try:
        columns = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        return [_run_one(con, source, validate_check(spec, columns), columns, rows, now) for spec in checks]
    finally:
        if own:
            con.close()


def _run_one(con, source, check, columns, rows, now) -> CheckResult:
    kind, blocking = check["type"], check["blocking"]
    column = check.get("column")
    q = quote(column) if column else None

    def result(failing: int, sample: list, ok_message: str, fail_message: str) -> CheckResult:
        passed = failing == 0
        return CheckResult(check, passed, blocking, ok_message if passed else fail_message, failing, sample)

    if kind == "not_null":
        n, _ = _failing(con, source, f"{q} IS NULL", "NULL")
        return result(n, [], f"{column}: no missing values.", f"{column}: {n} of {rows} rows are missing a value.")
    if kind == "unique":
        keys = ", ".join(quote(c) for c in check["columns"])
        dupes = con.execute(
            f"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {source} GROUP BY {keys} HAVING count(*) > 1)"
        ).fetchone()
        sample = [
            list(r[:-1]) if len(r) > 2 else r[0]
            for r in con.execute(
                f"SELECT {keys}, count(*) FROM {source} GROUP BY {keys} HAVING count(*) > 1 LIMIT {SAMPLE}"
            ).fetchall()
        ]
        label = " + ".join(check["columns"])
        return result(
            int(dupes[1]),
            sample,
            f"{label}: every value is unique.",
            f"{label}: {int(dupes[0])} values occur more than once ({int(dupes[1])} rows).",
        )
    if kind == "range":
        parts = []
        if check["min"] is not None:
            parts.append(f"{q} < {_value(check['min'])}")
        if check["max"] is not None:
            parts.append(f"{q} > {_value(check['max'])}")
        n, sample = _failing(con, source, " OR ".join(parts), q)
        bounds = f"[{check['min'] if check['min'] is not None else '−∞'}, {check['max'] if check['max'] is not None else '∞'}]"
        return result(n, sample, f"{column}: every value within {bounds}.", f"{column}: {n} values outside {bounds}.")
    if kind == "allowed_values":
        n, sample = _failing(
            con, source, f"{q} IS NOT NULL AND {q}::VARCHAR NOT IN ({', '.join(_literal(str(v)) for v in check['values'])})", q
        )
        return result(n, sample, f"{column}: only allowed values.", f"{column}: {n} values are not allowed.")
    if kind == "regex":
        n, sample = _failing(
            con, source, f"{q} IS NOT NULL AND NOT regexp_full_match({q}::VARCHAR, {_literal(check['pattern'])})", q
        )
        return result(n, sample, f"{column}: every value matches.", f"{column}: {n} values do not match {check['pattern']}.")
    if kind == "row_count":
        low, high = check["min"], check["max"]
        ok = (low is None or rows >= low) and (high is None or rows <= high)
        return CheckResult(
            check,
            ok,
            blocking,
            f"{rows} rows" + ("" if ok else f", expected {low if low is not None else 0}–{high if high is not None else '∞'}."),
            0 if ok else rows,
        )
    if kind == "schema":
        problems = []
        for name, expected in check["columns"].items():
            if name not in columns:
                problems.append(f"{name}: missing")
            elif _kind(columns[name]) != expected:
                problems.append(f"{name}: {_kind(columns[name])}, expected {expected}")
        return CheckResult(
            check,
            not problems,
            blocking,
            "The columns match the contract." if not problems else "Schema contract broken: " + "; ".join(problems) + ".",
            0,
            problems[:SAMPLE],
        )
    if kind == "freshness":
        newest = con.execute(f"SELECT max({q}) FROM {source}").fetchone()[0]
        if newest is None:
            return CheckResult(check, False, blocking, f"{column}: no values, so no freshness.", rows)
        if not isinstance(newest, datetime):
            newest = datetime(newest.year, newest.month, newest.day)
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        age = now - newest
        ok = age <= timedelta(hours=check["max_age_hours"])
        hours = age.total_seconds() / 3600
        return CheckResult(
            check,
            ok,
            blocking,
            f"{column}: newest value {hours:.1f} h old" + ("." if ok else f", more than {check['max_age_hours']} h."),
            0,
            [newest],
        )
    raise AssertionError(kind)  # validate_check allows only the types above


def _value(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return _literal(str(value))


def blocking_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.blocking and not r.passed]
