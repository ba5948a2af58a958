"""Import the result of one SQL query on a production database into one zstd Parquet file.

    url = parse_database_url("postgresql://reader@db.example:5432/plant?sslmode=require")
    url = dataclasses.replace(url, password=decrypt(stored))   # the services layer keeps it apart
    result = import_query(url, "SELECT * FROM batches", "out.parquet", timeout_s=300)

PostgreSQL goes through psycopg 3, MySQL and MariaDB through PyMySQL. The rows are streamed
with a server-side cursor (a psycopg named cursor, a PyMySQL SSCursor) `batch_rows` at a time,
so memory does not grow with the result. Column types are mapped from the cursor's description
before the first row, so every batch has the same Arrow schema.

Three guards keep an import from changing the source, from the outside in:
- `check_select` admits one SELECT / WITH … SELECT / VALUES / TABLE statement and refuses
  words that write or lock (INSERT … INTO, FOR UPDATE …). It tokenizes strings, quoted names
  and comments per dialect, but it is not the server's parser;
- the statement runs in a READ ONLY transaction, so a function that writes fails on the
  server (`not_read_only`), and neither driver sends several statements in one call;
- the department should still give Lepton an account that may only read.

Decisions (tests/datalake/test_dbimport.py pins them):
- Like ingest.py: no rows is refused (`no_rows`), duplicate column names are refused
  (`duplicate_columns`, name them with AS), columns are named by their safe identifier with
  the original name in the field metadata (`lepton.name`), and the file is written beside the
  destination and renamed into place.
- The same rows give a byte-identical file: row groups are sized from the first rows, not
  from batch_rows, and nothing about the run (time, URL) is written into the file.
- Types the Parquet file cannot hold exactly become text: numeric without a precision or
  above 38 digits, arrays, intervals, ranges, unknown types. JSON and UUID are text anyway.
  MySQL TINYINT(1) stays an integer (it may hold 2); BIT(1) becomes a boolean.
- A value that does not fit its column's type (NaN in numeric(10,2), MySQL's 0000-00-00, a
  MySQL TIME beyond 24 h) is stored as NULL, with a warning naming the column and an example.
- Time stamps with a time zone are read in a UTC session and stored as timestamp[us, UTC].
- The password never appears in a message, a repr or `redacted()`; messages name the host.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from . import sniff
from .errors import IngestError, Phrase, gettext_noop, ngettext, phrase
from .ingest import _clean_names, _dictionary_columns, _logical, _sha256, _with_names
from .types import MB, ColumnInfo, IngestResult

SCHEMES = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
PG_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
MYSQL_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
# Query parameters a URL may carry; anything else (libpq's `options`, `service`, `host` …)
# could change what the import connects to or how, so it is refused.
PARAMS = {
    "postgresql": ("sslmode", "sslrootcert", "sslcert", "sslkey"),
    "mysql": ("ssl_mode", "ssl_ca", "ssl_cert", "ssl_key"),
}
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
APPLICATION_NAME = "lepton-import"
PORT_RANGE = gettext_noop("The port must be a number from 1 to 65535.")
ENCODE_HINT = gettext_noop("In a user name or password, write : / ? # @ as %3A %2F %3F %23 %40.")

ALLOWED = gettext_noop("SELECT, WITH … SELECT, VALUES or TABLE")
MAX_QUERY_CHARS = 1_000_000
STATEMENT_STARTS = {"SELECT", "WITH", "VALUES", "TABLE"}
# Words that write, grant or lock wherever they stand (outside strings, quoted names and
# comments), e.g. `WITH x AS (DELETE … RETURNING *) SELECT …` or `SELECT … INTO t`. SET and
# DO only start statements, which the list of starts already refuses.
WRITING_WORDS = {"INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE"}
WRITING_WORDS |= {"GRANT", "REVOKE", "COPY", "CALL", "INTO", "LOCK"}
# REPLACE is also a string function in both dialects: refused only as `REPLACE INTO`.
LOCKING_AFTER_FOR = {"UPDATE", "SHARE", "NO", "KEY"}  # FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE

ROW_GROUP_ROWS = 128 * 1024
ROW_GROUP_BYTES = 128 * MB
SIZING_ROWS = 1024  # row groups are sized from this many first rows, whatever batch_rows is


@dataclass(frozen=True)
class DatabaseUrl:
    """Where to connect; `password` is kept out of `repr` and of everything this module says."""

    scheme: str  # "postgresql" | "mysql"
    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    params: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL with the password shown as `***` (for pages and logs)."""
        return self._url("***" if self.password is not None else None)

    def without_password(self) -> str:
        """The URL with no password at all: what is stored beside the encrypted password."""
        return self._url(None)

    def _url(self, password: str | None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = quote(self.user, safe="")
        if password is not None:
            auth += f":{password}"
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in self.params.items())
        return f"{self.scheme}://{auth}@{host}:{self.port}/{quote(self.database, safe='')}" + (f"?{query}" if query else "")


def parse_database_url(url: str) -> DatabaseUrl:
    """Read `postgres[ql]://user[:password]@host[:port]/database[?sslmode=…]` or the mysql:// /
    mariadb:// equivalent; raise IngestError `bad_url` naming what is wrong (never echoing the URL,
    which may hold the password)."""
    if not isinstance(url, str) or not url.strip():
        raise _bad_url(gettext_noop("Enter a database URL, e.g. postgresql://user@host:5432/database."))
    url = url.strip()
    scheme_text, sep, _ = url.partition("://")
    if not sep:
        raise _bad_url(gettext_noop("The URL must start with postgresql:// or mysql:// (also postgres:// or mariadb://)."))
    scheme = SCHEMES.get(scheme_text.lower().split("+", 1)[0])  # postgresql+psycopg:// as SQLAlchemy writes it
    if scheme is None:
        raise _bad_url(
            phrase(
                gettext_noop("The database kind '%(kind)s' is not supported; use postgresql:// or mysql:// (or mariadb://)."),
                kind=scheme_text,
            )
        )
    if "#" in url:
        raise _bad_url(gettext_noop("The URL must not contain '#'; in a password write it as %23."))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url(phrase(gettext_noop("The port must be a number from 1 to 65535. %(hint)s"), hint=ENCODE_HINT)) from None
    host = parts.hostname or ""
    if not host:
        raise _bad_url(gettext_noop("The URL names no host, e.g. postgresql://user@db.example.com:5432/database."))
    if not _valid_host(host):
        raise _bad_url(phrase(gettext_noop("'%(host)s' is not a host name or an IP address."), host=host))
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _bad_url(PORT_RANGE)
    user = unquote(parts.username or "")
    if not user:
        raise _bad_url(gettext_noop("The URL names no user, e.g. postgresql://reader@host:5432/database."))
    password = unquote(parts.password) if parts.password is not None else None
    database = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if not database:
        raise _bad_url(gettext_noop("The URL names no database: add it after the host, e.g. …@host:5432/production."))
    if "/" in database:
        raise _bad_url(
            phrase(gettext_noop("The database name '%(database)s' contains '/'; the URL ends with /database."), database=database)
        )
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in PARAMS[scheme]:
            raise _bad_url(
                phrase(
                    gettext_noop("The URL option '%(option)s' is not supported here; the options allowed are: %(allowed)s."),
                    option=key,
                    allowed=", ".join(PARAMS[scheme]),
                )
            )
        if key in params:
            raise _bad_url(phrase(gettext_noop("The URL option '%(option)s' is given twice."), option=key))
        params[key] = value
    if "sslmode" in params and params["sslmode"] not in PG_SSLMODES:
        raise _bad_url(
            phrase(
                gettext_noop("sslmode must be one of %(modes)s, not '%(mode)s'."),
                modes=", ".join(PG_SSLMODES),
                mode=params["sslmode"],
            )
        )
    if "ssl_mode" in params:
        params["ssl_mode"] = params["ssl_mode"].upper()
        if params["ssl_mode"] not in MYSQL_SSL_MODES:
            raise _bad_url(phrase(gettext_noop("ssl_mode must be one of %(modes)s."), modes=", ".join(MYSQL_SSL_MODES)))
    return DatabaseUrl(scheme=scheme, host=host, port=port, database=database, user=user, password=password, params=params)


def _valid_host(host: str) -> bool:
    # Only names and addresses: a socket path (`%2Fvar%2Frun…`) would reach the worker's own
    # local database through peer authentication.
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOST_NAME.match(host)) and ".." not in host


def _bad_url(message: Phrase) -> IngestError:
    return IngestError(IngestError.BAD_URL, message)


# --- the statement ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "punct" or "literal" (strings, quoted names, numbers, parameters)
    text: str
    start: int
    end: int


def check_select(query: str, *, dialect: str | None = None) -> str:
    """Return the one read statement in `query`, without trailing semicolons and comments.

    `dialect` ("postgresql" or "mysql") says how strings, quoted names and comments are read
    (MySQL: backslash escapes, `#` comments, backquoted names); without it the query must pass
    as either. Raise IngestError `bad_query` (empty, unterminated string or comment) or
    `not_read_only`.
    """
    if not isinstance(query, str) or not query.strip():
        raise IngestError(IngestError.BAD_QUERY, phrase(gettext_noop("Write a query: %(allowed)s."), allowed=ALLOWED))
    if len(query) > MAX_QUERY_CHARS:
        raise IngestError(
            IngestError.BAD_QUERY,
            phrase(gettext_noop("The query is longer than %(limit)s characters."), limit=f"{MAX_QUERY_CHARS:,}"),
        )
    if dialect is not None and dialect not in DEFAULT_PORTS:
        raise ValueError(f"dialect must be 'postgresql' or 'mysql', not {dialect!r}.")
    checked = [_check_one(query, d) for d in ([dialect] if dialect else ["postgresql", "mysql"])]
    return checked[0]


def _check_one(query: str, dialect: str) -> str:
    statements: list[list[_Token]] = [[]]
    for token in _tokens(query, dialect):
        if token.kind == "punct" and token.text == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    if not statements:
        raise IngestError(IngestError.BAD_QUERY, phrase(gettext_noop("Write a query: %(allowed)s."), allowed=ALLOWED))
    if len(statements) > 1:
        raise IngestError(
            IngestError.NOT_READ_ONLY,
            phrase(
                gettext_noop("Only one statement can run in an import; this text holds %(count)s. Remove all but one."),
                count=len(statements),
            ),
        )
    statement = statements[0]
    first = next((t for t in statement if not (t.kind == "punct" and t.text == "(")), None)
    if first is None or first.kind != "word" or first.text.upper() not in STATEMENT_STARTS:
        if first is not None and first.kind == "word":
            message = phrase(
                gettext_noop("An import only reads data (%(allowed)s); %(word)s statements cannot run here."),
                allowed=ALLOWED,
                word=first.text.upper(),
            )
        else:
            message = phrase(
                gettext_noop("An import only reads data (%(allowed)s); other statements cannot run here."), allowed=ALLOWED
            )
        raise IngestError(IngestError.NOT_READ_ONLY, message)
    for index, token in enumerate(statement):
        if token.kind != "word":
            continue
        previous = statement[index - 1] if index else None
        if previous is not None and (previous.text == "." or (previous.kind == "word" and previous.text.upper() == "AS")):
            continue  # t.update, AS delete: a name, not a command
        word = token.text.upper()
        following = statement[index + 1] if index + 1 < len(statement) else None
        next_word = following.text.upper() if following is not None and following.kind == "word" else ""
        if (word == "FOR" and next_word in LOCKING_AFTER_FOR) or (word == "LOCK" and next_word == "IN"):
            raise IngestError(
                IngestError.NOT_READ_ONLY,
                gettext_noop(
                    "The query locks rows (FOR UPDATE, FOR SHARE, LOCK IN SHARE MODE); an import only reads. "
                    "Remove the locking clause."
                ),
            )
        if word == "INTO":
            raise IngestError(
                IngestError.NOT_READ_ONLY,
                gettext_noop(
                    "SELECT … INTO writes the result somewhere (a table, a file or variables); an import only reads. Remove INTO."
                ),
            )
        if word == "REPLACE" and next_word != "INTO":
            continue  # the string function
        if word in WRITING_WORDS:
            raise IngestError(
                IngestError.NOT_READ_ONLY,
                phrase(
                    gettext_noop(
                        "The query contains %(word)s, which changes the database; an import only reads data (%(allowed)s)."
                    ),
                    word=word,
                    allowed=ALLOWED,
                ),
            )
    return query[statement[0].start : statement[-1].end]


def _tokens(sql: str, dialect: str) -> list[_Token]:
    mysql = dialect == "mysql"
    out: list[_Token] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) and (not mysql or i + 2 == n or sql[i + 2].isspace() or ord(sql[i + 2]) < 32):
            # MySQL needs a space after `--` (`1--1` is arithmetic there).
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "#" and mysql:
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            if mysql and sql.startswith("/*!", i):
                raise IngestError(
                    IngestError.NOT_READ_ONLY,
                    gettext_noop("MySQL runs /*! … */ comments as code; remove them from the query."),
                )
            i = _comment_end(sql, i, nested=not mysql)
        elif c == "'" or (c == '"' and mysql):
            end = _quoted_end(sql, i, c, backslash=mysql)
            out.append(_Token("literal", sql[i:end], i, end))
            i = end
        elif c in "eE" and not mysql and sql.startswith("'", i + 1):  # E'…' takes backslash escapes
            end = _quoted_end(sql, i + 1, "'", backslash=True)
            out.append(_Token("literal", sql[i:end], i, end))
            i = end
        elif c == '"' or (c == "`" and mysql):
            end = _quoted_end(sql, i, c, backslash=False)
            out.append(_Token("literal", sql[i:end], i, end))
            i = end
        elif c == "$" and not mysql:
            match = re.match(r"\$([^\W\d]\w*)?\$", sql[i:])
            if match:
                tag = match.group(0)
                close = sql.find(tag, i + len(tag))
                if close < 0:
                    raise _unterminated(i)
                end = close + len(tag)
            else:
                end = i + 1
                while end < n and sql[end].isdigit():  # $1, a parameter
                    end += 1
            out.append(_Token("literal", sql[i:end], i, end))
            i = end
        elif c.isalpha() or c == "_":
            end = i + 1
            while end < n and (sql[end].isalnum() or sql[end] in "_$"):
                end += 1
            out.append(_Token("word", sql[i:end], i, end))
            i = end
        elif c.isdigit():
            end = i + 1
            while end < n and (sql[end].isalnum() or sql[end] in "._"):
                end += 1
            out.append(_Token("literal", sql[i:end], i, end))
            i = end
        else:
            out.append(_Token("punct", c, i, i + 1))
            i += 1
    return out


def _quoted_end(sql: str, start: int, quote_char: str, *, backslash: bool) -> int:
    i, n = start + 1, len(sql)
    while i < n:
        c = sql[i]
        if backslash and c == "\\":
            i += 2
        elif c == quote_char:
            if i + 1 < n and sql[i + 1] == quote_char:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise _unterminated(start)


def _comment_end(sql: str, start: int, *, nested: bool) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth = depth + 1 if nested or depth == 0 else depth
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise _unterminated(start)


def _unterminated(position: int) -> IngestError:
    return IngestError(
        IngestError.BAD_QUERY,
        phrase(
            gettext_noop("The query has a string, quoted name or comment that is never closed (from character %(position)s)."),
            position=position + 1,
        ),
        {"position": position + 1},
    )


# --- the import -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    arrow: pa.DataType
    # Turns a driver value into one pa.array takes; returns _UNFIT for a value the type cannot
    # hold. None: the driver's values go to pa.array as they are.
    convert: Callable[[Any], Any] | None = None
    warning: Phrase | None = None  # said up front, e.g. "stored as text"


_UNFIT = object()


def import_query(
    url: DatabaseUrl,
    query: str,
    dest_path: str | os.PathLike,
    *,
    timeout_s: float = 300,
    max_rows: int = 50_000_000,
    batch_rows: int = 50_000,
    connect_timeout_s: float = 10,
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Run `query` read-only on the database at `url` and write its rows as zstd Parquet at
    `dest_path`; raise IngestError for anything the user can fix.

    `timeout_s` bounds the whole read, from the first statement to the last row; `progress` is
    called with the number of rows read after each batch. On any error nothing exists at
    `dest_path` that was not there before.
    """
    for name, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}.")
    for name, value in (("max_rows", max_rows), ("batch_rows", batch_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number at least 1, not {value!r}.")
    if url.scheme not in DEFAULT_PORTS:
        raise _bad_url(f"The database kind '{url.scheme}' is not supported; use postgresql or mysql.")
    query = check_select(query, dialect=url.scheme)
    dest_path = os.fspath(dest_path)
    dest_dir = os.path.dirname(os.path.abspath(dest_path))
    os.makedirs(dest_dir, exist_ok=True)
    tmp_path = os.path.join(dest_dir, f".{os.path.basename(dest_path)}.{uuid.uuid4().hex}.tmp")
    source: _Source = _PgSource(url) if url.scheme == "postgresql" else _MySource(url)
    try:
        source.connect(connect_timeout_s, timeout_s)
        columns, rows, warnings = _copy(source, query, tmp_path, timeout_s, max_rows, batch_rows, progress)
        digest, size = _sha256(tmp_path)
        os.replace(tmp_path, dest_path)
    finally:
        source.close()
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    return IngestResult(
        columns=columns, rows=rows, bytes=size, sha256=digest, source_bytes=0, format=url.scheme, warnings=warnings
    )


class _Deadline:
    """Interrupts the running statement when the time is up; `expired` tells the reader why it failed."""

    def __init__(self, seconds: float, interrupt: Callable[[], None]):
        self.at = time.monotonic() + seconds
        self._interrupt = interrupt
        self._fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self._fired.set()
        try:
            self._interrupt()
        except Exception:  # noqa: BLE001 - the connection may already be gone; the reader sees expired
            pass

    @property
    def expired(self) -> bool:
        return self._fired.is_set() or time.monotonic() >= self.at

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _timeout(timeout_s: float) -> IngestError:
    return IngestError(
        IngestError.QUERY_TIMEOUT,
        phrase(
            gettext_noop(
                "The query stopped: it ran longer than the time limit of %(seconds)s s. "
                "Select fewer rows or columns, or filter on an indexed column."
            ),
            seconds=f"{timeout_s:g}",
        ),
        {"timeout_s": timeout_s},
    )


def _copy(source, query, tmp_path, timeout_s, max_rows, batch_rows, progress):
    timeout_error = _timeout(timeout_s)
    with _Deadline(timeout_s, source.interrupt) as deadline:
        try:
            specs = source.execute(query, timeout_s)
            names, warnings = _names([s.name for s in specs])
            warnings += [s.warning for s in specs if s.warning]
            identifiers = sniff.safe_identifiers(names)
            schema = _with_names(pa.schema([pa.field(i, s.arrow) for i, s in zip(identifiers, specs, strict=True)]), names)
            unfit: dict[int, list] = {}  # column → [count, example]
            out = _Output(tmp_path, schema)
            rows = 0
            try:
                while True:
                    chunk = source.fetch(min(batch_rows, max_rows + 1 - rows))
                    if deadline.expired:
                        raise timeout_error
                    if not chunk:
                        break
                    rows += len(chunk)
                    if rows > max_rows:
                        raise IngestError(
                            IngestError.TOO_MANY_ROWS,
                            phrase(
                                gettext_noop(
                                    "The query returns more than %(limit)s rows, the limit for one import; "
                                    "filter or aggregate in the query."
                                ),
                                limit=f"{max_rows:,}",
                            ),
                            {"limit": max_rows},
                        )
                    out.add(_batch(chunk, specs, schema, unfit))
                    if progress:
                        progress(rows)
            except BaseException:
                out.abort()  # the file is deleted; the rows still buffered need not be written
                raise
            out.close()
        except IngestError:
            raise
        except Exception as error:  # noqa: BLE001 - each driver's errors are sorted by source.failure
            if deadline.expired:
                raise timeout_error from None
            failure = source.failure(error)
            if failure is None:
                raise
            raise failure from None
    if rows == 0:
        raise IngestError(IngestError.NO_ROWS, gettext_noop("The query returned no rows; a dataset version has rows."))
    for index, (count, example) in sorted(unfit.items()):
        warnings.append(
            ngettext(
                "Column '%(column)s' has %(count)s value that %(type)s cannot hold (e.g. '%(example)s'); "
                "it is stored as empty (NULL).",
                "Column '%(column)s' has %(count)s values that %(type)s cannot hold (e.g. '%(example)s'); "
                "they are stored as empty (NULL).",
                count,
                column=names[index],
                count=f"{count:,}",
                type=str(specs[index].arrow),
                example=_short(example),
            )
        )
    columns = [
        ColumnInfo(name=n, identifier=i, type=str(f.type), logical=_logical(f.type, None))
        for n, i, f in zip(names, identifiers, schema, strict=True)
    ]
    return columns, rows, warnings


def _names(raw: list[str]) -> tuple[list[str], list[str]]:
    try:
        return _clean_names(raw)
    except IngestError as error:
        if error.code != IngestError.DUPLICATE_COLUMNS:
            raise
        raise IngestError(
            error.code,
            phrase(gettext_noop("%(error)s. Give each column its own name with AS."), error=error.message),
            error.details,
        ) from None


def _short(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _batch(chunk: Sequence[Sequence], specs: list[_Column], schema: pa.Schema, unfit: dict[int, list]) -> pa.RecordBatch:
    arrays = []
    for index, spec in enumerate(specs):
        values = [row[index] for row in chunk]
        arrays.append(_array(values, spec, index, unfit))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError)


def _array(values: list, spec: _Column, index: int, unfit: dict[int, list]) -> pa.Array:
    if spec.convert is not None:
        converted = []
        for v in values:
            c = None if v is None else spec.convert(v)
            if c is _UNFIT:
                _note_unfit(unfit, index, v)
                c = None
            converted.append(c)
        values = converted
    try:
        return pa.array(values, type=spec.arrow)
    except ARROW_ERRORS:
        pass
    # Slow path, only for a batch that holds a value the type does not take.
    kept = []
    for v in values:
        if v is None:
            kept.append(None)
            continue
        if pa.types.is_string(spec.arrow) and not isinstance(v, str):
            kept.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
            continue
        try:
            pa.array([v], type=spec.arrow)
            kept.append(v)
        except ARROW_ERRORS:
            _note_unfit(unfit, index, v)
            kept.append(None)
    return pa.array(kept, type=spec.arrow)


def _note_unfit(unfit: dict[int, list], index: int, value: Any) -> None:
    entry = unfit.setdefault(index, [0, value])
    entry[0] += 1


class _Output:
    """Parquet written like ingest.py's, with row groups that depend only on the rows."""

    def __init__(self, path: str, schema: pa.Schema):
        self.schema = schema
        self.writer = pq.ParquetWriter(
            path, schema, compression="zstd", compression_level=3, use_dictionary=_dictionary_columns(schema)
        )
        self.buffered: list[pa.RecordBatch] = []
        self.buffered_rows = 0
        self.group_rows: int | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        self.buffered.append(batch)
        self.buffered_rows += batch.num_rows
        if self.group_rows is None and self.buffered_rows >= SIZING_ROWS:
            self._size()
        if self.group_rows is not None and self.buffered_rows >= self.group_rows:
            self._flush(final=False)

    def _size(self) -> None:
        sample = pa.Table.from_batches(self.buffered, schema=self.schema).slice(0, SIZING_ROWS)
        per_row = max(sample.nbytes / max(sample.num_rows, 1), 1)
        self.group_rows = int(max(SIZING_ROWS, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // per_row)))

    def _flush(self, final: bool) -> None:
        table = pa.Table.from_batches(self.buffered, schema=self.schema)
        full = table.num_rows if final else table.num_rows // self.group_rows * self.group_rows
        if full:
            self.writer.write_table(table.slice(0, full), row_group_size=self.group_rows)
        rest = table.slice(full)
        self.buffered = rest.to_batches() if rest.num_rows else []
        self.buffered_rows = rest.num_rows

    def abort(self) -> None:
        self.buffered = []
        self.writer.close()

    def close(self) -> None:
        try:
            if self.buffered_rows:
                if self.group_rows is None:
                    self._size()
                self._flush(final=True)
        finally:
            self.writer.close()


# --- the databases ----------------------------------------------------------------------


class _Source:
    def __init__(self, url: DatabaseUrl):
        self.url = url
        self.where = f"{url.host}:{url.port}"
        self.timeout_s = 0.0

    def connect(self, connect_timeout_s: float, timeout_s: float) -> None:
        raise NotImplementedError

    def execute(self, query: str, timeout_s: float) -> list[_Column]:
        raise NotImplementedError

    def fetch(self, n: int) -> Sequence[Sequence]:
        raise NotImplementedError

    def interrupt(self) -> None:
        raise NotImplementedError

    def failure(self, error: Exception) -> IngestError | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def scrub(self, text):
        """`text` with the password masked, in case a driver or server ever quotes it (a Phrase: in its parameters)."""
        if isinstance(text, Phrase):
            return Phrase(
                text.template,
                text.plural,
                text.n,
                **{k: self.scrub(v) if isinstance(v, str) else v for k, v in text.params.items() if k != "n"},
            )
        text = " ".join(str(text).split())
        if self.url.password:
            text = text.replace(self.url.password, "***")
        return text[:1000]

    def _connect_failed(self, reason: Phrase) -> IngestError:
        return IngestError(IngestError.CONNECT_FAILED, self.scrub(reason), {"host": self.url.host, "port": self.url.port})

    def _query_failed(self, message) -> IngestError:
        return IngestError(
            IngestError.QUERY_FAILED,
            phrase(gettext_noop("The database refused the query: %(reason)s"), reason=self.scrub(message)),
        )

    def _write_refused(self, message: str) -> IngestError:
        return IngestError(
            IngestError.NOT_READ_ONLY,
            phrase(
                gettext_noop("The query tried to change the database, and an import only reads: %(reason)s"),
                reason=self.scrub(message),
            ),
        )

    def _connection_lost(self, reason: str) -> IngestError:
        return self._query_failed(
            phrase(gettext_noop("the connection to %(server)s was lost (%(reason)s)"), server=self.where, reason=reason)
        )

    # Connection refusals both drivers word alike.

    def _no_answer(self, seconds: float) -> IngestError:
        return self._connect_failed(
            phrase(
                gettext_noop(
                    "The database server at %(server)s did not answer within %(seconds)s s. "
                    "Check the host and port, and that the server accepts connections from Lepton."
                ),
                server=self.where,
                seconds=f"{seconds:g}",
            )
        )

    def _unreachable(self, reason: str) -> IngestError:
        return self._connect_failed(
            phrase(
                gettext_noop(
                    "Could not reach the database server at %(server)s (%(reason)s). "
                    "Check the host and port, and that the server accepts connections from Lepton."
                ),
                server=self.where,
                reason=reason,
            )
        )

    def _user_refused(self) -> IngestError:
        return self._connect_failed(
            phrase(
                gettext_noop("The database server at %(server)s refused the user '%(user)s': wrong password, or no such user."),
                server=self.where,
                user=self.url.user,
            )
        )

    def _no_database(self) -> IngestError:
        return self._connect_failed(
            phrase(
                gettext_noop("The database server at %(server)s has no database '%(database)s'."),
                server=self.where,
                database=self.url.database,
            )
        )

    def _cannot_connect(self, reason) -> IngestError:
        return self._connect_failed(
            phrase(
                gettext_noop("Could not connect to the database server at %(server)s: %(reason)s"),
                server=self.where,
                reason=reason,
            )
        )


# PostgreSQL type oids whose values psycopg's loaders give as Python values Arrow takes; every
# other type is loaded as PostgreSQL's own text (see _PgSource.connect).
PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    26: pa.int64(),  # oid
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),  # char(n)
    1043: pa.string(),  # varchar
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}
PG_NUMERIC = 1700
# A path that cannot exist (libpq warns about /dev/null itself, and is silent about a missing file).
NO_PASSFILE = os.path.join(os.devnull, "lepton-no-passfile")
PG_TEXT_ANYWAY = {114, 142, 2950, 3802}  # json, xml, uuid, jsonb: text without a warning


class _PgSource(_Source):
    def __init__(self, url: DatabaseUrl):
        super().__init__(url)
        self.conn = None
        self.cursor = None

    def connect(self, connect_timeout_s: float, timeout_s: float) -> None:
        import psycopg
        from psycopg.types.string import TextLoader

        url = self.url
        try:
            self.conn = psycopg.connect(
                host=url.host,
                port=url.port,
                dbname=url.database,
                user=url.user,
                password=url.password or "",
                # libpq counts whole seconds, at least 2.
                connect_timeout=max(2, math.ceil(connect_timeout_s)),
                application_name=APPLICATION_NAME,
                passfile=NO_PASSFILE,  # never the worker's ~/.pgpass
                **url.params,
            )
        except psycopg.OperationalError as error:
            raise self._classify_connect(error, connect_timeout_s) from None
        except psycopg.Error as error:
            raise self._connect_failed(
                phrase(gettext_noop("Could not connect to %(server)s: %(reason)s"), server=self.where, reason=str(error))
            ) from None
        for info in self.conn.adapters.types:
            for oid in (info.oid, getattr(info, "array_oid", 0)):
                if oid and oid not in PG_TYPES and oid != PG_NUMERIC:
                    self.conn.adapters.register_loader(oid, TextLoader)
        self.conn.read_only = True  # BEGIN READ ONLY: the server refuses writes, also from functions

    def _classify_connect(self, error: Exception, connect_timeout_s: float) -> IngestError:
        text = str(error)
        if "timeout expired" in text:
            return self._no_answer(connect_timeout_s)
        if "password authentication failed" in text or ("role" in text and "does not exist" in text):
            return self._user_refused()
        if "database" in text and "does not exist" in text:
            return self._no_database()
        if "no pg_hba.conf entry" in text or "authentication" in text:
            return self._connect_failed(
                phrase(
                    gettext_noop("The database server at %(server)s refused the login: %(reason)s"),
                    server=self.where,
                    reason=_pg_reason(text),
                )
            )
        if "Connection refused" in text or "could not translate host name" in text or "No route" in text:
            return self._unreachable(_pg_reason(text))
        return self._cannot_connect(_pg_reason(text))

    def execute(self, query: str, timeout_s: float) -> list[_Column]:
        conn = self.conn
        self.timeout_s = timeout_s
        conn.execute(f"SET LOCAL statement_timeout = {max(1, math.ceil(timeout_s * 1000))}")
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        self.cursor = conn.cursor(name="lepton_import")
        self.cursor.execute(query)
        description = self.cursor.description
        if not description:
            raise _no_columns()
        names = self._type_names([c.type_code for c in description])
        return [self._column(c, names) for c in description]

    def _type_names(self, oids: list[int]) -> dict[int, str]:
        unknown = sorted({o for o in oids if o not in PG_TYPES and o != PG_NUMERIC})
        if not unknown:
            return {}
        rows = self.conn.execute("SELECT oid::int8, format_type(oid, NULL) FROM pg_type WHERE oid = ANY(%s)", [unknown])
        return dict(rows.fetchall())

    def _column(self, column, type_names: dict[int, str]) -> _Column:
        oid = column.type_code
        if oid in PG_TYPES:
            return _Column(column.name, PG_TYPES[oid])
        if oid == PG_NUMERIC:
            if column.precision is not None and column.precision <= 38:
                return _Column(column.name, pa.decimal128(column.precision, column.scale or 0))
            if column.precision is None:
                why = gettext_noop(
                    "Column '%(column)s' is numeric and has no fixed precision; it is stored as text. "
                    "Cast it in the query (e.g. ::numeric(18,4)) to store it as a decimal."
                )
            else:
                why = gettext_noop(
                    "Column '%(column)s' is numeric and has %(digits)s digits (more than 38); it is stored as text. "
                    "Cast it in the query (e.g. ::numeric(18,4)) to store it as a decimal."
                )
            return _Column(
                column.name,
                pa.string(),
                convert=str,
                warning=phrase(why, column=column.name, digits=column.precision),
            )
        note = None
        if oid not in PG_TEXT_ANYWAY:
            note = phrase(
                gettext_noop("Column '%(column)s' (type %(type)s) is stored as text."),
                column=column.name,
                type=type_names.get(oid, oid),
            )
        return _Column(column.name, pa.string(), warning=note)

    def fetch(self, n: int):
        return self.cursor.fetchmany(n)

    def interrupt(self) -> None:
        if self.conn is not None:
            self.conn.cancel_safe(timeout=5)

    def failure(self, error: Exception) -> IngestError | None:
        import psycopg

        if not isinstance(error, psycopg.Error):
            return None
        diag = getattr(error, "diag", None)
        message = (diag.message_primary if diag is not None else None) or str(error)
        if isinstance(error, psycopg.errors.QueryCanceled):  # statement_timeout or the deadline's cancel
            return _timeout(self.timeout_s)
        if isinstance(error, psycopg.errors.ReadOnlySqlTransaction):
            return self._write_refused(message)
        if isinstance(error, psycopg.DataError) and error.sqlstate is None:
            return self._query_failed(phrase(gettext_noop("a value could not be read (%(error)s)"), error=message))
        if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
            return self._connection_lost(message)
        hint = diag.message_hint if diag is not None else None
        return self._query_failed(message + (f" ({hint})" if hint else ""))

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()  # the transaction is rolled back; nothing was written anyway
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


def _pg_reason(text: str) -> str:
    """libpq's reason without its 'connection failed: connection to server at … failed:' prefix."""
    text = " ".join(text.split())
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", text)
    return text.removeprefix("FATAL: ").strip()


def _no_columns() -> IngestError:
    return IngestError(IngestError.NO_COLUMNS, gettext_noop("The statement returns no columns; select at least one column."))


# PyMySQL field type codes (pymysql.constants.FIELD_TYPE).
MY_INTS = {1: (pa.int8(), pa.uint8()), 2: (pa.int16(), pa.uint16()), 9: (pa.int32(), pa.uint32())}
MY_INTS |= {3: (pa.int32(), pa.uint32()), 8: (pa.int64(), pa.uint64()), 13: (pa.int16(), pa.uint16())}
MY_DECIMAL = {0, 246}
MY_TEXTUAL = {15, 245, 247, 248, 249, 250, 251, 252, 253, 254}
MY_BINARY_CHARSET = 63
MY_UNSIGNED = 32
MY_READ_ONLY_ERRORS = {1792, 1290}  # in a READ ONLY transaction / server in --read-only
MY_TIMEOUT_ERRORS = {1969, 3024, 1317}  # MariaDB max_statement_time, MySQL max_execution_time, interrupted


def _my_time(value: Any) -> Any:
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    return _UNFIT


def _my_bool(value: Any) -> Any:
    return bool(int.from_bytes(value, "big")) if isinstance(value, bytes) else bool(value)


def _my_bits(value: Any) -> Any:
    return int.from_bytes(value, "big") if isinstance(value, bytes) else int(value)


def _my_timestamp(value: Any) -> Any:
    return value if isinstance(value, datetime) else _UNFIT


class _MySource(_Source):
    def __init__(self, url: DatabaseUrl):
        super().__init__(url)
        self.conn = None
        self.cursor = None

    def connect(self, connect_timeout_s: float, timeout_s: float) -> None:
        import pymysql
        import pymysql.cursors

        url = self.url
        try:
            self.conn = pymysql.connect(
                host=url.host,
                port=url.port,
                user=url.user,
                password=url.password or "",
                database=url.database,
                charset="utf8mb4",
                connect_timeout=connect_timeout_s,
                read_timeout=connect_timeout_s,  # the server's greeting and the login; raised below
                write_timeout=connect_timeout_s,
                local_infile=False,
                autocommit=True,
                cursorclass=pymysql.cursors.SSCursor,
                program_name=APPLICATION_NAME,
                **self._ssl(),
            )
        except pymysql.MySQLError as error:
            raise self._classify_connect(error, connect_timeout_s) from None
        except (OSError, ssl.SSLError) as error:
            raise self._cannot_connect(str(error)) from None
        # The read timeout is only a backstop once connected (the deadline interrupts first);
        # PyMySQL has no public setter and applies this attribute on its next read.
        self.conn._read_timeout = timeout_s + connect_timeout_s + 5
        self.conn._write_timeout = timeout_s + connect_timeout_s + 5

    def _ssl(self) -> dict:
        """PyMySQL's TLS arguments for the URL's ssl_mode (default PREFERRED: TLS when the server offers it)."""
        params = self.url.params
        mode = params.get("ssl_mode", "VERIFY_CA" if params.get("ssl_ca") else "PREFERRED")
        if mode == "DISABLED":
            return {"ssl_disabled": True}
        if mode == "PREFERRED":
            return {}  # PyMySQL's own default
        context = ssl.create_default_context(cafile=params.get("ssl_ca"))
        if params.get("ssl_cert"):
            context.load_cert_chain(params["ssl_cert"], params.get("ssl_key"))
        context.check_hostname = mode == "VERIFY_IDENTITY"
        if mode == "REQUIRED":
            context.verify_mode = ssl.CERT_NONE
        return {"ssl": context}  # required: PyMySQL refuses a server without TLS

    def _classify_connect(self, error: Exception, connect_timeout_s: float) -> IngestError:
        code = error.args[0] if error.args else None
        text = error.args[1] if len(error.args) > 1 else str(error)
        url = self.url
        if code == 1045:
            return self._user_refused()
        if code == 1049:
            return self._no_database()
        if code == 1044:
            return self._connect_failed(
                phrase(
                    gettext_noop("The user '%(user)s' may not use the database '%(database)s' at %(server)s."),
                    user=url.user,
                    database=url.database,
                    server=self.where,
                )
            )
        if code == 2013 or "timed out" in str(text):
            return self._no_answer(connect_timeout_s)
        if code == 2003:
            reason = re.sub(r"^Can't connect to MySQL server on '[^']*' ?", "", str(text)).strip(" ()")
            return self._unreachable(reason)
        return self._connect_failed(
            phrase(
                gettext_noop("The database server at %(server)s refused the connection: %(reason)s"),
                server=self.where,
                reason=str(text),
            )
        )

    def execute(self, query: str, timeout_s: float) -> list[_Column]:
        import pymysql.cursors

        conn = self.conn
        self.timeout_s = timeout_s
        with conn.cursor(pymysql.cursors.Cursor) as setup:
            setup.execute("SET SESSION TRANSACTION READ ONLY")
            setup.execute("SET SESSION time_zone = '+00:00'")
            if "mariadb" in conn.get_server_info().lower():
                setup.execute(f"SET SESSION max_statement_time = {timeout_s:.3f}")
            else:
                setup.execute(f"SET SESSION max_execution_time = {max(1, math.ceil(timeout_s * 1000))}")
            setup.execute("START TRANSACTION READ ONLY")
        self.cursor = conn.cursor()
        self.cursor.execute(query)
        # The server's field packets say more than DB-API's description (unsigned, charset).
        fields = getattr(self.cursor._result, "fields", None) if self.cursor._result is not None else None
        if not self.cursor.description or not fields:
            raise _no_columns()
        return [self._column(f) for f in fields]

    def _column(self, f) -> _Column:
        name, code = f.name, f.type_code
        unsigned = bool(f.flags & MY_UNSIGNED)
        if code in MY_INTS:
            return _Column(name, MY_INTS[code][1 if unsigned else 0])
        if code in MY_DECIMAL:
            precision = f.length - (1 if f.scale else 0) - (0 if unsigned else 1)
            if 0 < precision <= 38:
                return _Column(name, pa.decimal128(precision, f.scale))
            return _Column(
                name,
                pa.string(),
                convert=str,
                warning=phrase(
                    gettext_noop("Column '%(column)s' is a decimal with %(digits)s digits (more than 38); it is stored as text."),
                    column=name,
                    digits=precision,
                ),
            )
        if code == 4:
            return _Column(name, pa.float32())
        if code == 5:
            return _Column(name, pa.float64())
        if code in (10, 14):
            return _Column(name, pa.date32())
        if code == 12:
            return _Column(name, pa.timestamp("us"))
        if code == 7:  # TIMESTAMP is kept in UTC; the session reads it in UTC
            return _Column(name, pa.timestamp("us", tz="UTC"), convert=_my_timestamp)
        if code == 11:
            return _Column(name, pa.time64("us"), convert=_my_time)
        if code == 16:
            if f.length == 1:
                return _Column(name, pa.bool_(), convert=_my_bool)
            return _Column(name, pa.uint64(), convert=_my_bits)
        if code == 255:
            return _Column(
                name,
                pa.binary(),
                warning=phrase(gettext_noop("Column '%(column)s' is a geometry; it is stored as binary (WKB)."), column=name),
            )
        if code in MY_TEXTUAL:
            if f.charsetnr == MY_BINARY_CHARSET and code != 245:
                return _Column(name, pa.binary())
            return _Column(name, pa.string())
        if code == 6:  # SELECT NULL
            return _Column(name, pa.string())
        return _Column(
            name,
            pa.string(),
            warning=phrase(gettext_noop("Column '%(column)s' (MySQL type %(code)s) is stored as text."), column=name, code=code),
        )

    def fetch(self, n: int):
        return self.cursor.fetchmany(n)

    def interrupt(self) -> None:
        # Shutting the socket down ends the blocked read at once; the server stops the
        # statement at max_statement_time / max_execution_time or when it next writes.
        sock = getattr(self.conn, "_sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def failure(self, error: Exception) -> IngestError | None:
        import pymysql

        if not isinstance(error, pymysql.MySQLError):
            return None
        code = error.args[0] if error.args else None
        text = str(error.args[1]) if len(error.args) > 1 else str(error)
        if code in MY_TIMEOUT_ERRORS:
            return _timeout(self.timeout_s)
        if code in MY_READ_ONLY_ERRORS:
            return self._write_refused(text)
        if code in (2006, 2013, 2014):
            return self._connection_lost(text)
        return self._query_failed(text)

    def close(self) -> None:
        if self.conn is not None:
            result = getattr(self.cursor, "_result", None)
            if result is not None:
                # An unfinished unbuffered result reads every remaining row when the cursor is
                # closed or collected: drop it, and let closing the connection end the query.
                result.unbuffered_active = False
                self.cursor._result = None
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass


__all__ = ["DatabaseUrl", "parse_database_url", "check_select", "import_query", "IngestError", "IngestResult"]
