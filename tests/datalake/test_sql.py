"""The read-only SQL sandbox on real Parquet files, with hostile SQL (no database)."""

import csv
import time
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine import sql as sqlmod
from datalake.engine.sql import QueryError, TableSource, check_read_only, export_query_csv, run_query

SLOW = "SELECT sum(a.range * b.range) FROM range(1000000) a CROSS JOIN range(1000000) b"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Two views stored under safe identifiers, shown with Chinese names, as the ingest engine writes them."""
    folder = tmp_path_factory.mktemp("sql")
    inspections = folder / "inspections.parquet"
    pq.write_table(
        pa.table(
            {
                "col_1": [f"P{i:03d}" for i in range(30)],
                "col_2": [60.0 + i for i in range(30)],
                "col_3": ["合格" if i % 3 else "不合格" for i in range(30)],
                "col_4": [date(2024, 1, 1 + i % 28) for i in range(30)],
            }
        ),
        inspections,
    )
    sensors = folder / "sensors.parquet"
    pq.write_table(
        pa.table(
            {
                "col_1": [f"P{i:03d}" for i in range(30)],
                "col_2": [f"M{i % 2}" for i in range(30)],
                "col_3": [float("nan") if i == 0 else i / 10 for i in range(30)],
                "col_4": [b"\x00\xff"] * 30,
            }
        ),
        sensors,
    )
    outside = folder / "secret.parquet"
    pq.write_table(pa.table({"secret": ["do not read"]}), outside)
    return {
        "quality.inspections": TableSource(
            str(inspections), {"col_1": "零件号", "col_2": "温度", "col_3": "结果", "col_4": "检验日期"}
        ),
        "production.sensors": TableSource(str(sensors), {"col_1": "零件号", "col_2": "机器", "col_3": "振动", "col_4": "原始"}),
    }, outside


def query(sql, tables, **kwargs):
    return run_query(sql, tables[0], **kwargs)


def refused(sql, tables, **kwargs) -> QueryError:
    with pytest.raises(QueryError) as caught:
        query(sql, tables, **kwargs)
    return caught.value


# --- Reading ------------------------------------------------------------------------------


def test_join_across_two_views_by_chinese_column_names(tables):
    result = query(
        'SELECT q."零件号", q."温度", s."机器" FROM quality.inspections q '
        'JOIN production.sensors s ON q."零件号" = s."零件号" WHERE q."温度" >= 88 ORDER BY q."零件号"',
        tables,
    )
    assert result.columns == ["零件号", "温度", "机器"]
    assert result.rows == [["P028", 88.0, "M0"], ["P029", 89.0, "M1"]]
    assert (result.row_count_returned, result.truncated) == (2, False)
    assert result.elapsed_ms >= 0


def test_group_by_counts_each_result(tables):
    result = query('SELECT "结果", count(*) AS n FROM quality.inspections GROUP BY ALL ORDER BY n', tables)
    assert result.rows == [["不合格", 10], ["合格", 20]]


def test_row_cap_truncates_and_says_so(tables):
    capped = query("SELECT * FROM quality.inspections", tables, row_cap=10)
    assert (capped.row_count_returned, len(capped.rows), capped.truncated) == (10, 10, True)
    exact = query("SELECT * FROM quality.inspections", tables, row_cap=30)
    assert (exact.row_count_returned, exact.truncated) == (30, False)


def test_row_cap_streams_instead_of_materialising_a_huge_result(tables):
    started = time.monotonic()
    result = query("SELECT range, range::VARCHAR AS s FROM range(500000000)", tables, row_cap=5, timeout_s=10)
    assert (result.rows[-1], result.truncated) == ([4, "4"], True)
    assert time.monotonic() - started < 8


def test_values_are_json_ready(tables):
    result = query(
        'SELECT "检验日期", "振动", "原始", 1.25::DECIMAL(10, 2) AS d, 12345678901234567890.125::DECIMAL(38, 3) AS precise, '
        "TIMESTAMP '2024-01-02 08:00:00' AS ts, [1, 2] AS l, {'a': 'x'} AS st, INTERVAL 2 DAY AS iv "
        'FROM quality.inspections JOIN production.sensors USING ("零件号") WHERE "零件号" = \'P000\'',
        tables,
    )
    (row,) = result.rows
    assert row[:4] == ["2024-01-01", None, "00ff", 1.25]
    assert row[4] == "12345678901234567890.125"  # a float would lose digits
    assert row[5:8] == ["2024-01-02T08:00:00", [1, 2], {"a": "x"}]
    assert isinstance(row[8], str)


@pytest.mark.parametrize(
    "sql",
    [
        'WITH hot AS (SELECT * FROM quality.inspections WHERE "温度" > 80) SELECT count(*) FROM hot',
        "VALUES (1, 'a'), (2, 'b')",
        "FROM production.sensors LIMIT 1",
        "DESCRIBE quality.inspections",
        "SHOW ALL TABLES",
        "EXPLAIN SELECT * FROM production.sensors",
        "/* why */ EXPLAIN ANALYZE SELECT count(*) FROM production.sensors -- done",
        "SELECT 1;",
    ],
)
def test_read_statements_run(tables, sql):
    assert query(sql, tables).rows


def test_only_the_given_views_exist(tables):
    result = query(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() UNION ALL "
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal",
        tables,
    )
    assert sorted(r[0] for r in result.rows) == ["production.sensors", "quality.inspections"]
    described = query("DESCRIBE quality.inspections", tables)
    assert [r[0] for r in described.rows] == ["零件号", "温度", "结果", "检验日期"]


def test_the_sandbox_is_locked(tables):
    result = query(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), "
        "current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions')",
        tables,
    )
    assert result.rows == [[False, True, False, False]]


# --- Refused before anything runs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("INSERT INTO quality.inspections VALUES ('x', 1, 'y', DATE '2024-01-01')", "not_read_only"),
        ('UPDATE quality.inspections SET "温度" = 0', "not_read_only"),
        ("DELETE FROM quality.inspections", "not_read_only"),
        ("CREATE TABLE t AS SELECT 1", "not_read_only"),
        ("CREATE MACRO m() AS 1", "not_read_only"),
        ("DROP VIEW quality.inspections", "not_read_only"),
        ("ALTER VIEW quality.inspections RENAME TO x", "not_read_only"),
        ("COPY (SELECT * FROM quality.inspections) TO '/tmp/leak.csv'", "not_read_only"),
        ("EXPORT DATABASE '/tmp/leak'", "not_read_only"),
        ("IMPORT DATABASE '/tmp/leak'", "not_read_only"),
        ("ATTACH ':memory:' AS x", "not_read_only"),
        ("DETACH memory", "not_read_only"),
        ("INSTALL httpfs", "not_read_only"),
        ("LOAD httpfs", "not_read_only"),
        ("PRAGMA version", "not_read_only"),
        ("SET enable_external_access = true", "not_read_only"),
        ("RESET lock_configuration", "not_read_only"),
        ("CALL pragma_version()", "not_read_only"),
        ("USE production", "not_read_only"),
        ("BEGIN TRANSACTION", "not_read_only"),
        ("EXPLAIN COPY (SELECT 1) TO '/tmp/leak.csv'", "not_read_only"),
        ("EXPLAIN (FORMAT json) COPY (SELECT 1) TO '/tmp/leak.csv'", "not_read_only"),
        ("EXPLAIN ANALYZE INSERT INTO quality.inspections VALUES (1)", "not_read_only"),
        ("SELECT 1; DROP VIEW quality.inspections", "multiple_statements"),
        ("SELECT 1; SELECT 2", "multiple_statements"),
        ("SELEC 1", "syntax"),
        ("   ", "empty"),
        ("-- only a comment", "empty"),
    ],
)
def test_hostile_statements_are_refused_by_the_parser(tables, sql, code):
    with pytest.raises(QueryError) as caught:
        check_read_only(sql)
    assert caught.value.code == code
    assert caught.value.message
    assert refused(sql, tables).code == code


def test_refusal_names_what_may_run(tables):
    error = refused("COPY (SELECT * FROM quality.inspections) TO '/tmp/leak.csv'", tables)
    assert error.code == "not_read_only"
    assert "SELECT" in error.message and "COPY" in error.message


def test_syntax_error_carries_duckdbs_message(tables):
    error = refused("SELECT FROM WHERE", tables)
    assert error.code == "syntax"
    assert "syntax error" in error.message.lower()


def test_worker_refuses_too_when_the_callers_check_is_skipped(tables, monkeypatch):
    """Defence in depth: the worker parses again before it executes."""
    monkeypatch.setattr(sqlmod, "check_read_only", lambda sql: None)
    job = sqlmod._job("ATTACH ':memory:' AS x", tables[0], timeout_s=10, memory_limit="256MB", threads=1, temp_limit="1GB")
    monkeypatch.undo()  # the worker is a fresh interpreter anyway
    with pytest.raises(QueryError) as caught:
        sqlmod._run(job | {"mode": "query", "row_cap": 10}, 10)
    assert caught.value.code == "not_read_only"


# --- Files, URLs and extensions are out of reach, even inside a SELECT ------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/hostname')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('https://example.com/data.parquet')",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
        "WITH x AS (SELECT * FROM read_json('/etc/passwd')) SELECT * FROM x",
    ],
)
def test_file_functions_are_forbidden(tables, sql):
    error = refused(sql, tables)
    assert error.code == "forbidden"
    assert "files" in error.message


def test_parquet_outside_the_views_is_forbidden(tables):
    outside = tables[1]
    error = refused(f"SELECT * FROM read_parquet('{outside}')", tables)
    assert error.code == "forbidden"
    error = refused(f"SELECT * FROM parquet_metadata('{outside}')", tables)
    assert error.code == "forbidden"


def test_a_bare_file_path_is_not_a_table(tables):
    error = refused("SELECT * FROM '/etc/passwd'", tables)
    assert error.code in ("forbidden", "unknown_table")


# --- Errors during execution -------------------------------------------------------------------


def test_unknown_table_lists_the_tables_there_are(tables):
    error = refused("SELECT * FROM maintenance.tickets", tables)
    assert error.code == "unknown_table"
    assert "production.sensors, quality.inspections" in error.message


def test_execution_error_carries_duckdbs_message(tables):
    error = refused('SELECT "湿度" FROM quality.inspections', tables)
    assert error.code == "execution"
    assert "湿度" in error.message


def test_missing_file_is_unavailable(tables, tmp_path):
    error = refused("SELECT 1", ({"quality.gone": TableSource(str(tmp_path / "gone.parquet"))}, None))
    assert error.code == "unavailable"
    assert "quality.gone" in error.message


def test_bad_limits_are_programming_errors(tables):
    with pytest.raises(ValueError):
        query("SELECT 1", tables, memory_limit="1GB'; SET enable_external_access = true; --")
    with pytest.raises(ValueError):
        query("SELECT 1", tables, row_cap=0)
    with pytest.raises(ValueError):
        run_query("SELECT 1", {"a.b.c": tables[0]["quality.inspections"]})


# --- Limits ------------------------------------------------------------------------------------


def test_runaway_query_is_killed_at_the_time_limit(tables):
    started = time.monotonic()
    error = refused(SLOW, tables, timeout_s=2)
    waited = time.monotonic() - started
    assert error.code == "timeout"
    assert "time limit of 2 s exceeded" in error.message
    assert waited < 8
    # The caller is fine and the next query runs.
    assert query("SELECT count(*) FROM production.sensors", tables).rows == [[30]]


def test_memory_hungry_query_hits_the_memory_limit(tables):
    error = refused("SELECT string_agg(range::VARCHAR, ',') FROM range(50000000)", tables, memory_limit="64MB")
    assert error.code == "memory"
    assert "memory limit (64MB" in error.message


# --- CSV export -------------------------------------------------------------------------------


def test_export_writes_the_whole_result_as_csv(tables, tmp_path):
    out = tmp_path / "out.csv"
    result = export_query_csv(
        'SELECT "零件号", "温度", "结果", "检验日期", \'=1+1\' AS f, NULL AS n FROM quality.inspections ORDER BY 1',
        tables[0],
        out,
    )
    assert (result.row_count, result.truncated, result.columns[0]) == (30, False, "零件号")
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["零件号", "温度", "结果", "检验日期", "f", "n"]
    assert rows[1] == ["P000", "60.0", "不合格", "2024-01-01", "'=1+1", ""]
    assert len(rows) == 31


def test_export_stops_at_max_rows_and_says_so(tables, tmp_path):
    out = tmp_path / "big.csv"
    result = export_query_csv("SELECT range FROM range(100000)", tables[0], out, max_rows=25_000, utf8_bom=False)
    assert (result.row_count, result.truncated) == (25_000, True)
    assert len(out.read_text().splitlines()) == 25_001


def test_export_is_as_guarded_as_a_query(tables, tmp_path):
    out = tmp_path / "leak.csv"
    for sql, code in (
        ("SELECT * FROM read_text('/etc/passwd')", "forbidden"),
        ("COPY (SELECT 1) TO '/tmp/leak.csv'", "not_read_only"),
    ):
        with pytest.raises(QueryError) as caught:
            export_query_csv(sql, tables[0], out)
        assert caught.value.code == code
    with pytest.raises(QueryError) as caught:
        export_query_csv(SLOW, tables[0], out, timeout_s=1.5)
    assert caught.value.code == "timeout"
    assert list(tmp_path.iterdir()) == []  # no file, no .part


def test_explain_after_a_chinese_comment_checks_the_right_statement():
    from datalake.engine.sql import QueryError, check_read_only

    check_read_only("/* 温度和湿度 */ EXPLAIN SELECT 1")
    with pytest.raises(QueryError) as err:
        check_read_only("/* 温度和湿度的注释 */ EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'")
    assert err.value.code == "not_read_only"
