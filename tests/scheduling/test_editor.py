"""The table editor: a new problem from machines, jobs and operations tables, and "Copy and edit".

The server does all the checking: Django's per-cell checks and the engine's (scheduling.engine.table
and instance) are shown on the row and cell they concern, and nothing is stored until all pass.
Adding and removing rows works without JavaScript (the form is submitted and comes back).
"""

import re

import pytest

from lepton.models import AuditEvent
from scheduling import services
from scheduling.engine.instance import Instance, Job, Machine, Operation
from scheduling.models import ShopProblem

NEW = "/scheduling/problems/new/"


def tables(machines=(), jobs=(), operations=(), *, blank=2, **extra) -> dict:
    """The POST of the editor: each table's rows (dicts of cells) then `blank` empty rows, as the page sends them."""
    data = {"name": "Cell 3", "description": ""}
    for table, rows, empty in (
        ("machines", machines, {"name": "", "mtbf": "", "mttr": ""}),
        ("jobs", jobs, {"name": "", "release": "0", "due": "", "weight": "1"}),
        ("operations", operations, {"job": "", "sequence": "", "machine": "", "duration": ""}),
    ):
        all_rows = [empty | row for row in rows] + [empty] * blank
        data[f"{table}-TOTAL_FORMS"], data[f"{table}-INITIAL_FORMS"] = str(len(all_rows)), "0"
        for i, row in enumerate(all_rows):
            data.update({f"{table}-{i}-{key}": value for key, value in row.items()})
    return data | extra


MACHINES = [{"name": "lathe"}, {"name": "mill", "mtbf": "50", "mttr": "5"}]
JOBS = [{"name": "A", "due": "12"}, {"name": "B", "release": "1", "weight": "2"}]
OPERATIONS = [
    {"job": "A", "machine": "lathe", "duration": "3"},
    {"job": "A", "machine": "mill", "duration": "2"},
    {"job": "B", "sequence": "2", "machine": "lathe", "duration": "4"},
    {"job": "B", "sequence": "1", "machine": "mill", "duration": "2"},
]


def row_errors(page: str, table: str, row: int) -> str:
    """The text of the errors shown in one row of a table."""
    match = re.search(rf'<tr class="has-error">(?:(?!</tr>).)*?name="{table}-{row}-.*?</tr>', page, re.S)
    assert match, f"no error shown on {table} row {row}"
    return " ".join(re.findall(r"<li>(.*?)</li>", match.group(0)))


@pytest.fixture
def problem(member, production):
    return services.problem_create(
        actor=member, department=production, name="Press shop", description="Line 2",
        instance=Instance(
            jobs=(
                Job("A", (Operation(((0, 3),)), Operation(((1, 2),))), due=9, weight=2.0),
                Job("B", (Operation(((1, 4),)),), release=1),
            ),
            machines=(Machine("lathe"), Machine("mill", 50.0, 5.0)),
        ),
    )  # fmt: skip


def test_anonymous_is_sent_to_log_in_and_a_viewer_may_not_add(client, viewer, problem):
    for url in (NEW, f"/scheduling/problems/{problem.pk}/copy/"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response["Location"], url
    client.force_login(viewer)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, tables(MACHINES, JOBS, OPERATIONS)).status_code == 403
    assert "Copy and edit" not in client.get(f"/scheduling/problems/{problem.pk}/").content.decode()
    assert ShopProblem.objects.count() == 1


def test_the_editor_opens_with_blank_rows_and_is_linked_from_the_list(client, member):
    client.force_login(member)
    assert 'href="/scheduling/problems/new/"' in client.get("/scheduling/").content.decode()
    page = client.get(NEW).content.decode()
    for table in ("machines", "jobs", "operations"):
        assert f'name="{table}-TOTAL_FORMS" value="3"' in page and f'name="{table}-2-' in page
        assert f'<template data-empty-row="{table}">' in page
    assert "js/scheduling-editor.js" in page and "<script>" not in page


def test_a_member_saves_a_problem_from_the_tables(client, member):
    client.force_login(member)
    response = client.post(NEW, tables(MACHINES, JOBS, OPERATIONS, description="Cell 3 of line 2"))
    problem = ShopProblem.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scheduling/problems/{problem.pk}/"
    assert (problem.name, problem.source, problem.description, problem.origin) == ("Cell 3", "form", "Cell 3 of line 2", {})
    assert problem.machines == [{"name": "lathe", "mtbf": None, "mttr": None}, {"name": "mill", "mtbf": 50.0, "mttr": 5.0}]
    a, b = problem.jobs
    assert (a["due"], a["weight"], a["release"], a["operations"]) == (12, 1.0, 0, [[[0, 3]], [[1, 2]]])
    assert (b["due"], b["weight"], b["release"], b["operations"]) == (None, 2.0, 1, [[[1, 2]], [[0, 4]]])  # by sequence
    assert AuditEvent.objects.filter(action="problem.create", changes__source="form").count() == 1
    assert "saved" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    "change, table, row, words",
    [
        (lambda m, j, o: o[3].update(machine="drill"), "operations", 3, "No machine is named “drill” in the machines table"),
        (lambda m, j, o: o[1].update(job="Z"), "operations", 1, "No job is named “Z”"),
        (lambda m, j, o: o[2].update(duration="-4"), "operations", 2, "greater than or equal to 0"),
        (lambda m, j, o: o[2].update(duration="2.5"), "operations", 2, "Enter a whole number"),
        (lambda m, j, o: o[0].update(machine=""), "operations", 0, "This field is required"),
        (lambda m, j, o: o[3].update(sequence="2"), "operations", 3, "sequence 2 is given twice for this job (also on row 3)"),
        (lambda m, j, o: m.append({"name": "lathe"}), "machines", 2, "“lathe” is already the name of row 1"),
        (lambda m, j, o: m[1].pop("mttr"), "machines", 1, "give both mtbf and mttr, or neither"),
        (lambda m, j, o: m[1].update(mtbf="0"), "machines", 1, "mtbf must be positive"),
        (lambda m, j, o: j.append({"name": "C"}), "jobs", 2, "Job C visits no machine"),
        (lambda m, j, o: j[0].update(due="-1"), "jobs", 0, "greater than or equal to 0"),
        (lambda m, j, o: j[1].update(name="A"), "jobs", 1, "“A” is already the name of row 1"),
    ],
    ids=[
        "unknown-machine", "unknown-job", "negative-duration", "fraction", "no-machine", "duplicate-sequence",
        "duplicate-machine", "half-rates", "zero-mtbf", "job-without-operations", "negative-due", "duplicate-job",
    ],
)  # fmt: skip
def test_a_refusal_is_shown_on_its_row_and_nothing_is_saved(client, member, change, table, row, words):
    machines, jobs, operations = [dict(r) for r in MACHINES], [dict(r) for r in JOBS], [dict(r) for r in OPERATIONS]
    change(machines, jobs, operations)
    client.force_login(member)
    response = client.post(NEW, tables(machines, jobs, operations))
    assert response.status_code == 400
    page = response.content.decode()
    assert words in row_errors(page, table, row).replace("&quot;", '"')
    assert page.count('class="has-error"') == 1  # on that row only
    assert 'value="lathe"' in page  # what was typed is shown again
    assert not ShopProblem.objects.exists()


def test_whole_problem_refusals_are_shown_above_the_tables(client, member, problem):
    client.force_login(member)
    empty = client.post(NEW, tables())
    assert empty.status_code == 400 and "The problem is empty" in empty.content.decode()
    taken = client.post(NEW, tables(MACHINES, JOBS, OPERATIONS, name="Press shop"))
    assert taken.status_code == 400 and "Production already has a problem &#x27;press-shop&#x27;." in taken.content.decode()
    too_many = tables(MACHINES, JOBS, OPERATIONS)
    too_many["operations-TOTAL_FORMS"] = "1001"
    response = client.post(NEW, too_many)
    assert response.status_code == 400 and "Please submit at most 1000 forms." in response.content.decode()
    assert ShopProblem.objects.count() == 1


def test_rows_are_added_and_removed_without_javascript(client, member):
    client.force_login(member)
    added = client.post(NEW, tables(MACHINES, JOBS, OPERATIONS, add="operations"))
    page = added.content.decode()
    assert added.status_code == 200 and 'name="operations-TOTAL_FORMS" value="12"' in page  # 4 rows + 3 blank + 5 more
    assert 'name="machines-TOTAL_FORMS" value="5"' in page and 'name="operations-3-machine" value="mill"' in page
    removed = client.post(NEW, tables(MACHINES, JOBS, OPERATIONS, remove="operations-1"))
    page = removed.content.decode()
    assert 'name="operations-TOTAL_FORMS" value="6"' in page and "has-error" not in page
    jobs_and_machines = re.findall(r'name="operations-(\d)-(job|machine)" value="(\w+)"', page)
    assert jobs_and_machines == [("0", "job", "A"), ("0", "machine", "lathe"), ("1", "job", "B"), ("1", "machine", "lathe"),
                                 ("2", "job", "B"), ("2", "machine", "mill")]  # fmt: skip
    assert 'value="Cell 3"' in page and not ShopProblem.objects.exists()


def test_a_row_removed_in_the_page_is_a_gap_the_server_skips(client, member):
    """static/js/scheduling-editor.js takes a removed row out of the page: its cells are not sent."""
    data = tables(MACHINES, JOBS, OPERATIONS + [{"job": "B", "machine": "drill", "duration": "1"}])
    for key in [k for k in data if k.startswith("operations-4-")]:
        del data[key]
    client.force_login(member)
    assert client.post(NEW, data).status_code == 302
    assert ShopProblem.objects.get().n_operations == 4


def test_copy_and_edit_prefills_the_tables_and_saves_a_new_problem(client, member, problem):
    client.force_login(member)
    assert f'href="/scheduling/problems/{problem.pk}/copy/"' in client.get(f"/scheduling/problems/{problem.pk}/").content.decode()
    page = client.get(f"/scheduling/problems/{problem.pk}/copy/").content.decode()
    assert 'value="Press shop (copy)"' in page and "Line 2</textarea>" in page
    cells = {
        "machines-1-name": "mill", "machines-1-mtbf": "50.0", "machines-1-mttr": "5.0", "jobs-0-name": "A", "jobs-0-due": "9",
        "jobs-0-weight": "2.0", "jobs-1-release": "1", "operations-1-job": "A", "operations-1-sequence": "2",
        "operations-1-machine": "mill", "operations-1-duration": "2", "operations-2-job": "B", "operations-TOTAL_FORMS": "6",
    }  # fmt: skip
    for name, value in cells.items():
        assert f'name="{name}" value="{value}"' in page, name
    machines = [{"name": "lathe"}, {"name": "mill", "mtbf": "50", "mttr": "5"}]
    jobs = [{"name": "A", "due": "9", "weight": "2"}, {"name": "B", "release": "1"}]
    operations = [{"job": "A", "machine": "lathe", "duration": "3"}, {"job": "A", "machine": "mill", "duration": "7"},
                  {"job": "B", "machine": "mill", "duration": "4"}]  # fmt: skip
    response = client.post(f"/scheduling/problems/{problem.pk}/copy/", tables(machines, jobs, operations, name="Press shop v2"))
    copy = ShopProblem.objects.get(name="Press shop v2")
    assert response["Location"] == f"/scheduling/problems/{copy.pk}/"
    assert copy.jobs[0]["operations"] == [[[0, 3]], [[1, 7]]] and copy.jobs[0]["due"] == 9
    assert copy.origin == {"kind": "copy", "problem": str(problem.pk), "name": "Press shop"}
    problem.refresh_from_db()
    assert problem.jobs[0]["operations"] == [[[0, 3]], [[1, 2]]]  # the original is unchanged
    page = client.get(response["Location"]).content.decode()
    assert f'Copied from <a href="/scheduling/problems/{problem.pk}/">Press shop</a> and edited' in page


@pytest.fixture
def flexible(member, production):
    """A's first operation runs on a (3), b (4) or c (5); its second only on c."""
    return services.problem_create(
        actor=member, department=production, name="Flex",
        instance=Instance(
            jobs=(Job("A", (Operation(((0, 3), (1, 4), (2, 5))), Operation(((2, 2),)))), Job("B", (Operation(((1, 6),)),))),
            machines=(Machine("a"), Machine("b"), Machine("c")),
        ),
    )  # fmt: skip


def test_copy_and_edit_shows_a_flexible_problems_alternatives_and_saves_them(client, member, flexible):
    client.force_login(member)
    shown = client.get(f"/scheduling/problems/{flexible.pk}/").content.decode()
    assert f'href="/scheduling/problems/{flexible.pk}/copy/"' in shown
    page = client.get(f"/scheduling/problems/{flexible.pk}/copy/").content.decode()
    assert 'name="operations-0-machine" value="a"' in page and 'name="operations-0-duration" value="3"' in page
    assert 'name="operations-0-alternatives" value="b: 4, c: 5"' in page
    assert 'name="operations-1-alternatives"' in page and 'value="[]"' not in page  # no alternative: an empty cell
    assert 'id="alternatives-help"' in page and "mill 2: 14, mill 3: 12" in page
    machines, jobs = [{"name": "a"}, {"name": "b"}, {"name": "c"}], [{"name": "A"}, {"name": "B"}]
    operations = [
        {"job": "A", "sequence": "1", "machine": "a", "duration": "3", "alternatives": "b: 4"},  # c dropped
        {"job": "A", "sequence": "2", "machine": "c", "duration": "2", "alternatives": "a: 9"},  # a added
        {"job": "B", "sequence": "1", "machine": "b", "duration": "6"},
    ]
    response = client.post(f"/scheduling/problems/{flexible.pk}/copy/", tables(machines, jobs, operations, name="Flex v2"))
    copy = ShopProblem.objects.get(name="Flex v2")
    assert response["Location"] == f"/scheduling/problems/{copy.pk}/"
    assert copy.flexible and copy.n_operations == 3
    assert [op for job in copy.jobs for op in job["operations"]] == [[[0, 3], [1, 4]], [[2, 2], [0, 9]], [[1, 6]]]
    flexible.refresh_from_db()
    assert flexible.jobs[0]["operations"][0] == [[0, 3], [1, 4], [2, 5]]  # the original is unchanged


def test_a_problem_too_large_for_the_editor_is_not_offered_to_it(client, member, flexible, monkeypatch):
    from scheduling import views

    monkeypatch.setattr(views, "EDITOR_MAX_ROWS", views.EDITOR_MAX_ROWS | {"operations": 2})
    client.force_login(member)
    assert "Copy and edit" not in client.get(f"/scheduling/problems/{flexible.pk}/").content.decode()
    response = client.get(f"/scheduling/problems/{flexible.pk}/copy/", follow=True)
    assert "This problem is too large for the table editor" in response.content.decode()
    assert ShopProblem.objects.count() == 1


def cell_errors(page: str, name: str) -> str:
    """The text of the errors shown under one cell."""
    match = re.search(rf'name="{name}"[^>]*>\s*<ul class="errorlist"[^>]*>(.*?)</ul>', page, re.S)
    assert match, f"no error shown under {name}"
    return " ".join(re.findall(r"<li>(.*?)</li>", match.group(1))).replace("&quot;", '"')


def test_a_member_saves_a_flexible_problem_and_it_is_scheduled(client, member):
    from scheduling.engine.schedule import Schedule, ScheduledOp, validate

    operations = [dict(row) for row in OPERATIONS]
    operations[0]["alternatives"] = "mill: 5"
    operations[3]["alternatives"] = " lathe：1， "  # full-width colon and comma, as a Chinese keyboard types them
    client.force_login(member)
    response = client.post(NEW, tables(MACHINES, JOBS, operations))
    assert response.status_code == 302, response.content.decode()
    problem = ShopProblem.objects.get()
    assert (problem.flexible, problem.n_operations) == (True, 4)
    a, b = problem.jobs
    assert a["operations"] == [[[0, 3], [1, 5]], [[1, 2]]]
    assert b["operations"] == [[[1, 2], [0, 1]], [[0, 4]]]  # B's sequence 1 is the row with the alternative
    for method in ("spt", "cpsat"):
        run = services.run_execute(services.run_start(actor=member, problem=problem, method=method, time_limit=5).pk)
        assert run.status == "succeeded", run.error_message
        stored = [ScheduledOp(o.job, o.op, o.machine, o.start, o.end) for o in run.operations.all()]
        assert len(stored) == 4
        validate(services.instance_of(problem), Schedule(stored))
    assert (run.makespan, run.optimal) == (7, True)  # B alone needs 1 + 1 + 4 on the lathe; A then fits in 7 at best


@pytest.mark.parametrize(
    "cell, words",
    [
        ("drill: 4", "No machine is named “drill” in the machines table (“lathe”, “mill”)."),
        ("lathe: 4", "Machine “lathe” is named twice for this operation"),  # the row's own machine
        ("mill: 4, mill: 6", "Machine “mill” is named twice for this operation"),
        ("mill 4", "“mill 4”: write the machine, a colon, then its duration, as in “mill 2: 14”."),
        (": 4", "“: 4”: name the machine before the colon."),
        ("mill: 2.5", "“mill: 2.5”: the duration must be a whole number of time units."),
        ("mill: soon", "“mill: soon”: the duration must be a whole number of time units."),
        ("mill: -1", "“mill: -1”: the duration must be from 0 to 10000000."),
        ("mill: 20000000", "“mill: 20000000”: the duration must be from 0 to 10000000."),
    ],
    ids=["unknown-machine", "same-as-machine", "twice", "no-colon", "no-name", "fraction", "text", "negative", "too-long"],
)
def test_a_bad_alternative_is_shown_on_its_cell_and_nothing_is_saved(client, member, cell, words):
    operations = [dict(row) for row in OPERATIONS]
    operations[0]["alternatives"] = cell
    client.force_login(member)
    response = client.post(NEW, tables(MACHINES, JOBS, operations))
    assert response.status_code == 400
    page = response.content.decode()
    assert words in cell_errors(page, "operations-0-alternatives")
    assert page.count('class="has-error"') == 1
    assert f'name="operations-0-alternatives" value="{cell}"' in page.replace("&#x27;", "'")  # as typed
    assert not ShopProblem.objects.exists()


def test_the_service_traces_a_bad_alternative_to_its_cell(member, production):
    from lepton.errors import Invalid

    with pytest.raises(Invalid) as caught:
        services.problem_from_tables(
            actor=member, department=production, name="X",
            machines=[{"name": "m", "mtbf": None, "mttr": None}, {"name": "n", "mtbf": None, "mttr": None}],
            jobs=[{"name": "A", "release": 0, "due": None, "weight": 1.0}],
            operations=[None, {"job": "A", "sequence": None, "machine": "m", "duration": 5, "alternatives": [("n", -2)]}],
        )  # fmt: skip
    assert caught.value.fields == {"operations.1.alternatives": ["Job A, operation 0: the duration -2 is negative."]}
    assert not ShopProblem.objects.exists()


def test_an_outsider_cannot_copy_a_problem_it_cannot_see(client, outsider, problem):
    client.force_login(outsider)
    assert client.get(f"/scheduling/problems/{problem.pk}/copy/").status_code == 404
    assert client.post(f"/scheduling/problems/{problem.pk}/copy/", tables(MACHINES, JOBS, OPERATIONS)).status_code == 404
    assert ShopProblem.objects.count() == 1


def test_the_service_names_table_row_and_column(member, production):
    from lepton.errors import Invalid

    with pytest.raises(Invalid) as caught:
        services.problem_from_tables(
            actor=member, department=production, name="X", machines=[{"name": "m", "mtbf": None, "mttr": None}],
            jobs=[None, {"name": "A", "release": 0, "due": None, "weight": 1.0}],
            operations=[{"job": "A", "sequence": None, "machine": "m", "duration": 20_000_000}],
        )  # fmt: skip
    assert caught.value.fields == {"operations.0.duration": ["Job A, operation 0: the duration 20000000 is above 10000000."]}
    assert not ShopProblem.objects.exists()
    problem = services.problem_from_tables(
        actor=member, department=production, name="X", machines=[{"name": "m", "mtbf": None, "mttr": None}],
        jobs=[{"name": "A", "release": 0, "due": None, "weight": 1.0}],
        operations=[None, {"job": "A", "sequence": None, "machine": "m", "duration": 5}],
    )  # fmt: skip
    assert problem.jobs[0]["operations"] == [[[0, 5]]] and problem.n_jobs == 1
