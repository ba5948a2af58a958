"""`manage.py solve_jssp`: the file in, the schedule JSON out; bad input exits 2 and changes nothing.

The methods themselves are tested with their modules; here `scheduling.engine.solve.solve` is
replaced where a run must succeed, so these tests do not depend on any one method.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from scheduling.engine import solve as solving
from scheduling.engine.schedule import Schedule, ScheduledOp
from scheduling.engine.solve import METHODS, MethodError, NoScheduleFound, SolveResult

ROOT = Path(__file__).resolve().parents[2]

# Two jobs on two machines; job 0: machine 0 for 3, then machine 1 for 2; job 1: machine 1 for 2, then machine 0 for 4.
TINY = "# tiny\n2 2\n0 3 1 2\n1 2 0 4\n"
TINY_SCHEDULE = Schedule(
    [ScheduledOp(0, 0, 0, 0, 3), ScheduledOp(0, 1, 1, 3, 5), ScheduledOp(1, 0, 1, 0, 2), ScheduledOp(1, 1, 0, 3, 7)]
)
PREVIOUS = '{"an earlier": "run"}\n'


@pytest.fixture
def files(tmp_path):
    problem = tmp_path / "tiny.txt"
    problem.write_text(TINY)
    out = tmp_path / "schedule.json"
    out.write_text(PREVIOUS)
    return problem, out


def solve_jssp(*args: str) -> str:
    stdout = io.StringIO()
    call_command("solve_jssp", *args, stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


def test_a_run_writes_exactly_the_schedule_json_and_prints_the_makespan(files, monkeypatch):
    problem, out = files
    calls = []

    def fake_solve(instance, method, *, time_limit, seed):
        calls.append((instance.n_jobs, instance.n_machines, instance.name, method, time_limit, seed))
        return SolveResult(schedule=TINY_SCHEDULE, method=method, extra={"optimal": True})

    monkeypatch.setattr("scheduling.engine.solve.solve", fake_solve)
    printed = solve_jssp(str(problem), "--method", "cpsat", "--time-limit", "2.5", "--seed", "7", "--out", str(out))

    assert calls == [(2, 2, "tiny", "cpsat", 2.5, 7)]
    assert printed.strip() == "7"
    written = json.loads(out.read_text())
    assert set(written) == {"makespan", "operations"}
    assert written["makespan"] == 7
    assert all(set(op) == {"job", "op", "machine", "start", "end"} for op in written["operations"])
    assert all(type(value) is int for op in written["operations"] for value in op.values())
    assert sorted(written["operations"], key=lambda o: (o["job"], o["op"])) == [
        {"job": 0, "op": 0, "machine": 0, "start": 0, "end": 3},
        {"job": 0, "op": 1, "machine": 1, "start": 3, "end": 5},
        {"job": 1, "op": 0, "machine": 1, "start": 0, "end": 2},
        {"job": 1, "op": 1, "machine": 0, "start": 3, "end": 7},
    ]
    assert written == TINY_SCHEDULE.as_json()


def test_format_is_passed_on_and_a_csv_reads(tmp_path, monkeypatch):
    problem = tmp_path / "orders.csv"
    problem.write_text("job,sequence,machine,duration\nA,1,0,3\nA,2,1,2\nB,1,1,2\nB,2,0,4\n")
    monkeypatch.setattr("scheduling.engine.solve.solve", lambda instance, method, **kw: SolveResult(TINY_SCHEDULE, method, {}))
    assert solve_jssp(str(problem), "--method", "spt", "--format", "csv").strip() == "7"


BAD_ARGUMENTS = [
    pytest.param(
        ["--method", "simulated-annealing"], "Unknown method 'simulated-annealing': use one of qlearning", id="unknown-method"
    ),
    pytest.param(
        ["--method", "spt", "--time-limit", "0"], "--time-limit must be a number of seconds above 0, not '0'", id="time-limit-0"
    ),
    pytest.param(
        ["--method", "spt", "--time-limit", "-5"],
        "--time-limit must be a number of seconds above 0, not '-5'",
        id="time-limit-negative",
    ),
    pytest.param(
        ["--method", "spt", "--time-limit", "nan"],
        "--time-limit must be a number of seconds above 0, not 'nan'",
        id="time-limit-nan",
    ),
    pytest.param(
        ["--method", "spt", "--time-limit", "soon"],
        "--time-limit must be a number of seconds above 0, not 'soon'",
        id="time-limit-word",
    ),
    pytest.param(
        ["--method", "spt", "--seed", "-1"], "--seed must be a whole number from 0 to 2147483647, not '-1'", id="seed-negative"
    ),
    pytest.param(
        ["--method", "spt", "--format", "xml"], "Unknown format 'xml': use one of orlib, taillard, csv", id="unknown-format"
    ),
    pytest.param(
        ["--method", "spt", "--format", "csv"], "the first line must name the columns job, sequence, machine", id="wrong-format"
    ),
]


@pytest.mark.parametrize(("arguments", "words"), BAD_ARGUMENTS)
def test_bad_arguments_exit_2_with_the_message_and_leave_the_output_alone(files, arguments, words):
    problem, out = files
    with pytest.raises(CommandError) as caught:
        solve_jssp(str(problem), *arguments, "--out", str(out))
    assert words in str(caught.value)
    assert caught.value.returncode == 2
    assert out.read_text() == PREVIOUS


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param("2 2\n0 3 1 x\n1 2 0 4\n", "bad.txt: line 2, column 7: expected a duration, found 'x'", id="malformed"),
        pytest.param("2 2\n0 3 2 2\n1 2 0 4\n", "bad.txt: line 2, column 5: machine 2 does not exist", id="machine-out-of-range"),
        pytest.param("", "bad.txt: The file is empty.", id="empty"),
        pytest.param(
            b"2 2\n0 3 1 2\n1 2 0 \xff\n", "bad.txt: line 3: the file is not UTF-8 text (byte 19 cannot be read)", id="not-utf8"
        ),
    ],
)
def test_a_bad_file_exits_2_with_its_place_and_leaves_the_output_alone(tmp_path, files, content, words):
    _problem, out = files
    bad = tmp_path / "bad.txt"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    with pytest.raises(CommandError) as caught:
        solve_jssp(str(bad), "--method", "spt", "--out", str(out))
    assert words in str(caught.value)
    assert caught.value.returncode == 2
    assert out.read_text() == PREVIOUS


def test_a_missing_file_or_output_folder_exits_2(tmp_path, files):
    problem, _out = files
    with pytest.raises(CommandError, match="Cannot read .*nowhere.txt: No such file or directory") as caught:
        solve_jssp(str(tmp_path / "nowhere.txt"), "--method", "spt")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="the folder .*missing does not exist") as caught:
        solve_jssp(str(problem), "--method", "spt", "--out", str(tmp_path / "missing" / "s.json"))
    assert caught.value.returncode == 2


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        pytest.param(
            NoScheduleFound("The method 'cpsat' found no schedule within 1 seconds."), "found no schedule", id="none-found"
        ),
        pytest.param(
            MethodError("The method 'cpsat' needs the Python package 'ortools'"), "needs the Python package", id="cannot-run"
        ),
        pytest.param(
            Schedule([ScheduledOp(0, 0, 0, 0, 3), ScheduledOp(0, 1, 1, 1, 3)]),
            "breaks a rule of the problem: ",
            id="invalid-schedule",
        ),
    ],
)
def test_no_valid_schedule_exits_1_and_leaves_the_output_alone(files, monkeypatch, outcome, words):
    problem, out = files

    def fake_solve(instance, method, **kw):
        if isinstance(outcome, Exception):
            raise outcome
        return SolveResult(outcome, method, {})

    monkeypatch.setattr("scheduling.engine.solve.solve", fake_solve)
    with pytest.raises(CommandError) as caught:
        solve_jssp(str(problem), "--method", "cpsat", "--time-limit", "1", "--out", str(out))
    assert words in str(caught.value)
    assert caught.value.returncode == 1
    assert out.read_text() == PREVIOUS


def test_the_command_line_exits_2_with_the_message_on_stderr(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("2 2\n0 3 1 x\n1 2 0 4\n")
    done = subprocess.run(
        [sys.executable, "manage.py", "solve_jssp", str(bad), "--method", "spt", "--time-limit", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "line 2, column 7: expected a duration, found 'x'" in done.stderr
    assert done.stdout == ""


# --- the registry --------------------------------------------------------------------------------


def test_the_registry_lists_the_methods_the_issue_names():
    assert METHODS == ("qlearning", "cpsat", "fifo", "spt", "lpt", "mwkr", "mor", "lor", "edd", "cr", "random")


def test_the_registry_refuses_an_unknown_method_and_names_a_missing_module():
    from scheduling.engine.formats import read_orlib

    with pytest.raises(MethodError, match="Unknown method 'sa': use one of qlearning, cpsat"):
        solving.solve(read_orlib(TINY), "sa", time_limit=1, seed=0)
    with pytest.raises(
        MethodError, match=r"'annealing' is not available in this installation \(scheduling.engine.nowhere is missing\)"
    ):
        solving._module("nowhere", "annealing")
