"""Core services: each writes its audit event, refuses bad input with a clear message and changes nothing."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from lepton import audit, services
from lepton.audit import RequestContext, reset_request_context, set_request_context
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.jobs.models import Job
from lepton.models import ApiToken, AuditEvent, Department, Membership, Share
from tests.factories import UserFactory


def _snapshot():
    return (
        Department.objects.count(),
        Membership.objects.count(),
        Share.objects.count(),
        ApiToken.objects.count(),
        AuditEvent.objects.count(),
        Job.objects.count(),
    )


def _last_event():
    return AuditEvent.objects.order_by("-id").first()


# --- departments ---------------------------------------------------------------------------


def test_department_create_makes_the_first_admin_and_audits(staff):
    dept = services.department_create(actor=staff, slug="energy", name="Energy", max_concurrent_jobs=3)
    assert dept.max_concurrent_jobs == 3
    assert Membership.objects.get(department=dept).role == "admin"
    event = _last_event()
    assert (event.action, event.object_id, event.department, event.actor) == ("department.create", str(dept.pk), dept, staff)
    assert event.changes["slug"] == "energy"


def test_department_slug_already_taken_is_refused_and_changes_nothing(staff, production):
    before = _snapshot()
    with pytest.raises(Invalid) as err:
        services.department_create(actor=staff, slug="production", name="Another")
    assert "already taken" in err.value.message and "slug" in err.value.fields
    assert _snapshot() == before


def test_department_slug_is_lowercased(staff):
    assert services.department_create(actor=staff, slug=" Energy ", name="Energy").slug == "energy"


@pytest.mark.parametrize("slug", ["has space", "a/b", "", "ünï", "-x_"])
def test_department_bad_slug_is_refused(staff, slug):
    with pytest.raises(Invalid) as err:
        services.department_create(actor=staff, slug=slug, name="X")
    assert "slug" in err.value.fields


def test_only_platform_admins_create_departments(admin):
    with pytest.raises(Forbidden):
        services.department_create(actor=admin, slug="x", name="X")


def test_department_quota_change_needs_admin_and_is_audited(production, owner, admin):
    with pytest.raises(Forbidden):
        services.department_update(actor=owner, department=production, max_concurrent_jobs=9)
    services.department_update(actor=admin, department=production, max_concurrent_jobs=9)
    production.refresh_from_db()
    assert production.max_concurrent_jobs == 9
    assert _last_event().changes == {"max_concurrent_jobs": [4, 9]}


def test_department_bad_quota_is_refused(production, admin):
    before = _snapshot()
    with pytest.raises(Invalid) as err:
        services.department_update(actor=admin, department=production, max_concurrent_jobs=0, gpu_minutes_per_month=-1)
    assert set(err.value.fields) == {"max_concurrent_jobs", "gpu_minutes_per_month"}
    production.refresh_from_db()
    assert production.max_concurrent_jobs == 4
    assert _snapshot() == before


def test_outsider_updating_a_department_gets_not_found(production, outsider):
    with pytest.raises(NotFound):
        services.department_update(actor=outsider, department=production, name="Mine")


# --- memberships ---------------------------------------------------------------------------


def test_maintainer_adds_a_member_and_it_is_audited(production, owner):
    newcomer = UserFactory(username="newcomer")
    membership = services.membership_add(actor=owner, department=production, user=newcomer, role="member")
    assert membership.role == "member"
    event = _last_event()
    assert event.action == "membership.add" and event.department == production and event.changes["user"] == "newcomer"


def test_maintainer_cannot_grant_admin(production, owner):
    with pytest.raises(Forbidden, match="admin"):
        services.membership_add(actor=owner, department=production, user=UserFactory(username="x"), role="admin")


def test_member_cannot_manage_memberships(production, member):
    with pytest.raises(Forbidden):
        services.membership_add(actor=member, department=production, user=UserFactory(username="x"))


def test_outsider_managing_memberships_gets_not_found(production, outsider):
    with pytest.raises(NotFound):
        services.membership_add(actor=outsider, department=production, user=UserFactory(username="x"))


def test_adding_twice_is_refused(production, owner, member):
    before = _snapshot()
    with pytest.raises(Invalid, match="already"):
        services.membership_add(actor=owner, department=production, user=member)
    assert _snapshot() == before


def test_unknown_role_is_refused(production, owner):
    with pytest.raises(Invalid) as err:
        services.membership_add(actor=owner, department=production, user=UserFactory(username="x"), role="boss")
    assert "role" in err.value.fields


def test_demoting_the_last_admin_is_refused(production, admin):
    membership = Membership.objects.get(user=admin, department=production)
    before = _snapshot()
    with pytest.raises(Conflict, match="last admin"):
        services.membership_change_role(actor=admin, membership=membership, role="member")
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert _snapshot() == before


def test_removing_the_last_admin_is_refused(production, admin):
    membership = Membership.objects.get(user=admin, department=production)
    with pytest.raises(Conflict):
        services.membership_remove(actor=admin, membership=membership)
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_admin_can_step_down_once_another_admin_exists(production, admin, owner):
    services.membership_change_role(actor=admin, membership=Membership.objects.get(user=owner), role="admin")
    services.membership_change_role(actor=admin, membership=Membership.objects.get(user=admin), role="member")
    assert Membership.objects.get(user=admin).role == "member"
    assert _last_event().changes["role"] == ["admin", "member"]


def test_maintainer_cannot_touch_an_admin(production, admin, owner):
    with pytest.raises(Forbidden):
        services.membership_change_role(actor=owner, membership=Membership.objects.get(user=admin), role="viewer")


def test_membership_remove_is_audited(production, owner, member):
    services.membership_remove(actor=owner, membership=Membership.objects.get(user=member))
    assert not Membership.objects.filter(user=member).exists()
    assert _last_event().action == "membership.remove"


def test_role_change_takes_effect_for_the_cached_user(production, owner, member):
    from lepton import policy

    assert policy.can(member, "submit", production)
    membership = Membership.objects.get(user=member)
    services.membership_change_role(actor=owner, membership=membership, role="viewer")
    # The service forgets the cached roles of the user it changed (each request loads the user afresh).
    assert not policy.can(membership.user, "submit", production)


# --- shares ----------------------------------------------------------------------------------


def test_share_grant_and_revoke_are_audited(production, quality, owner, outsider):
    from lepton import policy

    job = Job.objects.create(kind="tests.noop", department=production)
    share = services.share_grant(actor=owner, obj=job, department=quality, level="view", purpose="root-cause study")
    assert policy.can(outsider, "view", job)
    assert _last_event().action == "share.grant"
    services.share_revoke(actor=owner, share=share)
    assert not policy.can(outsider, "view", job)
    assert _last_event().action == "share.revoke"


def test_share_needs_maintainer_and_a_future_expiry(production, quality, member, owner):
    job = Job.objects.create(kind="tests.noop", department=production)
    with pytest.raises(Forbidden):
        services.share_grant(actor=member, obj=job, department=quality)
    with pytest.raises(Invalid) as err:
        services.share_grant(actor=owner, obj=job, department=quality, expires_at=timezone.now() - timedelta(days=1))
    assert "expires_at" in err.value.fields
    with pytest.raises(Invalid):
        services.share_grant(actor=owner, obj=job, department=production)
    assert Share.objects.count() == 0


# --- tokens ----------------------------------------------------------------------------------


def test_token_is_stored_hashed_and_authenticates(member):
    token, secret = services.token_create(actor=member, name="line-3 sensor bridge", scopes=["read", "predict"])
    assert secret.startswith(token.prefix + "_")
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.filter(pk=token.pk).values().first())
    found = services.token_authenticate(secret)
    assert found.pk == token.pk and found.user == member
    found.refresh_from_db()
    assert found.last_used_at is not None
    assert _last_event().action == "token.create"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "", "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "x", "scopes": ["read"], "expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
    ],
)
def test_token_bad_input_is_refused(member, kwargs, field):
    before = _snapshot()
    with pytest.raises(Invalid) as err:
        services.token_create(actor=member, **kwargs)
    assert field in err.value.fields
    assert _snapshot() == before


def test_wrong_expired_and_revoked_tokens_are_refused(member):
    token, secret = services.token_create(actor=member, name="t", scopes=["read"])
    with pytest.raises(services.TokenError, match="Invalid"):
        services.token_authenticate(secret[:-2] + "xx")
    with pytest.raises(services.TokenError, match="Invalid"):
        services.token_authenticate("garbage")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.TokenError, match="expired"):
        services.token_authenticate(secret)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    services.token_revoke(actor=member, token=token)
    assert _last_event().action == "token.revoke"
    with pytest.raises(services.TokenError, match="revoked"):
        services.token_authenticate(secret)
    with pytest.raises(Conflict):
        services.token_revoke(actor=member, token=token)


def test_someone_elses_token_cannot_be_revoked(member, outsider):
    token, _ = services.token_create(actor=member, name="t", scopes=["read"])
    with pytest.raises(NotFound):
        services.token_revoke(actor=outsider, token=token)


def test_token_of_an_inactive_user_is_refused(member):
    _, secret = services.token_create(actor=member, name="t", scopes=["read"])
    member.is_active = False
    member.save()
    with pytest.raises(services.TokenError, match="inactive"):
        services.token_authenticate(secret)


# --- the audit record itself ---------------------------------------------------------------


def test_audit_records_ip_and_user_agent_of_the_request(production, owner):
    context = set_request_context(RequestContext(ip="10.1.2.3", user_agent="pytest-agent"))
    try:
        services.membership_add(actor=owner, department=production, user=UserFactory(username="n1"))
    finally:
        reset_request_context(context)
    event = _last_event()
    assert (event.ip, event.user_agent) == ("10.1.2.3", "pytest-agent")


def test_audit_is_rolled_back_with_a_failed_change(production, admin):
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict):
        services.membership_change_role(actor=admin, membership=Membership.objects.get(user=admin), role="viewer")
    assert AuditEvent.objects.count() == before


def test_audit_diff_reports_only_changed_fields(production):
    assert audit.diff(production, ["name", "description"], {"name": "Production", "description": "new"}) == {
        "description": ["", "new"]
    }


def test_service_messages_follow_the_active_language(production, admin):
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(Conflict) as err:
        services.membership_change_role(actor=admin, membership=Membership.objects.get(user=admin), role="viewer")
    assert "最后一位管理员" in err.value.message
    assert err.value.fields == {"role": ["不能降级最后一位管理员。"]}
