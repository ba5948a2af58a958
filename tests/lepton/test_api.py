"""The core REST API (/api/v1/): every endpoint's anonymous and outsider cases, token auth,
the bad inputs the foundation issue names, audit events, fixed query counts, the schema.

Clients authenticate the way services do: `Authorization: Bearer <secret>` with tokens
made by lepton.services.token_create.
"""

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from lepton import counters
from lepton.api.throttling import TokenRateThrottle
from lepton.jobs.models import Job, JobLogLine, JobStatus
from lepton.jobs.services import job_cancel, job_submit, platform_job_submit
from lepton.models import ApiToken, AuditEvent, Department, Membership
from lepton.services import token_create, token_revoke
from tests.conftest import wait_for
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory

ERROR_KEYS = {"error", "detail", "fields"}


def bearer(user, scopes=("read", "write"), **kwargs) -> APIClient:
    """An API client that authenticates as `user` with a fresh token."""
    _, secret = token_create(actor=user, name="test client", scopes=list(scopes), **kwargs)
    return bearer_secret(secret)


def bearer_secret(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def assert_error(response, status: int, error: str | None = None) -> dict:
    """The response has `status` and the one error shape; returns its body."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", response.content))
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["detail"], body
    if error is not None:
        assert body["error"] == error, body
    return body


def counts() -> dict:
    """Row counts that a refused request must leave alone."""
    return {
        "departments": Department.objects.count(),
        "memberships": Membership.objects.count(),
        "jobs": Job.objects.count(),
        "log_lines": JobLogLine.objects.count(),
        "tokens": ApiToken.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("id")


@pytest.fixture
def people(admin, owner, member, viewer, outsider, staff):
    """Everyone, so that each department has its personas before a test starts counting."""
    return {"admin": admin, "owner": owner, "member": member, "viewer": viewer, "outsider": outsider, "staff": staff}


@pytest.fixture
def production_job(member, production):
    return job_submit(actor=member, department=production, kind="tests.noop")


# --- anonymous: every endpoint answers 401 in the error shape --------------------------------


ENDPOINTS = [
    ("get", "/api/v1/me"),
    ("get", "/api/v1/departments/"),
    ("post", "/api/v1/departments/"),
    ("get", "/api/v1/departments/production/"),
    ("patch", "/api/v1/departments/production/"),
    ("get", "/api/v1/departments/production/memberships/"),
    ("post", "/api/v1/departments/production/memberships/"),
    ("get", "/api/v1/departments/production/memberships/mia-member/"),
    ("patch", "/api/v1/departments/production/memberships/mia-member/"),
    ("delete", "/api/v1/departments/production/memberships/mia-member/"),
    ("get", "/api/v1/jobs/"),
    ("post", "/api/v1/jobs/"),
    ("get", "/api/v1/jobs/{job}/"),
    ("post", "/api/v1/jobs/{job}/cancel/"),
    ("post", "/api/v1/jobs/{job}/requeue/"),
    ("get", "/api/v1/jobs/{job}/log/"),
    ("get", "/api/v1/tokens/"),
    ("post", "/api/v1/tokens/"),
    ("get", "/api/v1/tokens/{token}/"),
    ("delete", "/api/v1/tokens/{token}/"),
    ("get", "/api/v1/audit/"),
    ("get", "/api/v1/schema/"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_gets_401_with_error_shape(method, url, people, production_job):
    token, _ = token_create(actor=people["member"], name="cli", scopes=["read"])
    before = counts()
    # Accept: JSON, as API clients send it (the schema endpoint answers YAML by default).
    client = APIClient(HTTP_ACCEPT="application/json")
    response = getattr(client, method)(url.format(job=production_job.pk, token=token.pk), {}, format="json")
    body = assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Bearer"
    assert "credentials" in body["detail"]
    assert counts() == before


def test_anonymous_is_sent_to_login_from_the_api_docs(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert "next=/api/docs/" in response["Location"]


# --- tokens: hashing, expiry, revocation, scopes ---------------------------------------------


def test_token_create_returns_the_secret_once_and_stores_only_its_sha256(member):
    client = bearer(member, scopes=["read", "write"])
    response = client.post("/api/v1/tokens/", {"name": "MES export", "scopes": ["read"]}, format="json")
    assert response.status_code == 201, response.data
    secret = response.json()["secret"]
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(token.prefix + "_")
    stored = {f.attname: str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields}
    assert not any(secret in value for value in stored.values())
    assert last_event("token.create").object_id == str(token.pk)

    listed = client.get("/api/v1/tokens/").json()["results"]
    mine = next(t for t in listed if t["id"] == str(token.pk))
    assert "secret" not in mine and "token_hash" not in mine
    assert secret not in client.get(f"/api/v1/tokens/{token.pk}/").content.decode()
    assert bearer_secret(secret).get("/api/v1/me").json()["token"]["prefix"] == token.prefix


def test_expired_token_gets_401_saying_it_expired(member):
    token, secret = token_create(actor=member, name="old", scopes=["read"], expires_at=timezone.now() + timedelta(seconds=60))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    body = assert_error(bearer_secret(secret).get("/api/v1/me"), 401)
    assert body["detail"] == "This token has expired."


def test_revoked_token_gets_401_saying_it_was_revoked(member):
    token, secret = token_create(actor=member, name="gone", scopes=["read"])
    token_revoke(actor=member, token=token)
    body = assert_error(bearer_secret(secret).get("/api/v1/me"), 401)
    assert body["detail"] == "This token has been revoked."


def test_wrong_secret_with_a_real_prefix_gets_401(member):
    token, _ = token_create(actor=member, name="cli", scopes=["read"])
    body = assert_error(bearer_secret(f"{token.prefix}_not-the-secret").get("/api/v1/me"), 401)
    assert body["detail"] == "Invalid token."


def test_read_token_cannot_write_and_changes_nothing(member, production):
    client = bearer(member, scopes=["read"])
    before = counts()
    body = assert_error(
        client.post("/api/v1/jobs/", {"kind": "tests.noop", "department": "production"}, format="json"), 403, "permission_denied"
    )
    assert "lacks the 'write' scope" in body["detail"]
    assert counts() == before


def test_token_without_read_scope_cannot_read(member):
    body = assert_error(bearer(member, scopes=["predict"]).get("/api/v1/jobs/"), 403)
    assert "'read'" in body["detail"]


def test_token_cannot_mint_a_token_with_scopes_it_lacks(member):
    client = bearer(member, scopes=["read", "write"])
    before = counts()
    body = assert_error(client.post("/api/v1/tokens/", {"name": "x", "scopes": ["predict"]}, format="json"), 403)
    assert "predict" in body["fields"]["scopes"][0]
    assert counts() == before


def test_token_create_without_scopes_is_400_naming_scopes(member):
    client = bearer(member)
    before = counts()
    body = assert_error(client.post("/api/v1/tokens/", {"name": "x", "scopes": []}, format="json"), 400, "invalid")
    assert "scopes" in body["fields"]
    body = assert_error(client.post("/api/v1/tokens/", {"name": "x", "scopes": ["admin"]}, format="json"), 400, "invalid")
    assert "scopes.0" in body["fields"]
    assert counts() == before


def test_token_revoke_through_the_api_stops_the_token_and_is_audited(member):
    token, secret = token_create(actor=member, name="ci", scopes=["read"])
    client = bearer(member)
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert last_event("token.revoke").object_id == str(token.pk)
    assert_error(bearer_secret(secret).get("/api/v1/me"), 401)
    body = assert_error(client.delete(f"/api/v1/tokens/{token.pk}/"), 409, "already_revoked")
    assert "already revoked" in body["detail"]


def test_outsider_sees_only_own_tokens_and_gets_404_for_others(member, outsider, staff):
    theirs, secret = token_create(actor=member, name="member's", scopes=["read"])
    client = bearer(outsider)
    ids = {t["id"] for t in client.get("/api/v1/tokens/").json()["results"]}
    assert str(theirs.pk) not in ids and len(ids) == 1
    assert_error(client.get(f"/api/v1/tokens/{theirs.pk}/"), 404, "not_found")
    before = counts()
    assert_error(client.delete(f"/api/v1/tokens/{theirs.pk}/"), 404, "not_found")
    assert counts() == before
    assert bearer_secret(secret).get("/api/v1/me").status_code == 200
    # Platform staff manage other people's tokens in the admin; this endpoint is "mine".
    staff_ids = {t["id"] for t in bearer(staff).get("/api/v1/tokens/").json()["results"]}
    assert str(theirs.pk) not in staff_ids


def test_token_list_query_count_does_not_grow_with_rows(member, django_assert_num_queries):
    client = bearer(member)
    for n in range(2):
        token_create(actor=member, name=f"t{n}", scopes=["read"])
    client.get("/api/v1/tokens/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/tokens/").json()["count"] == 3
    for n in range(27):
        token_create(actor=member, name=f"more{n}", scopes=["read"])
    with django_assert_num_queries(len(few)):
        assert client.get("/api/v1/tokens/").json()["count"] == 30


# --- throttling ------------------------------------------------------------------------------


def test_each_token_is_throttled_on_its_own(member, monkeypatch):
    # DRF reads the rate when the throttle class is built; the class attribute overrides it.
    monkeypatch.setattr(TokenRateThrottle, "rate", "3/min", raising=False)
    monkeypatch.setattr(counters, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))  # one fixed window throughout
    first, second = bearer(member), bearer(member)
    assert [first.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    response = first.get("/api/v1/me")
    body = assert_error(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0
    assert "throttled" in body["detail"].lower()
    assert second.get("/api/v1/me").status_code == 200


# --- me --------------------------------------------------------------------------------------


def test_me_lists_departments_roles_and_the_token_in_use(owner, quality):
    MembershipFactory(user=owner, department=quality, role="viewer")
    token, secret = token_create(actor=owner, name="ci", scopes=["read"])
    body = bearer_secret(secret).get("/api/v1/me").json()
    assert body["username"] == "oscar-owner"
    assert body["is_staff"] is False and body["is_superuser"] is False
    assert body["departments"] == [
        {"slug": "production", "name": "Production", "role": "maintainer"},
        {"slug": "quality", "name": "Quality", "role": "viewer"},
    ]
    assert body["token"]["prefix"] == token.prefix
    assert body["token"]["scopes"] == ["read"]


def test_me_over_a_session_has_no_token_and_shows_staff_flags(staff):
    client = APIClient()
    client.force_login(staff)
    body = client.get("/api/v1/me").json()
    assert body["token"] is None
    assert body["is_staff"] is True and body["is_superuser"] is True


def test_outsider_me_shows_only_their_own_department(outsider, production):
    body = bearer(outsider).get("/api/v1/me").json()
    assert [d["slug"] for d in body["departments"]] == ["quality"]


# --- departments -----------------------------------------------------------------------------


def test_department_list_shows_my_departments_with_quotas_members_and_role(people):
    body = bearer(people["owner"]).get("/api/v1/departments/").json()
    assert body["count"] == 1
    (department,) = body["results"]
    assert department["slug"] == "production"
    assert department["member_count"] == 4
    assert department["my_role"] == "maintainer"
    assert department["max_concurrent_jobs"] == 4
    assert {"gpu_minutes_per_month", "storage_bytes_quota", "description"} <= set(department)


def test_outsider_does_not_see_other_departments_and_gets_404(people):
    client = bearer(people["outsider"])
    assert [d["slug"] for d in client.get("/api/v1/departments/").json()["results"]] == ["quality"]
    assert_error(client.get("/api/v1/departments/production/"), 404, "not_found")
    before = counts()
    assert_error(client.patch("/api/v1/departments/production/", {"name": "Mine"}, format="json"), 404)
    assert counts() == before
    assert Department.objects.get(slug="production").name == "Production"


def test_unknown_department_and_out_of_reach_department_answer_alike(people):
    client = bearer(people["outsider"])
    assert client.get("/api/v1/departments/production/").json() == client.get("/api/v1/departments/nowhere/").json()


def test_platform_admin_creates_a_department_and_its_first_admin(staff, member):
    client = bearer(staff)
    response = client.post(
        "/api/v1/departments/",
        {"slug": "maintenance", "name": "Maintenance", "max_concurrent_jobs": 2, "admin": "mia-member"},
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.json()["member_count"] == 1
    assert response.json()["max_concurrent_jobs"] == 2
    department = Department.objects.get(slug="maintenance")
    assert Membership.objects.get(department=department).user == member
    assert last_event("department.create").object_id == str(department.pk)


def test_department_slug_taken_is_400_naming_slug_and_changes_nothing(staff, production):
    client = bearer(staff)
    before = counts()
    body = assert_error(
        client.post("/api/v1/departments/", {"slug": "production", "name": "Production 2"}, format="json"), 400, "slug_taken"
    )
    assert body["detail"] == "The slug 'production' is already taken."
    assert body["fields"] == {"slug": ["'production' is already taken."]}
    assert counts() == before


def test_department_create_unknown_admin_is_400_naming_admin(staff):
    client = bearer(staff)
    before = counts()
    body = assert_error(client.post("/api/v1/departments/", {"slug": "x", "name": "X", "admin": "nobody"}, format="json"), 400)
    assert body["fields"] == {"admin": ["No user named 'nobody'."]}
    assert counts() == before


def test_department_admin_who_is_not_platform_admin_cannot_create_departments(admin):
    client = bearer(admin)
    before = counts()
    body = assert_error(client.post("/api/v1/departments/", {"slug": "new", "name": "New"}, format="json"), 403, "forbidden")
    assert "platform administrators" in body["detail"]
    assert counts() == before


def test_maintainer_renames_the_department_and_it_is_audited(owner):
    response = bearer(owner).patch("/api/v1/departments/production/", {"name": "Production Line 1"}, format="json")
    assert response.status_code == 200, response.data
    assert response.json()["name"] == "Production Line 1"
    assert response.json()["member_count"] == 1
    assert last_event("department.update").changes == {"name": ["Production", "Production Line 1"]}


def test_maintainer_cannot_change_quotas(owner):
    client = bearer(owner)
    before = counts()
    body = assert_error(client.patch("/api/v1/departments/production/", {"max_concurrent_jobs": 50}, format="json"), 403)
    assert "administer" in body["detail"]
    assert Department.objects.get(slug="production").max_concurrent_jobs == 4
    assert counts() == before


def test_department_admin_changes_quotas(admin):
    response = bearer(admin).patch(
        "/api/v1/departments/production/", {"max_concurrent_jobs": 8, "gpu_minutes_per_month": 0}, format="json"
    )
    assert response.status_code == 200, response.data
    department = Department.objects.get(slug="production")
    assert (department.max_concurrent_jobs, department.gpu_minutes_per_month) == (8, 0)
    assert last_event("department.update").changes["max_concurrent_jobs"] == [4, 8]


def test_department_patch_refuses_the_slug_and_bad_quotas(admin):
    client = bearer(admin)
    before = counts()
    body = assert_error(client.patch("/api/v1/departments/production/", {"slug": "prod"}, format="json"), 400)
    assert "slug" in body["fields"]
    body = assert_error(client.patch("/api/v1/departments/production/", {"max_concurrent_jobs": 0}, format="json"), 400)
    assert "max_concurrent_jobs" in body["fields"]
    assert counts() == before
    assert Department.objects.filter(slug="production", max_concurrent_jobs=4).exists()


def test_department_list_query_count_does_not_grow_with_rows(db, django_assert_num_queries):
    user = UserFactory(username="many")
    for n in range(3):
        MembershipFactory(user=user, department=DepartmentFactory(slug=f"d{n}"), role="viewer")
    client = bearer(user)
    client.get("/api/v1/departments/")  # the first use of a token also records last_used_at
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/departments/").json()["count"] == 3
    for n in range(3, 30):
        department = DepartmentFactory(slug=f"d{n}")
        MembershipFactory(user=user, department=department, role="viewer")
        MembershipFactory(department=department)
    with django_assert_num_queries(len(few)):
        assert client.get("/api/v1/departments/").json()["count"] == 30
    assert len(few) <= 5


# --- memberships -----------------------------------------------------------------------------


def test_viewer_lists_members_with_roles(people):
    body = bearer(people["viewer"]).get("/api/v1/departments/production/memberships/").json()
    assert {m["user"]: m["role"] for m in body["results"]} == {
        "alice-admin": "admin",
        "oscar-owner": "maintainer",
        "mia-member": "member",
        "victor-viewer": "viewer",
    }


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("get", "/api/v1/departments/production/memberships/", None),
        ("get", "/api/v1/departments/production/memberships/mia-member/", None),
        ("post", "/api/v1/departments/production/memberships/", {"user": "olga-outsider", "role": "admin"}),
        ("patch", "/api/v1/departments/production/memberships/mia-member/", {"role": "viewer"}),
        ("delete", "/api/v1/departments/production/memberships/mia-member/", None),
    ],
)
def test_outsider_gets_404_for_memberships_of_other_departments(method, url, data, people):
    client = bearer(people["outsider"])
    before = counts()
    assert_error(getattr(client, method)(url, data, format="json"), 404, "not_found")
    assert counts() == before
    assert Membership.objects.get(user=people["member"]).role == "member"


def test_maintainer_adds_a_member_and_it_is_audited(people):
    newcomer = UserFactory(username="nina.new@plant1")
    client = bearer(people["owner"])
    response = client.post(
        "/api/v1/departments/production/memberships/", {"user": "nina.new@plant1", "role": "member"}, format="json"
    )
    assert response.status_code == 201, response.data
    assert response.json()["user"] == "nina.new@plant1" and response.json()["role"] == "member"
    assert Membership.objects.get(user=newcomer).department.slug == "production"
    assert last_event("membership.add").changes == {"user": "nina.new@plant1", "role": "member"}
    # Members are addressed by username, dots and @ included.
    response = client.get("/api/v1/departments/production/memberships/nina.new@plant1/")
    assert response.status_code == 200 and response.json()["role"] == "member"


def test_member_cannot_add_people(people):
    UserFactory(username="nina-new")
    client = bearer(people["member"])
    before = counts()
    body = assert_error(
        client.post("/api/v1/departments/production/memberships/", {"user": "nina-new"}, format="json"),
        403,
        "forbidden",
    )
    assert "manage" in body["detail"]
    assert counts() == before


def test_maintainer_cannot_grant_admin(people):
    UserFactory(username="nina-new")
    client = bearer(people["owner"])
    before = counts()
    body = assert_error(
        client.post("/api/v1/departments/production/memberships/", {"user": "nina-new", "role": "admin"}, format="json"),
        403,
    )
    assert "admin" in body["detail"]
    assert counts() == before


def test_adding_an_unknown_user_or_role_is_400_naming_the_field(people):
    client = bearer(people["owner"])
    before = counts()
    body = assert_error(client.post("/api/v1/departments/production/memberships/", {"user": "ghost"}, format="json"), 400)
    assert body["fields"] == {"user": ["No user named 'ghost'."]}
    body = assert_error(
        client.post("/api/v1/departments/production/memberships/", {"user": "olga-outsider", "role": "boss"}, format="json"),
        400,
    )
    assert "role" in body["fields"]
    body = assert_error(client.post("/api/v1/departments/production/memberships/", {"user": "mia-member"}, format="json"), 400)
    assert body["error"] == "already_member"
    assert counts() == before


def test_admin_changes_a_role_and_it_is_audited(people):
    response = bearer(people["admin"]).patch(
        "/api/v1/departments/production/memberships/mia-member/", {"role": "maintainer"}, format="json"
    )
    assert response.status_code == 200, response.data
    assert response.json()["role"] == "maintainer"
    assert Membership.objects.get(user=people["member"]).role == "maintainer"
    assert last_event("membership.change_role").changes == {"user": "mia-member", "role": ["member", "maintainer"]}


def test_demoting_the_last_admin_is_409_with_the_reason_and_changes_nothing(people):
    client = bearer(people["admin"])
    before = counts()
    body = assert_error(
        client.patch("/api/v1/departments/production/memberships/alice-admin/", {"role": "member"}, format="json"),
        409,
        "last_admin",
    )
    assert "last admin" in body["detail"]
    assert body["fields"] == {"role": ["The last admin cannot be demoted."]}
    assert Membership.objects.get(user=people["admin"]).role == "admin"
    assert counts() == before


def test_removing_the_last_admin_is_409(people):
    client = bearer(people["admin"])
    before = counts()
    assert_error(client.delete("/api/v1/departments/production/memberships/alice-admin/"), 409, "last_admin")
    assert counts() == before


def test_maintainer_removes_a_member_and_it_is_audited(people):
    response = bearer(people["owner"]).delete("/api/v1/departments/production/memberships/victor-viewer/")
    assert response.status_code == 204
    assert not Membership.objects.filter(user=people["viewer"]).exists()
    assert last_event("membership.remove").changes == {"user": "victor-viewer", "role": "viewer"}


def test_viewer_cannot_change_roles(people):
    client = bearer(people["viewer"])
    before = counts()
    assert_error(
        client.patch("/api/v1/departments/production/memberships/mia-member/", {"role": "viewer"}, format="json"),
        403,
    )
    assert counts() == before


def test_membership_list_query_count_does_not_grow_with_rows(people, production, django_assert_num_queries):
    client = bearer(people["viewer"])
    client.get("/api/v1/departments/production/memberships/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/departments/production/memberships/").json()["count"] == 4
    for _ in range(26):
        MembershipFactory(department=production)
    with django_assert_num_queries(len(few)):
        assert client.get("/api/v1/departments/production/memberships/").json()["count"] == 30


# --- jobs ------------------------------------------------------------------------------------


def test_member_submits_a_job_and_it_is_audited(member, production):
    response = bearer(member).post(
        "/api/v1/jobs/",
        {"kind": "tests.sleep", "params": {"steps": 2}, "priority": 7, "department": "production"},
        format="json",
    )
    assert response.status_code == 201, response.data
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert (job.kind, job.priority, job.department, job.requested_by) == ("tests.sleep", 7, production, member)
    assert body["status"] == "queued"
    assert body["params"] == {"steps": 2, "step_seconds": 0.1, "marker": ""}
    assert body["department"] == "production" and body["requested_by"] == "mia-member"
    assert last_event("job.submit").object_id == str(job.pk)


def test_unknown_job_kind_is_400_naming_kind_and_changes_nothing(member, production):
    client = bearer(member)
    before = counts()
    body = assert_error(client.post("/api/v1/jobs/", {"kind": "tests.nope", "department": "production"}, format="json"), 400)
    assert body["fields"] == {"kind": ["Unknown job kind 'tests.nope'."]}
    assert "Unknown job kind" in body["detail"]
    assert counts() == before


def test_job_params_failing_validation_are_400_naming_the_param(member, production):
    client = bearer(member)
    before = counts()
    body = assert_error(
        client.post("/api/v1/jobs/", {"kind": "tests.sleep", "params": {"steps": 0}, "department": "production"}, format="json"),
        400,
    )
    assert list(body["fields"]) == ["params.steps"]
    assert "greater than or equal to 1" in body["fields"]["params.steps"][0]
    assert "params.steps" in body["detail"]
    body = assert_error(
        client.post("/api/v1/jobs/", {"kind": "tests.sleep", "params": [1], "department": "production"}, format="json"),
        400,
    )
    assert "params" in body["fields"]
    assert counts() == before


@pytest.mark.parametrize("priority", [0, 11, "high"])
def test_priority_out_of_range_is_400_naming_priority(member, production, priority):
    client = bearer(member)
    before = counts()
    body = assert_error(
        client.post("/api/v1/jobs/", {"kind": "tests.noop", "priority": priority, "department": "production"}, format="json"),
        400,
    )
    assert list(body["fields"]) == ["priority"]
    assert counts() == before


def test_platform_only_kind_cannot_be_started_through_the_api(member, production):
    client = bearer(member)
    before = counts()
    body = assert_error(client.post("/api/v1/jobs/", {"kind": "tests.broken", "department": "production"}, format="json"), 400)
    assert body["fields"] == {"kind": ["'tests.broken' cannot be started directly."]}
    assert counts() == before


def test_viewer_cannot_start_jobs(viewer, production):
    client = bearer(viewer)
    before = counts()
    body = assert_error(client.post("/api/v1/jobs/", {"kind": "tests.noop", "department": "production"}, format="json"), 403)
    assert "members and above" in body["detail"]
    assert counts() == before


def test_outsider_gets_404_starting_a_job_in_another_department(outsider, production):
    client = bearer(outsider)
    before = counts()
    body = assert_error(client.post("/api/v1/jobs/", {"kind": "tests.noop", "department": "production"}, format="json"), 404)
    assert body["fields"] == {"department": ["No department 'production' that you belong to."]}
    assert counts() == before


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("post", "cancel/"), ("post", "requeue/"), ("get", "log/")])
def test_outsider_gets_404_for_another_departments_job(method, suffix, outsider, production_job):
    client = bearer(outsider)
    before = counts()
    assert_error(getattr(client, method)(f"/api/v1/jobs/{production_job.pk}/{suffix}"), 404, "not_found")
    assert counts() == before
    production_job.refresh_from_db()
    assert production_job.status == JobStatus.QUEUED


def test_outsider_does_not_see_other_departments_jobs_in_the_list(outsider, quality, production_job):
    own = job_submit(actor=outsider, department=quality, kind="tests.noop")
    ids = [j["id"] for j in bearer(outsider).get("/api/v1/jobs/").json()["results"]]
    assert ids == [str(own.pk)]


def test_platform_jobs_are_listed_for_staff_only(member, staff, production):
    platform = platform_job_submit(kind="tests.noop")
    assert str(platform.pk) not in [j["id"] for j in bearer(member).get("/api/v1/jobs/").json()["results"]]
    assert_error(bearer(member).get(f"/api/v1/jobs/{platform.pk}/"), 404)
    staff_jobs = {j["id"]: j for j in bearer(staff).get("/api/v1/jobs/").json()["results"]}
    assert staff_jobs[str(platform.pk)]["department"] is None


def test_job_list_filters_by_status_kind_department_and_mine(member, owner, outsider, staff, production, quality):
    sleep = job_submit(actor=member, department=production, kind="tests.sleep")
    noop = job_submit(actor=owner, department=production, kind="tests.noop")
    other = job_submit(actor=outsider, department=quality, kind="tests.noop")
    job_cancel(actor=owner, job=noop)
    member_client, staff_client = bearer(member), bearer(staff)

    def ids(client, query):
        return {j["id"] for j in client.get(f"/api/v1/jobs/?{query}").json()["results"]}

    assert ids(member_client, "status=cancelled") == {str(noop.pk)}
    assert ids(member_client, "status=queued&status=cancelled") == {str(sleep.pk), str(noop.pk)}
    assert ids(member_client, "kind=tests.sleep") == {str(sleep.pk)}
    assert ids(member_client, "mine=true") == {str(sleep.pk)}
    assert ids(staff_client, "department=quality") == {str(other.pk)}
    # A filter cannot widen what the policy lets the member see.
    assert ids(member_client, "department=quality") == set()
    body = assert_error(member_client.get("/api/v1/jobs/?status=exploded"), 400)
    assert "status" in body["fields"]


def test_job_list_is_paginated(member, production):
    for _ in range(5):
        job_submit(actor=member, department=production, kind="tests.noop")
    client = bearer(member)
    first = client.get("/api/v1/jobs/?page_size=2").json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"] and first["previous"] is None
    last = client.get("/api/v1/jobs/?page_size=2&page=3").json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = {j["id"] for page in (1, 2, 3) for j in client.get(f"/api/v1/jobs/?page_size=2&page={page}").json()["results"]}
    assert len(seen) == 5
    assert_error(client.get("/api/v1/jobs/?page_size=2&page=9"), 404)


def test_job_list_query_count_does_not_grow_with_rows(member, owner, production, django_assert_num_queries):
    client = bearer(member)
    for n in range(3):
        job_submit(actor=member if n % 2 else owner, department=production, kind="tests.noop")
    client.get("/api/v1/jobs/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/jobs/").json()["count"] == 3
    for n in range(27):
        job_submit(actor=member if n % 2 else owner, department=production, kind="tests.noop")
    with django_assert_num_queries(len(few)):
        assert client.get("/api/v1/jobs/").json()["count"] == 30
    assert len(few) <= 6


def test_job_detail_shows_timings_progress_and_error_but_traceback_only_to_staff(member, staff, production_job):
    Job.objects.filter(pk=production_job.pk).update(
        status=JobStatus.FAILED,
        progress=40,
        progress_message="step 2",
        started_at=timezone.now() - timedelta(seconds=3),
        finished_at=timezone.now(),
        error_message="the handler is broken",
        error_traceback="Traceback (most recent call last): ...",
    )
    body = bearer(member).get(f"/api/v1/jobs/{production_job.pk}/").json()
    assert body["status"] == "failed" and body["progress"] == 40 and body["progress_message"] == "step 2"
    assert body["error_message"] == "the handler is broken"
    assert body["duration_seconds"] == pytest.approx(3, abs=0.5)
    assert {"queued_at", "started_at", "finished_at", "wait_seconds", "wait_reason", "result", "params"} <= set(body)
    assert body["error_traceback"] is None
    assert bearer(staff).get(f"/api/v1/jobs/{production_job.pk}/").json()["error_traceback"].startswith("Traceback")


def test_requester_cancels_a_queued_job_and_it_is_audited(member, production_job):
    response = bearer(member).post(f"/api/v1/jobs/{production_job.pk}/cancel/")
    assert response.status_code == 200, response.data
    assert response.json()["status"] == "cancelled"
    production_job.refresh_from_db()
    assert production_job.status == JobStatus.CANCELLED
    assert last_event("job.cancel").object_id == str(production_job.pk)


def test_cancelling_a_finished_job_is_409_with_the_reason_and_changes_nothing(member, production_job):
    job_cancel(actor=member, job=production_job)
    client = bearer(member)
    before = counts()
    body = assert_error(client.post(f"/api/v1/jobs/{production_job.pk}/cancel/"), 409, "job_finished")
    assert body["detail"] == "The job has already ended (Cancelled); there is nothing to cancel."
    assert counts() == before


def test_member_cannot_cancel_someone_elses_job(owner, member, production):
    job = job_submit(actor=owner, department=production, kind="tests.noop")
    client = bearer(member)
    before = counts()
    body = assert_error(client.post(f"/api/v1/jobs/{job.pk}/cancel/"), 403, "forbidden")
    assert "who started the job or a maintainer" in body["detail"]
    assert counts() == before
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_requeue_runs_a_cancelled_job_again_and_refuses_a_queued_one(member, production_job):
    client = bearer(member)
    before = counts()
    body = assert_error(client.post(f"/api/v1/jobs/{production_job.pk}/requeue/"), 409, "job_not_finished")
    assert "queued" in body["detail"]
    assert counts() == before
    job_cancel(actor=member, job=production_job)
    response = client.post(f"/api/v1/jobs/{production_job.pk}/requeue/")
    assert response.status_code == 200, response.data
    assert response.json()["status"] == "queued"
    assert last_event("job.requeue").changes == {"status": ["cancelled", "queued"]}


def test_job_log_is_paginated_and_tails_after_a_line(member, production_job):
    job_cancel(actor=member, job=production_job)
    client = bearer(member)
    lines = client.get(f"/api/v1/jobs/{production_job.pk}/log/").json()
    assert lines["count"] == 2
    first, second = lines["results"]
    assert first["message"].startswith("Queued by mia-member") and second["level"] == "warning"
    tail = client.get(f"/api/v1/jobs/{production_job.pk}/log/?after={first['id']}").json()
    assert [line["id"] for line in tail["results"]] == [second["id"]]
    assert client.get(f"/api/v1/jobs/{production_job.pk}/log/?page_size=1").json()["next"]
    body = assert_error(client.get(f"/api/v1/jobs/{production_job.pk}/log/?after=last"), 400)
    assert "after" in body["fields"]


def test_job_log_query_count_does_not_grow_with_rows(member, production_job, django_assert_num_queries):
    from lepton.jobs.runner import JobContext

    client = bearer(member)
    context = JobContext(production_job, attempt=1, time_limit=60)
    for n in range(2):
        context.log(f"line {n}")
    url = f"/api/v1/jobs/{production_job.pk}/log/"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).json()["count"] == 3
    for n in range(27):
        context.log(f"more {n}")
    with django_assert_num_queries(len(few)):
        assert client.get(url).json()["count"] == 30


@pytest.mark.slow
def test_job_started_through_the_api_runs_on_a_real_worker(member, production, celery_worker, dispatcher):
    client = bearer(member)
    response = client.post(
        "/api/v1/jobs/",
        {"kind": "tests.sleep", "params": {"steps": 3, "step_seconds": 0.05}, "department": "production"},
        format="json",
    )
    assert response.status_code == 201, response.data
    url = f"/api/v1/jobs/{response.json()['id']}/"
    seen = {}

    def finished():
        seen.update(client.get(url).json())
        return seen["status"] in ("succeeded", "failed", "cancelled")

    wait_for(finished, timeout=30, what="the API to report the job finished")
    assert seen["status"] == "succeeded", seen["error_message"]
    assert seen["progress"] == 100
    assert seen["result"] == {"steps": 3}
    assert seen["started_at"] and seen["finished_at"] and seen["wait_seconds"] is not None
    messages = [line["message"] for line in client.get(url + "log/").json()["results"]]
    assert messages[0].startswith("Queued by mia-member")
    assert any(m.startswith("Started on") for m in messages) and messages[-1] == "Succeeded."


# --- audit -----------------------------------------------------------------------------------


def test_audit_lists_events_of_my_departments_only(member, outsider, production, quality):
    job_submit(actor=member, department=production, kind="tests.noop")
    job_submit(actor=outsider, department=quality, kind="tests.noop")
    events = bearer(member).get("/api/v1/audit/?action=job.").json()["results"]
    assert [(e["action"], e["department"], e["actor"]) for e in events] == [("job.submit", "production", "mia-member")]
    outsider_events = bearer(outsider).get("/api/v1/audit/").json()["results"]
    assert outsider_events and all(e["department"] == "quality" for e in outsider_events)


def test_audit_records_where_an_api_change_came_from(member, production):
    client = bearer(member)
    client.post(
        "/api/v1/jobs/", {"kind": "tests.noop", "department": "production"}, format="json", HTTP_USER_AGENT="mes-sync/1.0"
    )
    (event,) = client.get("/api/v1/audit/?action=job.submit").json()["results"]
    assert event["user_agent"] == "mes-sync/1.0"
    assert event["ip"] == "127.0.0.1"


def test_audit_list_query_count_does_not_grow_with_rows(member, production, django_assert_num_queries):
    client = bearer(member)
    for _ in range(3):
        job_submit(actor=member, department=production, kind="tests.noop")
    client.get("/api/v1/audit/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/audit/?action=job.submit").json()["count"] == 3
    for _ in range(27):
        job_submit(actor=member, department=production, kind="tests.noop")
    with django_assert_num_queries(len(few)):
        assert client.get("/api/v1/audit/?action=job.submit").json()["count"] == 30


# --- schema and docs -------------------------------------------------------------------------


def test_schema_is_valid_openapi_3_covering_the_core_endpoints(member):
    response = bearer(member, scopes=["read"]).get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/me", "/api/v1/jobs/{id}/cancel/", "/api/v1/departments/{department_slug}/memberships/{username}/"):
        assert path in schema["paths"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_schema_generates_without_warnings(tmp_path):
    # Guards every endpoint mounted under /api/: an unannotated view fails here, not in a client.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/jobs/{id}/log/" in yaml.safe_load((tmp_path / "schema.yml").read_text())["paths"]


def test_api_docs_render_from_vendored_assets_without_a_cdn(member):
    client = APIClient()
    client.force_login(member)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode().lower()
    assert "swagger-ui-bundle.js" in html
    assert "drf_spectacular_sidecar" in html
    for host in ("cdn", "unpkg", "jsdelivr"):
        assert host not in html
    # The start-up script comes from the page's own URL (no inline script, for the CSP) and names the schema.
    script = client.get("/api/docs/?script").content.decode()
    assert "/api/v1/schema/" in script
