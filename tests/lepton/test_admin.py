"""The Django admin: staff can look at everything, writes go through the services."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse

from lepton import services
from lepton.jobs.models import Job, JobLogLine, WorkerHeartbeat
from lepton.jobs.services import job_submit
from lepton.models import ApiToken, AuditEvent, Department, ExternalIdentity, Membership, Share

ADMIN_MODELS = [Department, Membership, Share, ApiToken, AuditEvent, Job, WorkerHeartbeat, ExternalIdentity]


def _changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _change(obj):
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def one_of_each(admin, member, production, quality, staff):
    """A row in every table the admin shows."""
    job = job_submit(actor=member, department=production, kind="tests.noop")
    services.share_grant(actor=staff, obj=job, department=quality)
    services.token_create(actor=member, name="dashboard", scopes=["read"])
    WorkerHeartbeat.objects.create(hostname="celery@node-7", queues=["cpu"], concurrency=2)
    services.external_identity_link(actor=staff, user=member, issuer="https://sso.example", subject="sub-1")
    return job


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_staff_can_list_and_open_each_model(client, staff, one_of_each, model):
    client.force_login(staff)
    response = client.get(_changelist(model))
    assert response.status_code == 200
    obj = model.objects.first()
    assert obj is not None
    assert client.get(_change(obj)).status_code == 200


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_non_staff_is_sent_to_the_admin_login(client, admin, model):
    client.force_login(admin)  # a department admin, but not platform staff
    response = client.get(_changelist(model))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_is_sent_to_the_admin_login(client, db):
    response = client.get(_changelist(Job))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_cancel_action_cancels_a_queued_job_and_writes_an_audit_event(client, staff, member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    client.force_login(staff)
    response = client.post(_changelist(Job), {"action": "cancel", "_selected_action": [str(job.pk)]}, follow=True)
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert job.cancel_requested_by == staff
    assert AuditEvent.objects.filter(action="job.cancel", actor=staff, object_id=str(job.pk)).exists()
    assert "1 cancelled." in _messages(response)


def test_cancel_action_on_a_finished_job_reports_why_and_changes_nothing(client, staff, member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    client.force_login(staff)
    response = client.post(_changelist(Job), {"action": "cancel", "_selected_action": [str(job.pk)]}, follow=True)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert not AuditEvent.objects.filter(action="job.cancel").exists()
    assert any("already ended (Succeeded)" in m for m in _messages(response))


def test_requeue_action_queues_a_cancelled_job_again(client, staff, member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    client.force_login(staff)
    client.post(_changelist(Job), {"action": "cancel", "_selected_action": [str(job.pk)]})
    response = client.post(_changelist(Job), {"action": "requeue", "_selected_action": [str(job.pk)]}, follow=True)
    job.refresh_from_db()
    assert job.status == "queued"
    assert AuditEvent.objects.filter(action="job.requeue", actor=staff, object_id=str(job.pk)).exists()
    assert "1 requeued." in _messages(response)


def test_job_page_shows_its_log_lines_and_offers_no_edit(client, staff, member, production):
    job = job_submit(actor=member, department=production, kind="tests.noop")
    JobLogLine.objects.create(job=job, message="step two of three reached")
    client.force_login(staff)
    page = client.get(_change(job)).content.decode()
    assert "step two of three reached" in page
    assert 'name="_save"' not in page
    assert client.post(reverse("admin:lepton_job_delete", args=[job.pk]), {"post": "yes"}).status_code == 403
    assert Job.objects.filter(pk=job.pk).exists()


def test_admin_never_shows_the_token_hash(client, staff, member):
    token, secret = services.token_create(actor=member, name="dashboard", scopes=["read"])
    client.force_login(staff)
    listing = client.get(_changelist(ApiToken)).content.decode()
    detail = client.get(_change(token)).content.decode()
    for page in (listing, detail):
        assert token.prefix in page
        assert token.token_hash not in page
        assert secret not in page
    assert "token_hash" not in detail
    # Nor can the hash be used to find the token.
    found = client.get(_changelist(ApiToken), {"q": token.token_hash}).content.decode()
    assert token.prefix not in found


def test_revoke_action_revokes_a_token_through_the_service(client, staff, member):
    token, _secret = services.token_create(actor=member, name="dashboard", scopes=["read"])
    client.force_login(staff)
    client.post(_changelist(ApiToken), {"action": "revoke", "_selected_action": [str(token.pk)]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", actor=staff).exists()


def test_audit_log_cannot_be_added_changed_or_deleted(client, staff, admin, production):
    event = AuditEvent.objects.create(actor_label="someone", action="department.update", department=production)
    client.force_login(staff)
    assert client.get(reverse("admin:lepton_auditevent_add")).status_code == 403
    assert client.post(_change(event), {"action": "tampered"}).status_code == 403
    assert client.post(reverse("admin:lepton_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "department.update"


def test_demoting_the_last_admin_is_refused_with_a_message(client, staff, admin, production):
    membership = Membership.objects.get(user=admin, department=production)
    client.force_login(staff)
    response = client.post(_change(membership), {"role": "member"}, follow=True)
    assert response.status_code == 200
    assert any("last admin" in m for m in _messages(response))
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert not AuditEvent.objects.filter(action="membership.change_role").exists()


def _department_form(department, rows, **fields):
    """The POST of the department change page, with its members inline as (id, user, role, delete)."""
    data = {
        "name": department.name,
        "description": department.description,
        "max_concurrent_jobs": department.max_concurrent_jobs,
        "gpu_minutes_per_month": department.gpu_minutes_per_month,
        "storage_bytes_quota": department.storage_bytes_quota,
        "memberships-TOTAL_FORMS": len(rows),
        "memberships-INITIAL_FORMS": sum(1 for r in rows if r[0]),
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
        **fields,
    }
    for i, (pk, user, role, delete) in enumerate(rows):
        data[f"memberships-{i}-id"] = pk or ""
        data[f"memberships-{i}-department"] = department.pk
        data[f"memberships-{i}-user"] = user.pk
        data[f"memberships-{i}-role"] = role
        if delete:
            data[f"memberships-{i}-DELETE"] = "on"
    return data


def test_demoting_the_last_admin_in_the_department_inline_is_refused_and_nothing_changes(client, staff, admin, production):
    membership = Membership.objects.get(user=admin, department=production)
    client.force_login(staff)
    data = _department_form(production, [(membership.pk, admin, "member", False)], name="Renamed in the same save")
    response = client.post(_change(production), data, follow=True)
    assert any("last admin" in m for m in _messages(response))
    membership.refresh_from_db()
    production.refresh_from_db()
    assert membership.role == "admin"
    assert production.name == "Production"  # the whole save was rolled back
    assert not AuditEvent.objects.filter(action__in=["department.update", "membership.change_role"]).exists()


def test_department_inline_hands_over_admin_in_one_save(client, staff, admin, owner, production):
    """Promote the maintainer and demote the admin together: promotions run first, so it is allowed."""
    admin_row = Membership.objects.get(user=admin, department=production)
    owner_row = Membership.objects.get(user=owner, department=production)
    client.force_login(staff)
    data = _department_form(production, [(admin_row.pk, admin, "member", False), (owner_row.pk, owner, "admin", False)])
    response = client.post(_change(production), data)
    assert response.status_code == 302
    admin_row.refresh_from_db()
    owner_row.refresh_from_db()
    assert (admin_row.role, owner_row.role) == ("member", "admin")
    assert AuditEvent.objects.filter(action="membership.change_role", actor=staff).count() == 2


def test_department_quota_change_goes_through_the_service(client, staff, admin, production):
    client.force_login(staff)
    row = Membership.objects.get(user=admin, department=production)
    data = _department_form(production, [(row.pk, admin, "admin", False)], max_concurrent_jobs=9)
    assert client.post(_change(production), data).status_code == 302
    production.refresh_from_db()
    assert production.max_concurrent_jobs == 9
    event = AuditEvent.objects.get(action="department.update")
    assert event.changes["max_concurrent_jobs"] == [4, 9]


def test_adding_a_department_makes_the_inline_admin_its_first_admin(client, staff, member):
    client.force_login(staff)
    newcomer = get_user_model().objects.create_user("nina-new", password="x")
    data = {
        "slug": "logistics",
        "name": "Logistics",
        "description": "Trucks and docks.",
        "max_concurrent_jobs": 3,
        "gpu_minutes_per_month": 0,
        "storage_bytes_quota": 10**9,
        "memberships-TOTAL_FORMS": 2,
        "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
        "memberships-0-user": newcomer.pk,
        "memberships-0-role": "admin",
        "memberships-1-user": member.pk,
        "memberships-1-role": "viewer",
    }
    response = client.post(reverse("admin:lepton_department_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    department = Department.objects.get(slug="logistics")
    roles = dict(Membership.objects.filter(department=department).values_list("user__username", "role"))
    assert roles == {"nina-new": "admin", member.username: "viewer"}
    assert AuditEvent.objects.filter(action="department.create", actor=staff, object_id=str(department.pk)).exists()
    assert AuditEvent.objects.filter(action="membership.add", department=department).count() == 1


def test_adding_a_department_with_a_taken_slug_shows_the_reason(client, staff, production):
    client.force_login(staff)
    data = {
        "slug": "production",
        "name": "Second production",
        "max_concurrent_jobs": 4,
        "gpu_minutes_per_month": 0,
        "storage_bytes_quota": 0,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        "memberships-MIN_NUM_FORMS": 0,
        "memberships-MAX_NUM_FORMS": 1000,
    }
    response = client.post(reverse("admin:lepton_department_add"), data)
    assert response.status_code == 200  # the form again, with the field's error
    assert "already exists" in response.content.decode() or "already taken" in response.content.decode()
    assert Department.objects.filter(slug="production").count() == 1


def test_removing_a_member_in_the_admin_writes_the_audit_event(client, staff, admin, member, production):
    membership = Membership.objects.get(user=member, department=production)
    client.force_login(staff)
    response = client.post(reverse("admin:lepton_membership_delete", args=[membership.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="membership.remove", actor=staff, department=production).exists()


def test_staff_who_is_not_superuser_may_look_but_not_change(client, admin, production):
    looker = get_user_model().objects.create_user("lou-looker", password="x", is_staff=True)
    client.force_login(looker)
    assert client.get(_changelist(Department)).status_code == 200
    assert client.get(reverse("admin:lepton_department_add")).status_code == 403
    membership = Membership.objects.get(user=admin, department=production)
    assert client.post(_change(membership), {"role": "viewer"}).status_code == 403
    membership.refresh_from_db()
    assert membership.role == "admin"
