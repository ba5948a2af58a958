"""Problems built from a dataset version by mapping its columns: the service, the API and the pages.

Every bad input the issue names is refused with the field (the mapping key, or the version) and the
reason, and nothing is created: no problem, no audit event, no lineage edge.
"""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rest_framework.test import APIClient

from datalake import services as datalake_services
from datalake.models import DatasetVersion, VersionStatus
from lepton.errors import Forbidden, Invalid, NotFound
from lepton.models import AuditEvent, LineageEdge
from lepton.services import share_grant
from lepton.storage import get_storage
from scheduling import services
from scheduling.engine import instance as engine_instance
from scheduling.models import ShopProblem

# One row per operation; B's rows are out of order, and its sequence puts them right.
OPERATIONS = """Order,Step,Station,Minutes,Due,Weight,Note
A,1,lathe,3,20,2,first
A,2,mill,2,20,2,
B,2,lathe,1,30,,x
B,1,mill,4,,1,
"""
MAPPING = {"job": "Order", "sequence": "Step", "machine": "Station", "duration": "Minutes", "due": "Due", "weight": "Weight"}


def publish(actor, department, text: str, name: str = "Operations") -> DatasetVersion:
    dataset = datalake_services.dataset_create(actor=actor, department=department, name=name)
    pending = datalake_services.dataset_upload(actor=actor, dataset=dataset, stream=io.BytesIO(text.encode()), filename="o.csv")
    version = datalake_services.version_ingest(pending.pk)
    assert version.status == VersionStatus.PUBLISHED, version.error_message
    return version


@pytest.fixture
def operations(member, production):
    return publish(member, production, OPERATIONS)


def build(actor, department, version, mapping=MAPPING, name="Cell 9"):
    return services.problem_from_dataset(actor=actor, department=department, name=name, dataset_version=version, mapping=mapping)


def assert_nothing_created():
    assert not ShopProblem.objects.exists()
    assert not AuditEvent.objects.filter(action="problem.create").exists()
    assert not LineageEdge.objects.exists()


# --- the service ------------------------------------------------------------------------------------


def test_a_member_builds_a_problem_from_the_columns_and_it_records_its_source(member, production, operations):
    problem = build(member, production, operations)
    assert (problem.source, problem.n_jobs, problem.n_machines, problem.n_operations) == ("dataset", 2, 2, 4)
    assert [m["name"] for m in problem.machines] == ["lathe", "mill"]
    a, b = problem.jobs
    assert (a["name"], a["due"], a["weight"], a["operations"]) == ("A", 20, 2.0, [[[0, 3]], [[1, 2]]])
    assert (b["name"], b["due"], b["weight"], b["operations"]) == ("B", 30, 1.0, [[[1, 4]], [[0, 1]]])
    assert problem.origin == {
        "kind": "dataset", "dataset_version": str(operations.pk), "dataset": "production.operations",
        "dataset_name": "Operations", "version": 1, "mapping": MAPPING,
    }  # fmt: skip
    event = AuditEvent.objects.get(action="problem.create")
    assert event.changes["source"] == "dataset" and event.changes["origin"]["mapping"] == MAPPING
    edge = LineageEdge.objects.get()
    assert (edge.from_id, edge.to_id) == (str(operations.pk), str(problem.pk))
    (shown,) = datalake_services.dataset_lineage(actor=member, dataset=operations.dataset)["edges"]
    assert shown["to"] | {"id": None} == {"type": "scheduling.shopproblem", "id": None, "label": "production/cell-9",
                                          "url": f"/scheduling/problems/{problem.pk}/"}  # fmt: skip


def test_without_a_sequence_the_row_order_is_the_route_and_blank_optional_roles_are_left_out(member, production, operations):
    problem = build(member, production, operations, {"job": "Order", "machine": "Station", "duration": "Minutes", "due": ""})
    assert problem.jobs[1]["operations"] == [[[0, 1]], [[1, 4]]] and problem.jobs[1]["due"] is None
    assert problem.origin["mapping"] == {"job": "Order", "machine": "Station", "duration": "Minutes"}


def test_a_version_shared_with_the_department_may_be_read(member, owner, outsider, production, quality, operations):
    with pytest.raises(NotFound) as caught:
        build(outsider, quality, operations)
    assert caught.value.fields == {"dataset_version": ["No dataset version you may read has this id."]}
    assert_nothing_created()
    share_grant(actor=owner, obj=operations.dataset, department=quality, level="view")
    problem = build(outsider, quality, operations)
    assert problem.department == quality and problem.n_operations == 4


def test_only_members_add_problems_and_only_to_their_department(viewer, outsider, production, operations):
    with pytest.raises(Forbidden):
        build(viewer, production, operations)
    with pytest.raises(NotFound):
        build(outsider, production, operations)
    assert_nothing_created()


def _bad_csv(old: str, new: str) -> str:
    assert old in OPERATIONS
    return OPERATIONS.replace(old, new)


@pytest.mark.parametrize(
    "text, mapping, field, words",
    [
        (OPERATIONS, MAPPING | {"colour": "Note"}, "mapping.colour", "Unknown key 'colour' in the mapping"),
        (OPERATIONS, MAPPING | {"machine": "Machine"}, "mapping.machine", "The version has no column 'Machine'"),
        (OPERATIONS, {"job": "Order", "duration": "Minutes"}, "mapping.machine", "Choose the column that gives the machine"),
        (
            OPERATIONS,
            MAPPING | {"duration": "Note"},
            "mapping.duration",
            "Column 'Note' holds text; the duration needs whole numbers",
        ),
        (OPERATIONS, MAPPING | {"weight": "Station"}, "mapping.weight", "holds text; the weight needs numbers"),
        (_bad_csv("B,1,mill", ",1,mill"), MAPPING, "mapping.job", "row 4: the job is missing"),
        (_bad_csv("B,1,mill,4", "B,1,,4"), MAPPING, "mapping.machine", "row 4: the machine is missing"),
        (_bad_csv("B,1,mill,4", "B,1,mill,4.5"), MAPPING, "mapping.duration", "row 4: duration 4.5 is not a whole number"),
        (
            _bad_csv("B,1,mill", "B,2,mill"),
            MAPPING,
            "mapping.sequence",
            "row 4: sequence 2 is given twice for this job (also on row 3)",
        ),
        (
            _bad_csv("B,2,lathe,1,30,,x", "B,2,lathe,1,30,5,x"),
            MAPPING,
            "mapping.weight",
            "row 4: job 'B' has weight 1.0 here but 5.0 on row 3",
        ),
        (
            _bad_csv("A,2,mill,2", "A,2,mill,-2"),
            MAPPING,
            "mapping.duration",
            "row 2: Job A, operation 1: the duration -2 is negative",
        ),
        (_bad_csv("B,2,lathe,1,30", "B,2,lathe,1,-3"), MAPPING, "mapping.due", "row 3: Job B: the due date is negative"),
    ],
    ids=[
        "unknown-role",
        "unknown-column",
        "required-role",
        "text-duration",
        "text-weight",
        "missing-job",
        "missing-machine",
        "fraction",
        "duplicate-sequence",
        "weight-per-job",
        "negative-duration",
        "negative-due",
    ],
)
def test_bad_input_names_the_mapping_key_and_the_reason_and_creates_nothing(member, production, text, mapping, field, words):
    version = publish(member, production, text)
    with pytest.raises(Invalid) as caught:
        build(member, production, version, mapping)
    assert list(caught.value.fields) == [field], caught.value.fields
    assert words in caught.value.message, caught.value.message
    assert_nothing_created()


def test_an_empty_version_is_refused(member, production, operations):
    """The lake publishes no empty upload, but a recipe whose filter keeps no row does: such a version is refused."""
    buffer = io.BytesIO()
    names = ("order_", "station", "minutes")  # the lake's SQL-safe identifiers of Order, Station, Minutes
    schema = pa.schema([(names[0], pa.string()), (names[1], pa.string()), (names[2], pa.int64())])
    pq.write_table(pa.table({name: pa.array([], type) for name, type in zip(schema.names, schema.types, strict=True)}), buffer)
    empty = DatasetVersion.objects.create(
        dataset=operations.dataset, number=2, status=VersionStatus.PUBLISHED, source="recipe",
        parquet_sha256=get_storage().put_bytes(buffer.getvalue()).sha256, row_count=0,
        schema=[{"name": n, "identifier": i} for n, i in zip(("Order", "Station", "Minutes"), names, strict=True)],
    )  # fmt: skip
    with pytest.raises(Invalid) as caught:
        build(member, production, empty, {"job": "Order", "machine": "Station", "duration": "Minutes"})
    assert caught.value.fields == {"dataset_version": ["The dataset version has no rows: the problem would be empty."]}
    assert_nothing_created()


def test_a_version_above_the_size_limits_or_not_published_is_refused(member, production, operations, monkeypatch):
    monkeypatch.setattr(engine_instance, "MAX_OPERATIONS", 3)
    with pytest.raises(Invalid) as caught:
        build(member, production, operations)
    assert caught.value.fields["dataset_version"] == [
        "The version has 4 rows: above the limit of 3 operations (one row per operation)."
    ]
    monkeypatch.undo()
    DatasetVersion.objects.filter(pk=operations.pk).update(status=VersionStatus.FAILED)
    operations.refresh_from_db()
    with pytest.raises(Invalid, match="Only a published version can be read"):
        build(member, production, operations)
    assert_nothing_created()


def test_too_many_machines_are_refused_with_the_limit(member, production, operations, monkeypatch):
    from scheduling.engine import table

    monkeypatch.setattr(table, "MAX_MACHINES", 1)
    with pytest.raises(Invalid) as caught:
        build(member, production, operations)
    assert caught.value.fields == {"mapping.machine": ["row 2: machine 'mill' is one more than the limit of 1 machines."]}
    assert_nothing_created()


# --- the API ------------------------------------------------------------------------------------------

URL = "/api/v1/shop-problems/from-dataset/"


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def body(version, **change):
    return {"department": "production", "name": "Cell 9", "dataset_version": str(version.pk), "mapping": MAPPING} | change


def test_api_builds_a_problem_and_returns_it_with_its_origin(member, operations):
    response = api(member).post(URL, body(operations), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["source"], data["n_operations"], data["origin"]["mapping"]) == ("dataset", 4, MAPPING)
    assert api(member).get(f"/api/v1/shop-problems/{data['id']}/").json()["origin"]["dataset"] == "production.operations"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"mapping": MAPPING | {"duration": "Note"}}, "mapping.duration", "holds text"),
        ({"mapping": MAPPING | {"station": "Station"}}, "mapping.station", "Unknown key"),
        ({"mapping": MAPPING | {"sequence": "Nope"}}, "mapping.sequence", "no column 'Nope'"),
        ({"mapping": {"job": "Order", "machine": "Station"}}, "mapping.duration", "Choose the column"),
        ({"mapping": ["Order"]}, "mapping", "dictionary"),
        ({"name": ""}, "name", "blank"),
        ({"dataset_version": "not-a-uuid"}, "dataset_version", "UUID"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field(member, operations, change, field, words):
    response = api(member).post(URL, body(operations, **change), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"] and words in str(response.json()), response.json()
    assert_nothing_created()


def test_api_a_bad_row_is_a_400_with_the_row(member, production):
    version = publish(member, production, _bad_csv("B,1,mill,4", "B,1,mill,4.25"))
    response = api(member).post(URL, body(version), format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "mapping.duration": ["row 4: duration 4.25 is not a whole number (durations and times are whole units)."]
    }


def test_api_anonymous_gets_401(operations):
    assert api().post(URL, body(operations), format="json").status_code == 401
    assert_nothing_created()


def test_api_outsider_gets_404_for_the_department_and_the_version(outsider, viewer, operations):
    assert api(outsider).post(URL, body(operations), format="json").status_code == 404
    response = api(outsider).post(URL, body(operations, department="quality"), format="json")
    assert response.status_code == 404 and "dataset_version" in response.json()["fields"]
    missing = api(outsider).post(
        URL, body(operations, department="quality", dataset_version=str(operations.dataset_id)), format="json"
    )
    assert missing.status_code == 404
    assert api(viewer).post(URL, body(operations), format="json").status_code == 403
    assert_nothing_created()


# --- the pages --------------------------------------------------------------------------------------


def test_without_a_readable_version_the_form_says_what_to_do(client, member):
    client.force_login(member)
    page = client.get("/scheduling/").content.decode()
    assert "No published dataset version you may read yet: upload a table of operations" in page


def test_choosing_a_version_shows_its_columns_with_guesses(client, member, production):
    version = publish(member, production, "job,op,machine,duration,due_date\nA,1,M1,3,9\n")
    client.force_login(member)
    index = client.get("/scheduling/").content.decode()
    assert "Build a problem from a dataset" in index and "production.operations v1 · 1 rows" in index
    page = client.get(f"/scheduling/problems/from-dataset/?dataset_version={version.pk}&name=Cell").content.decode()
    guesses = {"job": "job", "sequence": "op", "machine": "machine", "duration": "duration", "due": "due_date", "weight": ""}
    for role, column in guesses.items():
        select = page.split(f'<select name="{role}"')[1].split("</select>")[0]
        assert f'id="id_dataset_{role}"' in select and f'<option value="{column}" selected>' in select, (role, select)
    fragment = client.get(f"/scheduling/problems/from-dataset/?dataset_version={version.pk}", HTTP_HX_REQUEST="true")
    assert (
        fragment.content.decode().lstrip().startswith("<form")
        and "Columns of production.operations v1" in fragment.content.decode()
    )


def test_the_form_builds_the_problem_and_its_page_says_where_it_came_from(client, member, operations):
    client.force_login(member)
    response = client.post("/scheduling/problems/from-dataset/", {"name": "Cell 9", "dataset_version": operations.pk, **MAPPING})
    problem = ShopProblem.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/scheduling/problems/{problem.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Built from Operations v1" in page and f'href="/data/{operations.dataset_id}/"' in page
    assert "duration ← Minutes" in page


def test_the_form_shows_the_services_refusal_on_the_role(client, member, operations):
    client.force_login(member)
    response = client.post(
        "/scheduling/problems/from-dataset/", {"name": "Cell 9", "dataset_version": operations.pk, **MAPPING, "duration": "Note"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    after_duration = page.split('name="duration"')[1]
    assert "Column &#x27;Note&#x27; holds text" in after_duration.split('name="due"')[0]
    assert_nothing_created()


def test_the_form_lists_only_versions_the_user_may_read(client, outsider, viewer, operations):
    client.force_login(outsider)
    assert "production.operations" not in client.get("/scheduling/").content.decode()
    response = client.post("/scheduling/problems/from-dataset/", {"name": "X", "dataset_version": operations.pk, **MAPPING})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    client.force_login(viewer)
    assert client.get("/scheduling/problems/from-dataset/").status_code == 403
    assert_nothing_created()


# --- alternative machines (the flexible job shop) ---------------------------------------------------

# The long layout of a planning export: one row per operation and eligible machine. A's step 1 runs
# on the lathe (3) or the mill (5); B's step 2 (rows out of order) on the mill (4) or the drill (3).
LONG = """Order,Step,Station,Minutes,Due
A,1,lathe,3,20
A,1,mill,5,20
A,2,drill,2,
B,2,mill,4,30
B,1,lathe,6,
B,2,drill,3,
"""
LONG_MAPPING = {"job": "Order", "sequence": "Step", "machine": "Station", "duration": "Minutes", "due": "Due"}


def test_rows_sharing_job_and_step_become_alternative_machines_and_the_problem_is_scheduled(member, production):
    from scheduling.engine.schedule import Schedule, ScheduledOp, validate

    version = publish(member, production, LONG)
    problem = services.problem_from_dataset(
        actor=member, department=production, name="Flex cell", dataset_version=version, mapping=LONG_MAPPING,
        alternatives=True,
    )  # fmt: skip
    assert (problem.flexible, problem.n_jobs, problem.n_machines, problem.n_operations) == (True, 2, 3, 4)
    assert [m["name"] for m in problem.machines] == ["lathe", "mill", "drill"]
    a, b = problem.jobs
    assert (a["operations"], a["due"]) == ([[[0, 3], [1, 5]], [[2, 2]]], 20)
    assert (b["operations"], b["due"]) == ([[[0, 6]], [[1, 4], [2, 3]]], 30)
    assert problem.origin["alternatives"] is True and problem.origin["mapping"] == LONG_MAPPING
    assert AuditEvent.objects.get(action="problem.create").changes["origin"]["alternatives"] is True
    assert LineageEdge.objects.filter(to_id=str(problem.pk)).exists()
    for method in ("mwkr", "cpsat"):
        run = services.run_execute(services.run_start(actor=member, problem=problem, method=method, time_limit=5).pk)
        assert run.status == "succeeded", run.error_message
        stored = [ScheduledOp(o.job, o.op, o.machine, o.start, o.end) for o in run.operations.all()]
        validate(services.instance_of(problem), Schedule(stored))
    # B's 6 on the lathe, then 4 on the mill (the drill is A's at 5–7): 10; A takes the mill first (0–5), not the lathe.
    assert run.optimal and run.makespan == 10


def test_without_the_switch_the_long_layout_is_refused_as_before(member, production):
    version = publish(member, production, LONG)
    with pytest.raises(Invalid) as caught:
        build(member, production, version, LONG_MAPPING)
    assert caught.value.fields == {"mapping.sequence": ["row 2: sequence 1 is given twice for this job (also on row 1)."]}
    assert_nothing_created()


def _bad_long(old: str, new: str) -> str:
    assert old in LONG
    return LONG.replace(old, new)


@pytest.mark.parametrize(
    "text, mapping, field, words",
    [
        (_bad_long("A,1,mill,5", "A,1,lathe,5"), LONG_MAPPING, "mapping.machine",
         "row 2: machine 'lathe' is given twice for sequence 1 of this job (also on row 1); give each machine once"),
        (LONG, LONG_MAPPING | {"sequence": ""}, "mapping.sequence",
         "With alternative machines, choose the column that gives the sequence"),
        (_bad_long("A,1,mill,5", "A,,mill,5"), LONG_MAPPING, "mapping.sequence",
         "row 2: the sequence is missing: with alternative machines, the rows of one operation share its job and sequence."),
        (_bad_long("B,2,drill,3", "B,2,drill,3.5"), LONG_MAPPING, "mapping.duration",
         "row 6: duration 3.5 is not a whole number"),
        (_bad_long("B,2,drill,3", "B,2,drill,-3"), LONG_MAPPING, "mapping.duration",
         "row 6: Job B, operation 1: the duration -3 is negative."),
        (_bad_long("A,1,mill,5,20", "A,1,mill,5,25"), LONG_MAPPING, "mapping.due",
         "row 2: job 'A' has due 25 here but 20 on row 1"),
        (_bad_long("A,1,mill,5", "A,1,,5"), LONG_MAPPING, "mapping.machine", "row 2: the machine is missing"),
    ],
    ids=["duplicate-machine", "no-sequence-column", "missing-sequence", "fraction", "negative-duration", "due-per-job",
         "missing-machine"],
)  # fmt: skip
def test_bad_alternatives_name_the_mapping_key_and_row_and_create_nothing(member, production, text, mapping, field, words):
    version = publish(member, production, text)
    with pytest.raises(Invalid) as caught:
        services.problem_from_dataset(
            actor=member, department=production, name="X", dataset_version=version, mapping=mapping, alternatives=True
        )
    assert list(caught.value.fields) == [field], caught.value.fields
    assert words in caught.value.message, caught.value.message
    assert_nothing_created()


def test_alternatives_keep_the_row_limit(member, production, monkeypatch):
    version = publish(member, production, LONG)
    monkeypatch.setattr(engine_instance, "MAX_OPERATIONS", 5)
    with pytest.raises(Invalid) as caught:
        services.problem_from_dataset(
            actor=member, department=production, name="X", dataset_version=version, mapping=LONG_MAPPING, alternatives=True
        )
    assert caught.value.fields == {
        "dataset_version": ["The version has 6 rows: above the limit of 5 rows (one per operation and machine)."]
    }
    assert_nothing_created()


def test_api_builds_a_flexible_problem_and_refuses_a_machine_twice(member, production):
    version = publish(member, production, LONG)
    twice = publish(member, production, _bad_long("B,2,drill", "B,2,mill"), name="Twice")
    refused = api(member).post(URL, body(twice, mapping=LONG_MAPPING, alternatives=True), format="json")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_problem"
    message = (
        "row 6: machine 'mill' is given twice for sequence 2 of this job (also on row 4); give each machine once per operation."
    )
    assert refused.json()["fields"] == {"mapping.machine": [message]}
    assert not ShopProblem.objects.exists()
    response = api(member).post(URL, body(version, mapping=LONG_MAPPING, alternatives=True), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["flexible"], data["n_operations"], data["origin"]["alternatives"]) == (True, 4, True)
    assert api(member).post(URL, body(version, mapping=LONG_MAPPING, alternatives="maybe"), format="json").status_code == 400


def test_api_alternatives_anonymous_gets_401_and_outsider_404(outsider, member, production):
    version = publish(member, production, LONG)
    assert api().post(URL, body(version, mapping=LONG_MAPPING, alternatives=True), format="json").status_code == 401
    response = api(outsider).post(
        URL, body(version, department="quality", mapping=LONG_MAPPING, alternatives=True), format="json"
    )
    assert response.status_code == 404 and "dataset_version" in response.json()["fields"]
    assert_nothing_created()


def test_the_form_builds_a_flexible_problem_and_its_page_says_so(client, member, production):
    version = publish(member, production, LONG)
    client.force_login(member)
    page = client.get(f"/scheduling/problems/from-dataset/?dataset_version={version.pk}").content.decode()
    assert 'name="alternatives"' in page and "Rows with the same job and sequence are one operation" in page
    form = {"name": "Flex cell", "dataset_version": version.pk, **LONG_MAPPING}
    refused = client.post("/scheduling/problems/from-dataset/", form)
    assert refused.status_code == 400  # the same rows without the switch: a sequence given twice
    assert "sequence 1 is given twice" in refused.content.decode().split('name="sequence"')[1].split('name="machine"')[0]
    assert 'name="alternatives"' in refused.content.decode()
    response = client.post("/scheduling/problems/from-dataset/", form | {"alternatives": "on"})
    problem = ShopProblem.objects.get()
    assert response.status_code == 302 and problem.flexible and problem.n_operations == 4
    shown = client.get(response["Location"]).content.decode()
    assert "rows with the same job and sequence are alternative machines" in shown.split("data-origin>")[1].split("</p>")[0]
