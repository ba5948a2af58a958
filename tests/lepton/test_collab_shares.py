"""Sharing a dataset, model or shop problem with another department: service, API, browser panel,
the reminder before expiry, and the bad inputs the issue names (own department, past expiry,
duplicate) — each refused with its message and nothing changed."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from lepton import policy
from lepton.collab import services as collab_services
from lepton.collab.models import Notice
from lepton.errors import Invalid
from lepton.jobs.models import Job
from lepton.models import AuditEvent, Share
from lepton.services import share_grant, share_revoke
from models_repo import services as models_services
from scheduling import services as scheduling_services
from scheduling.engine.generate import generate
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory
from tests.lepton.collab_helpers import api, browser, published_dataset, snapshot


@pytest.fixture
def dataset(member, production):
    return published_dataset(member, production).dataset


@pytest.fixture
def quality_lead(quality):
    user = UserFactory(username="quentin-lead")
    MembershipFactory(user=user, department=quality, role="maintainer")
    return user


# --- service ---------------------------------------------------------------------------------


def test_a_share_gives_the_other_department_access_until_revoked(owner, outsider, quality, dataset):
    assert not policy.can(outsider, "view", dataset)
    share = share_grant(actor=owner, obj=dataset, department=quality, level="view", purpose="root-cause study")
    assert policy.can(outsider, "view", dataset) and not policy.can(outsider, "use", dataset)
    share_revoke(actor=owner, share=share)
    assert not policy.can(outsider, "view", dataset)
    assert list(AuditEvent.objects.filter(object_id=str(dataset.pk)).values_list("action", flat=True)[:2]) == [
        "share.revoke",
        "share.grant",
    ]


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"department": "production"}, "department", "An object is already visible to its own department."),
        ({"expires_at": "past"}, "expires_at", "The expiry must lie in the future."),
        ({"duplicate": True}, "department", "Quality already has access to this (View); revoke that share first to change it."),
    ],
    ids=["own-department", "past-expiry", "duplicate"],
)
def test_bad_shares_are_refused_with_a_message_and_change_nothing(owner, production, quality, dataset, kwargs, field, message):
    share_grant(actor=owner, obj=dataset, department=quality, level="view", purpose="first")
    before = snapshot()
    department = production if kwargs.get("department") == "production" else quality
    expires_at = timezone.now() - timedelta(hours=1) if kwargs.get("expires_at") == "past" else None
    with pytest.raises(Invalid) as refused:
        share_grant(actor=owner, obj=dataset, department=department, level="use", purpose="again", expires_at=expires_at)
    assert refused.value.message == message and field in refused.value.fields
    assert snapshot() == before


def test_an_expired_share_may_be_granted_again(owner, outsider, quality, dataset):
    share = share_grant(actor=owner, obj=dataset, department=quality, expires_at=timezone.now() + timedelta(hours=1))
    Share.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not policy.can(outsider, "view", dataset)
    share_grant(actor=owner, obj=dataset, department=quality, level="use", purpose="renewed")
    assert Share.objects.get().level == "use" and policy.can(outsider, "use", dataset)


# --- the reminder before expiry ----------------------------------------------------------------


def test_both_departments_are_reminded_once_before_the_share_ends(
    owner, member, outsider, quality_lead, quality, dataset, settings, django_capture_on_commit_callbacks
):
    settings.LEPTON_SHARE_REMIND_DAYS = 3
    soon = share_grant(actor=owner, obj=dataset, department=quality, expires_at=timezone.now() + timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert collab_services.shares_remind_due() == 1
        assert collab_services.shares_remind_due() == 0  # sent once
    notified = sorted(Notice.objects.values_list("user__username", flat=True))
    # The owner's maintainers and the receiving department's people; not Production's members.
    assert notified == ["olga-outsider", "oscar-owner", "quentin-lead"]
    assert "ends on" in Notice.objects.first().message and member.username not in notified
    [job] = Job.objects.filter(kind=collab_services.NOTICE_EMAIL_KIND)
    assert mail.outbox == []  # e-mail goes from the job, not from the pass
    assert collab_services.notice_emails_send(job.params["notices"]) == 3
    assert collab_services.notice_emails_send(job.params["notices"]) == 0  # a retried job sends nothing twice
    assert sorted(m.to[0] for m in mail.outbox) == [f"{n}@example.com" for n in notified]
    soon.refresh_from_db()
    assert soon.reminded_at is not None
    assert AuditEvent.objects.filter(action="share.remind").count() == 1


def test_a_share_far_from_its_end_or_without_one_is_not_reminded(owner, quality, dataset, settings):
    settings.LEPTON_SHARE_REMIND_DAYS = 3
    share_grant(actor=owner, obj=dataset, department=quality, expires_at=timezone.now() + timedelta(days=10))
    assert collab_services.shares_remind_due() == 0
    assert collab_services.shares_remind_due(now=timezone.now() + timedelta(days=8)) == 1


def test_the_reminder_pass_is_a_periodic_task(settings):
    assert ("lepton.collab.services.shares_remind_due", 3600) in settings.LEPTON_PERIODIC_TASKS


def test_the_e_mail_job_runs_on_a_real_worker(owner, quality, outsider, celery_worker, dispatcher, settings):
    from tests.conftest import wait_for_job

    notices = collab_services.notify([outsider], "A test notice", "/data/", email=False)
    collab_services._queue_emails([n.pk for n in notices])
    job = Job.objects.get(kind=collab_services.NOTICE_EMAIL_KIND)
    assert wait_for_job(job).status == "succeeded", job.error
    assert job.result == {"sent": 1} and mail.outbox[0].to == ["olga-outsider@example.com"]


# --- API -----------------------------------------------------------------------------------------


def _body(dataset, **extra):
    return {"object_type": "datalake.dataset", "object_id": str(dataset.pk), "department": "quality",
            "level": "view", "purpose": "root-cause study", **extra}  # fmt: skip


def test_api_create_list_and_revoke(owner, outsider, dataset):
    created = api(owner).post("/api/v1/shares/", _body(dataset, expires_at="2999-01-01T00:00:00Z"), format="json")
    assert created.status_code == 201, created.json()
    share = created.json()
    assert (share["department"], share["level"], share["object_type"], share["active"]) == (
        "quality", "view", "datalake.dataset", True,
    )  # fmt: skip
    listed = api(owner).get("/api/v1/shares/", {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}).json()
    assert [s["id"] for s in listed["results"]] == [share["id"]]
    assert api(outsider).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 200
    assert api(owner).post(f"/api/v1/shares/{share['id']}/revoke/").status_code == 204
    assert api(outsider).get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404
    assert AuditEvent.objects.filter(action="share.revoke", actor=owner).exists()


def test_api_lists_only_the_shares_the_caller_may_manage(owner, member, outsider, quality, dataset):
    share_grant(actor=owner, obj=dataset, department=quality)
    assert api(owner).get("/api/v1/shares/").json()["count"] == 1
    assert api(member).get("/api/v1/shares/").json()["count"] == 0  # a member may not manage shares
    assert api(outsider).get("/api/v1/shares/").json()["count"] == 0  # the receiving side manages nothing


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"department": "production"}, "department"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"level": "own"}, "level"),
        ({"department": "nowhere"}, "department"),
        ({"object_type": "lepton.department"}, "object_type"),
    ],
)
def test_api_bad_input_is_400_naming_the_field_and_changes_nothing(owner, quality, dataset, extra, field):
    before = snapshot()
    response = api(owner).post("/api/v1/shares/", _body(dataset, **extra), format="json")
    assert response.status_code == 400 and field in response.json()["fields"], response.json()
    assert snapshot() == before


def test_api_duplicate_share_is_400(owner, quality, dataset):
    assert api(owner).post("/api/v1/shares/", _body(dataset), format="json").status_code == 201
    before = snapshot()
    again = api(owner).post("/api/v1/shares/", _body(dataset, level="use"), format="json")
    assert again.status_code == 400 and again.json()["error"] == "already_shared"
    assert snapshot() == before


def test_api_member_may_not_share(member, quality, dataset):
    response = api(member).post("/api/v1/shares/", _body(dataset), format="json")
    assert response.status_code == 403 and not Share.objects.exists()


def test_api_models_and_shop_problems_are_shared_too(owner, outsider, quality, production):
    model = models_services.model_create(actor=owner, department=production, name="Quality predictor")
    problem = scheduling_services.problem_create(actor=owner, department=production, name="Shop", instance=generate(3, 2, seed=1))
    for object_type, obj in (("models_repo.registeredmodel", model), ("scheduling.shopproblem", problem)):
        body = {"object_type": object_type, "object_id": str(obj.pk), "department": "quality", "level": "use", "purpose": "p"}
        assert api(owner).post("/api/v1/shares/", body, format="json").status_code == 201
        assert policy.can(outsider, "use", obj)


def test_api_anonymous_gets_401(owner, quality, dataset):
    share = share_grant(actor=owner, obj=dataset, department=quality)
    client = api()
    assert client.get("/api/v1/shares/").status_code == 401
    assert client.post("/api/v1/shares/", _body(dataset), format="json").status_code == 401
    assert client.delete(f"/api/v1/shares/{share.pk}/").status_code == 401
    assert Share.objects.count() == 1


def test_api_outsider_gets_404_for_someone_else_s_object_and_share(owner, outsider, quality, dataset):
    share = share_grant(actor=owner, obj=dataset, department=quality)
    assert api(outsider).get(f"/api/v1/shares/{share.pk}/").status_code == 404
    assert api(outsider).delete(f"/api/v1/shares/{share.pk}/").status_code == 404
    body = _body(dataset, department="quality")
    Share.objects.all().delete()
    assert api(outsider).post("/api/v1/shares/", body, format="json").status_code == 404
    assert not Share.objects.exists()


# --- browser panel ---------------------------------------------------------------------------------


def test_the_panel_shows_on_the_dataset_model_and_problem_pages_to_maintainers_only(owner, member, production):
    model = models_services.model_create(actor=owner, department=production, name="Quality predictor")
    problem = scheduling_services.problem_create(actor=owner, department=production, name="Shop", instance=generate(3, 2, seed=1))
    dataset = published_dataset(member, production).dataset
    for url in (f"/data/{dataset.pk}/", f"/models/{model.pk}/", f"/scheduling/problems/{problem.pk}/"):
        assert b'id="share-form"' in browser(owner).get(url).content, url
        page = browser(member).get(url)
        assert page.status_code == 200 and b'id="share-form"' not in page.content, url


def test_browser_share_and_revoke(owner, outsider, quality, dataset):
    form = {"object_type": "datalake.dataset", "object_id": str(dataset.pk), "department": "quality", "level": "use",
            "purpose": "joint study", "expires_on": (timezone.localdate() + timedelta(days=30)).isoformat()}  # fmt: skip
    response = browser(owner).post("/shares/new/", form)
    assert response.status_code == 302 and response["Location"] == f"/data/{dataset.pk}/#shares"
    share = Share.objects.get()
    assert share.level == "use" and share.purpose == "joint study" and share.expires_at > timezone.now() + timedelta(days=29)
    page = browser(owner).get(f"/data/{dataset.pk}/").content.decode()
    assert 'data-share="quality"' in page and "joint study" in page
    assert browser(outsider).get(f"/data/{dataset.pk}/").status_code == 200
    assert browser(owner).post(f"/shares/{share.pk}/revoke/").status_code == 302
    assert not Share.objects.exists() and browser(outsider).get(f"/data/{dataset.pk}/").status_code == 404


@pytest.mark.parametrize(
    "extra, text",
    [
        ({"department": "production"}, "Select a valid choice"),  # one's own department is not offered
        ({"expires_on": "2001-01-01"}, "Must be in the future."),
    ],
)
def test_browser_bad_share_shows_the_form_again_with_the_error(owner, dataset, quality, extra, text):
    form = {"object_type": "datalake.dataset", "object_id": str(dataset.pk), "department": "quality", "level": "view",
            "purpose": "p", **extra}  # fmt: skip
    before = snapshot()
    response = browser(owner).post("/shares/new/", form)
    assert response.status_code == 400 and text in response.content.decode()
    assert snapshot() == before


def test_browser_duplicate_share_shows_the_error(owner, dataset, quality):
    share_grant(actor=owner, obj=dataset, department=quality)
    before = snapshot()
    form = {"object_type": "datalake.dataset", "object_id": str(dataset.pk), "department": "quality", "level": "use",
            "purpose": "p"}  # fmt: skip
    response = browser(owner).post("/shares/new/", form)
    assert response.status_code == 400 and "Already shared with this department." in response.content.decode()
    assert snapshot() == before


def test_browser_anonymous_is_sent_to_login_and_outsider_gets_404(owner, outsider, member, dataset):
    maintenance = DepartmentFactory(slug="maintenance", name="Maintenance")
    share = share_grant(actor=owner, obj=dataset, department=maintenance)
    form = {"object_type": "datalake.dataset", "object_id": str(dataset.pk), "department": "maintenance", "level": "view",
            "purpose": "p"}  # fmt: skip
    for url, data in (("/shares/new/", form), (f"/shares/{share.pk}/revoke/", {})):
        anonymous = browser().post(url, data)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
        assert browser(outsider).post(url, data).status_code == 404, url
        assert browser(member).post(url, data).status_code == 403, url  # sees the dataset, may not share it
    assert (
        browser(outsider).get("/shares/new/", {"object_type": "datalake.dataset", "object_id": str(dataset.pk)}).status_code
        == 404
    )
    assert list(Share.objects.values_list("department__slug", flat=True)) == ["maintenance"]
