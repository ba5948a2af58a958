"""Look at the start of a file and guess what it is: format, encoding, CSV dialect, header.

Everything here reads a bounded sample (SAMPLE_BYTES) except `find_decode_error`, which
runs only after a decode already failed, to name the byte offset and line.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import zipfile

from charset_normalizer import from_bytes

from .errors import IngestError, gettext_noop, phrase

SAMPLE_BYTES = 1024 * 1024
# GB18030 is a superset of GBK and GB2312: decoding with it never loses a character the
# narrower codecs would have read.
CHINESE_CODECS = {"gb18030", "gbk", "gb2312", "cp936", "hz", "936", "ms936", "euc_cn", "euccn"}
DELIMITERS = [",", "\t", ";", "|"]


def read_sample(path: str, size: int = SAMPLE_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def detect_format(path: str, name: str) -> str:
    """Magic bytes first (a renamed .xlsx still works), then the file name's extension."""
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size >= 8:
            f.seek(-4, os.SEEK_END)
            tail = f.read(4)
        else:
            tail = b""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PAR1") and tail == b"PAR1":
        return "parquet"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            raise IngestError(
                IngestError.ARCHIVE, gettext_noop("The file looks like a zip archive but cannot be opened.")
            ) from None
        return "xlsx" if "xl/workbook.xml" in names else "zip"
    lower = name.lower()
    for ext, fmt in ((".tsv", "tsv"), (".tab", "tsv"), (".jsonl", "json"), (".ndjson", "json"), (".json", "json")):
        if lower.endswith(ext):
            return fmt
    if lower.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if lower.endswith(".xls"):
        return "xls"
    if lower.endswith(".parquet"):
        return "parquet"
    # Text without a telling extension: JSON if it opens like JSON, CSV otherwise.
    sample = read_sample(path, 4096).lstrip(codecs.BOM_UTF8).lstrip()
    if sample[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def normalize_encoding(name: str) -> str:
    codec = codecs.lookup(name).name
    if codec in CHINESE_CODECS or name.lower().replace("-", "") in CHINESE_CODECS:
        return "gb18030"
    if codec == "utf-8-sig":
        return "utf-8"  # Arrow's CSV reader drops a UTF-8 BOM itself
    return codec


def _decodes(sample: bytes, encoding: str) -> bool:
    """Whether the sample decodes, allowing a character cut at the sample's end."""
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=False)
        return True
    except UnicodeDecodeError:
        return False


def detect_encoding(sample: bytes) -> str:
    """UTF-8 if the sample is valid UTF-8; GB18030 when the text reads as Chinese; else charset-normalizer's best."""
    if sample.startswith(codecs.BOM_UTF8) or _decodes(sample, "utf-8"):
        return "utf-8"
    results = from_bytes(sample[:200_000])
    candidates = [m.encoding for m in results]
    # Short GBK samples are often ranked as cp949/big5 first; in this company they are GB text.
    cjk = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp949", "euc_kr", "euc_jis_2004", "cp932", "shift_jis"}
    if _decodes(sample, "gb18030") and (not candidates or any(c in cjk for c in candidates)):
        return "gb18030"
    best = results.best()
    if best is None:
        raise IngestError(
            IngestError.UNKNOWN_ENCODING,
            gettext_noop("The text encoding could not be detected; choose the encoding (e.g. utf-8 or gb18030)."),
        )
    return normalize_encoding(best.encoding)


def find_decode_error(path: str, encoding: str) -> tuple[int, int] | None:
    """(byte offset, 1-based line) of the first byte that does not decode, or None."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    lines = 1
    with open(path, "rb") as f:
        while chunk := f.read(SAMPLE_BYTES):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                position = offset - pending + e.start
                with open(path, "rb") as g:
                    head = g.read(max(position, 0))
                return position, head.count(b"\n") + 1
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            return offset - len(decoder.getstate()[0]) + e.start, lines
    return None


def decode_sample(sample: bytes, encoding: str, path: str) -> str:
    try:
        text = codecs.getincrementaldecoder(encoding)("strict").decode(sample, final=False)
    except UnicodeDecodeError:
        where = find_decode_error(path, encoding) or (0, 1)
        raise undecodable(encoding, *where) from None
    return text.lstrip("\ufeff")


def undecodable(encoding: str, offset: int, line: int) -> IngestError:
    return IngestError(
        IngestError.UNDECODABLE,
        phrase(
            gettext_noop(
                "The file is not valid %(encoding)s: the bytes at offset %(offset)s (line %(line)s) cannot be decoded. "
                "Choose the file's encoding (e.g. gb18030 for files from Chinese Windows tools)."
            ),
            encoding=encoding,
            offset=offset,
            line=line,
        ),
        {"encoding": encoding, "offset": offset, "line": line},
    )


def sample_rows(text: str, delimiter: str, quote_char: str, limit: int = 50) -> list[list[str]]:
    # Drop the last line: the sample may cut it anywhere.
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter, quotechar=quote_char):
            if row:
                rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def sniff_delimiter(text: str, quote_char: str = '"') -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields most often."""
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        rows = sample_rows(text, delimiter, quote_char)
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        consistent = sum(1 for r in rows if len(r) == width) / len(rows)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def sniff_quote_char(text: str) -> str:
    if '"' not in text and "'" in text:
        try:
            sniffed = csv.Sniffer().sniff(text[:65536], delimiters="".join(DELIMITERS))
            if sniffed.quotechar == "'":
                return "'"
        except csv.Error:
            pass
    return '"'


_TYPED = re.compile(
    r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|true|false|\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}.*)\s*$",
    re.IGNORECASE,
)


def sniff_header(rows: list[list[str]]) -> bool:
    """A first row with any cell that is not a number, date or boolean is a header."""
    if not rows:
        return True
    first = [c for c in rows[0] if c.strip()]
    if not first:
        return True
    return not all(_TYPED.match(c) for c in first)


SQL_KEYWORDS = frozenset(
    """
    all alter analyse analyze and any array as asc asymmetric attach between binary both by case cast check
    collate collation column columns concurrently constraint copy create cross current_catalog current_date
    current_role current_schema current_time current_timestamp current_user default deferrable desc describe
    detach distinct do drop else end except exists false fetch for foreign freeze from full glob grant group
    having ilike in initially inner install intersect into is isnull join key lateral leading left like limit
    load local localtime localtimestamp map natural not notnull null offset on only or order outer over overlaps
    pivot placing pragma primary qualify references returning right row select semi session_user set show
    similar some struct summarize symmetric table tablesample then to trailing true try_cast union unique
    unpivot user using values variadic verbose when where window with within date time timestamp interval
    index view update delete insert rename
    """.split()
)


def safe_identifiers(names: list[str]) -> list[str]:
    """Lowercase ASCII snake_case where the name allows; `col_<n>` (1-based) otherwise; unique; no keywords."""
    out: list[str] = []
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        ident = ""
        if name.isascii():
            ident = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
            ident = re.sub(r"[^0-9a-zA-Z]+", "_", ident).strip("_").lower()
        if not ident:
            ident = f"col_{position}"
        elif ident[0].isdigit():
            ident = f"c_{ident}"
        if ident in SQL_KEYWORDS:
            ident = f"{ident}_"
        ident = ident[:60]
        candidate, n = ident, 2
        while candidate in seen:
            candidate, n = f"{ident}_{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out
