"""Access requests: a discoverable object's metadata is seen by other departments, a person there
asks for access, the owning maintainers decide in their inbox (approve creates the share, reject
tells why), the asker may withdraw. Service, API and browser; anonymous and outsider cases; the
bad inputs the issue names (own request, non-discoverable object, duplicate) change nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from lepton import policy
from lepton.collab import services
from lepton.collab.models import AccessRequest, Notice
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.models import Job
from lepton.models import AuditEvent, Share
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory
from tests.lepton.collab_helpers import api, browser, published_dataset


@pytest.fixture
def open_data(member, production):
    """A discoverable dataset of Production."""
    return published_dataset(member, production, name="Line yields", discoverable=True).dataset


@pytest.fixture
def hidden_data(member, production):
    return published_dataset(member, production, name="Payroll").dataset


@pytest.fixture
def stranger(db):
    """A member of a third department (Maintenance), which has nothing to do with the request."""
    user = UserFactory(username="sven-stranger")
    MembershipFactory(user=user, department=DepartmentFactory(slug="maintenance", name="Maintenance"), role="maintainer")
    return user


def _state():
    return (
        list(AccessRequest.objects.values_list("status", flat=True)),
        Share.objects.count(),
        AuditEvent.objects.count(),
        Notice.objects.count(),
    )


# --- service -------------------------------------------------------------------------------------


def test_request_then_approve_creates_the_share_and_tells_everyone(
    owner, admin, member, outsider, quality, open_data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = services.access_request_create(actor=outsider, obj=open_data, level="use", purpose="yield study")
    assert (request.department.slug, request.requester_department, request.status) == ("production", quality, "pending")
    # The owning department's maintainers (and admins) get an inbox item, in the app and by e-mail.
    assert sorted(Notice.objects.values_list("user__username", flat=True)) == ["alice-admin", "oscar-owner"]
    assert "yield study" in Notice.objects.first().message and Notice.objects.first().url == "/access/"
    assert Job.objects.filter(kind=services.NOTICE_EMAIL_KIND).count() == 1
    assert not policy.can(outsider, "view", open_data)

    until = timezone.now() + timedelta(days=30)
    approved = services.access_request_approve(actor=owner, request=request, expires_at=until)
    share = Share.objects.get()
    assert approved.status == "approved" and approved.share == share and approved.decided_by == owner
    assert (share.department, share.level, share.purpose, share.expires_at) == (quality, "use", "yield study", until)
    assert policy.can(outsider, "use", open_data)
    assert Notice.objects.filter(user=outsider, message__contains="approved").exists()
    actions = list(AuditEvent.objects.filter(object_id=str(open_data.pk)).values_list("action", flat=True)[:3])
    assert actions == ["access_request.approve", "share.grant", "access_request.create"]


def test_reject_needs_a_reason_and_tells_the_asker(owner, outsider, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="curious")
    before = _state()
    with pytest.raises(Invalid) as refused:
        services.access_request_reject(actor=owner, request=request, reason="  ")
    assert "reason" in refused.value.fields and _state() == before
    services.access_request_reject(actor=owner, request=request, reason="Contains customer names.")
    request.refresh_from_db()
    assert request.status == "rejected" and request.reason == "Contains customer names."
    assert Notice.objects.get(user=outsider).message.endswith("Contains customer names.")
    assert not Share.objects.exists() and AuditEvent.objects.filter(action="access_request.reject").exists()


def test_withdraw_is_for_the_asker(owner, outsider, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    with pytest.raises(Forbidden):
        services.access_request_withdraw(actor=owner, request=request)
    services.access_request_withdraw(actor=outsider, request=request)
    request.refresh_from_db()
    assert request.status == "withdrawn" and AuditEvent.objects.filter(action="access_request.withdraw").exists()
    with pytest.raises(Conflict):
        services.access_request_approve(actor=owner, request=request)
    assert not Share.objects.exists()


def test_approving_one_s_own_request_is_refused(production, quality, open_data):
    both = UserFactory(username="bo-both")
    MembershipFactory(user=both, department=quality, role="member")
    MembershipFactory(user=both, department=production, role="maintainer")
    request = services.access_request_create(actor=both, obj=open_data, purpose="p", department=quality)
    before = _state()
    with pytest.raises(Invalid) as refused:
        services.access_request_approve(actor=both, request=request)
    assert refused.value.code == "own_request"
    assert refused.value.message == "You cannot approve your own request; another maintainer decides it."
    assert _state() == before


def test_a_request_for_a_non_discoverable_object_is_not_found(outsider, hidden_data):
    with pytest.raises(NotFound):
        services.access_request_create(actor=outsider, obj=hidden_data, purpose="p")
    assert _state() == ([], 0, AuditEvent.objects.count(), 0)


def test_a_duplicate_pending_request_is_refused(outsider, open_data, quality):
    colleague = UserFactory(username="quinn-quality")
    MembershipFactory(user=colleague, department=quality, role="viewer")
    services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    before = _state()
    with pytest.raises(Invalid) as refused:
        services.access_request_create(actor=colleague, obj=open_data, purpose="me too")
    assert refused.value.code == "duplicate_request" and "already asked" in refused.value.message
    assert _state() == before


def test_one_s_own_department_s_object_cannot_be_requested(member, open_data, production):
    with pytest.raises(Invalid) as refused:
        services.access_request_create(actor=member, obj=open_data, purpose="p", department=production)
    assert "department" in refused.value.fields and not AccessRequest.objects.exists()


def test_only_the_owning_maintainers_decide(member, outsider, stranger, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    with pytest.raises(NotFound):
        services.access_request_approve(actor=member, request=request)  # a member of the owner does not see requests
    with pytest.raises(NotFound):
        services.access_request_approve(actor=stranger, request=request)
    assert AccessRequest.objects.get().status == "pending" and not Share.objects.exists()


# --- API -----------------------------------------------------------------------------------------


def _body(obj, **extra):
    return {"object_type": "datalake.dataset", "object_id": str(obj.pk), "level": "view", "purpose": "yield study", **extra}


def test_api_full_flow(owner, outsider, open_data):
    created = api(outsider).post("/api/v1/access-requests/", _body(open_data), format="json")
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    assert created.json()["requester_department"] == "quality" and created.json()["status"] == "pending"
    assert [r["id"] for r in api(owner).get("/api/v1/access-requests/", {"box": "incoming"}).json()["results"]] == [rid]
    assert [r["id"] for r in api(outsider).get("/api/v1/access-requests/", {"box": "outgoing"}).json()["results"]] == [rid]
    assert api(outsider).get("/api/v1/access-requests/", {"box": "incoming"}).json()["count"] == 0
    approved = api(owner).post(f"/api/v1/access-requests/{rid}/approve/", {"expires_at": "2999-01-01T00:00:00Z"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved" and approved.json()["share"]
    assert api(outsider).get(f"/api/v1/datasets/{open_data.pk}/").status_code == 200
    again = api(owner).post(f"/api/v1/access-requests/{rid}/reject/", {"reason": "late"}, format="json")
    assert again.status_code == 409


def test_api_reject_and_withdraw(owner, outsider, open_data):
    rid = api(outsider).post("/api/v1/access-requests/", _body(open_data), format="json").json()["id"]
    missing = api(owner).post(f"/api/v1/access-requests/{rid}/reject/", {}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["fields"]
    rejected = api(owner).post(f"/api/v1/access-requests/{rid}/reject/", {"reason": "Customer data."}, format="json")
    assert rejected.status_code == 200 and rejected.json()["reason"] == "Customer data."
    rid = api(outsider).post("/api/v1/access-requests/", _body(open_data), format="json").json()["id"]
    assert api(owner).post(f"/api/v1/access-requests/{rid}/withdraw/").status_code == 403
    assert api(outsider).post(f"/api/v1/access-requests/{rid}/withdraw/").json()["status"] == "withdrawn"


def test_api_bad_requests(owner, outsider, open_data, hidden_data):
    assert api(outsider).post("/api/v1/access-requests/", _body(hidden_data), format="json").status_code == 404
    unknown = _body(open_data, object_type="lepton.department")
    assert api(outsider).post("/api/v1/access-requests/", unknown, format="json").status_code == 404
    assert api(outsider).post("/api/v1/access-requests/", _body(open_data, purpose=""), format="json").status_code == 400
    assert api(outsider).post("/api/v1/access-requests/", _body(open_data), format="json").status_code == 201
    before = _state()
    duplicate = api(outsider).post("/api/v1/access-requests/", _body(open_data), format="json")
    assert duplicate.status_code == 400 and duplicate.json()["error"] == "duplicate_request"
    assert _state() == before


def test_api_approving_one_s_own_request_is_400(production, quality, open_data):
    both = UserFactory(username="bo-both")
    MembershipFactory(user=both, department=quality, role="member")
    MembershipFactory(user=both, department=production, role="maintainer")
    rid = api(both).post("/api/v1/access-requests/", _body(open_data, department="quality"), format="json").json()["id"]
    before = _state()
    response = api(both).post(f"/api/v1/access-requests/{rid}/approve/", {}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "own_request"
    assert _state() == before


def test_api_anonymous_gets_401(outsider, open_data):
    rid = services.access_request_create(actor=outsider, obj=open_data, purpose="p").pk
    client = api()
    assert client.get("/api/v1/access-requests/").status_code == 401
    assert client.post("/api/v1/access-requests/", _body(open_data), format="json").status_code == 401
    for verb in ("approve", "reject", "withdraw"):
        assert client.post(f"/api/v1/access-requests/{rid}/{verb}/", {"reason": "x"}, format="json").status_code == 401
    assert AccessRequest.objects.get().status == "pending"


def test_api_outsider_of_both_departments_gets_404(stranger, outsider, open_data):
    rid = services.access_request_create(actor=outsider, obj=open_data, purpose="p").pk
    assert api(stranger).get("/api/v1/access-requests/").json()["count"] == 0
    assert api(stranger).get(f"/api/v1/access-requests/{rid}/").status_code == 404
    for verb in ("approve", "reject", "withdraw"):
        assert api(stranger).post(f"/api/v1/access-requests/{rid}/{verb}/", {"reason": "x"}, format="json").status_code == 404
    assert AccessRequest.objects.get().status == "pending" and not Share.objects.exists()


# --- browser -------------------------------------------------------------------------------------


def test_browser_discover_request_and_approve(owner, outsider, open_data):
    index = browser(outsider).get("/data/").content.decode()
    link = f"/access/request/datalake.dataset/{open_data.pk}/"
    assert link in index
    page = browser(outsider).get(link)
    assert page.status_code == 200 and "Line yields" in page.content.decode() and "machine" in page.content.decode()
    sent = browser(outsider).post(link, {"department": "quality", "level": "view", "purpose": "yield study"})
    assert sent.status_code == 302 and sent["Location"] == "/access/"
    request = AccessRequest.objects.get()
    inbox = browser(owner).get("/access/").content.decode()
    assert f'id="request-{request.pk}" data-status="pending"' in inbox and "yield study" in inbox
    mine = browser(outsider).get("/access/").content.decode()
    assert f"/access/{request.pk}/withdraw/" in mine and f"/access/{request.pk}/approve/" not in mine
    assert browser(owner).post(f"/access/{request.pk}/approve/", {"expires_on": ""}).status_code == 302
    assert browser(outsider).get(f"/data/{open_data.pk}/").status_code == 200


def test_browser_reject_needs_a_reason_and_withdraw(owner, outsider, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    refused = browser(owner).post(f"/access/{request.pk}/reject/", {"reason": ""})
    assert refused.status_code == 400 and 'id="access-error"' in refused.content.decode()
    assert browser(owner).post(f"/access/{request.pk}/reject/", {"reason": "Not now."}).status_code == 302
    assert AccessRequest.objects.get().status == "rejected"
    again = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    assert browser(outsider).post(f"/access/{again.pk}/withdraw/").status_code == 302
    assert AccessRequest.objects.get(pk=again.pk).status == "withdrawn"


def test_browser_bad_input_shows_the_message_and_changes_nothing(owner, outsider, open_data, hidden_data):
    assert browser(outsider).get(f"/access/request/datalake.dataset/{hidden_data.pk}/").status_code == 404
    assert browser(outsider).get("/access/request/lepton.department/1/").status_code == 404
    link = f"/access/request/datalake.dataset/{open_data.pk}/"
    browser(outsider).post(link, {"department": "quality", "level": "view", "purpose": "first"})
    before = _state()
    duplicate = browser(outsider).post(link, {"department": "quality", "level": "view", "purpose": "again"})
    assert duplicate.status_code == 400 and "A request is already pending." in duplicate.content.decode()
    past = browser(owner).post(f"/access/{AccessRequest.objects.get().pk}/approve/", {"expires_on": "2001-01-01"})
    assert past.status_code == 400 and "The expiry must lie in the future." in past.content.decode()
    assert _state() == before


def test_browser_anonymous_is_sent_to_login(outsider, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    for method, url in (
        ("get", "/access/"),
        ("get", f"/access/request/datalake.dataset/{open_data.pk}/"),
        ("post", f"/access/{request.pk}/approve/"),
        ("post", f"/access/{request.pk}/reject/"),
        ("post", f"/access/{request.pk}/withdraw/"),
    ):
        response = getattr(browser(), method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert AccessRequest.objects.get().status == "pending"


def test_browser_outsider_gets_404_and_member_403(member, stranger, outsider, open_data):
    request = services.access_request_create(actor=outsider, obj=open_data, purpose="p")
    for verb in ("approve", "reject", "withdraw"):
        assert browser(stranger).post(f"/access/{request.pk}/{verb}/", {"reason": "x"}).status_code == 404
    assert browser(member).post(f"/access/{request.pk}/approve/").status_code == 404  # a member does not see requests
    assert f"request-{request.pk}" not in browser(stranger).get("/access/").content.decode()
    assert AccessRequest.objects.get().status == "pending"


def test_api_lists_cost_the_same_queries_whatever_their_length(owner, outsider, production, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lepton.services import share_grant

    def counted(url):
        client = api(owner)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    quality = outsider.memberships.get().department
    first = published_dataset(member, production, name="Set 0", discoverable=True).dataset
    services.access_request_create(actor=outsider, obj=first, purpose="p")
    share_grant(actor=owner, obj=first, department=DepartmentFactory(slug="d-0"))
    counted("/api/v1/shares/")  # warms Django's content-type cache, once per process
    one = (counted("/api/v1/access-requests/"), counted("/api/v1/shares/"))
    for i in range(1, 4):
        dataset = published_dataset(member, production, name=f"Set {i}", discoverable=True).dataset
        services.access_request_create(actor=outsider, obj=dataset, purpose="p", department=quality)
        share_grant(actor=owner, obj=dataset, department=DepartmentFactory(slug=f"d-{i}"))
    assert (counted("/api/v1/access-requests/"), counted("/api/v1/shares/")) == one


def test_staff_read_requests_and_comments_in_the_admin(staff, outsider, open_data):
    services.access_request_create(actor=outsider, obj=open_data, purpose="yield study")
    for url in ("/admin/lepton/accessrequest/", "/admin/lepton/comment/"):
        assert browser(staff).get(url).status_code == 200, url
    assert "production.line-yields" in browser(staff).get("/admin/lepton/accessrequest/?q=yield").content.decode()
