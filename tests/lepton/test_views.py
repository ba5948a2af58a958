"""The browser shell: pages, forms, policy on every page, login throttling, tokens, i18n, htmx fragments."""

import hashlib
import uuid

import pytest
from django.urls import reverse

from lepton import services
from lepton.jobs.models import Job, JobStatus
from lepton.jobs.services import job_submit
from lepton.models import ApiToken, AuditEvent, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "password"  # tests.factories.UserFactory


def login(client, user):
    client.force_login(user)
    return client


def queued_job(user, department, **params):
    return job_submit(actor=user, department=department, kind="tests.sleep", params=params or {"steps": 1})


# --- anonymous visitors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_name,args",
    [
        ("home", []),
        ("department_home", ["production"]),
        ("jobs", []),
        ("job_detail", [uuid.uuid4()]),
        ("profile", []),
        ("datalake:index", []),
        ("models_repo:index", []),
        ("scheduling:index", []),
        ("monitoring:index", []),
    ],
)
def test_anonymous_visitor_is_sent_to_login(client, url_name, args):
    url = reverse(url_name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(
    "url_name,args",
    [
        ("department_switch", []),
        ("membership_add", ["production"]),
        ("membership_change_role", ["production", "mia-member"]),
        ("membership_remove", ["production", "mia-member"]),
        ("job_start", []),
        ("job_cancel", [uuid.uuid4()]),
        ("token_create", []),
        ("token_revoke", [uuid.uuid4()]),
    ],
)
def test_anonymous_post_changes_nothing_and_redirects_to_login(client, member, url_name, args):
    events = AuditEvent.objects.count()
    response = client.post(reverse(url_name, args=args), {"role": "admin", "username": "x", "department": "production"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert AuditEvent.objects.count() == events


def test_anonymous_htmx_poll_gets_a_client_redirect_not_a_login_page(client):
    response = client.get(reverse("jobs"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))
    assert b"<form" not in response.content


# --- login, logout, throttling --------------------------------------------------------------


def test_login_with_right_password_opens_the_department_home(client, member):
    response = client.post(reverse("login"), {"username": member.username, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"Production" in response.content
    assert b"mia-member" in response.content


def test_wrong_password_and_unknown_user_get_the_same_generic_message(client, member):
    wrong = client.post(reverse("login"), {"username": member.username, "password": "nope"})
    unknown = client.post(reverse("login"), {"username": "nobody-here", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 200
    assert wrong.context["form"].non_field_errors() == unknown.context["form"].non_field_errors()
    assert "The username or password is not right." in wrong.content.decode()
    assert "_auth_user_id" not in client.session


def test_after_too_many_failures_even_the_right_password_is_refused(client, member, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600
    for _ in range(3):
        client.post(reverse("login"), {"username": member.username, "password": "wrong"})
    response = client.post(reverse("login"), {"username": member.username, "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed attempts; try again in 10 minutes." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_from_one_ip_throttle_other_usernames_too(client, member, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for name in ("a", "b", "c"):
        client.post(reverse("login"), {"username": name, "password": "wrong"})
    response = client.post(reverse("login"), {"username": member.username, "password": PASSWORD})
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_below_the_limit_still_allow_the_right_password(client, member, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post(reverse("login"), {"username": member.username, "password": "wrong"})
    response = client.post(reverse("login"), {"username": member.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(member.pk)


def test_logout_needs_post_and_ends_the_session(client, member):
    login(client, member)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


# --- department home and the switcher -------------------------------------------------------


def test_member_home_shows_members_activity_and_active_jobs(client, admin, member, production):
    job = queued_job(member, production)
    response = login(client, member).get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "alice-admin" in body and "mia-member" in body
    assert "job.submit" in body  # recent activity from the audit log
    assert f'id="job-{job.pk}"' in body
    assert 'hx-trigger="every 2s"' in body  # the active-jobs table refreshes itself


def test_user_in_no_department_gets_an_empty_state_saying_what_to_do(client, db):
    loner = UserFactory(username="lonely")
    response = login(client, loner).get(reverse("home"))
    assert response.status_code == 200
    assert "You are not in a department yet" in response.content.decode()


def test_outsider_gets_404_for_other_department_home(client, outsider, production):
    response = login(client, outsider).get(reverse("department_home", args=["production"]))
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()  # the friendly page, not Django's


def test_member_sees_own_department_page_by_slug(client, member, production):
    response = login(client, member).get(reverse("department_home", args=["production"]))
    assert response.status_code == 200
    assert "<h1>Production</h1>" in response.content.decode()


def test_department_switcher_changes_the_current_department(client, member, production, quality):
    MembershipFactory(user=member, department=quality, role=Role.VIEWER)
    login(client, member)
    response = client.post(reverse("department_switch"), {"department": "quality", "next": reverse("jobs")})
    assert response.status_code == 302 and response.url == reverse("jobs")
    assert client.session["lepton_department"] == "quality"
    assert "<h1>Quality</h1>" in client.get(reverse("home")).content.decode()


def test_department_switcher_refuses_a_department_the_user_is_not_in(client, member, production, quality):
    login(client, member)
    response = client.post(reverse("department_switch"), {"department": "quality"})
    assert response.status_code == 404
    assert "lepton_department" not in client.session
    assert "<h1>Production</h1>" in client.get(reverse("home")).content.decode()


def test_department_switcher_ignores_an_offsite_next(client, member, production):
    login(client, member)
    response = client.post(reverse("department_switch"), {"department": "production", "next": "https://evil.example/"})
    assert response.url == reverse("home")


# --- members -----------------------------------------------------------------------------------


def test_maintainer_adds_a_member_by_username(client, owner, production):
    newcomer = UserFactory(username="nina-new")
    response = login(client, owner).post(
        reverse("membership_add", args=["production"]), {"username": "nina-new", "role": "member"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer, department=production).role == Role.MEMBER


def test_adding_an_unknown_username_shows_a_form_error_and_adds_nobody(client, owner, production):
    before = Membership.objects.count()
    response = login(client, owner).post(reverse("membership_add", args=["production"]), {"username": "ghost", "role": "member"})
    assert response.status_code == 400
    assert response.context["add_form"].errors["username"] == ["No user named 'ghost'."]
    assert Membership.objects.count() == before


def test_member_cannot_manage_members(client, member, viewer, production):
    response = login(client, member).post(
        reverse("membership_change_role", args=["production", viewer.username]), {"role": "maintainer"}
    )
    assert response.status_code == 403
    assert "You may not do that" in response.content.decode()  # the friendly 403 page
    assert Membership.objects.get(user=viewer, department=production).role == Role.VIEWER
    assert "membership_add" not in login(client, member).get(reverse("home")).content.decode()


def test_maintainer_cannot_grant_admin(client, owner, viewer, production):
    response = login(client, owner).post(
        reverse("membership_change_role", args=["production", viewer.username]), {"role": "admin"}
    )
    assert response.status_code == 403
    assert Membership.objects.get(user=viewer, department=production).role == Role.VIEWER


def test_maintainer_changes_a_role(client, owner, viewer, production):
    response = login(client, owner).post(
        reverse("membership_change_role", args=["production", viewer.username]), {"role": "member"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=viewer, department=production).role == Role.MEMBER


def test_demoting_the_last_admin_is_refused_with_the_reason(client, admin, production):
    response = login(client, admin).post(
        reverse("membership_change_role", args=["production", admin.username]), {"role": "member"}
    )
    assert response.status_code == 409
    assert "is the last admin of Production" in response.content.decode()
    assert Membership.objects.get(user=admin, department=production).role == Role.ADMIN


def test_maintainer_removes_a_member(client, owner, viewer, production):
    response = login(client, owner).post(reverse("membership_remove", args=["production", viewer.username]))
    assert response.status_code == 302
    assert not Membership.objects.filter(user=viewer, department=production).exists()


def test_outsider_gets_404_when_managing_another_departments_members(client, outsider, viewer, production):
    response = login(client, outsider).post(reverse("membership_remove", args=["production", viewer.username]))
    assert response.status_code == 404
    assert Membership.objects.filter(user=viewer, department=production).exists()


# --- jobs ---------------------------------------------------------------------------------------


def test_member_sees_the_departments_jobs(client, member, owner, production):
    job = queued_job(owner, production)
    response = login(client, member).get(reverse("jobs"))
    assert response.status_code == 200
    assert job in response.context["jobs"]
    assert f'id="job-{job.pk}"' in response.content.decode()


def test_outsider_does_not_see_other_departments_jobs_in_the_list(client, outsider, member, production):
    job = queued_job(member, production)
    response = login(client, outsider).get(reverse("jobs"))
    assert job not in response.context["jobs"]
    assert str(job.pk) not in response.content.decode()


def test_jobs_are_filtered_by_status_and_mine(client, member, owner, production):
    mine = queued_job(member, production)
    theirs = queued_job(owner, production)
    Job.objects.filter(pk=theirs.pk).update(status=JobStatus.SUCCEEDED)  # finished, as the runner leaves it
    login(client, member)
    assert list(client.get(reverse("jobs"), {"status": "succeeded"}).context["jobs"]) == [Job.objects.get(pk=theirs.pk)]
    assert list(client.get(reverse("jobs"), {"mine": "true"}).context["jobs"]) == [mine]


def test_htmx_request_returns_the_rows_fragment_only(client, member, production):
    job = queued_job(member, production)
    response = login(client, member).get(reverse("jobs"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<tbody" in body and f'id="job-{job.pk}"' in body
    assert "<html" not in body and "Start a job" not in body
    assert 'hx-trigger="every 2s"' in body  # still unfinished: keep polling


def test_rows_fragment_stops_polling_when_every_job_is_finished(client, member, production):
    job = queued_job(member, production)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, progress=100)
    response = login(client, member).get(reverse("jobs"), headers={"HX-Request": "true"})
    assert "hx-trigger" not in response.content.decode()
    assert 'data-polling="false"' in response.content.decode()


def test_the_fair_share_panel_counts_slots_waiting_jobs_and_gpu_minutes_per_visible_department(
    client, member, owner, outsider, production, quality, django_assert_num_queries
):
    from django.utils import timezone

    production.max_concurrent_jobs = 2
    production.save()
    released, waiting, also_waiting = (queued_job(owner, production) for _ in range(3))
    Job.objects.filter(pk=released.pk).update(released_at=timezone.now(), queue="cpu")
    gpu = queued_job(owner, production)
    now = timezone.now()
    Job.objects.filter(pk=gpu.pk).update(
        status=JobStatus.SUCCEEDED, queue="gpu", started_at=now - timezone.timedelta(minutes=3), finished_at=now
    )
    queued_job(outsider, quality)  # Quality's: not the member's business

    rows = login(client, member).get(reverse("jobs")).context["fair_share"]
    assert [(r["department"], r["active"], r["limit"], r["waiting"], r["gpu_used"]) for r in rows] == [(production, 1, 2, 2, 3.0)]
    # Session, user, roles, the current department, then the panel's three (departments, job counts, GPU
    # minutes) and the unread count: the same for any number of departments and jobs.
    with django_assert_num_queries(8):
        response = client.get(reverse("jobs"), {"panel": "fair-share"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="fair-share"' in body
    assert 'data-fair-share="production"' in body and 'data-fair-share="quality"' not in body
    assert "1 of 2" in body and "GPU: 3.0 of 600 min this month" in body and 'hx-trigger="every 3s"' in body

    Job.objects.filter(status=JobStatus.QUEUED).update(status=JobStatus.SUCCEEDED)  # all done: the panel stops asking
    body = client.get(reverse("jobs"), {"panel": "fair-share"}, headers={"HX-Request": "true"}).content.decode()
    assert "0 of 2" in body and "hx-trigger" not in body and 'data-polling="false"' in body


def test_member_starts_a_selfcheck_from_the_form(client, member, production):
    response = login(client, member).post(
        reverse("job_start"),
        {"department": "production", "kind": "lepton.selfcheck", "priority": 7, "param_steps": 3, "param_pause_seconds": 0},
    )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response.url == f"{reverse('jobs')}?highlight={job.pk}"
    assert (job.kind, job.priority, job.department, job.requested_by) == ("lepton.selfcheck", 7, production, member)
    assert job.params["steps"] == 3 and job.params["pause_seconds"] == 0
    assert job.params["probe_bytes"] == 64 * 1024  # left empty: the kind's default


def test_viewer_cannot_start_a_job_and_sees_why(client, viewer, production):
    response = login(client, viewer).post(
        reverse("job_start"), {"department": "production", "kind": "lepton.selfcheck", "priority": 5}
    )
    assert response.status_code == 400
    assert response.context["start_form"].non_field_errors() == [
        "Your role in this department does not allow starting jobs (members and above may)."
    ]
    assert not Job.objects.exists()


def test_invalid_params_show_a_form_error_on_the_field_and_start_nothing(client, member, production):
    response = login(client, member).post(
        reverse("job_start"), {"department": "production", "kind": "lepton.selfcheck", "priority": 5, "param_steps": 99}
    )
    assert response.status_code == 400
    assert response.context["start_form"].errors["param_steps"]
    assert "param_steps" in response.content.decode()
    assert not Job.objects.exists()


def test_priority_out_of_range_is_a_form_error(client, member, production):
    response = login(client, member).post(
        reverse("job_start"), {"department": "production", "kind": "lepton.selfcheck", "priority": 11}
    )
    assert response.status_code == 400
    assert response.context["start_form"].errors["priority"]
    assert not Job.objects.exists()


def test_kind_change_returns_that_kinds_parameter_fields(client, member, production):
    response = login(client, member).get(reverse("job_start"), {"kind": "tests.sleep"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'name="param_step_seconds"' in body and 'name="param_probe_bytes"' not in body


def test_outsider_gets_404_for_other_department_job(client, outsider, member, production):
    job = queued_job(member, production)
    response = login(client, outsider).get(reverse("job_detail", args=[job.pk]))
    assert response.status_code == 404


def test_outsider_gets_404_when_cancelling_other_department_job(client, outsider, member, production):
    job = queued_job(member, production)
    response = login(client, outsider).post(reverse("job_cancel", args=[job.pk]))
    assert response.status_code == 404
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_job_detail_shows_status_params_and_log(client, member, production):
    job = queued_job(member, production, steps=2)
    response = login(client, member).get(reverse("job_detail", args=[job.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Queued by mia-member with priority 5." in body
    assert "&quot;steps&quot;: 2" in body
    assert 'hx-trigger="every 2s"' in body


def test_job_detail_htmx_returns_the_live_fragment(client, member, production):
    job = queued_job(member, production)
    response = login(client, member).get(reverse("job_detail", args=[job.pk]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="job-live"' in body and "<html" not in body


def test_traceback_is_shown_to_staff_only(client, member, staff, production):
    job = queued_job(member, production)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error_message="It broke.", error_traceback="Traceback: secret-internals"
    )
    member_view = login(client, member).get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "It broke." in member_view and "secret-internals" not in member_view
    staff_view = login(client, staff).get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "secret-internals" in staff_view


def test_member_cancels_own_queued_job(client, member, production):
    job = queued_job(member, production)
    response = login(client, member).post(reverse("job_cancel", args=[job.pk]), {"next": reverse("jobs")}, follow=True)
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED
    assert "The job was cancelled." in response.content.decode()


def test_cancel_of_a_finished_job_shows_the_reason_and_changes_nothing(client, member, production):
    job = queued_job(member, production)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, progress=100)
    events = AuditEvent.objects.count()
    response = login(client, member).post(reverse("job_cancel", args=[job.pk]), follow=True)
    assert "The job has already ended (Succeeded); there is nothing to cancel." in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.cancel_requested_at is None
    assert AuditEvent.objects.count() == events


def test_viewer_sees_no_cancel_button_and_cannot_cancel(client, viewer, member, production):
    job = queued_job(member, production)
    login(client, viewer)
    assert reverse("job_cancel", args=[job.pk]) not in client.get(reverse("jobs")).content.decode()
    response = client.post(reverse("job_cancel", args=[job.pk]), follow=True)
    assert "Only the person who started the job or a maintainer may cancel it." in response.content.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


# --- profile and tokens -----------------------------------------------------------------------------


def test_token_secret_is_shown_once_and_only_its_hash_is_stored(client, member):
    login(client, member)
    response = client.post(reverse("token_create"), {"name": "MES export", "scopes": ["read", "predict"]})
    assert response.status_code == 200
    secret = response.context["new_secret"]
    assert secret in response.content.decode()
    token = ApiToken.objects.get(user=member)
    assert token.scopes == ["read", "predict"]
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.prefix, token.token_hash, token.name}
    again = client.get(reverse("profile")).content.decode()
    assert secret not in again
    assert token.prefix in again
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_token_without_scopes_is_refused_with_a_form_error(client, member):
    response = login(client, member).post(reverse("token_create"), {"name": "x"})
    assert response.status_code == 400
    assert response.context["form"].errors["scopes"]
    assert not ApiToken.objects.exists()


def test_token_expiring_in_the_past_is_refused(client, member):
    response = login(client, member).post(
        reverse("token_create"), {"name": "old", "scopes": ["read"], "expires_on": "2001-01-01"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["expires_on"] == ["Must be in the future."]
    assert not ApiToken.objects.exists()


def test_member_revokes_own_token(client, member):
    token, _secret = services.token_create(actor=member, name="ci", scopes=["read"])
    response = login(client, member).post(reverse("token_revoke", args=[token.pk]), follow=True)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "was revoked" in response.content.decode()


def test_outsider_gets_404_revoking_someone_elses_token(client, member, outsider):
    token, _secret = services.token_create(actor=member, name="ci", scopes=["read"])
    response = login(client, outsider).post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    assert "ci" not in [t.name for t in login(client, outsider).get(reverse("profile")).context["tokens"]]


# --- language, part pages, errors ------------------------------------------------------------------


def test_language_switch_renders_the_shell_in_chinese(client, member, production):
    login(client, member)
    assert "Jobs" in client.get(reverse("home")).content.decode()
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("home")})
    assert response.status_code == 302
    body = client.get(reverse("home")).content.decode()
    assert '<html lang="zh-hans">' in body
    assert "作业" in body and "成员和角色" in body
    client.post(reverse("set_language"), {"language": "en", "next": reverse("home")})
    assert "Members and roles" in client.get(reverse("home")).content.decode()


def test_login_page_can_be_shown_in_chinese(client, db):
    client.post(reverse("set_language"), {"language": "zh-hans"})
    assert "登录" in client.get(reverse("login")).content.decode()


@pytest.mark.parametrize("url_name", ["models_repo:index", "scheduling:index", "monitoring:index"])
def test_part_pages_show_an_honest_empty_state_for_the_department(client, member, url_name):
    response = login(client, member).get(reverse(url_name))
    assert response.status_code == 200
    assert "in Production yet" in response.content.decode() or "for Production yet" in response.content.decode()


def test_error_500_page_renders_without_a_request(client):
    from django.template.loader import render_to_string

    html = render_to_string("errors/500.html")
    assert "Something went wrong" in html and "<style>" in html


def test_unknown_url_shows_the_friendly_404(client, member):
    response = login(client, member).get("/no-such-page/")
    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
