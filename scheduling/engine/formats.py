"""Shop problems read from the standard files, and written back in the OR-Library one.

- OR-Library (`orlib`), as in jobshop1.txt and job-shop-lib: comment lines, then `n m`, then
  n job lines of m `machine duration` pairs, machines numbered from 0. Every line before the
  first one that is exactly two whole numbers is a comment (free text or `#`); `#` also starts
  a comment at the end of a line. A line of `+` (jobshop1.txt's separator) is skipped.
- Taillard (`taillard`): `n m`, possibly followed on the same line or on the next by seeds and
  bounds, then an n×m matrix of processing times and an n×m matrix of machines numbered from
  1. Taillard's own layout ("Nb of jobs, Nb of Machines, …" above the numbers, "Times" and
  "Machines" above the matrices) and the plain numeric ones are read; where the header text
  names an upper bound, it becomes `best_known`.
- CSV (`csv`): a header row naming the columns `job`, `sequence` (or `op`), `machine`,
  `duration` and optionally `due_date` (or `due`), in any order, separated by commas,
  semicolons or tabs; other columns are ignored. One row per operation.

How the CSV's names are kept (the JSON a schedule is written as uses the numbers):
- jobs are numbered from 0 in the order they first appear; `Job.name` is the file's text;
- machines are numbers (0-based, kept as they are: machine 3 in the file is machine 3, and
  `Machine.name` is "M3") when the first machine cell is a whole number, names otherwise
  (numbered from 0 in the order they first appear; `Machine.name` is the file's text);
- `sequence` orders a job's operations (any whole numbers, distinct within the job);
- a job's due date may be given on any of its rows, the same on each that gives one;
- a row that gives a job but no sequence, machine or duration lists a job without operations,
  which is refused as "visits no machine".
OR-Library and Taillard jobs are named "J0", "J1", … and machines "M0", "M1", … (Taillard's
machine 1 is machine 0), as `instance.job_shop` names them.

Every refusal is an InstanceError (field "file"); where it comes from a place in the file,
its `line` and `column` (1-based, counting characters) point there and the message starts
with them. Sizes are checked against instance.py's limits as soon as the header states them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scheduling.engine.instance import (
    MAX_DURATION,
    MAX_JOBS,
    MAX_MACHINES,
    MAX_OPERATIONS,
    Instance,
    InstanceError,
    Job,
    Machine,
    Operation,
    gettext_noop,
    ngettext,
    phrase,
)

FORMATS = ("orlib", "taillard", "csv")

_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_INT = re.compile(r"[+-]?[0-9]+\.0*")  # "12.0", as spreadsheets export whole numbers
_TOKEN = re.compile(r"\S+")
_SEPARATOR = re.compile(r"\++")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    column: int

    @property
    def is_int(self) -> bool:
        return _INT.fullmatch(self.text) is not None


def _error(
    template: str, at: _Token | None = None, *, line: int | None = None, column: int | None = None, **params
) -> InstanceError:
    if at is not None:
        line, column = at.line, at.column
    return InstanceError(template, field="file", line=line, column=column, **params)


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) for every line; a byte-order mark and any line ending are accepted."""
    return list(enumerate(_LINE_BREAK.split(text.removeprefix("\ufeff")), start=1))


def _tokens(number: int, line: str) -> list[_Token]:
    """The whitespace-separated words of a line, up to a `#` comment."""
    line = line.split("#", 1)[0]
    return [_Token(m.group(), number, m.start() + 1) for m in _TOKEN.finditer(line)]


def _int(token: _Token, what: str) -> int:
    if not token.is_int:
        raise _error(gettext_noop("expected %(what)s, found %(found)s"), token, what=what, found=repr(token.text))
    return int(token.text)


def _jobs(n: int) -> str:
    return ngettext("%(n)s job", "%(n)s jobs", n)


def _machines(n: int) -> str:
    return ngettext("%(n)s machine", "%(n)s machines", n)


def _numbers(n: int) -> str:
    return ngettext("%(n)s number", "%(n)s numbers", n)


def _check_duration(value: int, token: _Token) -> int:
    if value < 0:
        raise _error(gettext_noop("the duration %(duration)s is negative"), token, duration=value)
    if value > MAX_DURATION:
        raise _error(
            gettext_noop("the duration %(duration)s is above the limit of %(max)s"), token, duration=value, max=MAX_DURATION
        )
    return value


def _check_header(n_token: _Token, m_token: _Token) -> tuple[int, int]:
    """The numbers of jobs and machines a header states, within the size limits."""
    n_what, m_what = gettext_noop("the number of jobs"), gettext_noop("the number of machines")
    n, m = _int(n_token, n_what), _int(m_token, m_what)
    for value, token, what, empty in (
        (n, n_token, n_what, gettext_noop("the header says 0 jobs: the problem is empty")),
        (m, m_token, m_what, gettext_noop("the header says 0 machines: the problem is empty")),
    ):
        if value < 0:
            raise _error(gettext_noop("expected %(what)s, found %(found)s"), token, what=what, found=repr(token.text))
        if value == 0:
            raise _error(empty, token)
    if n > MAX_JOBS:
        raise _error(gettext_noop("%(n)s jobs are above the limit of %(max)s jobs"), n_token, n=n, max=MAX_JOBS)
    if m > MAX_MACHINES:
        raise _error(gettext_noop("%(n)s machines are above the limit of %(max)s machines"), m_token, n=m, max=MAX_MACHINES)
    if n * m > MAX_OPERATIONS:
        raise _error(
            gettext_noop("%(n)s jobs × %(m)s machines = %(operations)s operations, above the limit of %(max)s"),
            n_token, n=n, m=m, operations=n * m, max=MAX_OPERATIONS,
        )  # fmt: skip
    return n, m


def _no_header(lines: list[tuple[int, str]], what: str) -> InstanceError:
    if not any(text.strip() for _no, text in lines):
        return InstanceError(gettext_noop("The file is empty."), field="file")
    return InstanceError(
        gettext_noop("No line gives the numbers of jobs and machines (%(what)s); is this the right format?"),
        field="file", what=what,
    )  # fmt: skip


def _row_width(tokens: list[_Token], expected: int, what: str, line: str) -> None:
    """Refuses a row that does not have `expected` numbers, pointing where one is missing or extra."""
    if len(tokens) > expected:
        raise _error(
            gettext_noop("%(what)s has %(numbers)s, %(more)s more than the %(expected)s expected"),
            tokens[expected],
            what=what,
            numbers=_numbers(len(tokens)),
            more=len(tokens) - expected,
            expected=expected,
        )
    if len(tokens) < expected:
        column = len(line.split("#", 1)[0].rstrip()) + 1
        raise _error(
            gettext_noop("%(what)s has %(numbers)s, %(fewer)s fewer than the %(expected)s expected"),
            line=tokens[0].line if tokens else None,
            column=column,
            what=what,
            numbers=_numbers(len(tokens)),
            fewer=expected - len(tokens),
            expected=expected,
        )


def _classic(rows: list[list[tuple[int, int]]], n_machines: int, *, name: str, best_known: int | None, meta: dict) -> Instance:
    jobs = tuple(Job(name=f"J{j}", operations=tuple(Operation(((m, d),)) for m, d in row)) for j, row in enumerate(rows))
    machines = tuple(Machine(name=f"M{m}") for m in range(n_machines))
    return Instance(jobs=jobs, machines=machines, name=name, best_known=best_known, meta=meta).check()


# --- OR-Library ---------------------------------------------------------------------------


def read_orlib(text: str, name: str = "") -> Instance:
    """The OR-Library file `text` as a checked Instance (machines numbered from 0, as in the file)."""
    lines = _lines(text)
    comments: list[str] = []
    header: list[_Token] | None = None
    rest: list[tuple[int, str]] = []
    for index, (number, line) in enumerate(lines):
        tokens = _tokens(number, line)
        if len(tokens) == 2 and all(t.is_int for t in tokens):
            header, rest = tokens, lines[index + 1 :]
            break
        comment = line.strip().lstrip("#").strip()
        if comment and not _SEPARATOR.fullmatch(comment):
            comments.append(comment)
    if header is None:
        raise _no_header(lines, gettext_noop("a line of two whole numbers, like '6 6'"))
    n, m = _check_header(*header)

    rows: list[list[tuple[int, int]]] = []
    body = [(number, line, tokens) for number, line in rest if (tokens := _tokens(number, line))]
    body = [entry for entry in body if not (len(entry[2]) == 1 and _SEPARATOR.fullmatch(entry[2][0].text))]
    for position, (_number, line, tokens) in enumerate(body):
        if len(rows) == n:
            if tokens[0].is_int:
                job_lines = n + sum(1 for _no, _line, more in body[position:] if more[0].is_int)
                raise _error(
                    gettext_noop("the header (line %(header)s) says %(jobs)s but %(lines)s job lines follow"),
                    tokens[0], header=header[0].line, jobs=_jobs(n), lines=job_lines,
                )  # fmt: skip
            raise _error(
                gettext_noop("the file goes on after the %(jobs)s the header announced (%(text)s); give one problem per file"),
                tokens[0], jobs=_jobs(n), text=repr(line.strip()[:40]),
            )  # fmt: skip
        rows.append(_orlib_job(len(rows), tokens, m, line))
    if len(rows) < n:
        raise _error(
            gettext_noop("the header says %(jobs)s but %(lines)s"), header[0],
            jobs=_jobs(n), lines=ngettext("%(n)s job line follows", "%(n)s job lines follow", len(rows)),
        )  # fmt: skip
    return _classic(rows, m, name=name, best_known=None, meta={"format": "orlib", "comments": comments})


def _orlib_job(job: int, tokens: list[_Token], m: int, line: str) -> list[tuple[int, int]]:
    operations = []
    for k in range(0, len(tokens), 2):
        machine_token = tokens[k]
        machine = _int(machine_token, gettext_noop("a machine number"))
        if k + 1 == len(tokens):
            raise _error(
                gettext_noop("job %(job)s ends with machine %(machine)s but no duration after it"),
                line=machine_token.line, column=machine_token.column + len(machine_token.text), job=job, machine=machine,
            )  # fmt: skip
        if not 0 <= machine < m:
            raise _error(
                gettext_noop("machine %(machine)s does not exist: the header says %(machines)s, numbered 0 to %(last)s"),
                machine_token, machine=machine, machines=_machines(m), last=m - 1,
            )  # fmt: skip
        duration = _check_duration(_int(tokens[k + 1], gettext_noop("a duration")), tokens[k + 1])
        operations.append((machine, duration))
    if len(operations) != m:
        first_extra = tokens[2 * m] if len(operations) > m else None
        raise _error(
            gettext_noop(
                "job %(job)s has %(operations)s but the header says %(machines)s: "
                "a job line is %(m)s pairs of machine and duration"
            ),
            first_extra,
            line=tokens[0].line,
            column=None if first_extra else len(line.split("#", 1)[0].rstrip()) + 1,
            job=job,
            operations=ngettext("%(n)s operation", "%(n)s operations", len(operations)),
            machines=_machines(m),
            m=m,
        )
    return operations


def write_orlib(instance: Instance) -> str:
    """`instance` as OR-Library text (read_orlib reads it back equal, its name given again).

    The format holds a classic job shop whose jobs each have one operation per machine; the
    name goes in a `#` comment. Job and machine names, release and due dates are not kept.
    """
    if instance.flexible:
        raise InstanceError(
            gettext_noop("A flexible job shop cannot be written as OR-Library text: it has one machine per operation.")
        )
    m = instance.n_machines
    for job in instance.jobs:
        if len(job.operations) != m:
            raise InstanceError(
                gettext_noop("Job %(job)s has %(operations)s; OR-Library text needs one per machine (%(m)s)."),
                job=job.name, operations=ngettext("%(n)s operation", "%(n)s operations", len(job.operations)), m=m,
            )  # fmt: skip
    out = [f"# {instance.name}"] if instance.name else []
    out.append(f"{instance.n_jobs} {m}")
    out.extend("  ".join(f"{op.machine} {op.duration}" for op in job.operations) for job in instance.jobs)
    return "\n".join(out) + "\n"


# --- Taillard -----------------------------------------------------------------------------


def read_taillard(text: str, name: str = "") -> Instance:
    """The Taillard file `text` as a checked Instance (the file's machine 1 is machine 0)."""
    lines = _lines(text)
    labels: list[str] = []
    header: list[_Token] | None = None
    rest: list[tuple[int, str]] = []
    for index, (number, line) in enumerate(lines):
        tokens = _tokens(number, line)
        if len(tokens) >= 2 and all(t.is_int for t in tokens):
            header, rest = tokens, lines[index + 1 :]
            break
        if line.strip():
            labels = [label.strip().lower() for label in line.split("#", 1)[0].split(",")]
    if header is None:
        raise _no_header(lines, gettext_noop("a line starting with two whole numbers, like '15 15'"))
    n, m = _check_header(header[0], header[1])
    extras = [_int(t, gettext_noop("a number")) for t in header[2:]]

    # Rows, each tagged with the section a "Times" or "Machines" line opened (None before any).
    rows: list[tuple[str | None, str, list[_Token]]] = []
    section: str | None = None
    seen_times = False
    trailing: tuple[int, str, list[_Token]] | None = None
    for number, line in rest:
        tokens = _tokens(number, line)
        if not tokens:
            continue
        keyword = " ".join(t.text for t in tokens).lower().rstrip(":").strip()
        if keyword in ("times", "processing times", "machines"):
            section = "machines" if keyword == "machines" else "times"
            seen_times = seen_times or section == "times"
            continue
        if not tokens[0].is_int and len(rows) >= 2 * n:
            trailing = (number, line, tokens)  # text after the matrices: another problem, say
            break
        rows.append((section, line, tokens))

    if section is not None:  # Taillard's own layout: the keywords split the rows
        leading = [row for row in rows if row[0] is None] if seen_times else []
        times = [row for row in rows if row[0] == "times" or (row[0] is None and not seen_times)]
        machines = [row for row in rows if row[0] == "machines"]
    else:
        # Seeds and bounds on the line after `n m`: one row more than the matrices, not as wide as they are.
        leading = rows[:1] if len(header) == 2 and len(rows) == 2 * n + 1 and len(rows[0][2]) != m else []
        body = rows[len(leading) :]
        if len(body) < 2 * n:
            raise _error(
                gettext_noop(
                    "the header says %(jobs)s: %(n)s rows of processing times then %(n)s rows of machines "
                    "are expected, but %(rows)s"
                ),
                header[0],
                jobs=_jobs(n),
                n=n,
                rows=ngettext("%(n)s row follows", "%(n)s rows follow", len(body)),
            )
        times, machines = body[:n], body[n:]
    if leading:
        if len(header) > 2 or len(leading) > 1:
            raise _error(gettext_noop("expected 'Times' or a row of processing times"), leading[-1][2][0])
        extras = [_int(t, gettext_noop("a seed or bound (a whole number)")) for t in leading[0][2]]
    if len(times) > n:
        raise _error(
            gettext_noop("the header says %(jobs)s but %(rows)s rows of processing times follow"), times[n][2][0],
            jobs=_jobs(n), rows=len(times),
        )  # fmt: skip
    if len(times) < n:
        raise _error(
            gettext_noop("the header says %(jobs)s but %(rows)s"), header[0], jobs=_jobs(n),
            rows=ngettext(
                "%(n)s row of processing times follows", "%(n)s rows of processing times follow", len(times)
            ),
        )  # fmt: skip
    if len(machines) > n:
        extra = machines[n]
        if extra[2][0].is_int:
            raise _error(
                gettext_noop(
                    "the header says %(jobs)s: %(n)s rows of processing times and %(n)s rows of machines, "
                    "and this is one row more"
                ),
                extra[2][0], jobs=_jobs(n), n=n,
            )  # fmt: skip
        raise _error(_GOES_ON, extra[2][0], text=repr(extra[1].strip()[:40]))
    if len(machines) < n:
        raise _error(
            gettext_noop("the header says %(jobs)s but %(rows)s"), header[0], jobs=_jobs(n),
            rows=ngettext("%(n)s row of machines follows", "%(n)s rows of machines follow", len(machines)),
        )  # fmt: skip
    if trailing is not None:
        raise _error(_GOES_ON, trailing[2][0], text=repr(trailing[1].strip()[:40]))

    result = []
    for j, ((_tag, time_line, time_tokens), (_tag2, machine_line, machine_tokens)) in enumerate(
        zip(times, machines, strict=True)
    ):
        durations = [_check_duration(_int(t, gettext_noop("a processing time")), t) for t in time_tokens]
        _row_width(time_tokens, m, phrase(gettext_noop("the row of processing times of job %(job)s"), job=j), time_line)
        ops = []
        for k, token in enumerate(machine_tokens):
            machine = _int(token, gettext_noop("a machine number"))
            if not 1 <= machine <= m:
                raise _error(
                    gettext_noop("machine %(machine)s does not exist: a Taillard file numbers the %(machines)s from 1 to %(m)s"),
                    token, machine=machine, machines=_machines(m), m=m,
                )  # fmt: skip
            if k < len(durations):
                ops.append((machine - 1, durations[k]))
        _row_width(machine_tokens, m, phrase(gettext_noop("the row of machines of job %(job)s"), job=j), machine_line)
        result.append(ops)

    best_known = None
    if len(labels) == len(header) + (len(extras) if len(header) == 2 else 0):
        named = dict(zip(labels[2:], extras, strict=False))
        best_known = named.get("upper bound")
    return _classic(result, m, name=name, best_known=best_known, meta={"format": "taillard", "header_numbers": extras})


_GOES_ON = gettext_noop("the file goes on after the problem (%(text)s); give one problem per file")


# --- CSV ----------------------------------------------------------------------------------

_CSV_COLUMNS = {
    "job": "job",
    "sequence": "sequence",
    "seq": "sequence",
    "op": "sequence",
    "operation": "sequence",
    "machine": "machine",
    "duration": "duration",
    "due_date": "due",
    "due": "due",
}
_CSV_REQUIRED = ("job", "sequence", "machine", "duration")


def _csv_name(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def _csv_fields(line: str, number: int, delimiter: str) -> list[_Token]:
    """The fields of one CSV line with their columns; `"…"` quotes a field (`""` is a quote in it)."""
    fields: list[_Token] = []
    i, end = 0, len(line)
    while True:
        start = i
        while start < end and line[start] == " ":
            start += 1
        if start < end and line[start] == '"':
            i, value = start + 1, []
            while True:
                if i >= end:
                    raise _error(gettext_noop("a quoted field is not closed on its line"), line=number, column=start + 1)
                if line[i] == '"':
                    if line[i + 1 : i + 2] == '"':
                        value.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                value.append(line[i])
                i += 1
            while i < end and line[i] == " " and delimiter != " ":
                i += 1
            if i < end and line[i] != delimiter:
                raise _error(
                    gettext_noop("expected %(delimiter)s after the closing quote, found %(found)s"),
                    line=number, column=i + 1, delimiter=repr(delimiter), found=repr(line[i]),
                )  # fmt: skip
            fields.append(_Token("".join(value).strip(), number, start + 1))
        else:
            i = line.find(delimiter, start)
            i = end if i < 0 else i
            fields.append(_Token(line[start:i].strip(), number, start + 1))
        if i >= end:
            return fields
        i += 1


def _csv_int(token: _Token, what: str) -> int:
    if token.text == "":
        raise _error(gettext_noop("expected %(what)s, found an empty cell"), token, what=what)
    if _DECIMAL_INT.fullmatch(token.text):
        return int(token.text.split(".")[0])
    if not token.is_int:
        raise _error(
            gettext_noop("expected %(what)s (a whole number), found %(found)s"), token, what=what, found=repr(token.text)
        )
    return int(token.text)


def read_csv(text: str, name: str = "") -> Instance:
    """The CSV of operations `text` as a checked Instance (see the module docstring for names)."""
    lines = [(number, line) for number, line in _lines(text) if line.strip()]
    if not lines:
        raise InstanceError(gettext_noop("The file is empty."), field="file")
    header_no, header_line = lines[0]
    delimiter = next((d for d in (",", ";", "\t") if d in header_line), None)
    if delimiter is None:
        raise _error(
            gettext_noop("the first line must name the columns job, sequence, machine and duration, separated by commas"),
            line=header_no,
            column=1,
        )
    columns: dict[str, tuple[int, _Token]] = {}
    header_fields = _csv_fields(header_line, header_no, delimiter)
    for index, token in enumerate(header_fields):
        key = _CSV_COLUMNS.get(_csv_name(token.text))
        if key is None:
            continue
        if key in columns:
            raise _error(
                gettext_noop("the columns %(first)s and %(second)s both give the %(key)s"),
                token, first=repr(columns[key][1].text), second=repr(token.text), key=key,
            )  # fmt: skip
        columns[key] = (index, token)
    missing = [key for key in _CSV_REQUIRED if key not in columns]
    if missing:
        names = repr(missing[0])
        for key in missing[1:]:
            names = phrase(gettext_noop("%(these)s or %(that)s"), these=names, that=repr(key))
        raise _error(
            gettext_noop(
                "the header has no %(names)s column "
                "(the columns are job, sequence, machine, duration and, optionally, due_date)"
            ),
            line=header_no, column=1, names=names,
        )  # fmt: skip
    header_width = len(header_fields)

    job_index: dict[str, int] = {}
    job_first_line: list[int] = []
    job_ops: list[dict[int, tuple[int, int, int]]] = []  # sequence -> (machine, duration, line)
    job_due: list[tuple[int, int] | None] = []  # (due, line)
    machine_index: dict[str, int] = {}
    machines_are_numbers: bool | None = None
    first_machine_line = 0
    n_operations = 0
    for number, line in lines[1:]:
        fields = _csv_fields(line, number, delimiter)
        if all(f.text == "" for f in fields):
            continue  # a spreadsheet's empty row: ",,,"
        surplus = next((f for f in fields[header_width:] if f.text != ""), None)
        if surplus is not None:
            raise _error(
                gettext_noop("this row has more cells than the header has columns (%(width)s)"), surplus, width=header_width
            )
        fields += [_Token("", number, len(line) + 1)] * (header_width - len(fields))

        def cell(key: str, fields: list[_Token] = fields) -> _Token:
            return fields[columns[key][0]]

        job_cell = cell("job")
        if job_cell.text == "":
            raise _error(gettext_noop("expected a job name, found an empty cell"), job_cell)
        j = job_index.get(job_cell.text)
        if j is None:
            if len(job_index) == MAX_JOBS:
                raise _error(
                    gettext_noop("job %(job)s is one more than the limit of %(max)s jobs"),
                    job_cell, job=repr(job_cell.text), max=MAX_JOBS,
                )  # fmt: skip
            j = job_index[job_cell.text] = len(job_index)
            job_first_line.append(number)
            job_ops.append({})
            job_due.append(None)

        if "due" in columns and (due_cell := cell("due")).text != "":
            due = _csv_int(due_cell, gettext_noop("a due date"))
            if due < 0:
                raise _error(gettext_noop("the due date %(due)s is negative"), due_cell, due=due)
            earlier = job_due[j]
            if earlier is not None and earlier[0] != due:
                raise _error(
                    gettext_noop("job %(job)s has due date %(due)s here but %(earlier)s on line %(earlier_line)s"),
                    due_cell, job=repr(job_cell.text), due=due, earlier=earlier[0], earlier_line=earlier[1],
                )  # fmt: skip
            job_due[j] = (due, number)

        sequence_cell, machine_cell, duration_cell = cell("sequence"), cell("machine"), cell("duration")
        if sequence_cell.text == machine_cell.text == duration_cell.text == "":
            continue  # the job is listed without an operation; refused below if it has none at all
        sequence = _csv_int(sequence_cell, gettext_noop("a sequence number"))
        if sequence in job_ops[j]:
            raise _error(
                gettext_noop(
                    "job %(job)s has sequence %(sequence)s twice (also on line %(other)s): "
                    "each operation of a job needs its own"
                ),
                sequence_cell, job=repr(job_cell.text), sequence=sequence, other=job_ops[j][sequence][2],
            )  # fmt: skip
        if machine_cell.text == "":
            raise _error(gettext_noop("expected a machine, found an empty cell"), machine_cell)
        if machines_are_numbers is None:
            machines_are_numbers, first_machine_line = machine_cell.is_int, number
        if machines_are_numbers:
            if not machine_cell.is_int:
                raise _error(
                    gettext_noop(
                        "expected a machine number (machines are numbers in this file, from line %(first)s), "
                        "found %(found)s"
                    ),
                    machine_cell, first=first_machine_line, found=repr(machine_cell.text),
                )  # fmt: skip
            machine = int(machine_cell.text)
            if machine < 0:
                raise _error(
                    gettext_noop("machine %(machine)s does not exist: machine numbers start at 0"), machine_cell, machine=machine
                )
            if machine >= MAX_MACHINES:
                raise _error(
                    gettext_noop("machine %(machine)s is above the limit of %(max)s machines (numbered 0 to %(last)s)"),
                    machine_cell, machine=machine, max=MAX_MACHINES, last=MAX_MACHINES - 1,
                )  # fmt: skip
        else:
            machine = machine_index.get(machine_cell.text)
            if machine is None:
                if len(machine_index) == MAX_MACHINES:
                    raise _error(
                        gettext_noop("machine %(machine)s is one more than the limit of %(max)s machines"),
                        machine_cell, machine=repr(machine_cell.text), max=MAX_MACHINES,
                    )  # fmt: skip
                machine = machine_index[machine_cell.text] = len(machine_index)
        duration = _check_duration(_csv_int(duration_cell, gettext_noop("a duration")), duration_cell)
        n_operations += 1
        if n_operations > MAX_OPERATIONS:
            raise _error(
                gettext_noop("this operation is one more than the limit of %(max)s operations"), job_cell, max=MAX_OPERATIONS
            )
        job_ops[j][sequence] = (machine, duration, number)

    if not job_index:
        raise _error(gettext_noop("the header is followed by no operations: the problem is empty"), line=header_no)
    names = list(job_index)
    for j, ops in enumerate(job_ops):
        if not ops:
            raise _error(
                gettext_noop("job %(job)s visits no machine: its rows give no sequence, machine or duration"),
                line=job_first_line[j], job=repr(names[j]),
            )  # fmt: skip
    if machines_are_numbers:
        n_machines = 1 + max(machine for ops in job_ops for machine, _d, _line in ops.values())
        machines = tuple(Machine(name=f"M{m}") for m in range(n_machines))
    else:
        machines = tuple(Machine(name=text) for text in machine_index)
    jobs = tuple(
        Job(
            name=names[j],
            operations=tuple(Operation(((ops[s][0], ops[s][1]),)) for s in sorted(ops)),
            due=None if job_due[j] is None else job_due[j][0],
        )
        for j, ops in enumerate(job_ops)
    )
    return Instance(jobs=jobs, machines=machines, name=name, meta={"format": "csv"}).check()


# --- detection ----------------------------------------------------------------------------

_READERS = {"orlib": read_orlib, "taillard": read_taillard, "csv": read_csv}


def read(text: str, format: str | None = None, name: str = "") -> Instance:
    """The problem in `text`, read as `format` ("orlib", "taillard" or "csv"), or detected.

    Detection, when no format is given:
    1. CSV when the first non-blank line, split at its commas, semicolons or tabs, has a
       column named `job`;
    2. Taillard when a line reads "Times" or "Machines", or the text mentions "Nb of jobs";
    3. otherwise from the first line of two or more whole numbers (the header `n m`):
       three or more numbers on it mean Taillard (seeds and bounds). With exactly two, the
       rows after it are weighed: an OR-Library file has n job lines of 2·m numbers, a
       Taillard file 2n rows of m numbers (2n+1 with seeds and bounds on their own line).
       The format the first row's width or the number of rows points to is chosen; when
       they point to different formats, or to neither, InstanceError asks for the format to
       be given (--format).
    """
    if format is not None:
        reader = _READERS.get(format)
        if reader is None:
            raise InstanceError(
                gettext_noop("Unknown format %(format)s: use one of %(formats)s."),
                field="format", format=repr(format), formats=", ".join(FORMATS),
            )  # fmt: skip
        return reader(text, name=name)
    return _READERS[detect(text)](text, name=name)


def detect(text: str) -> str:
    """The format `read` would read `text` as; InstanceError when it cannot tell (see `read`)."""
    lines = _lines(text)
    content = [(number, line) for number, line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        if any(line.strip() for _no, line in lines):
            raise InstanceError(gettext_noop("The file holds only comments: no problem in it."), field="file")
        raise InstanceError(gettext_noop("The file is empty."), field="file")
    first = content[0][1]
    for delimiter in (",", ";", "\t"):
        if delimiter in first and "job" in {_csv_name(part.strip('"')) for part in first.split(delimiter)}:
            return "csv"
    for _number, line in content:
        words = line.strip().lower()
        if words.rstrip(":") in ("times", "machines") or "nb of jobs" in words:
            return "taillard"

    rows = [tokens for number, line in content if (tokens := _tokens(number, line))]
    start = next((i for i, tokens in enumerate(rows) if len(tokens) >= 2 and all(t.is_int for t in tokens)), None)
    if start is None:
        raise InstanceError(
            gettext_noop(
                "Cannot tell the format: no line gives the numbers of jobs and machines, and the first line names no 'job' "
                "column. Give the format (--format orlib, taillard or csv)."
            ),
            field="format",
        )
    header = rows[start]
    if len(header) > 2:
        return "taillard"
    n, m = int(header[0].text), int(header[1].text)
    after = [tokens for tokens in rows[start + 1 :] if tokens[0].is_int]
    if not after or n <= 0 or m <= 0:
        return "orlib"  # its reader says what is missing
    width, count = len(after[0]), len(after)
    orlib = (width == 2 * m, count == n)
    seeds_line = count == 2 * n + 1 and len(after[1]) == m  # seeds and bounds, then the rows
    taillard = (width == m or seeds_line, count in (2 * n, 2 * n + 1))
    if any(orlib) and not any(taillard):
        return "orlib"
    if any(taillard) and not any(orlib):
        return "taillard"
    if all(orlib) or all(taillard):
        return "orlib" if all(orlib) else "taillard"
    row = after[0][0]
    raise InstanceError(
        gettext_noop(
            "cannot tell whether this is an OR-Library or a Taillard file: after the header '%(n)s %(m)s' this row has "
            "%(numbers)s and %(rows)s follow; an OR-Library file has %(n)s job lines of %(width)s "
            "numbers (machine and duration pairs), a Taillard file %(taillard_rows)s rows of %(m)s. "
            "Check the rows, or give the format (--format orlib or taillard)."
        ),
        field="format", line=row.line, column=row.column,
        n=n, m=m, numbers=_numbers(width), rows=ngettext("%(n)s row", "%(n)s rows", count), width=2 * m, taillard_rows=2 * n,
    )  # fmt: skip
