"""Sensitive columns: classification, masking on every read path, encryption at rest, keys and rotation."""

import base64
import csv
import hashlib
import hmac
import io
import tempfile

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from datalake import services
from datalake.checks import check_data_key
from datalake.engine.sensitive import parse_key
from datalake.models import Dataset, DatasetVersion, UnmaskGrant
from lepton.errors import Conflict, Invalid
from lepton.models import AuditEvent
from lepton.services import share_grant
from lepton.storage import get_storage

KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = "ab" * 32  # hex works too
EMAILS = ["ann@corp.example", "bob@corp.example", "ann@corp.example"]
DATA = (
    b"badge,email,salary,shift\nB1,ann@corp.example,5100,early\nB2,bob@corp.example,6200,late\nB3,ann@corp.example,4800,early\n"
)
CLEAR = {"ann@corp.example", "bob@corp.example", "5100", "6200", "4800"}


@pytest.fixture(autouse=True)
def data_key(settings):
    settings.LEPTON_DATA_KEY = KEY
    settings.LEPTON_DATA_KEY_PREVIOUS = []
    return settings


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def mask(value: str, key: str = KEY) -> str:
    raw = parse_key(key)
    mask_key = hmac.new(raw, b"lepton column mask", hashlib.sha256).digest()
    return hmac.new(mask_key, value.encode(), hashlib.sha256).hexdigest()[:16]


def publish(actor, dataset, data=DATA, name="staff.csv"):
    version = services.dataset_upload(actor=actor, dataset=dataset, stream=io.BytesIO(data), filename=name)
    published = services.version_ingest(version.pk)
    assert published.status == "published", published.error_message
    return published


@pytest.fixture
def staff_data(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Staff")
    return publish(member, dataset)


@pytest.fixture
def classified(owner, staff_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the old stored objects go after commit
        services.columns_classify(
            actor=owner,
            dataset=staff_data.dataset,
            columns={"email": {"level": "personal", "mode": "hash"}, "salary": {"level": "confidential", "mode": "hide"}},
        )
    staff_data.refresh_from_db()
    return staff_data


def columns_url(dataset):
    return f"/api/v1/datasets/{dataset.pk}/columns/"


def version_url(version, what=""):
    return f"/api/v1/datasets/{version.dataset_id}/versions/{version.pk}/{what + '/' if what else ''}"


def unmask_events():
    return list(AuditEvent.objects.filter(action="dataset.unmask").order_by("id"))


def flat(rows) -> set[str]:
    return {str(v) for row in rows for v in row}


# --- classification --------------------------------------------------------------------------


def test_maintainer_classifies_columns_through_the_api_and_it_is_audited(owner, staff_data):
    body = {"columns": {"email": {"level": "personal", "mode": "hash"}, "salary": {"level": "confidential", "mode": "hide"}}}
    response = api(owner).patch(columns_url(staff_data.dataset), body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["columns"]["email"] == {"level": "personal", "mode": "hash"}
    assert response.json()["unmasked"] is True
    event = AuditEvent.objects.get(action="dataset.classify")
    assert event.actor == owner and set(event.changes["columns"]) == {"email", "salary"}
    # Back to public: the rule goes.
    response = api(owner).patch(columns_url(staff_data.dataset), {"columns": {"salary": {"level": "public"}}}, format="json")
    assert set(response.json()["columns"]) == {"email"}


@pytest.mark.parametrize("persona, status", [("viewer", 403), ("member", 403), ("outsider", 404)])
def test_only_maintainers_classify(request, staff_data, persona, status):
    user = request.getfixturevalue(persona)
    response = api(user).patch(columns_url(staff_data.dataset), {"columns": {"email": {"level": "personal"}}}, format="json")
    assert response.status_code == status
    assert Dataset.objects.get(pk=staff_data.dataset_id).sensitive_columns == {}


def test_anonymous_cannot_read_or_classify(staff_data):
    assert api().get(columns_url(staff_data.dataset)).status_code in (401, 403)
    assert api().patch(columns_url(staff_data.dataset), {"columns": {}}, format="json").status_code in (401, 403)


@pytest.mark.parametrize(
    "columns, field, words",
    [
        ({"nope": {"level": "personal"}}, "columns.nope", "no column “nope”"),
        ({"email": {"level": "personal", "mode": "scramble"}}, "columns.email", "Mode must be one of"),
        ({"email": {"level": "secret"}}, "columns.email", "Level must be one of"),
        ({"email": "personal"}, "columns.email", "level and mode"),
        ({}, "columns", "at least one column"),
    ],
)
def test_bad_classification_is_400_naming_the_column_and_changes_nothing(owner, staff_data, columns, field, words):
    response = api(owner).patch(columns_url(staff_data.dataset), {"columns": columns}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"] and words in " ".join(response.json()["fields"][field])
    staff_data.refresh_from_db()
    assert staff_data.dataset.sensitive_columns == {} and staff_data.encryption_key_id == ""
    assert not AuditEvent.objects.filter(action="dataset.classify").exists()


def test_classifying_without_a_data_key_is_refused_and_changes_nothing(owner, staff_data, data_key):
    data_key.LEPTON_DATA_KEY = ""
    response = api(owner).patch(columns_url(staff_data.dataset), {"columns": {"email": {"level": "personal"}}}, format="json")
    assert response.status_code == 409 and "LEPTON_DATA_KEY" in response.json()["detail"]
    assert Dataset.objects.get(pk=staff_data.dataset_id).sensitive_columns == {}


def test_classification_form_on_the_dataset_page(client, owner, viewer, staff_data):
    url = f"/data/{staff_data.dataset_id}/columns/"
    client.force_login(owner)
    page = client.get(url)
    assert page.status_code == 200 and "email" in page.content.decode()
    response = client.post(url, {"level-email": "personal", "mode-email": "hash", "level-salary": "public"})
    assert response.status_code == 302
    assert Dataset.objects.get(pk=staff_data.dataset_id).sensitive_columns == {"email": {"level": "personal", "mode": "hash"}}
    bad = client.post(url, {"level-email": "secret", "mode-email": "hash"})
    assert bad.status_code == 400 and Dataset.objects.get(pk=staff_data.dataset_id).sensitive_columns == {
        "email": {"level": "personal", "mode": "hash"}
    }
    client.force_login(viewer)
    assert client.post(url, {"level-email": "public"}).status_code == 403


# --- encryption at rest ----------------------------------------------------------------------


def test_classified_columns_are_encrypted_at_rest_and_unreadable_without_the_key(classified):
    storage = get_storage()
    assert classified.encryption_key_id and set(classified.encrypted_columns) == {"email", "salary"}
    raw = storage.read_bytes(classified.parquet_sha256)
    with pytest.raises(OSError, match="encrypted"):
        pq.ParquetFile(io.BytesIO(raw))
    assert b"ann@corp.example" not in raw
    # The raw upload (the last clear copy) is gone; its digest stays for duplicate detection.
    assert classified.raw_sha256 and not storage.exists(classified.raw_sha256)


def test_a_new_version_of_a_classified_dataset_is_stored_encrypted(owner, member, classified):
    later = publish(member, classified.dataset, DATA + b"B4,cy@corp.example,3900,late\n", name="staff2.csv")
    assert later.encryption_key_id and set(later.encrypted_columns) == {"email", "salary"}
    with pytest.raises(OSError):
        pq.ParquetFile(get_storage().path(later.parquet_sha256))


def test_upload_without_a_key_is_refused_and_keeps_nothing(member, classified, data_key):
    data_key.LEPTON_DATA_KEY = ""
    before = DatasetVersion.objects.count()
    response = api(member).post(
        f"/api/v1/datasets/{classified.dataset_id}/upload/",
        {"file": io.BytesIO(DATA + b"B9,z@corp.example,1,late\n")},
        format="multipart",
    )
    assert response.status_code == 409 and "LEPTON_DATA_KEY" in response.json()["detail"]
    assert DatasetVersion.objects.count() == before
    digest = hashlib.sha256(DATA + b"B9,z@corp.example,1,late\n").hexdigest()
    assert not get_storage().exists(digest)


def test_a_version_whose_key_vanished_before_publication_fails_and_stores_nothing(member, classified, data_key):
    pending = services.dataset_upload(
        actor=member, dataset=classified.dataset, stream=io.BytesIO(DATA + b"B5,d@corp.example,1,late\n"), filename="s.csv"
    )
    data_key.LEPTON_DATA_KEY = ""
    failed = services.version_ingest(pending.pk)
    assert failed.status == "failed" and "LEPTON_DATA_KEY" in failed.error_message and failed.parquet_sha256 == ""
    assert failed.number is None


def test_reading_an_encrypted_version_without_the_key_is_a_clear_409(viewer, classified, data_key):
    data_key.LEPTON_DATA_KEY = ""
    response = api(viewer).get(version_url(classified, "preview"))
    assert response.status_code == 409 and "LEPTON_DATA_KEY" in response.json()["detail"]


# --- masking on each read path ---------------------------------------------------------------


def test_preview_masks_for_a_viewer_and_shows_clear_values_to_the_maintainer_audited(owner, viewer, classified):
    masked = api(viewer).get(version_url(classified, "preview")).json()
    assert masked["columns"] == ["badge", "email", "shift"]
    assert [row[1] for row in masked["rows"]] == [mask(e) for e in EMAILS]
    assert not flat(masked["rows"]) & CLEAR and masked["masked"] == {"email": "hash", "salary": "hide"}
    assert unmask_events() == []
    clear = api(owner).get(version_url(classified, "preview")).json()
    assert clear["columns"] == ["badge", "email", "salary", "shift"] and [r[1] for r in clear["rows"]] == EMAILS
    (event,) = unmask_events()
    assert event.actor == owner and event.changes["purpose"] == "preview" and event.changes["columns"] == ["email", "salary"]


def test_hash_is_stable_joinable_and_keyed(viewer, classified, data_key):
    first = api(viewer).get(version_url(classified, "preview")).json()["rows"]
    assert first[0][1] == first[2][1] != first[1][1]  # equal values, equal hashes
    assert first == api(viewer).get(version_url(classified, "preview")).json()["rows"]
    # Another data key (after a rotation) gives other hashes: the hash is keyed, not a plain digest.
    data_key.LEPTON_DATA_KEY, data_key.LEPTON_DATA_KEY_PREVIOUS = NEW_KEY, [KEY]
    rotated = api(viewer).get(version_url(classified, "preview")).json()["rows"]
    assert rotated[0][1] == mask(EMAILS[0], NEW_KEY) != first[0][1]
    assert first[0][1] != hashlib.sha256(EMAILS[0].encode()).hexdigest()[:16]


def test_share_to_another_department_always_reads_masked_values(owner, outsider, quality, classified):
    share_grant(actor=owner, obj=classified.dataset, department=quality, level="use")
    quality_maintainer = outsider
    quality_maintainer.memberships.update(role="maintainer")
    body = api(quality_maintainer).get(version_url(classified, "preview")).json()
    assert "salary" not in body["columns"] and not flat(body["rows"]) & CLEAR
    assert unmask_events() == []


def test_outsider_without_a_share_gets_404_everywhere(outsider, classified):
    for what in ("preview", "download"):
        assert api(outsider).get(version_url(classified, what)).status_code == 404


def test_csv_and_parquet_downloads_are_masked_for_a_member(member, owner, classified):
    response = api(member).get(version_url(classified, "download"), {"as": "csv"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["badge", "email", "shift"] and not flat(rows) & CLEAR
    response = api(member).get(version_url(classified, "download"), {"as": "parquet"})
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))
    assert "salary" not in table.column_names and table.column("email").to_pylist() == [mask(e) for e in EMAILS]
    assert unmask_events() == []
    response = api(owner).get(version_url(classified, "download"), {"as": "parquet"})
    table = pq.read_table(io.BytesIO(b"".join(response.streaming_content)))  # plain: readable without a key
    assert table.column("email").to_pylist() == EMAILS and table.column("salary").to_pylist() == [5100, 6200, 4800]
    assert [e.changes["purpose"] for e in unmask_events()] == ["download"]


def test_profile_hides_the_values_of_sensitive_columns_from_a_viewer(viewer, owner, classified):
    profile = api(viewer).get(version_url(classified)).json()["profile"]
    email = next(c for c in profile["columns"] if c["name"] == "email")
    assert email["top_values"] == [] and email["min"] is None and email["distinct"] == 2 and email["masked"] == "hash"
    assert "ann@corp.example" not in str(profile) and "6200" not in str(profile)
    clear = api(owner).get(version_url(classified)).json()["profile"]
    assert "ann@corp.example" in str(clear)


def test_diff_of_two_versions_shows_no_sensitive_value_to_a_viewer(member, viewer, owner, classified):
    publish(member, classified.dataset, DATA + b"B4,cy@corp.example,9900,late\n", name="staff2.csv")
    body = api(viewer).get(f"/api/v1/datasets/{classified.dataset_id}/diff/").json()
    assert "ann@corp.example" not in str(body) and not [s for s in body["shifts"] if s["column"] == "salary"]
    clear = api(owner).get(f"/api/v1/datasets/{classified.dataset_id}/diff/").json()
    assert [s["mean"]["to"] for s in clear["shifts"] if s["column"] == "salary"] == [6500.0]


def test_sql_console_masks_for_a_member_and_unmasks_for_the_maintainer(member, owner, classified):
    sql = "SELECT * FROM production.staff ORDER BY badge"
    body = services.sql_run(actor=member, sql=sql)
    assert body["columns"] == ["badge", "email", "shift"] and not flat(body["rows"]) & CLEAR
    assert [r[1] for r in body["rows"]] == [mask(e) for e in EMAILS]
    # A join on the hash works: equal values meet.
    joined = services.sql_run(
        actor=member, sql="SELECT count(*) FROM production.staff a JOIN production.staff b ON a.email = b.email"
    )
    assert joined["rows"] == [[5]]
    with pytest.raises(Invalid):
        services.sql_run(actor=member, sql="SELECT salary FROM production.staff")
    assert "salary" not in services.sql_tables(member)["production.staff"].columns.values()
    assert unmask_events() == []
    clear = services.sql_run(actor=owner, sql=sql)
    assert [r[1] for r in clear["rows"]] == EMAILS and [e.changes["purpose"] for e in unmask_events()] == ["sql"]


def test_sql_export_is_masked_for_a_member(member, classified):
    with tempfile.TemporaryDirectory() as folder:
        services.sql_export(actor=member, sql="SELECT * FROM production.staff", folder=folder)
        text = open(f"{folder}/result.csv", encoding="utf-8-sig").read()
    assert "ann@corp.example" not in text and mask("ann@corp.example") in text and "6200" not in text


def test_recipe_preview_reads_masked_inputs_and_a_run_inherits_the_classification(member, owner, classified):
    recipe = services.recipe_create(
        actor=member,
        input_dataset=classified.dataset,
        name="Early shift",
        steps=[{"op": "select", "columns": ["badge", "email"]}],
    )
    preview = services.recipe_preview(actor=member, recipe=recipe)["preview"]
    assert not flat(preview["rows"]) & CLEAR and unmask_events() == []
    pending = services.recipe_run(actor=owner, recipe=recipe)
    output = services.recipe_execute(pending.pk)
    assert output.status == "published", output.error_message
    assert output.dataset.sensitive_columns == {"email": {"level": "personal", "mode": "hash"}}
    assert output.encryption_key_id and "email" in output.encrypted_columns
    assert [e.changes["purpose"] for e in unmask_events()] == ["recipe"]
    body = api(member).get(version_url(output, "preview")).json()
    assert not flat(body["rows"]) & CLEAR


def test_training_reads_masked_values_for_a_member_and_clear_for_the_maintainer(member, owner, classified):
    from models_repo.services.training import _named_parquet

    storage = get_storage()
    with tempfile.TemporaryDirectory() as folder:
        table = pq.read_table(_named_parquet(storage, classified, folder, actor=member))
        assert "salary" not in table.column_names and table.column("email").to_pylist() == [mask(e) for e in EMAILS]
        assert unmask_events() == []
        table = pq.read_table(_named_parquet(storage, classified, folder, actor=owner))
        assert table.column("email").to_pylist() == EMAILS
    assert [e.changes["purpose"] for e in unmask_events()] == ["training"]


def test_a_training_run_of_a_member_sees_no_hidden_column(member, owner, classified):
    from models_repo import services as model_services

    spec = {
        "task": "classification",
        "target": "shift",
        "features": ["badge"],
        "algorithms": [{"name": "random_forest", "params": {"n_estimators": 5}}],
        "seed": 1,
    }
    run = model_services.training_execute(model_services.training_start(actor=member, dataset_version=classified, spec=spec).pk)
    assert run.status in ("succeeded", "failed")  # three rows may be too few to train; what matters: no unmask
    assert unmask_events() == []
    # A hidden column cannot be named by someone who reads it hidden; its owner can name it.
    with pytest.raises(Invalid) as refused:
        model_services.training_start(actor=member, dataset_version=classified, spec={**spec, "features": ["salary"]})
    assert "salary" in refused.value.message and any(k.startswith("spec.") for k in refused.value.fields)
    model_services.training_start(actor=owner, dataset_version=classified, spec={**spec, "features": ["salary"]})


def test_scheduling_cannot_map_a_hidden_column_for_a_member(member, production, classified):
    from scheduling import services as scheduling_services

    with pytest.raises(Invalid) as refused:
        scheduling_services.problem_from_dataset(
            actor=member,
            department=production,
            name="From staff",
            dataset_version=classified,
            mapping={"job": "badge", "machine": "shift", "duration": "salary"},
        )
    assert "mapping.duration" in refused.value.fields and "hidden" in refused.value.message


# --- unmask grants ---------------------------------------------------------------------------


def test_an_unmask_grant_lets_a_member_read_in_clear_until_revoked(owner, member, outsider, production, classified):
    services.unmask_grant(actor=owner, department=production, user=member)
    body = api(member).get(version_url(classified, "preview")).json()
    assert [r[1] for r in body["rows"]] == EMAILS and len(unmask_events()) == 1
    assert AuditEvent.objects.filter(action="dataset.unmask_grant").exists()
    services.unmask_revoke(actor=owner, department=production, user=member)
    body = api(member).get(version_url(classified, "preview")).json()
    assert not flat(body["rows"]) & CLEAR
    with pytest.raises(Invalid):
        services.unmask_grant(actor=owner, department=production, user=outsider)
    assert not UnmaskGrant.objects.exists()


def test_unmask_grants_through_the_api(owner, member, viewer, outsider, classified):
    response = api(owner).post("/api/v1/unmask-grants/", {"department": "production", "user": member.username}, format="json")
    assert response.status_code == 201 and response.json()["user"] == member.username
    grant = UnmaskGrant.objects.get()
    assert (
        api(viewer)
        .post("/api/v1/unmask-grants/", {"department": "production", "user": viewer.username}, format="json")
        .status_code
        == 403
    )
    assert (
        api(outsider)
        .post("/api/v1/unmask-grants/", {"department": "production", "user": outsider.username}, format="json")
        .status_code
        == 404
    )
    body = api(outsider).get("/api/v1/unmask-grants/").json()
    assert (body["results"] if isinstance(body, dict) else body) == []  # Production's grants are not Quality's business
    body = api(viewer).get("/api/v1/unmask-grants/").json()
    assert [g["user"] for g in (body["results"] if isinstance(body, dict) else body)] == [member.username]
    bad = api(owner).post("/api/v1/unmask-grants/", {"department": "production", "user": "nobody"}, format="json")
    assert bad.status_code == 400 and "user" in bad.json()["fields"]
    assert api(member).delete(f"/api/v1/unmask-grants/{grant.pk}/").status_code == 403
    assert api(owner).delete(f"/api/v1/unmask-grants/{grant.pk}/").status_code == 204
    assert not UnmaskGrant.objects.exists()


def test_a_member_cannot_grant_unmask(member, viewer, production, classified):
    from lepton.errors import Forbidden

    with pytest.raises(Forbidden):
        services.unmask_grant(actor=member, department=production, user=viewer)


# --- rotation and the start-up check ---------------------------------------------------------


def test_rotation_reads_with_the_previous_key_and_reencrypt_moves_every_version_to_the_new_one(
    owner, viewer, classified, data_key, django_capture_on_commit_callbacks
):
    old_sha, old_id = classified.parquet_sha256, classified.encryption_key_id
    data_key.LEPTON_DATA_KEY, data_key.LEPTON_DATA_KEY_PREVIOUS = NEW_KEY, [KEY]
    assert api(owner).get(version_url(classified, "preview")).json()["rows"][0][1] == EMAILS[0]
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("reencrypt_versions", stdout=out)
    assert "1 version(s) encrypted again" in out.getvalue()
    classified.refresh_from_db()
    assert classified.encryption_key_id != old_id and classified.parquet_sha256 != old_sha
    assert not get_storage().exists(old_sha)
    assert AuditEvent.objects.filter(action="dataset.encrypt").count() == 2  # classification, rotation
    out = io.StringIO()
    call_command("reencrypt_versions", stdout=out)  # idempotent
    assert "0 version(s) encrypted again, 1 already current" in out.getvalue()
    data_key.LEPTON_DATA_KEY_PREVIOUS = []
    assert api(owner).get(version_url(classified, "preview")).json()["rows"][0][1] == EMAILS[0]


def test_reencrypt_without_a_key_fails_loudly(classified, data_key):
    data_key.LEPTON_DATA_KEY = ""
    with pytest.raises(CommandError, match="LEPTON_DATA_KEY"):
        call_command("reencrypt_versions", stdout=io.StringIO())


def test_check_passes_without_a_key_while_nothing_is_classified(staff_data, data_key):
    data_key.LEPTON_DATA_KEY = ""
    assert check_data_key(databases=["default"]) == []


def test_check_refuses_start_up_without_a_key_once_columns_are_classified(classified, data_key):
    data_key.LEPTON_DATA_KEY = ""
    (error,) = check_data_key(databases=["default"])
    assert error.id == "datalake.E001" and "LEPTON_DATA_KEY is not set" in error.msg
    assert "Without classified columns no key is needed" in error.msg


def test_check_refuses_a_wrong_or_malformed_key_and_accepts_a_rotation(classified, data_key):
    data_key.LEPTON_DATA_KEY = NEW_KEY
    (error,) = check_data_key(databases=["default"])
    assert error.id == "datalake.E001" and "wrong" in error.msg and classified.encryption_key_id in error.msg
    assert KEY not in error.msg and NEW_KEY not in error.msg  # the check names key check values, never keys
    data_key.LEPTON_DATA_KEY_PREVIOUS = [KEY]
    assert check_data_key(databases=["default"]) == []
    data_key.LEPTON_DATA_KEY = "too-short"
    (error,) = check_data_key(databases=["default"])
    assert "16, 24 or 32" in error.msg


def test_reading_with_a_wrong_key_is_a_clear_409(viewer, classified, data_key):
    data_key.LEPTON_DATA_KEY = NEW_KEY
    response = api(viewer).get(version_url(classified, "preview"))
    assert response.status_code == 409 and "not configured" in response.json()["detail"]


def test_the_service_refuses_reading_unpublished_versions(member, classified):
    pending = DatasetVersion.objects.create(dataset=classified.dataset)
    with pytest.raises(Conflict), services.readable_parquet(pending, member, purpose="preview"):
        pass


def test_check_samples_and_ingest_examples_of_sensitive_columns_are_masked_in_the_api(owner, viewer, member, production):
    """A failed check's sample and an ingest warning's example carry values: a viewer gets neither."""
    rows = "".join(f"B{i},ann@corp.example,1990-01-{i + 10:02d}\n" for i in range(9)) + "B9,bob@corp.example,1990-02-3x\n"
    dataset = services.dataset_create(actor=member, department=production, name="Badges")
    services.dataset_update(actor=member, dataset=dataset, checks=[{"type": "unique", "column": None, "columns": ["email"]}])
    version = publish(member, dataset, data=b"badge,email,born\n" + rows.encode())
    assert version.check_results[0]["sample"] == ["ann@corp.example"]
    assert any("1990-02-3x" in w for w in version.ingest_report["warnings"])
    services.columns_classify(
        actor=owner,
        dataset=dataset,
        columns={"email": {"level": "personal", "mode": "hash"}, "born": {"level": "personal", "mode": "hide"}},
    )
    for url in (version_url(version), f"/api/v1/datasets/{dataset.pk}/versions/"):
        body = api(viewer).get(url).json()
        shown = body if "check_results" in body else body["results"][0]
        assert shown["check_results"][0]["sample"] == [] and shown["check_results"][0]["masked"] is True
        assert shown["check_results"][0]["message"] == version.check_results[0]["message"]
        text = str(shown)
        assert "ann@corp.example" not in text and "1990-02-3x" not in text
        clear = api(owner).get(url).json()
        clear = clear if "check_results" in clear else clear["results"][0]
        assert clear["check_results"][0]["sample"] == ["ann@corp.example"]
        assert any("1990-02-3x" in w for w in clear["ingest_report"]["warnings"])
