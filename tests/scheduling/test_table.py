"""Problems from tables (scheduling.engine.table): a dataset's columns and the editor's three tables,
each refusal naming its table, row and column, and the engine's own refusals traced back to their row."""

from decimal import Decimal

import pytest

from scheduling import services
from scheduling.engine import table
from scheduling.engine.instance import InstanceError
from scheduling.engine.table import TableError, from_columns, from_tables, to_tables

COLUMNS = {
    "job": ["A", "A", "B", "B", "A"],
    "sequence": [2, 1, 1, 2, 3],
    "machine": ["mill", "lathe", "mill", "lathe", "drill"],
    "duration": [2, 3, 4.0, 1, Decimal("5")],
    "due": [20, None, None, 30, 20],
    "weight": [None, 2, 1.5, None, None],
}


def test_columns_become_jobs_in_sequence_and_named_machines():
    built = from_columns(COLUMNS)
    assert [m["name"] for m in built.machines] == ["mill", "lathe", "drill"]  # in order of appearance
    a, b = built.jobs
    assert (a["name"], a["due"], a["weight"], a["release"]) == ("A", 20, 2, 0)
    assert a["operations"] == [[[1, 3]], [[0, 2]], [[2, 5]]]  # sequence 1, 2, 3 (rows 2, 1, 5)
    assert (b["name"], b["due"], b["weight"], b["operations"]) == ("B", 30, 1.5, [[[0, 4]], [[1, 1]]])
    assert built.places["jobs.0.operations.0"] == ("operations", 1)
    assert built.places["machines.2"] == ("operations", 4)


def test_without_a_sequence_the_rows_give_the_order_and_number_machines_are_sorted():
    built = from_columns({"job": [7, 7, 8.0], "machine": [3, 1, 2.0], "duration": [1, 2, 3]})
    assert [j["name"] for j in built.jobs] == ["7", "8"]
    assert [m["name"] for m in built.machines] == ["1", "2", "3"]
    assert built.jobs[0]["operations"] == [[[2, 1]], [[0, 2]]]


@pytest.mark.parametrize(
    "change, column, row, words",
    [
        ({"job": ["A", None, "B", "B", "A"]}, "job", 1, "row 2: the job is missing"),
        ({"machine": ["mill", "lathe", "  ", "lathe", "drill"]}, "machine", 2, "row 3: the machine is missing"),
        ({"duration": [2, 3, 4.5, 1, 5]}, "duration", 2, "row 3: duration 4.5 is not a whole number"),
        ({"duration": [2, 3, float("nan"), 1, 5]}, "duration", 2, "row 3: the duration is missing"),
        ({"duration": [2, 3, "4", 1, 5]}, "duration", 2, "must be a whole number, not '4'"),
        ({"sequence": [1, 1, 1, 2, 3]}, "sequence", 1, "row 2: sequence 1 is given twice for this job (also on row 1)"),
        ({"sequence": [1, None, 1, 2, 3]}, "sequence", 1, "row 2: the other operations of this job give a sequence"),
        ({"due": [20, 21, None, 30, 20]}, "due", 1, "job 'A' has due 21 here but 20 on row 1"),
        ({"weight": [1, 2, 1.5, None, None]}, "weight", 1, "job 'A' has weight 2.0 here but 1.0 on row 1"),
        ({"release": [0.5, None, None, None, None]}, "release", 0, "row 1: release 0.5 is not a whole number"),
    ],
)
def test_a_bad_cell_names_its_column_and_row(change, column, row, words):
    with pytest.raises(TableError) as caught:
        from_columns(COLUMNS | change)
    assert (caught.value.table, caught.value.row, caught.value.column) == ("operations", row, column)
    assert words in caught.value.message


def test_an_empty_table_a_missing_role_and_the_limits_are_refused(monkeypatch):
    with pytest.raises(TableError, match="no rows"):
        from_columns({"job": [], "machine": [], "duration": []})
    with pytest.raises(TableError, match="Choose the column that gives the machine"):
        from_columns({"job": ["A"], "duration": [1]})
    monkeypatch.setattr(table, "MAX_MACHINES", 2)
    with pytest.raises(TableError, match="row 5: machine 'drill' is one more than the limit of 2 machines") as caught:
        from_columns(COLUMNS)
    assert caught.value.column == "machine"
    monkeypatch.setattr(table, "MAX_OPERATIONS", 4)
    with pytest.raises(TableError, match="5 rows \\(operations\\) are above the limit of 4"):
        from_columns(COLUMNS)


def test_the_engines_refusal_is_traced_to_the_row_it_came_from():
    built = from_columns(COLUMNS | {"duration": [2, 3, 4, -1, 5]})
    with pytest.raises(InstanceError) as caught:
        services.instance_from_data(built.machines, built.jobs)
    assert caught.value.field == "jobs.1.operations.1.duration"
    assert built.locate(caught.value.field) == ("operations", 3, "duration")
    assert built.locate("jobs.0.due") == ("operations", 0, "due")
    assert built.locate("jobs.1.operations") == ("operations", 2, "name")
    assert built.locate("machines.1.name") == ("operations", 1, "name")
    assert built.locate("problem") is None


MACHINES = [{"name": "lathe", "mtbf": None, "mttr": None}, None, {"name": "mill", "mtbf": 50.0, "mttr": 5.0}]
JOBS = [{"name": "A", "release": 0, "due": None, "weight": 1.0}, {"name": "B", "release": 2, "due": 9, "weight": 2.0}]
OPERATIONS = [
    {"job": "A", "sequence": None, "machine": "lathe", "duration": 3},
    None,
    {"job": "B", "sequence": 2, "machine": "lathe", "duration": 1},
    {"job": "A", "sequence": None, "machine": "mill", "duration": 2},
    {"job": "B", "sequence": 1, "machine": "mill", "duration": 4},
]


def test_the_editors_tables_keep_their_row_numbers_and_round_trip():
    built = from_tables(MACHINES, JOBS, OPERATIONS)
    assert built.machines == [{"name": "lathe", "mtbf": None, "mttr": None}, {"name": "mill", "mtbf": 50.0, "mttr": 5.0}]
    assert built.jobs[0]["operations"] == [[[0, 3]], [[1, 2]]]
    assert built.jobs[1] | {"operations": None} == {"name": "B", "release": 2, "due": 9, "weight": 2.0, "operations": None}
    assert built.jobs[1]["operations"] == [[[1, 4]], [[0, 1]]]
    assert built.locate("machines.1.mtbf") == ("machines", 2, "mtbf")
    assert built.locate("jobs.1.operations.0.duration") == ("operations", 4, "duration")
    machines, jobs, operations = to_tables(built.machines, built.jobs)
    again = from_tables(machines, jobs, operations)
    assert (again.machines, again.jobs) == (built.machines, built.jobs)


@pytest.mark.parametrize(
    "machines, jobs, operations, place, words",
    [
        (MACHINES + [{"name": "lathe"}], JOBS, OPERATIONS, ("machines", 3, "name"), "“lathe” is already the name of row 1"),
        (MACHINES, JOBS + [{"name": "A"}], OPERATIONS, ("jobs", 2, "name"), "“A” is already the name of row 1"),
        (MACHINES, JOBS, OPERATIONS[:4] + [OPERATIONS[4] | {"machine": "drill"}], ("operations", 4, "machine"), "No machine"),
        (MACHINES, JOBS, OPERATIONS[:4] + [OPERATIONS[4] | {"job": "C"}], ("operations", 4, "job"), "No job is named “C”"),
        (MACHINES, JOBS, OPERATIONS[:4] + [OPERATIONS[4] | {"sequence": 2}], ("operations", 4, "sequence"), "also on row 3"),
    ],
)
def test_the_editors_refusals_name_table_row_and_column(machines, jobs, operations, place, words):
    with pytest.raises(TableError) as caught:
        from_tables(machines, jobs, operations)
    assert (caught.value.table, caught.value.row, caught.value.column) == place
    assert words in caught.value.message


# --- alternative machines (the flexible job shop) ---------------------------------------------------

# The "long" layout of planning exports: one row per operation and eligible machine. A's operation 1
# runs on the lathe or the mill; B's operation 2 (rows out of order) on the mill or the drill.
LONG = {
    "job": ["A", "A", "A", "B", "B", "B"],
    "sequence": [1, 1, 2, 2, 1, 2],
    "machine": ["lathe", "mill", "drill", "mill", "lathe", "drill"],
    "duration": [3, 5, 2, 4, 6, 3],
    "due": [20, 20, None, 30, None, None],
}


def test_rows_sharing_job_and_sequence_are_one_operations_alternative_machines():
    built = from_columns(LONG, alternatives=True)
    assert [m["name"] for m in built.machines] == ["lathe", "mill", "drill"]
    a, b = built.jobs
    assert a["operations"] == [[[0, 3], [1, 5]], [[2, 2]]]
    assert b["operations"] == [[[0, 6]], [[1, 4], [2, 3]]]  # by sequence; a group's rows in row order
    assert (a["due"], b["due"]) == (20, 30)
    assert built.places["jobs.1.operations.1"] == ("operations", 3)
    assert built.options["jobs.1.operations.1.1"] == ("operations", 5, None)
    instance = services.instance_from_data(built.machines, built.jobs)
    assert instance.flexible and instance.n_operations == 4


def test_without_the_switch_the_same_rows_are_refused_as_before():
    with pytest.raises(TableError, match=r"row 2: sequence 1 is given twice for this job \(also on row 1\)"):
        from_columns(LONG)


@pytest.mark.parametrize(
    "change, column, row, words",
    [
        ({"machine": ["lathe", "lathe", "drill", "mill", "lathe", "drill"]}, "machine", 1,
         "row 2: machine 'lathe' is given twice for sequence 1 of this job (also on row 1)"),
        ({"sequence": [1, None, 2, 2, 1, 2]}, "sequence", 1,
         "row 2: the sequence is missing: with alternative machines, the rows of one operation share its job and sequence"),
        ({"duration": [3, 5.5, 2, 4, 6, 3]}, "duration", 1, "row 2: duration 5.5 is not a whole number"),
        ({"duration": [3, None, 2, 4, 6, 3]}, "duration", 1, "row 2: the duration is missing"),
        ({"machine": ["lathe", None, "drill", "mill", "lathe", "drill"]}, "machine", 1, "row 2: the machine is missing"),
        ({"due": [20, 21, None, 30, None, None]}, "due", 1, "job 'A' has due 21 here but 20 on row 1"),
    ],
    ids=["duplicate-machine", "missing-sequence", "fraction", "missing-duration", "missing-machine", "due-per-job"],
)  # fmt: skip
def test_a_bad_alternative_names_its_column_and_row(change, column, row, words):
    with pytest.raises(TableError) as caught:
        from_columns(LONG | change, alternatives=True)
    assert (caught.value.table, caught.value.row, caught.value.column) == ("operations", row, column)
    assert words in caught.value.message, caught.value.message


def test_alternatives_need_a_sequence_column_and_keep_the_row_limit(monkeypatch):
    without = {role: values for role, values in LONG.items() if role != "sequence"}
    with pytest.raises(TableError, match="With alternative machines, choose the column that gives the sequence") as caught:
        from_columns(without, alternatives=True)
    assert (caught.value.row, caught.value.column) == (None, "sequence")
    monkeypatch.setattr(table, "MAX_OPERATIONS", 5)
    with pytest.raises(TableError, match=r"6 rows \(one per operation and machine\) are above the limit of 5"):
        from_columns(LONG, alternatives=True)


def test_the_engines_refusal_of_an_alternative_is_traced_to_its_row():
    built = from_columns(LONG | {"duration": [3, 5, 2, 4, 6, -3]}, alternatives=True)
    with pytest.raises(InstanceError) as caught:
        services.instance_from_data(built.machines, built.jobs)
    assert caught.value.field == "jobs.1.operations.1.duration"
    assert "the duration -3 is negative" in caught.value.message
    assert built.locate(caught.value.field) == ("operations", 5, "duration")  # the drill's row, not the mill's
    first = from_columns(LONG | {"duration": [3, 5, 2, -4, 6, 3]}, alternatives=True)
    assert first.locate("jobs.1.operations.1.duration") == ("operations", 3, "duration")


@pytest.mark.parametrize("method", ["spt", "mwkr", "cpsat"])
def test_a_flexible_problem_from_either_builder_is_scheduled_and_valid(method):
    from scheduling.engine.schedule import validate
    from scheduling.engine.solve import solve

    editor = from_tables(MACHINES, JOBS, [OPERATIONS[0] | {"alternatives": [("mill", 1)]}, *OPERATIONS[1:]])
    for built in (from_columns(LONG, alternatives=True), editor):
        instance = services.instance_from_data(built.machines, built.jobs)
        assert instance.flexible
        result = solve(instance, method, time_limit=5, seed=0)
        schedule = validate(instance, result.schedule)
        assert len(schedule.operations) == instance.n_operations
        if method == "cpsat":
            assert result.extra["optimal"]
    # A's first operation takes 1 on the mill instead of 3 on the lathe: the optimum uses it.
    chosen = {(o.job, o.op): o.machine for o in solve(services.instance_from_data(editor.machines, editor.jobs), "cpsat",
                                                        time_limit=5, seed=0).schedule.operations}  # fmt: skip
    assert chosen[(0, 0)] == 1


def test_the_editors_alternatives_cell_adds_options_and_round_trips():
    operations = [OPERATIONS[0] | {"alternatives": [("mill", 4)]}, *OPERATIONS[1:4], OPERATIONS[4] | {"alternatives": []}]
    built = from_tables(MACHINES, JOBS, operations)
    assert built.jobs[0]["operations"] == [[[0, 3], [1, 4]], [[1, 2]]]
    assert built.options["jobs.0.operations.0.1"] == ("operations", 0, "alternatives")
    assert built.locate("jobs.0.operations.0.duration") == ("operations", 0, "duration")
    machines, jobs, rows = to_tables(built.machines, built.jobs)
    assert rows[0]["alternatives"] == [("mill", 4)] and rows[1]["alternatives"] == []
    again = from_tables(machines, jobs, rows)
    assert (again.machines, again.jobs) == (built.machines, built.jobs)


def test_the_engines_refusal_of_an_editor_alternative_lands_on_its_cell():
    built = from_tables(MACHINES, JOBS, [OPERATIONS[0] | {"alternatives": [("mill", -1)]}, *OPERATIONS[1:]])
    with pytest.raises(InstanceError) as caught:
        services.instance_from_data(built.machines, built.jobs)
    assert built.locate(caught.value.field) == ("operations", 0, "alternatives")


@pytest.mark.parametrize(
    "alternatives, words",
    [
        ([("drill", 2)], "No machine is named “drill” in the machines table (“lathe”, “mill”)."),
        ([("mill", 2)], "Machine “mill” is named twice for this operation"),  # the row's own machine
        ([("lathe", 2), ("lathe", 3)], "Machine “lathe” is named twice for this operation"),
    ],
    ids=["unknown", "same-as-machine", "twice"],
)
def test_the_editors_bad_alternatives_are_refused_on_their_cell(alternatives, words):
    operations = [*OPERATIONS[:3], OPERATIONS[3] | {"alternatives": alternatives}, OPERATIONS[4]]
    with pytest.raises(TableError) as caught:
        from_tables(MACHINES, JOBS, operations)
    assert (caught.value.table, caught.value.row, caught.value.column) == ("operations", 3, "alternatives")
    assert words in caught.value.message
