"""datalake.engine.dbimport against the real local PostgreSQL and MariaDB.

PostgreSQL (postgres://postgres@127.0.0.1:5432/test) gets a schema of its own per run of this
module, MariaDB (mysql://root@127.0.0.1:3306/test) tables with a prefix of their own; both are
dropped at the end. Without MariaDB its tests skip; PostgreSQL's never do.
"""

import datetime as dt
import os
import socket
import threading
import time
import tracemalloc
import uuid
from decimal import Decimal

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalake.engine.dbimport import DatabaseUrl, check_select, import_query, parse_database_url
from datalake.engine.errors import IngestError

PG_URL = "postgres://postgres@127.0.0.1:5432/test"
MY_URL = "mysql://root@127.0.0.1:3306/test"
MARIADB_START = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
RUN = uuid.uuid4().hex[:8]
SECRET = "Sup3r-secret-pw"


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg():
    """A schema of this module's own, with the tables the tests read; dropped at the end."""
    schema = f"lepton_dbimport_{RUN}"
    con = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(
        f"""CREATE TABLE {schema}.readings (
            id int, big bigint, small smallint, amount numeric(10,2), ratio double precision, score real,
            note text, ok boolean, day date, at timestamp, at_tz timestamptz, tm time, doc json, docb jsonb,
            raw bytea, uid uuid)"""
    )
    con.execute(
        f"""INSERT INTO {schema}.readings VALUES
            (1, 9007199254740993, -3, 12345678.91, 0.1, 1.5, '温度传感器 — ok', true, '2024-02-29',
             '2024-01-02 03:04:05.123456', '2024-01-02 11:04:05+08:00', '23:59:59.5', '{{"a": [1, 2]}}',
             '{{"b": "中"}}', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""
    )
    con.execute(f"CREATE TABLE {schema}.log (n int)")
    con.execute(
        f"""CREATE FUNCTION {schema}.sneaky() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO {schema}.log VALUES (1); RETURN 1; END $$"""
    )
    try:
        yield {"con": con, "schema": schema, "url": parse_database_url(PG_URL)}
    finally:
        con.execute(f"DROP SCHEMA {schema} CASCADE")
        con.close()


@pytest.fixture(scope="module")
def my():
    """Tables prefixed with this module's run id in MariaDB's `test` database; dropped at the end."""
    pymysql = pytest.importorskip("pymysql")
    try:
        con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test", autocommit=True)
    except pymysql.MySQLError as error:
        pytest.skip(f"MariaDB at 127.0.0.1:3306 cannot be reached ({error}); start it with: {MARIADB_START}")
    prefix = f"lepton_{RUN}"
    cur = con.cursor()
    cur.execute("SET time_zone = '+08:00'")
    cur.execute(
        f"""CREATE TABLE {prefix}_readings (
            id INT, big BIGINT, ubig BIGINT UNSIGNED, tiny TINYINT(1), amount DECIMAL(10,2), ratio DOUBLE, score FLOAT,
            note TEXT CHARACTER SET utf8mb4, day DATE, at DATETIME(6), at_ts TIMESTAMP(6) NULL, tm TIME,
            doc JSON, raw BLOB, vb VARBINARY(10), flag BIT(1), bits BIT(12)) DEFAULT CHARSET=utf8mb4"""
    )
    cur.execute(
        f"""INSERT INTO {prefix}_readings VALUES
            (1, 9007199254740993, 18446744073709551615, 1, 12345678.91, 0.1, 1.5, '温度传感器 — ok', '2024-02-29',
             '2024-01-02 03:04:05.123456', '2024-01-02 11:04:05.5', '23:59:59', '{{"a": [1, 2]}}', X'00FF10', X'0102',
             b'1', b'101'),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"""
    )
    cur.execute(f"CREATE TABLE {prefix}_digits (n INT)")
    cur.execute(f"INSERT INTO {prefix}_digits VALUES " + ",".join(f"({i})" for i in range(10)))
    cur.execute(f"CREATE TABLE {prefix}_log (n INT)")
    cur.execute(
        f"""CREATE FUNCTION {prefix}_sneaky() RETURNS INT MODIFIES SQL DATA
            BEGIN INSERT INTO {prefix}_log VALUES (1); RETURN 1; END"""
    )
    try:
        yield {"con": con, "prefix": prefix, "url": parse_database_url(MY_URL)}
    finally:
        for table in ("readings", "digits", "log"):
            cur.execute(f"DROP TABLE IF EXISTS {prefix}_{table}")
        cur.execute(f"DROP FUNCTION IF EXISTS {prefix}_sneaky")
        con.close()


def run(url: DatabaseUrl, query: str, tmp_path, **kwargs):
    dest = tmp_path / "out.parquet"
    result = import_query(url, query, dest, **kwargs)
    assert result.bytes == dest.stat().st_size
    return result, pq.read_table(dest)


def fails(url: DatabaseUrl, query: str, tmp_path, code: str, **kwargs) -> IngestError:
    """The import fails with `code`, leaves nothing at the destination (nor a temp file), never shows the password."""
    dest = tmp_path / "out.parquet"
    with pytest.raises(IngestError) as info:
        import_query(url, query, dest, **kwargs)
    error = info.value
    assert error.code == code, error
    assert not dest.exists()
    assert os.listdir(tmp_path) == []
    for text in (str(error), error.message, repr(error.details)):
        assert SECRET not in text
    return error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A port that accepts TCP connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, scheme, host, port, database, user, password, params",
    [
        ("postgres://reader:pw@db.example.com/plant", "postgresql", "db.example.com", 5432, "plant", "reader", "pw", {}),
        ("postgresql://reader@10.0.0.5:6432/plant?sslmode=require", "postgresql", "10.0.0.5", 6432, "plant", "reader", None,
         {"sslmode": "require"}),
        ("postgresql+psycopg://reader@[::1]/plant", "postgresql", "::1", 5432, "plant", "reader", None, {}),
        ("mysql://root@127.0.0.1/test", "mysql", "127.0.0.1", 3306, "test", "root", None, {}),
        ("mariadb://app:p%40ss%3Aw%2Frd@maria:3307/erp?ssl_mode=required", "mysql", "maria", 3307, "erp", "app", "p@ss:w/rd",
         {"ssl_mode": "REQUIRED"}),
        ("postgresql://d%C3%BCsseldorf@h/%E7%94%9F%E4%BA%A7", "postgresql", "h", 5432, "生产", "düsseldorf", None, {}),
    ],
)  # fmt: skip
def test_parse_database_url_reads_every_part(text, scheme, host, port, database, user, password, params):
    url = parse_database_url(text)
    assert (url.scheme, url.host, url.port, url.database, url.user, url.password, url.params) == (
        scheme, host, port, database, user, password, params,
    )  # fmt: skip
    again = parse_database_url(url.without_password())
    assert (again.host, again.port, again.database, again.user, again.params) == (host, port, database, user, params)
    assert again.password is None


@pytest.mark.parametrize(
    "text, says",
    [
        ("", "Enter a database URL"),
        (f"reader:{SECRET}@db/plant", "must start with postgresql://"),
        (f"http://reader:{SECRET}@db/plant", "'http' is not supported"),
        (f"sqlite://reader:{SECRET}@db/plant", "'sqlite' is not supported"),
        (f"postgresql://reader:{SECRET}@db:99999/plant", "port must be a number"),
        (f"postgresql://reader:{SECRET}@db:abc/plant", "port must be a number"),
        (f"postgresql://reader:{SECRET}@/plant", "names no host"),
        (f"postgresql://reader:{SECRET}@%2Fvar%2Frun%2Fpostgresql/plant", "not a host name"),
        (f"postgresql://:{SECRET}@db/plant", "names no user"),
        (f"postgresql://reader:{SECRET}@db", "names no database"),
        (f"postgresql://reader:{SECRET}@db/", "names no database"),
        (f"postgresql://reader:{SECRET}@db/a/b", "contains '/'"),
        (f"postgresql://reader:{SECRET}@db/plant?options=-c%20default_transaction_read_only%3Doff", "'options' is not supported"),
        (f"postgresql://reader:{SECRET}@db/plant?sslmode=sometimes", "sslmode must be one of"),
        (f"postgresql://reader:{SECRET}@db/plant?sslmode=require&sslmode=disable", "given twice"),
        (f"mysql://reader:{SECRET}@db/plant?ssl_mode=maybe", "ssl_mode must be one of"),
        (f"mysql://reader:{SECRET}@db/plant?sslmode=require", "'sslmode' is not supported"),
        (f"postgresql://reader:pa#{SECRET}@db/plant", "'#'"),
    ],
)
def test_parse_database_url_refuses_bad_urls_naming_the_problem_not_the_password(text, says):
    with pytest.raises(IngestError) as info:
        parse_database_url(text)
    assert info.value.code == "bad_url"
    assert says in info.value.message
    assert SECRET not in str(info.value)


def test_redacted_url_never_shows_the_password():
    url = parse_database_url(f"postgresql://reader:{SECRET}@db.example.com:5432/plant?sslmode=require")
    assert url.redacted() == "postgresql://reader:***@db.example.com:5432/plant?sslmode=require"
    assert url.without_password() == "postgresql://reader@db.example.com:5432/plant?sslmode=require"
    assert SECRET not in repr(url) and SECRET not in str(url)
    assert parse_database_url("mysql://root@[::1]/test").redacted() == "mysql://root@[::1]:3306/test"
    odd = parse_database_url("mysql://a%40b:p%40ss@h/d")
    assert odd.redacted() == "mysql://a%40b:***@h:3306/d"


# --- the statement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, dialect, statement",
    [
        ("SELECT 1", None, "SELECT 1"),
        ("  select 1;  ", None, "select 1"),
        ("SELECT 1 ;; -- done\n", None, "SELECT 1"),
        ("select 'a;b'", None, "select 'a;b'"),
        ("select 'it''s; fine'", None, "select 'it''s; fine'"),
        ("-- the batches\nSELECT id FROM t /* ; */ WHERE note <> ';'", None, "SELECT id FROM t /* ; */ WHERE note <> ';'"),
        ("WITH x AS (SELECT 1 AS a) SELECT a FROM x", None, "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
        ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n", None, None),
        ("VALUES (1, 'a'), (2, 'b')", None, None),
        ("TABLE batches", None, None),
        ("(SELECT 1) UNION ALL (SELECT 2)", None, None),
        ('SELECT "delete", "insert into" FROM t', "postgresql", None),
        ("SELECT `update`, `drop` FROM t", "mysql", None),
        ("SELECT t.update, 1 AS delete FROM t", None, None),
        ("SELECT replace(name, 'a', 'b') FROM t", None, None),
        ("SELECT substring(name FROM 1 FOR 2) FROM t", None, None),
        ("SELECT $$; DROP TABLE x; $$, $tag$ ' $tag$", "postgresql", None),
        ("SELECT E'it\\'s; DROP TABLE x'", "postgresql", None),
        ("SELECT 'it\\'s; DROP TABLE x'", "mysql", None),
        ('SELECT "a;b" # a MySQL comment; DROP TABLE x', "mysql", 'SELECT "a;b"'),
        ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1", "mysql", None),
        ("SELECT 1 AS 温度, '中文;' AS 说明", None, None),
    ],
)
def test_check_select_accepts_one_read_statement(query, dialect, statement):
    assert check_select(query, dialect=dialect) == (statement or query)


@pytest.mark.parametrize(
    "query, dialect, code, says",
    [
        ("", None, "bad_query", "Write a query"),
        ("  ;  ; ", None, "bad_query", "Write a query"),
        ("-- only a comment", None, "bad_query", "Write a query"),
        ("select 'unterminated", None, "bad_query", "never closed"),
        ("SELECT 1 /* open", None, "bad_query", "never closed"),
        ("SELECT 1; DROP TABLE x", None, "not_read_only", "holds 2"),
        ("SELECT 1;\nSELECT 2;", None, "not_read_only", "holds 2"),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", None, "not_read_only", "DELETE"),
        ("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", None, "not_read_only", "INSERT"),
        ("WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM x", None, "not_read_only", "UPDATE"),
        ("INSERT INTO t VALUES (1)", None, "not_read_only", "INSERT statements cannot run here"),
        ("UPDATE t SET a = 1", None, "not_read_only", "UPDATE"),
        ("DELETE FROM t", None, "not_read_only", "DELETE"),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", None, "not_read_only", "MERGE"),
        ("CREATE TABLE t (a int)", None, "not_read_only", "CREATE"),
        ("DROP TABLE t", None, "not_read_only", "DROP"),
        ("ALTER TABLE t ADD b int", None, "not_read_only", "ALTER"),
        ("GRANT SELECT ON t TO someone", None, "not_read_only", "GRANT"),
        ("COPY t TO '/tmp/t.csv'", None, "not_read_only", "COPY"),
        ("CALL refresh()", None, "not_read_only", "CALL"),
        ("DO $$ BEGIN DELETE FROM t; END $$", "postgresql", "not_read_only", "DO"),
        ("LOCK TABLE t", None, "not_read_only", "LOCK"),
        ("SET search_path = other", None, "not_read_only", "SET statements"),
        ("EXPLAIN ANALYZE DELETE FROM t", None, "not_read_only", "EXPLAIN"),
        ("REPLACE INTO t VALUES (1)", None, "not_read_only", "REPLACE"),
        ("SELECT * INTO new_table FROM t", None, "not_read_only", "INTO"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "mysql", "not_read_only", "INTO"),
        ("SELECT a INTO @v FROM t", "mysql", "not_read_only", "INTO"),
        ("SELECT * FROM t FOR UPDATE", None, "not_read_only", "locks rows"),
        ("SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED", None, "not_read_only", "locks rows"),
        ("SELECT * FROM t FOR SHARE", None, "not_read_only", "locks rows"),
        ("SELECT * FROM t LOCK IN SHARE MODE", "mysql", "not_read_only", "locks rows"),
        ("SELECT 1 /*! ; DROP TABLE t */", "mysql", "not_read_only", "/*!"),
        ("SELECT 1 /*! ; DROP TABLE t */", None, "not_read_only", "/*!"),
        # MySQL reads 'it\'s…' as one string, PostgreSQL as 'it\' then more: without a dialect both must pass.
        ("SELECT 'it\\'s; DROP TABLE x; --'", None, "not_read_only", "holds 2"),
        ("SELECT 1 # ; DROP TABLE x", "postgresql", "not_read_only", "holds 2"),
        ("SELECT 1 --; DROP TABLE x", "mysql", "not_read_only", "holds 2"),
    ],
)
def test_check_select_refuses_anything_else(query, dialect, code, says):
    with pytest.raises(IngestError) as info:
        check_select(query, dialect=dialect)
    assert info.value.code == code
    assert says in info.value.message


def test_check_select_runs_before_connecting(tmp_path):
    nowhere = parse_database_url(f"postgresql://reader:{SECRET}@127.0.0.1:{free_port()}/db")
    fails(nowhere, "DELETE FROM t", tmp_path, "not_read_only")


# --- PostgreSQL -------------------------------------------------------------------------


def test_pg_types_map_to_arrow_and_values_round_trip(pg, tmp_path):
    result, table = run(pg["url"], f"SELECT * FROM {pg['schema']}.readings ORDER BY id", tmp_path)
    assert result.format == "postgresql" and result.rows == 2 and result.source_bytes == 0
    types = {c.name: (c.type, c.logical) for c in result.columns}
    assert types == {
        "id": ("int32", "int"),
        "big": ("int64", "int"),
        "small": ("int16", "int"),
        "amount": ("decimal128(10, 2)", "float"),
        "ratio": ("double", "float"),
        "score": ("float", "float"),
        "note": ("string", "string"),
        "ok": ("bool", "bool"),
        "day": ("date32[day]", "date"),
        "at": ("timestamp[us]", "timestamp"),
        "at_tz": ("timestamp[us, tz=UTC]", "timestamp_tz"),
        "tm": ("time64[us]", "other"),
        "doc": ("string", "string"),
        "docb": ("string", "string"),
        "raw": ("binary", "other"),
        "uid": ("string", "string"),
    }
    first, empty = table.to_pylist()
    assert first["big"] == 9007199254740993
    assert first["amount"] == Decimal("12345678.91")
    assert first["ratio"] == 0.1 and first["score"] == 1.5
    assert first["note"] == "温度传感器 — ok"
    assert first["ok"] is True
    assert first["day"] == dt.date(2024, 2, 29)
    assert first["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert first["at_tz"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert first["tm"] == dt.time(23, 59, 59, 500000)
    assert first["doc"] == '{"a": [1, 2]}' and first["docb"] == '{"b": "中"}'
    assert first["raw"] == b"\x00\xff\x10"
    assert first["uid"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert set(empty.values()) == {None, 2}
    assert result.warnings == []


def test_pg_types_without_an_exact_arrow_type_become_text_with_a_warning(pg, tmp_path):
    result, table = run(
        pg["url"],
        "SELECT 1.5::numeric AS total, array[1, 2] AS ids, interval '1 day' AS span, 'NaN'::numeric(10, 2) AS odd, "
        "10::numeric(40, 2) AS wide",
        tmp_path,
    )
    assert [c.type for c in result.columns] == ["string", "string", "string", "decimal128(10, 2)", "string"]
    assert table.to_pylist() == [{"total": "1.5", "ids": "{1,2}", "span": "1 day", "odd": None, "wide": "10.00"}]
    warnings = " | ".join(result.warnings)
    assert "'total' is numeric and has no fixed precision" in warnings
    assert "'ids' (type integer[]) is stored as text" in warnings
    assert "'span' (type interval)" in warnings
    assert "'odd' has 1 value that decimal128(10, 2) cannot hold (e.g. 'NaN')" in warnings
    assert "'wide' is numeric and has 40 digits" in warnings


def test_pg_chinese_column_names_keep_their_name_in_the_metadata(pg, tmp_path):
    result, table = run(pg["url"], 'SELECT 1 AS "温度", 2 AS "Flow Rate", 3 AS "select"', tmp_path)
    assert [(c.name, c.identifier) for c in result.columns] == [
        ("温度", "col_1"),
        ("Flow Rate", "flow_rate"),
        ("select", "select_"),
    ]
    assert table.column_names == ["col_1", "flow_rate", "select_"]
    assert table.schema.field("col_1").metadata[b"lepton.name"].decode() == "温度"
    assert "温度" in table.schema.metadata[b"lepton.columns"].decode()


def test_pg_streams_200k_rows_in_batches_with_bounded_memory(pg, tmp_path):
    seen: list[int] = []
    arrow_peak = [0]

    def progress(rows: int) -> None:
        seen.append(rows)
        arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes())

    query = "SELECT g AS n, repeat('x', 100) || g AS pad FROM generate_series(1, 200000) AS g"
    import_query(pg["url"], "SELECT 1 AS warm", tmp_path / "warm.parquet")  # the driver's modules are loaded
    tracemalloc.start()
    try:
        result = import_query(pg["url"], query, tmp_path / "out.parquet", batch_rows=2000, progress=progress)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows == 200_000
    assert len(seen) == 100 and seen == sorted(seen) and seen[-1] == 200_000
    # All rows at once peak at ~50 MB of Python objects; batches of 2,000 at ~2 MB.
    assert python_peak < 10 * 1024 * 1024, python_peak
    assert arrow_peak[0] < 96 * 1024 * 1024, arrow_peak[0]
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 200_000
    assert table.column("n")[199_999].as_py() == 200_000


def test_pg_same_rows_give_a_byte_identical_file(pg, tmp_path):
    query = "SELECT g, md5(g::text) AS h, date '2024-01-01' + g AS d FROM generate_series(1, 5000) AS g ORDER BY g"
    first = import_query(pg["url"], query, tmp_path / "a.parquet", batch_rows=700)
    second = import_query(pg["url"], query, tmp_path / "b.parquet", batch_rows=700)
    other_batches = import_query(pg["url"], query, tmp_path / "c.parquet", batch_rows=5000)
    assert first.sha256 == second.sha256 == other_batches.sha256
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    changed = import_query(pg["url"], query.replace("5000", "5001"), tmp_path / "d.parquet")
    assert changed.sha256 != first.sha256


def test_pg_function_that_writes_fails_because_the_transaction_is_read_only(pg, tmp_path):
    error = fails(pg["url"], f"SELECT {pg['schema']}.sneaky()", tmp_path, "not_read_only")
    assert "read-only transaction" in error.message
    assert pg["con"].execute(f"SELECT count(*) FROM {pg['schema']}.log").fetchone() == (0,)
    fails(pg["url"], f"SELECT nextval('{pg['schema']}.nope_seq')", tmp_path, "query_failed")


@pytest.mark.slow
def test_pg_query_over_the_time_limit_stops(pg, tmp_path):
    started = time.monotonic()
    error = fails(pg["url"], "SELECT pg_sleep(5)", tmp_path, "query_timeout", timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert "0.5 s" in error.message


@pytest.mark.slow
def test_pg_time_limit_covers_the_whole_stream_not_one_fetch(pg, tmp_path):
    started = time.monotonic()
    query = "SELECT g, pg_sleep(0.01) FROM generate_series(1, 1000) AS g"
    fails(pg["url"], query, tmp_path, "query_timeout", timeout_s=1, batch_rows=20)
    assert time.monotonic() - started < 4


def test_pg_unreachable_port_is_connect_failed(tmp_path):
    port = free_port()
    url = parse_database_url(f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/test")
    started = time.monotonic()
    error = fails(url, "SELECT 1", tmp_path, "connect_failed", connect_timeout_s=2)
    assert time.monotonic() - started < 3
    assert f"Could not reach the database server at 127.0.0.1:{port}" in error.message
    assert "Connection refused" in error.message


@pytest.mark.slow
def test_pg_server_that_does_not_answer_is_connect_failed_within_the_timeout(silent_server, tmp_path):
    url = parse_database_url(f"postgresql://postgres:{SECRET}@127.0.0.1:{silent_server}/test")
    started = time.monotonic()
    error = fails(url, "SELECT 1", tmp_path, "connect_failed", connect_timeout_s=2)
    assert time.monotonic() - started < 4
    assert "did not answer within 2 s" in error.message


def test_pg_unknown_user_is_connect_failed_without_the_password(tmp_path):
    url = parse_database_url(f"postgresql://nobody_{RUN}:{SECRET}@127.0.0.1:5432/test")
    error = fails(url, "SELECT 1", tmp_path, "connect_failed")
    assert f"refused the user 'nobody_{RUN}'" in error.message


def test_pg_unknown_database_is_connect_failed(tmp_path):
    url = parse_database_url(f"postgresql://postgres:{SECRET}@127.0.0.1:5432/nodb_{RUN}")
    error = fails(url, "SELECT 1", tmp_path, "connect_failed")
    assert f"has no database 'nodb_{RUN}'" in error.message


def test_pg_unknown_table_is_query_failed_with_the_servers_message(pg, tmp_path):
    error = fails(pg["url"], f"SELECT * FROM {pg['schema']}.missing", tmp_path, "query_failed")
    assert f'relation "{pg["schema"]}.missing" does not exist' in error.message


def test_pg_more_rows_than_max_rows_is_refused(pg, tmp_path):
    error = fails(
        pg["url"], "SELECT g FROM generate_series(1, 1001) AS g", tmp_path, "too_many_rows", max_rows=1000, batch_rows=300
    )
    assert "more than 1,000 rows" in error.message
    result, _ = run(pg["url"], "SELECT g FROM generate_series(1, 1000) AS g", tmp_path, max_rows=1000, batch_rows=300)
    assert result.rows == 1000


def test_pg_no_rows_no_columns_and_duplicate_names_are_refused(pg, tmp_path):
    fails(pg["url"], f"SELECT * FROM {pg['schema']}.readings WHERE false", tmp_path, "no_rows")
    fails(pg["url"], "SELECT FROM generate_series(1, 3)", tmp_path, "no_columns")
    error = fails(pg["url"], "SELECT 1 AS a, 2 AS a", tmp_path, "duplicate_columns")
    assert "'a'" in error.message and "AS" in error.message
    error = fails(pg["url"], "SELECT 1, 2", tmp_path, "duplicate_columns")
    assert "?column?" in error.message


def test_pg_file_already_at_the_destination_stays_after_a_failure(pg, tmp_path):
    dest = tmp_path / "out.parquet"
    dest.write_bytes(b"previous")
    with pytest.raises(IngestError):
        import_query(pg["url"], "SELECT * FROM missing_table", dest)
    assert dest.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.parquet"]


# --- MariaDB / MySQL --------------------------------------------------------------------


def test_mysql_types_map_to_arrow_and_values_round_trip(my, tmp_path):
    result, table = run(my["url"], f"SELECT * FROM {my['prefix']}_readings ORDER BY id", tmp_path)
    assert result.format == "mysql" and result.rows == 2
    types = {c.name: (c.type, c.logical) for c in result.columns}
    assert types == {
        "id": ("int32", "int"),
        "big": ("int64", "int"),
        "ubig": ("uint64", "int"),
        "tiny": ("int8", "int"),
        "amount": ("decimal128(10, 2)", "float"),
        "ratio": ("double", "float"),
        "score": ("float", "float"),
        "note": ("string", "string"),
        "day": ("date32[day]", "date"),
        "at": ("timestamp[us]", "timestamp"),
        "at_ts": ("timestamp[us, tz=UTC]", "timestamp_tz"),
        "tm": ("time64[us]", "other"),
        "doc": ("string", "string"),
        "raw": ("binary", "other"),
        "vb": ("binary", "other"),
        "flag": ("bool", "bool"),
        "bits": ("uint64", "int"),
    }
    first, empty = table.to_pylist()
    assert first["big"] == 9007199254740993 and first["ubig"] == 18446744073709551615
    assert first["tiny"] == 1
    assert first["amount"] == Decimal("12345678.91")
    assert first["ratio"] == 0.1 and first["score"] == 1.5
    assert first["note"] == "温度传感器 — ok"
    assert first["day"] == dt.date(2024, 2, 29)
    assert first["at"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert first["at_ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=dt.UTC)  # written at +08:00
    assert first["tm"] == dt.time(23, 59, 59)
    assert first["doc"].replace(" ", "") == '{"a":[1,2]}'
    assert first["raw"] == b"\x00\xff\x10" and first["vb"] == b"\x01\x02"
    assert first["flag"] is True and first["bits"] == 5
    assert set(empty.values()) == {None, 2}


def test_mysql_values_a_type_cannot_hold_become_null_with_a_warning(my, tmp_path):
    result, table = run(
        my["url"],
        "SELECT CAST('-01:00:00' AS TIME) AS span, CAST(1 AS DECIMAL(50, 2)) AS wide, '温度' AS note",
        tmp_path,
    )
    assert [c.type for c in result.columns] == ["time64[us]", "string", "string"]
    assert table.to_pylist() == [{"span": None, "wide": "1.00", "note": "温度"}]
    warnings = " | ".join(result.warnings)
    assert "'span' has 1 value that time64[us] cannot hold" in warnings
    assert "'wide' is a decimal with 50 digits" in warnings


def test_mysql_chinese_column_names_keep_their_name_in_the_metadata(my, tmp_path):
    result, table = run(my["url"], "SELECT 1 AS `温度`, 2 AS `Flow Rate`", tmp_path)
    assert [(c.name, c.identifier) for c in result.columns] == [("温度", "col_1"), ("Flow Rate", "flow_rate")]
    assert table.schema.field("col_1").metadata[b"lepton.name"].decode() == "温度"


def _mysql_200k(prefix: str) -> str:
    digits = ", ".join(f"{prefix}_digits d{i}" for i in range(5))
    n = " + ".join(f"d{i}.n * {10**i}" for i in range(5))
    return (
        f"SELECT {n} + 100000 * two.n AS n, CONCAT(REPEAT('x', 100), d0.n) AS pad "
        f"FROM {digits}, (SELECT 0 AS n UNION ALL SELECT 1) AS two ORDER BY n"
    )


def test_mysql_streams_200k_rows_in_batches_with_bounded_memory(my, tmp_path):
    seen: list[int] = []
    query = _mysql_200k(my["prefix"])
    import_query(my["url"], "SELECT 1 AS warm", tmp_path / "warm.parquet")  # the driver's modules are loaded
    tracemalloc.start()
    try:
        result = import_query(my["url"], query, tmp_path / "out.parquet", batch_rows=2000, progress=seen.append)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows == 200_000
    assert len(seen) == 100 and seen[-1] == 200_000
    assert python_peak < 10 * 1024 * 1024, python_peak
    table = pq.read_table(tmp_path / "out.parquet", columns=["n"])
    assert table.column("n").to_pylist()[:3] == [0, 1, 2]


def test_mysql_same_rows_give_a_byte_identical_file(my, tmp_path):
    query = f"SELECT * FROM {my['prefix']}_readings ORDER BY id"
    first = import_query(my["url"], query, tmp_path / "a.parquet")
    second = import_query(my["url"], query, tmp_path / "b.parquet", batch_rows=1)
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_mysql_function_that_writes_fails_because_the_transaction_is_read_only(my, tmp_path):
    error = fails(my["url"], f"SELECT {my['prefix']}_sneaky()", tmp_path, "not_read_only")
    assert "READ ONLY" in error.message
    cur = my["con"].cursor()
    cur.execute(f"SELECT COUNT(*) FROM {my['prefix']}_log")
    assert cur.fetchone() == (0,)


@pytest.mark.slow
def test_mysql_query_over_the_time_limit_stops(my, tmp_path):
    started = time.monotonic()
    fails(my["url"], "SELECT SLEEP(5)", tmp_path, "query_timeout", timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_mysql_unreachable_port_is_connect_failed(tmp_path):
    port = free_port()
    url = parse_database_url(f"mysql://root:{SECRET}@127.0.0.1:{port}/test")
    error = fails(url, "SELECT 1", tmp_path, "connect_failed", connect_timeout_s=2)
    assert f"Could not reach the database server at 127.0.0.1:{port}" in error.message


@pytest.mark.slow
def test_mysql_server_that_does_not_answer_is_connect_failed_within_the_timeout(silent_server, tmp_path):
    url = parse_database_url(f"mysql://root:{SECRET}@127.0.0.1:{silent_server}/test")
    started = time.monotonic()
    error = fails(url, "SELECT 1", tmp_path, "connect_failed", connect_timeout_s=1)
    assert time.monotonic() - started < 3
    assert "did not answer within 1 s" in error.message


def test_mysql_wrong_password_is_connect_failed_without_the_password(my, tmp_path):
    url = parse_database_url(f"mysql://root:{SECRET}@127.0.0.1:3306/test")
    error = fails(url, "SELECT 1", tmp_path, "connect_failed")
    assert "refused the user 'root': wrong password, or no such user" in error.message


def test_mysql_unknown_database_is_connect_failed(my, tmp_path):
    url = parse_database_url(f"mysql://root@127.0.0.1:3306/nodb_{RUN}")
    error = fails(url, "SELECT 1", tmp_path, "connect_failed")
    assert f"has no database 'nodb_{RUN}'" in error.message


def test_mysql_unknown_table_is_query_failed_with_the_servers_message(my, tmp_path):
    error = fails(my["url"], f"SELECT * FROM {my['prefix']}_missing", tmp_path, "query_failed")
    assert f"{my['prefix']}_missing' doesn't exist" in error.message


def test_mysql_more_rows_than_max_rows_is_refused(my, tmp_path):
    fails(my["url"], _mysql_200k(my["prefix"]), tmp_path, "too_many_rows", max_rows=5000, batch_rows=1000)


def test_mysql_no_rows_and_duplicate_names_are_refused(my, tmp_path):
    fails(my["url"], f"SELECT * FROM {my['prefix']}_readings WHERE 1 = 0", tmp_path, "no_rows")
    fails(my["url"], "SELECT 1 AS a, 2 AS a", tmp_path, "duplicate_columns")


def test_mysql_timeout_thread_does_not_outlive_the_import(my, tmp_path):
    before = threading.active_count()
    run(my["url"], "SELECT 1 AS one", tmp_path)
    assert threading.active_count() <= before
