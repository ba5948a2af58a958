"""Database imports: set up (password encrypted), run as a job, unchanged runs, schedule, bad input."""

import os
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from datalake import services
from datalake.models import DatabaseImport, DatasetVersion
from lepton.jobs.dispatcher import run_periodic
from lepton.models import AuditEvent, Membership
from tests.conftest import wait_for_job

SOURCE = os.environ.get("LEPTON_TEST_PG_SOURCE", "postgresql://postgres@127.0.0.1:5432/test")


def _source_connection():
    try:
        return psycopg.connect(SOURCE, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - the machine runs PostgreSQL
        pytest.skip(f"no PostgreSQL to import from at {SOURCE} ({exc}); start it or set LEPTON_TEST_PG_SOURCE")


@pytest.fixture
def plant():
    """A schema in a real PostgreSQL with a `batches` table and a read-only login `reader` / `s3cret-pw`."""
    schema = f"plant_{uuid.uuid4().hex[:8]}"
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    with _source_connection() as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.batches (id int PRIMARY KEY, line text, 温度 numeric(6,2), made date)")
        con.execute(
            f"INSERT INTO {schema}.batches VALUES (1, 'L1', 70.25, '2024-01-02'), (2, 'L2', 71.5, '2024-01-03'), "
            "(3, '二号线', NULL, '2024-01-04')"
        )
        con.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 's3cret-pw'")
        con.execute(f"GRANT USAGE ON SCHEMA {schema} TO {reader}")
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}")
        yield {"schema": schema, "reader": reader, "con": con}
        con.execute(f"DROP SCHEMA {schema} CASCADE")
        con.execute(f"DROP ROLE {reader}")


def _url(plant, password=True):
    auth = f"{plant['reader']}:s3cret-pw" if password else plant["reader"]
    return f"postgresql://{auth}@127.0.0.1:5432/test"


@pytest.fixture
def batches(member, production):
    return services.dataset_create(actor=member, department=production, name="Batches from MES")


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def _query(plant):
    return f'SELECT id, line, "温度", made FROM {plant["schema"]}.batches ORDER BY id'


def test_owner_sets_up_an_import_and_the_password_is_stored_encrypted(owner, batches, plant):
    response = api(owner).post(
        f"/api/v1/datasets/{batches.pk}/import/", {"url": _url(plant), "query": _query(plant)}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == f"postgresql://{plant['reader']}@127.0.0.1:5432/test" and body["password_set"] is True
    assert "password" not in body and "s3cret" not in response.content.decode()
    stored = DatabaseImport.objects.get()
    assert "s3cret" not in stored.url and "s3cret" not in stored.password_encrypted
    assert not AuditEvent.objects.filter(changes__icontains="s3cret").exists()
    assert AuditEvent.objects.filter(action="import.create", actor=owner).exists()


def test_a_run_publishes_the_rows_and_an_unchanged_run_adds_nothing(owner, member, batches, plant):
    db_import = services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    version = services.database_import_run(actor=member, db_import=db_import)
    published = services.import_execute(version.pk)
    assert published.status == "published", published.error_message
    assert (published.number, published.row_count, published.format) == (1, 3, "postgresql")
    assert [c["name"] for c in published.schema] == ["id", "line", "温度", "made"]
    batches.refresh_from_db()
    assert batches.format == "postgresql"
    db_import.refresh_from_db()
    assert (db_import.last_status, db_import.last_message) == ("published", "Published v1 with 3 rows.")

    again = services.database_import_run(actor=member, db_import=db_import)
    assert services.import_execute(again.pk) is None
    assert not DatasetVersion.objects.filter(pk=again.pk).exists()
    db_import.refresh_from_db()
    assert db_import.last_status == "unchanged" and "v1" in db_import.last_message

    plant["con"].execute(f"INSERT INTO {plant['schema']}.batches VALUES (4, 'L1', 69.0, '2024-01-05')")
    third = services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    assert (third.status, third.number, third.row_count) == ("published", 2, 4)


def test_a_run_on_a_real_worker_through_the_api(owner, member, batches, plant, celery_worker, dispatcher):
    services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    response = api(member).post(f"/api/v1/datasets/{batches.pk}/import/run/", format="json")
    assert response.status_code == 202, response.json()
    version = DatasetVersion.objects.get(pk=response.json()["id"])
    job = wait_for_job(version.job, timeout=60)
    assert job.status == "succeeded", job.error_message
    version.refresh_from_db()
    assert (version.status, version.row_count, version.source) == ("published", 3, "import")
    # A second run while one is queued is refused.
    services.database_import_run(actor=member, db_import=DatabaseImport.objects.get())
    refused = api(member).post(f"/api/v1/datasets/{batches.pk}/import/run/", format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "import_running"


def test_bad_credentials_fail_the_run_without_showing_the_password(owner, member, batches, plant):
    # The local server trusts 127.0.0.1, so an unknown login is what it refuses.
    url = "postgresql://nobody_here:wrong-pw-123@127.0.0.1:5432/test"
    db_import = services.database_import_create(actor=owner, dataset=batches, url=url, query=_query(plant))
    failed = services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    assert failed.status == "failed" and failed.number is None
    assert "wrong-pw-123" not in failed.error_message and "127.0.0.1" in failed.error_message
    db_import.refresh_from_db()
    assert db_import.last_status == "failed" and "wrong-pw-123" not in db_import.last_message
    assert not batches.versions.filter(status="published").exists()


def test_a_rotated_away_key_fails_the_run_asking_for_the_password_again(owner, member, batches, plant, settings):
    from cryptography.fernet import Fernet

    settings.LEPTON_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    db_import = services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    settings.LEPTON_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    failed = services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    assert failed.status == "failed" and "Enter the password again" in failed.error_message


def test_rotate_credentials_moves_every_password_to_the_new_key(owner, member, batches, plant, settings, production):
    from cryptography.fernet import Fernet
    from django.core.management import CommandError, call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.LEPTON_ENCRYPTION_KEYS = [old]
    db_import = services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    other = services.dataset_create(actor=member, department=production, name="Lost key")
    settings.LEPTON_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    lost = services.database_import_create(actor=owner, dataset=other, url=_url(plant), query=_query(plant))
    lost_token = DatabaseImport.objects.get(pk=lost.pk).password_encrypted

    settings.LEPTON_ENCRYPTION_KEYS = [new, old]
    with pytest.raises(CommandError, match=f"1 credential.*{production.slug}/{other.slug}"):
        call_command("rotate_credentials")
    # The readable one now opens with the new key alone, and the run still works; the other is untouched.
    settings.LEPTON_ENCRYPTION_KEYS = [new]
    published = services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    assert published.status == "published", published.error_message
    assert DatabaseImport.objects.get(pk=lost.pk).password_encrypted == lost_token


@pytest.mark.parametrize(
    "payload, field, code",
    [
        ({"url": "ftp://x@db/plant"}, "url", "bad_url"),
        ({"url": "postgresql://user@db.example:99999/plant"}, "url", "bad_url"),
        ({"query": "DELETE FROM batches"}, "query", "not_read_only"),
        ({"query": "SELECT 1; DROP TABLE batches"}, "query", "not_read_only"),
        ({"interval_minutes": 1}, "interval_minutes", "invalid"),
    ],
)
def test_bad_import_settings_are_refused_naming_the_field(owner, batches, plant, payload, field, code):
    data = {"url": _url(plant), "query": _query(plant), **payload}
    response = api(owner).post(f"/api/v1/datasets/{batches.pk}/import/", data, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == code and field in response.json()["fields"]
    assert not DatabaseImport.objects.exists()


def test_hosts_outside_the_allow_list_are_refused(owner, batches, plant, settings):
    settings.LEPTON_IMPORT_ALLOWED_HOSTS = ["mes-db.internal"]
    response = api(owner).post(
        f"/api/v1/datasets/{batches.pk}/import/", {"url": _url(plant), "query": _query(plant)}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"] == "host_not_allowed"
    assert "mes-db.internal" in response.json()["detail"]
    assert not DatabaseImport.objects.exists()


def test_lepton_s_own_database_is_refused(owner, batches, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the platform runs on SQLite here: it has no database server to protect")
    own = connection.settings_dict
    url = f"postgresql://{own['USER']}@localhost:{own['PORT'] or 5432}/{own['NAME']}"
    response = api(owner).post(f"/api/v1/datasets/{batches.pk}/import/", {"url": url, "query": "SELECT 1"}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "platform_database"
    assert not DatabaseImport.objects.exists()


def test_only_maintainers_set_up_members_run_outsiders_and_anonymous_see_nothing(owner, member, viewer, outsider, batches, plant):
    data = {"url": _url(plant), "query": _query(plant)}
    assert api(member).post(f"/api/v1/datasets/{batches.pk}/import/", data, format="json").status_code == 403
    assert api(outsider).post(f"/api/v1/datasets/{batches.pk}/import/", data, format="json").status_code == 404
    assert api().post(f"/api/v1/datasets/{batches.pk}/import/", data, format="json").status_code == 401
    assert not DatabaseImport.objects.exists()
    services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    assert api(member).get(f"/api/v1/datasets/{batches.pk}/import/").status_code == 200
    assert api(viewer).get(f"/api/v1/datasets/{batches.pk}/import/").status_code == 404  # viewers see the data, not the source
    assert api(viewer).post(f"/api/v1/datasets/{batches.pk}/import/run/").status_code == 404
    assert api(member).patch(f"/api/v1/datasets/{batches.pk}/import/", {"query": "SELECT 1"}, format="json").status_code == 403
    assert api(member).delete(f"/api/v1/datasets/{batches.pk}/import/").status_code == 403
    for method in ("get", "patch", "delete"):
        assert getattr(api(outsider), method)(f"/api/v1/datasets/{batches.pk}/import/").status_code == 404
        assert getattr(api(), method)(f"/api/v1/datasets/{batches.pk}/import/").status_code == 401
    assert api(outsider).post(f"/api/v1/datasets/{batches.pk}/import/run/").status_code == 404
    assert api().post(f"/api/v1/datasets/{batches.pk}/import/run/").status_code == 401
    assert DatabaseImport.objects.get().query == _query(plant)
    assert not DatasetVersion.objects.exists()


def test_a_second_import_on_one_dataset_is_a_conflict(owner, batches, plant):
    services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    response = api(owner).post(f"/api/v1/datasets/{batches.pk}/import/", {"url": _url(plant), "query": "SELECT 2"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "import_exists"


def test_update_replaces_or_keeps_the_password_and_delete_keeps_the_versions(owner, member, batches, plant):
    db_import = services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    token = DatabaseImport.objects.get().password_encrypted
    response = api(owner).patch(f"/api/v1/datasets/{batches.pk}/import/", {"interval_minutes": 60}, format="json")
    assert response.status_code == 200 and response.json()["interval_minutes"] == 60
    assert DatabaseImport.objects.get().password_encrypted == token  # kept when not given
    api(owner).patch(f"/api/v1/datasets/{batches.pk}/import/", {"password": ""}, format="json")
    assert DatabaseImport.objects.get().password_encrypted == ""
    assert api(owner).delete(f"/api/v1/datasets/{batches.pk}/import/").status_code == 204
    assert not DatabaseImport.objects.exists() and batches.versions.filter(status="published").count() == 1


def test_due_imports_are_queued_by_the_dispatchers_periodic_pass(owner, member, production, batches, plant, settings):
    settings.LEPTON_PERIODIC_TASKS = [("datalake.services.imports_submit_due", 30)]
    db_import = services.database_import_create(
        actor=owner, dataset=batches, url=_url(plant), query=_query(plant), interval_minutes=30
    )
    assert db_import.next_run_at is not None and db_import.next_run_at <= timezone.now()
    clock = iter([100.0, 110.0, 200.0])
    runs: dict = {}
    outcome = run_periodic(runs, clock=lambda: next(clock))
    queued = outcome["datalake.services.imports_submit_due"]
    assert len(queued) == 1 and DatasetVersion.objects.get(pk=queued[0]).source == "import"
    db_import.refresh_from_db()
    assert timezone.now() + timedelta(minutes=29) < db_import.next_run_at <= timezone.now() + timedelta(minutes=30)
    assert run_periodic(runs, clock=lambda: next(clock)) == {}  # 10 s later: not yet its interval
    # Not due yet at the next pass: nothing queued.
    assert run_periodic(runs, clock=lambda: next(clock))["datalake.services.imports_submit_due"] == []


def test_a_scheduled_import_whose_author_left_is_disabled_not_run(owner, batches, plant):
    db_import = services.database_import_create(
        actor=owner, dataset=batches, url=_url(plant), query=_query(plant), interval_minutes=30
    )
    Membership.objects.filter(user=owner).delete()
    assert services.imports_submit_due() == []
    db_import.refresh_from_db()
    assert (db_import.enabled, db_import.last_status) == (False, "failed") and "maintainer" in db_import.last_message
    assert not DatasetVersion.objects.exists()


@pytest.fixture
def mariadb_table():
    pymysql = pytest.importorskip("pymysql")
    try:
        con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test", autocommit=True)
    except pymysql.err.OperationalError as exc:  # pragma: no cover - the machine runs MariaDB
        pytest.skip(f"no MariaDB at 127.0.0.1:3306 ({exc}); start it with start-stop-daemon … mariadbd")
    table = f"orders_{uuid.uuid4().hex[:8]}"
    with con.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, product VARCHAR(40), qty INT) CHARACTER SET utf8mb4")
        cursor.execute(f"INSERT INTO {table} VALUES (1, '轴承', 5), (2, 'bolt', 7)")
    yield table
    with con.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")
    con.close()


def test_an_import_from_mysql_publishes_its_rows(owner, member, batches, mariadb_table):
    db_import = services.database_import_create(
        actor=owner,
        dataset=batches,
        url="mysql://root@127.0.0.1:3306/test",
        query=f"SELECT product, qty FROM {mariadb_table} ORDER BY id",
    )
    published = services.import_execute(services.database_import_run(actor=member, db_import=db_import).pk)
    assert published.status == "published", published.error_message
    assert (published.format, published.row_count) == ("mysql", 2)
    preview = services.version_preview(actor=member, version=published)
    assert preview["rows"][0] == ["轴承", 5]


def _page(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_maintainer_sets_up_and_changes_an_import_on_the_dataset_page(owner, batches, plant):
    client = _page(owner)
    page = client.get(f"/data/{batches.pk}/").content.decode()
    assert "Set up an import" in page
    response = client.post(
        f"/data/{batches.pk}/import/",
        {"url": f"postgresql://{plant['reader']}@127.0.0.1:5432/test", "password": "s3cret-pw", "query": _query(plant)},
    )
    assert response.status_code == 302
    db_import = DatabaseImport.objects.get()
    assert db_import.password_encrypted and db_import.interval_minutes is None
    page = client.get(f"/data/{batches.pk}/").content.decode()
    assert "password stored encrypted" in page and "s3cret-pw" not in page and "Runs when someone asks." in page
    # Saving again without a password keeps the stored one.
    client.post(
        f"/data/{batches.pk}/import/", {"url": db_import.url, "query": _query(plant), "interval_minutes": "60", "enabled": "on"}
    )
    db_import.refresh_from_db()
    assert db_import.interval_minutes == 60 and db_import.password_encrypted and db_import.next_run_at is not None


def test_import_form_errors_are_shown_and_change_nothing(owner, batches, plant):
    client = _page(owner)
    response = client.post(f"/data/{batches.pk}/import/", {"url": "ftp://nowhere", "query": "DROP TABLE x"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "postgresql://" in html and "SELECT" in html  # the URL's and the query's reasons, on their fields
    response = client.post(
        f"/data/{batches.pk}/import/", {"url": _url(plant, password=False), "query": _query(plant), "interval_minutes": "2"}
    )
    assert response.status_code == 400 and "minutes" in response.content.decode()
    assert not DatabaseImport.objects.exists()


def test_member_runs_the_import_from_the_page_viewer_and_outsider_cannot(owner, member, viewer, outsider, batches, plant):
    services.database_import_create(actor=owner, dataset=batches, url=_url(plant), query=_query(plant))
    member_page = _page(member).get(f"/data/{batches.pk}/").content.decode()
    assert "Run now" in member_page and "Change the import" not in member_page
    assert _page(member).post(f"/data/{batches.pk}/import/run/").status_code == 302
    assert batches.versions.filter(source="import", status="pending").count() == 1
    assert "Database import" not in _page(viewer).get(f"/data/{batches.pk}/").content.decode()
    assert _page(viewer).post(f"/data/{batches.pk}/import/run/").status_code == 404
    assert _page(member).post(f"/data/{batches.pk}/import/delete/").status_code == 403
    for url in ("import/", "import/run/", "import/delete/"):
        assert _page(outsider).post(f"/data/{batches.pk}/{url}", {"url": "x"}).status_code == 404
        from django.test import Client

        assert Client().post(f"/data/{batches.pk}/{url}").status_code == 302
    assert DatabaseImport.objects.count() == 1
    assert batches.versions.count() == 1
