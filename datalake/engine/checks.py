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

from datalake.engine.errors import Phrase, gettext_noop, joined, ngettext, phrase
from datalake.engine.profile import _jsonable, _kind, _literal, connect, quote, source_sql

CHECK_TYPES = ("not_null", "unique", "range", "allowed_values", "regex", "row_count", "schema", "freshness")
KINDS = ("numeric", "temporal", "boolean", "text", "other")
SAMPLE = 5


@dataclass
class CheckResult:
    check: dict
    passed: bool
    blocking: bool
    message: Phrase  # English as a str; datalake.services stores it in the reader's language
    failing_rows: int = 0
    sample: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return _jsonable(asdict(self))


class CheckSpecError(ValueError):
    """A check that cannot run on these columns; `.fields` names what is wrong."""

    def __init__(self, message: Phrase, fields: dict):
        super().__init__(message)
        self.message = message
        self.fields = fields


def validate_check(spec: dict, columns: dict[str, str] | None) -> dict:
    """The cleaned check, or CheckSpecError. `columns` maps column name → duckdb type; None (no
    version yet) checks the shape only, and the check is validated again on every ingest."""
    if not isinstance(spec, dict):
        raise CheckSpecError(gettext_noop("A check must be an object."), {"check": [gettext_noop("Must be an object.")]})
    kind = spec.get("type")
    if kind not in CHECK_TYPES:
        raise CheckSpecError(
            phrase(gettext_noop("Unknown check type %(type)s."), type=repr(kind)),
            {"type": [phrase(gettext_noop("Choose one of: %(types)s."), types=", ".join(CHECK_TYPES))]},
        )
    errors: dict[str, list[Phrase]] = {}
    cleaned: dict = {"type": kind, "blocking": bool(spec.get("blocking", False))}

    def need_column(key="column"):
        name = spec.get(key)
        if columns is None:
            if not isinstance(name, str) or not name:
                errors[key] = [gettext_noop("Give a column name.")]
        elif name not in columns:
            errors[key] = [phrase(gettext_noop("No column named %(column)s."), column=repr(name))]
        return name

    if kind in ("not_null", "range", "allowed_values", "regex", "freshness"):
        cleaned["column"] = need_column()
    if kind == "unique":
        names = spec.get("columns")
        if not isinstance(names, list) or not names:
            errors["columns"] = [gettext_noop("Give one or more column names.")]
        else:
            missing = [n for n in names if columns is not None and n not in columns]
            if missing:
                errors["columns"] = [phrase(gettext_noop("No column named %(column)s."), column=", ".join(map(repr, missing)))]
            cleaned["columns"] = names
    if kind == "range":
        low, high = spec.get("min"), spec.get("max")
        if low is None and high is None:
            errors["min"] = [gettext_noop("Give min, max or both.")]
        for key, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                errors[key] = [gettext_noop("Must be a number, a date or a timestamp.")]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            errors["max"] = [gettext_noop("Must not be below min.")]
        cleaned.update(min=low, max=high)
    if kind == "allowed_values":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            errors["values"] = [gettext_noop("Give the list of allowed values.")]
        cleaned["values"] = values
    if kind == "regex":
        pattern = spec.get("pattern")
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            errors["pattern"] = [phrase(gettext_noop("Not a valid regular expression: %(error)s."), error=str(exc))]
        cleaned["pattern"] = pattern
    if kind == "row_count":
        low, high = spec.get("min"), spec.get("max")
        for key, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                errors[key] = [gettext_noop("Must be a whole number, 0 or more.")]
        if low is None and high is None:
            errors["min"] = [gettext_noop("Give min, max or both.")]
        cleaned.update(min=low, max=high)
    if kind == "schema":
        contract = spec.get("columns")
        if not isinstance(contract, dict) or not contract:
            errors["columns"] = [gettext_noop('Give the expected columns and their kinds, e.g. {"temperature": "numeric"}.')]
        else:
            bad = [k for k, v in contract.items() if v not in KINDS]
            if bad:
                errors["columns"] = [
                    phrase(
                        gettext_noop("Unknown kind for %(columns)s; use %(kinds)s."),
                        columns=", ".join(map(repr, bad)),
                        kinds=", ".join(KINDS),
                    )
                ]
            cleaned["columns"] = contract
    if kind == "freshness":
        hours = spec.get("max_age_hours")
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
            errors["max_age_hours"] = [gettext_noop("Must be a positive number of hours.")]
        elif columns is not None and cleaned.get("column") in columns and _kind(columns[cleaned["column"]]) != "temporal":
            errors["column"] = [gettext_noop("Freshness needs a date or timestamp column.")]
        cleaned["max_age_hours"] = hours
    if errors:
        first = next(iter(errors.items()))
        raise CheckSpecError(
            phrase(gettext_noop("%(type)s check: %(field)s: %(reason)s"), type=kind, field=first[0], reason=first[1][0]), errors
        )
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

    def result(failing: int, sample: list, ok_message: Phrase, fail_message: Phrase) -> CheckResult:
        passed = failing == 0
        return CheckResult(check, passed, blocking, ok_message if passed else fail_message, failing, sample)

    if kind == "not_null":
        n, _ = _failing(con, source, f"{q} IS NULL", "NULL")
        return result(
            n,
            [],
            phrase(gettext_noop("%(column)s: no missing values."), column=column),
            ngettext(
                "%(column)s: %(n)s of %(rows)s rows is missing a value.",
                "%(column)s: %(n)s of %(rows)s rows are missing a value.",
                n,
                column=column,
                rows=rows,
            ),
        )
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
            phrase(gettext_noop("%(columns)s: every value is unique."), columns=label),
            ngettext(
                "%(columns)s: %(n)s value occurs more than once (%(rows)s rows).",
                "%(columns)s: %(n)s values occur more than once (%(rows)s rows).",
                int(dupes[0]),
                columns=label,
                rows=int(dupes[1]),
            ),
        )
    if kind == "range":
        parts = []
        if check["min"] is not None:
            parts.append(f"{q} < {_value(check['min'])}")
        if check["max"] is not None:
            parts.append(f"{q} > {_value(check['max'])}")
        n, sample = _failing(con, source, " OR ".join(parts), q)
        bounds = f"[{check['min'] if check['min'] is not None else '−∞'}, {check['max'] if check['max'] is not None else '∞'}]"
        return result(
            n,
            sample,
            phrase(gettext_noop("%(column)s: every value within %(bounds)s."), column=column, bounds=bounds),
            ngettext(
                "%(column)s: %(n)s value outside %(bounds)s.",
                "%(column)s: %(n)s values outside %(bounds)s.",
                n,
                column=column,
                bounds=bounds,
            ),
        )
    if kind == "allowed_values":
        n, sample = _failing(
            con, source, f"{q} IS NOT NULL AND {q}::VARCHAR NOT IN ({', '.join(_literal(str(v)) for v in check['values'])})", q
        )
        return result(
            n,
            sample,
            phrase(gettext_noop("%(column)s: only allowed values."), column=column),
            ngettext("%(column)s: %(n)s value is not allowed.", "%(column)s: %(n)s values are not allowed.", n, column=column),
        )
    if kind == "regex":
        n, sample = _failing(
            con, source, f"{q} IS NOT NULL AND NOT regexp_full_match({q}::VARCHAR, {_literal(check['pattern'])})", q
        )
        return result(
            n,
            sample,
            phrase(gettext_noop("%(column)s: every value matches."), column=column),
            ngettext(
                "%(column)s: %(n)s value does not match %(pattern)s.",
                "%(column)s: %(n)s values do not match %(pattern)s.",
                n,
                column=column,
                pattern=check["pattern"],
            ),
        )
    if kind == "row_count":
        low, high = check["min"], check["max"]
        ok = (low is None or rows >= low) and (high is None or rows <= high)
        if ok:
            message = ngettext("%(n)s row", "%(n)s rows", rows)
        else:
            message = ngettext(
                "%(n)s row, expected %(low)s–%(high)s.",
                "%(n)s rows, expected %(low)s–%(high)s.",
                rows,
                low=low if low is not None else 0,
                high=high if high is not None else "∞",
            )
        return CheckResult(check, ok, blocking, message, 0 if ok else rows)
    if kind == "schema":
        problems = []
        for name, expected in check["columns"].items():
            if name not in columns:
                problems.append(phrase(gettext_noop("%(column)s: missing"), column=name))
            elif _kind(columns[name]) != expected:
                problems.append(
                    phrase(
                        gettext_noop("%(column)s: %(kind)s, expected %(expected)s"),
                        column=name,
                        kind=_kind(columns[name]),
                        expected=expected,
                    )
                )
        if problems:
            message = phrase(gettext_noop("Schema contract broken: %(problems)s."), problems=joined(problems))
        else:
            message = gettext_noop("The columns match the contract.")
        return CheckResult(check, not problems, blocking, message, 0, problems[:SAMPLE])
    if kind == "freshness":
        newest = con.execute(f"SELECT max({q}) FROM {source}").fetchone()[0]
        if newest is None:
            return CheckResult(
                check, False, blocking, phrase(gettext_noop("%(column)s: no values, so no freshness."), column=column), rows
            )
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
            phrase(gettext_noop("%(column)s: newest value %(hours)s h old."), column=column, hours=f"{hours:.1f}")
            if ok
            else phrase(
                gettext_noop("%(column)s: newest value %(hours)s h old, more than %(limit)s h."),
                column=column,
                hours=f"{hours:.1f}",
                limit=check["max_age_hours"],
            ),
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
