"""Shop problems built from tables: a dataset's rows of operations, or the browser editor's three tables.

Both builders return the shape ShopProblem stores (`machines`, `jobs`, as instance.to_dict writes
them), which scheduling.services.instance_from_data then checks like any other problem, so the
limits and messages are the same everywhere. `Built.locate` turns the field that check names
("jobs.2.operations.1.duration") back into the table, row and column it came from, so a refusal
is shown on the row the person typed or the dataset row it was read from.

Tables and their columns, as both builders and `locate` name them:
- `operations`: job, sequence, machine, duration (and, in a dataset, due, release, weight per row);
- `jobs`: name, release, due, weight (the editor's jobs table; in a dataset, a job's first row);
- `machines`: name, mtbf, mttr (the editor's machines table; in a dataset, a machine's first row).
Rows are numbered from 0 as the caller gave them; messages about a dataset say "row N" from 1.

From a dataset (`from_columns`), one row per operation:
- job values of any type become job names; jobs are numbered in the order they first appear;
- a job's operations follow `sequence` (whole numbers, distinct within the job) or the row order;
- machine values become machine names: numbers in ascending order, text in order of appearance;
- durations (and due, release) are whole numbers: 12.0 is 12, 12.5 is refused with its row;
- due, release and weight belong to the job: rows that give one must agree (blank rows take it).
With `alternatives=True` (the flexible job shop, in the "long" layout of planning exports) the
rows that share a job and a sequence are one operation, one row per machine that can run it with
its duration there: the sequence is then needed on every row, and a machine may appear once per
operation. The row limit stays MAX_OPERATIONS (rows, so operations too).

In the editor (`from_tables`) an operation row has its machine and duration, and optionally
`alternatives`: other (machine name, duration) pairs that can run it instead; the form parses the
cell's text ("mill 2: 14, mill 3: 12"), this module resolves the names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from scheduling.engine.instance import (
    MAX_DURATION,
    MAX_JOBS,
    MAX_MACHINES,
    MAX_OPERATIONS,
    InstanceError,
    gettext_noop,
    phrase,
)

ROLES = ("job", "sequence", "machine", "duration", "due", "release", "weight")
REQUIRED_ROLES = ("job", "machine", "duration")
JOB_ROLES = ("due", "release", "weight")  # per job: the same on every row that gives one


class TableError(InstanceError):
    """A refused cell or row: `table`, `row` (0-based; None for the whole column) and `column` name it."""

    def __init__(self, template: str, *, table: str, row: int | None, column: str, **params):
        super().__init__(template, field=column if row is None else f"{table}.{row}.{column}", **params)
        self.table, self.row, self.column = table, row, column


@dataclass(frozen=True)
class Built:
    """A problem in the stored shape, and where each machine, job and operation came from."""

    machines: list[dict]
    jobs: list[dict]
    places: dict[str, tuple[str, int]]  # "machines.0", "jobs.1", "jobs.1.operations.2" -> (table, row)
    # "jobs.1.operations.2.0" (option 0 of that operation) -> (table, row, the cell that holds it:
    # None for the row's machine and duration columns, "alternatives" for the editor's alternatives cell).
    options: dict[str, tuple[str, int, str | None]] = field(default_factory=dict)

    def locate(self, field: str) -> tuple[str, int, str] | None:
        """(table, row, column) of an engine field such as "jobs.1.operations.2.duration"; None for the whole problem."""
        parts = field.split(".")
        if len(parts) >= 2 and parts[0] == "machines":
            place = self.places.get(".".join(parts[:2]))
            column = parts[2] if len(parts) > 2 else "name"
        elif len(parts) >= 4 and parts[0] == "jobs" and parts[2] == "operations":
            place = self.places.get(".".join(parts[:4]))
            column = parts[4] if len(parts) > 4 and parts[4] in ("machine", "duration") else "machine"
            option = self._option_at_fault(parts, column)
            if option is not None:
                table, row, cell = option
                return table, row, cell or column
        elif len(parts) >= 2 and parts[0] == "jobs":
            place = self.places.get(".".join(parts[:2]))
            column = parts[2] if len(parts) > 2 and parts[2] in ("release", "due", "weight") else "name"
        else:
            return None
        return None if place is None else (place[0], place[1], column)

    def _option_at_fault(self, parts: list[str], column: str) -> tuple[str, int, str | None] | None:
        """The place of the option an engine refusal of an operation's duration is about, where the
        operation has several (on several dataset rows, or in the editor's alternatives cell).

        Instance.check names the operation, not the option: this finds the first option whose
        duration it refuses (negative, or above MAX_DURATION), as check reads them. Machines need no
        such search: the builders resolve names and refuse a machine named twice themselves.
        """
        if column != "duration" or not (parts[1].isdigit() and parts[3].isdigit()):
            return None
        j, k = int(parts[1]), int(parts[3])
        try:
            options = self.jobs[j]["operations"][k]
        except (IndexError, KeyError, TypeError):
            return None
        if len(options) < 2:
            return None
        fault = next((i for i, (_m, d) in enumerate(options) if not 0 <= d <= MAX_DURATION), 0)
        return self.options.get(f"jobs.{j}.operations.{k}.{fault}")


def _route(
    job: int, steps: list[tuple[int, int | None, list]], table: str, where, *, grouped: bool = False, machine_names=()
) -> tuple[list, dict, dict]:
    """A job's operations from its (row, sequence, options) steps, in sequence order (else row order).

    `options` of a step: (machine, duration, cell) triples (see Built.options for the cell).
    `grouped` (a dataset's alternatives): steps with the same sequence are one operation, their
    options in row order; a sequence is then needed on every row and a machine once per operation
    (`machine_names` names it in the refusal). Otherwise a sequence given twice is refused.
    Returns the stored operations, their places, and their options' places; TableError otherwise.
    """
    if grouped:
        for row, sequence, _options in steps:
            if sequence is None:
                raise TableError(
                    gettext_noop(
                        "%(where)sthe sequence is missing: with alternative machines, the rows of one operation "
                        "share its job and sequence."
                    ),
                    table=table, row=row, column="sequence", where=where(row),
                )  # fmt: skip
    elif any(sequence is not None for _row, sequence, _o in steps):
        seen: dict[int, int] = {}
        for row, sequence, _o in steps:
            if sequence is None:
                raise TableError(
                    gettext_noop("%(where)sthe other operations of this job give a sequence; give one here too."),
                    table=table, row=row, column="sequence", where=where(row),
                )  # fmt: skip
            if sequence in seen:
                raise TableError(
                    gettext_noop("%(where)ssequence %(sequence)s is given twice for this job (also on row %(other)s)."),
                    table=table, row=row, column="sequence", where=where(row), sequence=sequence, other=seen[sequence] + 1,
                )  # fmt: skip
            seen[sequence] = row
    if any(sequence is not None for _row, sequence, _o in steps):
        steps = sorted(steps, key=lambda step: step[1])  # stable: a group's rows stay in row order
    groups: list[list[tuple[int, int | None, list]]] = []
    for step in steps:
        if grouped and groups and groups[-1][0][1] == step[1]:
            groups[-1].append(step)
        else:
            groups.append([step])
    operations, places, option_places = [], {}, {}
    for k, group in enumerate(groups):
        places[f"jobs.{job}.operations.{k}"] = (table, group[0][0])
        options, rows_of = [], {}
        for row, sequence, step_options in group:
            for machine, duration, cell in step_options:
                if grouped and machine in rows_of:
                    raise TableError(
                        gettext_noop(
                            "%(where)smachine %(machine)s is given twice for sequence %(sequence)s of this "
                            "job (also on row %(other)s); give each machine once per operation."
                        ),
                        table=table, row=row, column="machine", where=where(row),
                        machine=repr(machine_names[machine]), sequence=sequence, other=rows_of[machine] + 1,
                    )  # fmt: skip
                rows_of[machine] = row
                option_places[f"jobs.{job}.operations.{k}.{len(options)}"] = (table, row, cell)
                options.append([machine, duration])
        operations.append(options)
    return operations, places, option_places


# --- from a dataset ---------------------------------------------------------------------------------


def _dataset_row(row: int) -> str:
    return phrase(gettext_noop("row %(row)s: "), row=row + 1)


# The roles' names as messages say them ("duration must be a whole number").
_ROLE_WORDS = {
    "job": gettext_noop("job"),
    "sequence": gettext_noop("sequence"),
    "machine": gettext_noop("machine"),
    "duration": gettext_noop("duration"),
    "due": gettext_noop("due"),
    "release": gettext_noop("release"),
    "weight": gettext_noop("weight"),
}


def _label(value) -> str:
    """A cell as a name: whole floats without ".0", text stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()[:100]


def _whole(value, role: str, row: int) -> int | None:
    """A whole number from a numeric cell (12.0 is 12); None for an empty cell; TableError otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TableError(
            gettext_noop("%(where)s%(role)s must be a whole number, not %(value)s."),
            table="operations", row=row, column=role, where=_dataset_row(row), role=_ROLE_WORDS[role], value=repr(value),
        )  # fmt: skip
    if isinstance(value, int):
        return value
    if not math.isfinite(value) or value != int(value):
        raise TableError(
            gettext_noop("%(where)s%(role)s %(value)s is not a whole number (durations and times are whole units)."),
            table="operations", row=row, column=role, where=_dataset_row(row), role=_ROLE_WORDS[role], value=value,
        )  # fmt: skip
    return int(value)


def _number(value, role: str, row: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value):
        raise TableError(
            gettext_noop("%(where)s%(role)s must be a number, not %(value)s."),
            table="operations", row=row, column=role, where=_dataset_row(row), role=_ROLE_WORDS[role], value=repr(value),
        )  # fmt: skip
    return float(value)


def _required(value, role: str, row: int):
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        raise TableError(
            gettext_noop("%(where)sthe %(role)s is missing (a value is needed on every row)."),
            table="operations", row=row, column=role, where=_dataset_row(row), role=_ROLE_WORDS[role],
        )  # fmt: skip
    return value


def _distinct(values: list, role: str, limit: int) -> dict:
    """{value: the row it first appears on}, in order of appearance; TableError at the first value above `limit`."""
    first: dict = {}
    for row, value in enumerate(values):
        if value not in first:
            if len(first) == limit:
                template = {
                    "job": gettext_noop("%(where)sjob %(value)s is one more than the limit of %(limit)s jobs."),
                    "machine": gettext_noop("%(where)smachine %(value)s is one more than the limit of %(limit)s machines."),
                }[role]
                raise TableError(
                    template, table="operations", row=row, column=role, where=_dataset_row(row), value=repr(value), limit=limit
                )
            first[value] = row
    return first


def from_columns(columns: dict[str, list], *, alternatives: bool = False) -> Built:
    """A problem from a dataset's columns, one value per row, keyed by role (see ROLES and the module docstring).

    `job`, `machine` and `duration` are required; every list has the same length. With
    `alternatives`, rows sharing a job and a sequence are one operation's alternative machines
    (`sequence` required). TableError (table "operations", the role as column, the 0-based row)
    on the first cell refused.
    """
    for role in REQUIRED_ROLES:
        if role not in columns:
            raise TableError(
                gettext_noop("Choose the column that gives the %(role)s."),
                table="operations", row=None, column=role, role=_ROLE_WORDS[role],
            )  # fmt: skip
    if alternatives and "sequence" not in columns:
        raise TableError(
            gettext_noop(
                "With alternative machines, choose the column that gives the sequence: the rows of one operation "
                "share its job and sequence."
            ),
            table="operations", row=None, column="sequence",
        )  # fmt: skip
    n = len(columns["job"])
    if n == 0:
        raise TableError(gettext_noop("The table has no rows: the problem is empty."), table="operations", row=None, column="job")
    if n > MAX_OPERATIONS:
        template = (
            gettext_noop("%(n)s rows (one per operation and machine) are above the limit of %(max)s.")
            if alternatives
            else gettext_noop("%(n)s rows (operations) are above the limit of %(max)s.")
        )
        raise TableError(template, table="operations", row=None, column="job", n=n, max=MAX_OPERATIONS)  # fmt: skip
    jobs = [_label(_required(value, "job", row)) for row, value in enumerate(columns["job"])]
    job_first = _distinct(jobs, "job", MAX_JOBS)
    job_index = {name: j for j, name in enumerate(job_first)}
    cells = [_required(value, "machine", row) for row, value in enumerate(columns["machine"])]
    if all(isinstance(m, int | float | Decimal) and not isinstance(m, bool) for m in cells):
        numbers = [_whole(m, "machine", row) for row, m in enumerate(cells)]
        machine_first = _distinct(numbers, "machine", MAX_MACHINES)
        machine_first = {str(m): machine_first[m] for m in sorted(machine_first)}  # numbered in ascending order
        machines = [str(m) for m in numbers]
    else:
        machines = [_label(m) for m in cells]
        machine_first = _distinct(machines, "machine", MAX_MACHINES)
    machine_index = {name: m for m, name in enumerate(machine_first)}
    durations = [_required(_whole(value, "duration", row), "duration", row) for row, value in enumerate(columns["duration"])]
    sequences = [_whole(value, "sequence", row) for row, value in enumerate(columns.get("sequence") or [None] * n)]

    attributes: list[dict] = [{} for _ in job_index]  # per job: role -> (value, row)
    for role in JOB_ROLES:
        read = _number if role == "weight" else _whole
        for row, cell in enumerate(columns.get(role) or []):
            value = read(cell, role, row)
            if value is None:
                continue
            earlier = attributes[job_index[jobs[row]]].get(role)
            if earlier is not None and earlier[0] != value:
                raise TableError(
                    gettext_noop(
                        "%(where)sjob %(job)s has %(role)s %(value)s here but %(earlier)s on row %(other)s: "
                        "a job's %(role)s must be the same on each of its rows."
                    ),
                    table="operations", row=row, column=role, where=_dataset_row(row), job=repr(jobs[row]),
                    role=_ROLE_WORDS[role], value=value, earlier=earlier[0], other=earlier[1] + 1,
                )  # fmt: skip
            attributes[job_index[jobs[row]]].setdefault(role, (value, row))

    steps: list[list] = [[] for _ in job_index]
    for row in range(n):
        steps[job_index[jobs[row]]].append((row, sequences[row], [(machine_index[machines[row]], durations[row], None)]))
    places: dict[str, tuple[str, int]] = {}
    option_places: dict[str, tuple[str, int, str | None]] = {}
    stored_jobs = []
    for name, j in job_index.items():
        operations, route_places, route_options = _route(
            j, steps[j], "operations", _dataset_row, grouped=alternatives, machine_names=list(machine_index)
        )
        places.update(route_places)
        option_places.update(route_options)
        places[f"jobs.{j}"] = ("operations", job_first[name])
        given = {role: value for role, (value, _row) in attributes[j].items()}
        stored_jobs.append({"name": name, "release": given.get("release", 0), "due": given.get("due"),
                            "weight": given.get("weight", 1.0), "operations": operations})  # fmt: skip
    places.update((f"machines.{m}", ("operations", machine_first[name])) for name, m in machine_index.items())
    stored_machines = [{"name": name, "mtbf": None, "mttr": None} for name in machine_index]
    return Built(machines=stored_machines, jobs=stored_jobs, places=places, options=option_places)


# --- from the editor's tables -----------------------------------------------------------------------


def _no_row(_row: int) -> str:
    return ""  # the editor shows a message on its row: it needs no "row N: " before it


def _names(rows: list[dict | None], table: str) -> dict[str, int]:
    """{name: position among the kept rows} of a table's rows; TableError on a name given twice."""
    index: dict[str, int] = {}
    first: dict[str, int] = {}
    for row, cells in enumerate(rows):
        if cells is None:
            continue
        name = str(cells.get("name") or "").strip()
        if name in index:
            raise TableError(
                gettext_noop("“%(name)s” is already the name of row %(other)s; each needs its own."),
                table=table, row=row, column="name", name=name, other=first[name] + 1,
            )  # fmt: skip
        index[name], first[name] = len(index), row
    return index


def from_tables(machines: list[dict | None], jobs: list[dict | None], operations: list[dict | None]) -> Built:
    """A problem from the editor's tables; None stands for a blank row (skipped, so rows keep their numbers).

    machines: {"name", "mtbf", "mttr"}; jobs: {"name", "release", "due", "weight"}; operations:
    {"job": a job's name, "sequence": whole number or None, "machine": a machine's name, "duration",
    and optionally "alternatives": [(a machine's name, duration), …] that can run it instead}.
    Cells are already typed (the form checked them). TableError names the table, row and column.
    """
    machine_index = _names(machines, "machines")
    job_index = _names(jobs, "jobs")

    def unknown(column: str, index: dict, table: str, name, row: int, cell: str | None = None) -> TableError:
        known = ", ".join(f"“{other}”" for other in list(index)[:8]) or gettext_noop("none yet")
        template = {
            "jobs": gettext_noop("No job is named “%(name)s” in the jobs table (%(known)s)."),
            "machines": gettext_noop("No machine is named “%(name)s” in the machines table (%(known)s)."),
        }[table]
        return TableError(template, table="operations", row=row, column=cell or column, name=name, known=known)

    steps: list[list] = [[] for _ in job_index]
    for row, cells in enumerate(operations):
        if cells is None:
            continue
        for column, index, table in (("job", job_index, "jobs"), ("machine", machine_index, "machines")):
            if str(cells.get(column) or "").strip() not in index:
                raise unknown(column, index, table, cells.get(column), row)
        machine = machine_index[str(cells["machine"]).strip()]
        options = [(machine, cells["duration"], None)]
        named = {machine}
        for name, duration in cells.get("alternatives") or ():
            name = str(name).strip()
            if name not in machine_index:
                raise unknown("machine", machine_index, "machines", name, row, "alternatives")
            if machine_index[name] in named:
                raise TableError(
                    gettext_noop(
                        "Machine “%(name)s” is named twice for this operation; name each machine once, with its duration."
                    ),
                    table="operations", row=row, column="alternatives", name=name,
                )  # fmt: skip
            named.add(machine_index[name])
            options.append((machine_index[name], duration, "alternatives"))
        steps[job_index[str(cells["job"]).strip()]].append((row, cells.get("sequence"), options))
    places: dict[str, tuple[str, int]] = {}
    option_places: dict[str, tuple[str, int, str | None]] = {}
    kept_machines = [(row, cells) for row, cells in enumerate(machines) if cells is not None]
    kept_jobs = [(row, cells) for row, cells in enumerate(jobs) if cells is not None]
    stored_jobs = []
    for j, (row, cells) in enumerate(kept_jobs):
        operations_of_job, route_places, route_options = _route(j, steps[j], "operations", _no_row)
        places.update(route_places)
        option_places.update(route_options)
        places[f"jobs.{j}"] = ("jobs", row)
        stored_jobs.append({
            "name": str(cells["name"]).strip(), "release": cells.get("release") or 0, "due": cells.get("due"),
            "weight": 1.0 if cells.get("weight") is None else cells["weight"], "operations": operations_of_job,
        })  # fmt: skip
    for m, (row, _cells) in enumerate(kept_machines):
        places[f"machines.{m}"] = ("machines", row)
    stored_machines = [
        {"name": str(cells["name"]).strip(), "mtbf": cells.get("mtbf"), "mttr": cells.get("mttr")}
        for _row, cells in kept_machines
    ]
    return Built(machines=stored_machines, jobs=stored_jobs, places=places, options=option_places)


def to_tables(machines: list[dict], jobs: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """The editor's three tables of a stored problem: the inverse of from_tables. An operation's first
    option gives its machine and duration, the others its alternatives ([(machine name, duration), …])."""
    names = [m["name"] for m in machines]
    machine_rows = [{"name": m["name"], "mtbf": m.get("mtbf"), "mttr": m.get("mttr")} for m in machines]
    job_rows = [
        {"name": j["name"], "release": j.get("release") or 0, "due": j.get("due"), "weight": j.get("weight", 1.0)} for j in jobs
    ]
    operation_rows = [
        {
            "job": j["name"],
            "sequence": k + 1,
            "machine": names[options[0][0]],
            "duration": options[0][1],
            "alternatives": [(names[m], d) for m, d in options[1:]],
        }
        for j in jobs
        for k, options in enumerate(j["operations"])
    ]
    return machine_rows, job_rows, operation_rows
